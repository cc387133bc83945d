//! The running application: everything a request handler may use, built
//! once from validated settings.

use std::sync::Arc;

use rustls::ServerConfig;

use crate::backend::Backend;
use crate::backend::ldap::LdapBackend;
use crate::backend::memory::{DemoAccount, MemoryBackend};
use crate::backend::pam::PamBackend;
use crate::http::documents::Urls;
use crate::recovery::Recovery;
use crate::settings::{BackendSettings, RegistrationSettings, ServerSettings, Settings};
use crate::metrics::Metrics;
use crate::throttle::Throttle;
use crate::token::{SystemClock, TokenService};

/// Shared state of the server.
pub struct App {
    /// Where credentials are checked.
    pub backend: Arc<dyn Backend>,
    /// Token signing and verification.
    pub tokens: TokenService,
    /// Reset stamps and delivery.
    pub recovery: Recovery,
    /// Absolute URLs.
    pub urls: Urls,
    /// Username and password policy.
    pub registration: RegistrationSettings,
    /// Limits and timeouts.
    pub server: ServerSettings,
    /// Failed-login and registration counters.
    pub throttle: Throttle,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Whether `/metrics` is served on the main listener.
    pub metrics_on_main: bool,
}

/// The application and what start-up has to announce.
pub struct Built {
    /// The application.
    pub app: Arc<App>,
    /// TLS configuration, when TLS is on.
    pub tls: Option<Arc<ServerConfig>>,
    /// The demo account, when one was made.
    pub demo: Option<DemoAccount>,
    /// Whether the signing key was generated for lack of a configured one.
    pub ephemeral_key: bool,
}

/// Loads keys, certificates and the backend. Every failure is returned,
/// not just the first.
pub fn build(settings: &Settings) -> Result<Built, Vec<String>> {
    let mut problems = Vec::new();
    let tokens = TokenService::new(&settings.jwt, Arc::new(SystemClock))
        .map_err(|mut p| problems.append(&mut p))
        .ok();
    let tls = settings
        .server
        .tls
        .as_ref()
        .map(crate::tls::server_config)
        .transpose();
    let tls = tls.map_err(|p| problems.push(p)).ok().flatten();
    let backend = build_backend(&settings.backend)
        .map_err(|p| problems.push(p))
        .ok();
    let (Some((tokens, ephemeral_key)), Some((backend, demo))) = (tokens, backend) else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let app = App {
        backend,
        tokens,
        recovery: Recovery::new(settings.recovery.clone(), &settings.server.public_url),
        urls: Urls::new(&settings.server.public_url),
        registration: settings.registration.clone(),
        server: settings.server.clone(),
        throttle: Throttle::new(&settings.throttle, Arc::new(SystemClock)),
        metrics: Metrics::new(),
        metrics_on_main: settings.metrics.listen.is_none(),
    };
    Ok(Built {
        app: Arc::new(app),
        tls,
        demo,
        ephemeral_key,
    })
}

type BuiltBackend = (Arc<dyn Backend>, Option<DemoAccount>);

fn build_backend(settings: &BackendSettings) -> Result<BuiltBackend, String> {
    match settings {
        BackendSettings::Memory(memory) => {
            let (backend, demo) =
                MemoryBackend::new(memory).map_err(|e| format!("backend.memory: {e}"))?;
            Ok((Arc::new(backend), demo))
        }
        BackendSettings::Ldap(ldap) => Ok((Arc::new(LdapBackend::new(ldap)?), None)),
        BackendSettings::Pam(pam) => Ok((Arc::new(PamBackend::new(pam)), None)),
    }
}

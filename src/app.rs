//! The running application: everything a request handler may use, built
//! from validated settings at start and built again on a reload.

use std::sync::Arc;

use rustls::ServerConfig;

use crate::backend::Backend;
use crate::backend::ldap::LdapBackend;
use crate::backend::memory::{DemoAccount, MemoryBackend};
use crate::backend::pam::PamBackend;
use crate::http::documents::Urls;
use crate::metrics::Metrics;
use crate::recovery::Recovery;
use crate::settings::{BackendSettings, RegistrationSettings, ServerSettings, Settings};
use crate::throttle::Throttle;
use crate::throttle_store::SharedStore;
use crate::token::{SystemClock, TokenService};

/// Shared state of the server.
pub struct App {
    /// Where credentials are checked.
    pub backend: Arc<dyn Backend>,
    /// Token signing and verification.
    pub tokens: Arc<TokenService>,
    /// Reset stamps and delivery.
    pub recovery: Recovery,
    /// Absolute URLs.
    pub urls: Urls,
    /// Username and password policy.
    pub registration: RegistrationSettings,
    /// Limits and timeouts.
    pub server: ServerSettings,
    /// Failed-login and registration counters.
    pub throttle: Arc<Throttle>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Whether `/metrics` is served on the main listener.
    pub metrics_on_main: bool,
    /// The settings this application was built from.
    pub settings: Settings,
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
    build_with(settings, None)
}

/// Builds the application again from new settings, keeping what must
/// survive a reload: metrics, throttle counts, reset stamps, the backend
/// when its settings did not change or when it writes a users file (see
/// `keeps_backend`), and a generated signing key when the key settings did
/// not change.
pub fn rebuild(settings: &Settings, previous: &App) -> Result<Built, Vec<String>> {
    build_with(settings, Some(previous))
}

fn build_with(settings: &Settings, previous: Option<&App>) -> Result<Built, Vec<String>> {
    let mut problems = Vec::new();
    let tokens = tokens(settings, previous)
        .map_err(|mut p| problems.append(&mut p))
        .ok();
    let tls = settings
        .server
        .tls
        .as_ref()
        .map(crate::tls::server_config)
        .transpose();
    let tls = tls.map_err(|p| problems.push(p)).ok().flatten();
    let backend = backend(settings, previous)
        .map_err(|p| problems.push(p))
        .ok();
    let (Some((tokens, ephemeral_key)), Some((backend, demo))) = (tokens, backend) else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }

    let public_url = &settings.server.public_url;
    let recovery = match previous {
        Some(old) => old
            .recovery
            .reconfigured(settings.recovery.clone(), public_url),
        None => Recovery::new(settings.recovery.clone(), public_url),
    };
    let metrics = previous.map_or_else(|| Arc::new(Metrics::new()), |old| Arc::clone(&old.metrics));
    let throttle = match previous {
        Some(old) => {
            old.throttle.set_limits(&settings.throttle);
            Arc::clone(&old.throttle)
        }
        None => Arc::new(throttle(settings, &metrics)?),
    };
    let app = App {
        backend,
        tokens,
        recovery,
        urls: Urls::new(public_url),
        registration: settings.registration.clone(),
        server: settings.server.clone(),
        throttle,
        metrics,
        metrics_on_main: settings.metrics.listen.is_none(),
        settings: settings.clone(),
    };
    Ok(Built {
        app: Arc::new(app),
        tls,
        demo,
        ephemeral_key,
    })
}

fn tokens(
    settings: &Settings,
    previous: Option<&App>,
) -> Result<(Arc<TokenService>, bool), Vec<String>> {
    let generated = settings.jwt.private_key.is_none();
    if let Some(old) = previous.filter(|old| generated && old.settings.jwt == settings.jwt) {
        return Ok((Arc::clone(&old.tokens), true));
    }
    let (service, generated) = TokenService::new(&settings.jwt, Arc::new(SystemClock))?;
    Ok((Arc::new(service), generated))
}

fn throttle(settings: &Settings, metrics: &Metrics) -> Result<Throttle, Vec<String>> {
    let local = Throttle::new(&settings.throttle, Arc::new(SystemClock));
    let Some(url) = &settings.throttle.redis_url else {
        return Ok(local);
    };
    let up = metrics.throttle_store_up.clone();
    let store = SharedStore::new(url, settings.throttle.redis_timeout, up).map_err(|e| vec![e])?;
    Ok(local.with_shared_store(store))
}

/// Whether a reload keeps the running backend: when its settings did not
/// change, and when both old and new are memory backends writing the same
/// users file. A second backend on that file would read it while requests
/// in flight still write through the first, and could lose their accounts;
/// such changes wait for a restart.
fn keeps_backend(old: &BackendSettings, new: &BackendSettings) -> bool {
    if old == new {
        return true;
    }
    match (old, new) {
        (BackendSettings::Memory(a), BackendSettings::Memory(b))
            if a.users_file.is_some() && a.users_file == b.users_file =>
        {
            tracing::warn!(
                "backend.memory changed but keeps its users_file: the change takes effect at restart"
            );
            true
        }
        _ => false,
    }
}

type BuiltBackend = (Arc<dyn Backend>, Option<DemoAccount>);

fn backend(settings: &Settings, previous: Option<&App>) -> Result<BuiltBackend, String> {
    if let Some(old) =
        previous.filter(|old| keeps_backend(&old.settings.backend, &settings.backend))
    {
        return Ok((Arc::clone(&old.backend), None));
    }
    match &settings.backend {
        BackendSettings::Memory(memory) => {
            let (backend, demo) =
                MemoryBackend::new(memory).map_err(|e| format!("backend.memory: {e}"))?;
            Ok((Arc::new(backend), demo))
        }
        BackendSettings::Ldap(ldap) => Ok((Arc::new(LdapBackend::new(ldap)?), None)),
        BackendSettings::Pam(pam) => Ok((Arc::new(PamBackend::new(pam)), None)),
    }
}

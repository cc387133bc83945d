//! Connections to the directory: the servers tried in order with dead ones
//! skipped for a while, TLS always verified, and pools of open connections.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use rustls::ClientConfig;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::backend::BackendError;
use crate::secret::Secret;
use crate::settings::LdapSettings;

/// The directory servers and how to reach them.
pub(super) struct Directory {
    urls: Vec<String>,
    /// Per URL: until when it is skipped after a failure.
    dead_until: Mutex<Vec<Option<Instant>>>,
    tls: Arc<ClientConfig>,
    starttls: bool,
    pub(super) timeout: Duration,
    retry_dead_after: Duration,
}

impl Directory {
    pub(super) fn new(settings: &LdapSettings, tls: Arc<ClientConfig>) -> Self {
        Self {
            urls: settings.urls.clone(),
            dead_until: Mutex::new(vec![None; settings.urls.len()]),
            tls,
            starttls: settings.starttls,
            timeout: settings.timeout,
            retry_dead_after: settings.retry_dead_after,
        }
    }

    pub(super) fn urls(&self) -> &[String] {
        &self.urls
    }

    /// A connection to the first server that answers, skipping servers
    /// that failed less than `retry_dead_after` ago.
    pub(super) async fn connect(&self) -> Result<Ldap, BackendError> {
        let mut last_error = String::from("every directory server failed recently");
        // With every server marked dead, the one that failed longest ago is
        // tried anyway: a single blip must not refuse logins for a while.
        let fallback = self.longest_dead();
        for (index, url) in self.urls.iter().enumerate() {
            if self.is_dead(index) && Some(index) != fallback {
                continue;
            }
            match self.connect_to(url).await {
                Ok(ldap) => return Ok(ldap),
                Err(err) => {
                    tracing::warn!(url = %url, error = %err, "directory server unreachable");
                    self.mark_dead(index);
                    last_error = format!("{url}: {err}");
                }
            }
        }
        Err(BackendError::Unavailable(last_error))
    }

    /// A connection to one server, TLS included, within the timeout.
    pub(super) async fn connect_to(&self, url: &str) -> Result<Ldap, String> {
        let starttls = self.starttls && url.starts_with("ldap://");
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_config(Arc::clone(&self.tls))
            .set_starttls(starttls);
        let connecting = LdapConnAsync::with_settings(settings, url);
        let (conn, ldap) = tokio::time::timeout(self.timeout, connecting)
            .await
            .map_err(|_| "connection timed out".to_string())?
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            if let Err(err) = conn.drive().await {
                tracing::debug!(error = %err, "directory connection ended");
            }
        });
        Ok(ldap)
    }

    /// The server that failed longest ago, when every server is dead.
    fn longest_dead(&self) -> Option<usize> {
        let dead = self.dead_until.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if dead.iter().any(|until| until.is_none_or(|t| t <= now)) {
            return None;
        }
        dead.iter()
            .enumerate()
            .min_by_key(|(_, until)| **until)
            .map(|(index, _)| index)
    }

    fn is_dead(&self, index: usize) -> bool {
        let dead = self.dead_until.lock().unwrap_or_else(|p| p.into_inner());
        dead.get(index)
            .copied()
            .flatten()
            .is_some_and(|until| Instant::now() < until)
    }

    fn mark_dead(&self, index: usize) {
        let mut dead = self.dead_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = dead.get_mut(index) {
            *slot = Some(Instant::now() + self.retry_dead_after);
        }
    }
}

/// Open connections, at most `size` in use at once. A pool with an
/// identity binds every new connection as it before handing it out.
pub(super) struct Pool {
    directory: Arc<Directory>,
    identity: Option<(String, Secret)>,
    idle: Mutex<Vec<Ldap>>,
    permits: Semaphore,
}

/// A connection taken from a pool; it goes back when dropped unless
/// [`Pooled::discard`] was called.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    ldap: Option<Ldap>,
    _permit: SemaphorePermit<'a>,
}

impl Pool {
    pub(super) fn new(
        directory: Arc<Directory>,
        identity: Option<(String, Secret)>,
        size: usize,
    ) -> Self {
        Self {
            directory,
            identity,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size.max(1)),
        }
    }

    /// An open connection: an idle one that is still alive, or a new one.
    pub(super) async fn get(&self) -> Result<Pooled<'_>, BackendError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| BackendError::Fault("pool closed".into()))?;
        let ldap = match self.take_idle() {
            Some(ldap) => ldap,
            None => self.open().await?,
        };
        Ok(Pooled {
            pool: self,
            ldap: Some(ldap),
            _permit: permit,
        })
    }

    fn take_idle(&self) -> Option<Ldap> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(mut ldap) = idle.pop() {
            if !ldap.is_closed() {
                return Some(ldap);
            }
        }
        None
    }

    async fn open(&self) -> Result<Ldap, BackendError> {
        let mut ldap = self.directory.connect().await?;
        if let Some((dn, password)) = &self.identity {
            let result = ldap
                .with_timeout(self.directory.timeout)
                .simple_bind(dn, password.expose())
                .await;
            let result =
                result.map_err(|e| BackendError::Unavailable(format!("service bind: {e}")))?;
            if result.rc != 0 {
                // A refused service account is a configuration fault, not
                // the user's: no login can work until it is fixed.
                let message = format!("service bind as {dn} refused (result {})", result.rc);
                tracing::error!(bind_dn = %dn, rc = result.rc, "directory refused the service account");
                return Err(BackendError::Unavailable(message));
            }
        }
        Ok(ldap)
    }

    /// Drops every idle connection (after the directory failed).
    pub(super) fn clear(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl Pooled<'_> {
    /// The connection.
    pub(super) fn ldap(&mut self) -> Result<&mut Ldap, BackendError> {
        self.ldap
            .as_mut()
            .ok_or_else(|| BackendError::Fault("connection already discarded".into()))
    }

    /// Closes the connection instead of returning it (after an error).
    pub(super) fn discard(&mut self) {
        self.ldap = None;
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(ldap) = self.ldap.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(ldap);
        }
    }
}

/// The TLS configuration for the directory: the configured CA, or the
/// system's roots. Verification is always on.
pub(super) fn tls_config(settings: &LdapSettings) -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &settings.ca_certificate {
        Some(path) => {
            use rustls_pki_types::pem::PemObject;
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("backend.ldap.ca_certificate: {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert
                    .map_err(|e| format!("backend.ldap.ca_certificate: {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("backend.ldap.ca_certificate: {e}"))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err("backend.ldap.ca_certificate: no CA certificate to trust".into());
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

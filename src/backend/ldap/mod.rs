//! The LDAP backend: logins checked by binding to the directory as the
//! user, found either through a DN template or by a service-account search.
//!
//! Two pools of connections are kept. The service pool is bound as the
//! service account and only ever searches. The bind pool serves user
//! binds: every use of one of its connections starts with a bind, which
//! replaces the identity of the previous use, so no operation ever runs
//! under another user's identity. The directory is read-only here.

mod escape;
mod pool;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use ldap3::{Ldap, LdapError, Scope, SearchEntry, SearchOptions};

use self::pool::{Directory, Pool, Pooled};
use super::{Backend, BackendError, Diagnosis, Identity};
use crate::secret::Secret;
use crate::settings::{LdapLocate, LdapSettings};

/// A user's entry, as found by search or as the template names it.
struct Entry {
    dn: String,
    attributes: HashMap<String, Vec<String>>,
}

/// See the module documentation.
pub struct LdapBackend {
    settings: LdapSettings,
    directory: Arc<Directory>,
    /// Bound as the service account; present in search mode.
    service: Option<Pool>,
    binds: Pool,
    /// A DN that names no entry, bound to when a search found no user so
    /// that an unknown user costs the same round trips as a wrong password.
    decoy_dn: String,
}

/// Result codes that mean "these credentials do not get in": invalid
/// credentials, inappropriate authentication, insufficient access,
/// unwilling to perform, constraint violation (locked by a password
/// policy), no such object, invalid DN syntax.
const REFUSALS: &[u32] = &[49, 48, 50, 53, 19, 32, 34];
/// Result codes that mean the server cannot answer now: busy, unavailable.
const UNAVAILABLE: &[u32] = &[51, 52];

impl LdapBackend {
    /// Prepares the backend; nothing connects until the first request.
    pub fn new(settings: &LdapSettings) -> Result<Self, String> {
        let tls = pool::tls_config(settings)?;
        let directory = Arc::new(Directory::new(settings, tls));
        let service = match &settings.locate {
            LdapLocate::Search(search) => {
                let identity = search.bind_dn.clone().zip(search.bind_password.clone());
                Some(Pool::new(
                    Arc::clone(&directory),
                    identity,
                    settings.pool_size,
                ))
            }
            LdapLocate::Template(_) => None,
        };
        let binds = Pool::new(Arc::clone(&directory), None, settings.pool_size);
        let decoy_base = match &settings.locate {
            LdapLocate::Search(search) => search.base_dn.clone(),
            LdapLocate::Template(_) => String::new(),
        };
        let decoy_dn = format!("cn=kisee-decoy-{},{decoy_base}", crate::token::random_id());
        Ok(Self {
            settings: settings.clone(),
            directory,
            service,
            binds,
            decoy_dn,
        })
    }

    /// The user's entry: built from the template, or searched for.
    /// `Ok(None)` when a search found no entry or several.
    async fn locate(&self, username: &str) -> Result<Option<Entry>, BackendError> {
        let search = match &self.settings.locate {
            LdapLocate::Template(template) => {
                let dn = escape::user_dn(template, username);
                return Ok(Some(Entry {
                    dn,
                    attributes: HashMap::new(),
                }));
            }
            LdapLocate::Search(search) => search,
        };
        let filter = escape::filter(&search.filter, username, "");
        let attributes = self.claim_attributes();
        let pool = self
            .service
            .as_ref()
            .ok_or_else(|| BackendError::Fault("no service pool".into()))?;
        let mut entries = self
            .search(pool, &search.base_dn, &filter, &attributes, 2)
            .await?;
        if entries.len() != 1 {
            let found = entries.len();
            tracing::debug!(
                user = username,
                found,
                "user search did not find exactly one entry"
            );
            return Ok(None);
        }
        Ok(entries.pop())
    }

    fn claim_attributes(&self) -> Vec<String> {
        let wanted = [
            &self.settings.email_attribute,
            &self.settings.name_attribute,
        ];
        let names: Vec<String> = wanted.into_iter().flatten().cloned().collect();
        if names.is_empty() {
            vec!["1.1".to_string()]
        } else {
            names
        }
    }

    /// A subtree search on a pooled connection, retried once on a fresh
    /// connection when the pooled one turns out to be dead.
    async fn search(
        &self,
        pool: &Pool,
        base: &str,
        filter: &str,
        attributes: &[String],
        limit: i32,
    ) -> Result<Vec<Entry>, BackendError> {
        for attempt in 0..2 {
            let mut conn = pool.get().await?;
            match search_on(
                conn.ldap()?,
                self.directory.timeout,
                base,
                filter,
                attributes,
                limit,
            )
            .await
            {
                Ok(entries) => return Ok(entries),
                Err(Failure::Transport(err)) if attempt == 0 => {
                    tracing::debug!(error = %err, "pooled directory connection failed, retrying");
                    conn.discard();
                    pool.clear();
                }
                Err(failure) => {
                    conn.discard();
                    return Err(failure.into_backend_error("search"));
                }
            }
        }
        Err(BackendError::Unavailable("search failed twice".into()))
    }

    /// Binds as `dn` on a bind-pool connection; `Ok(Some(conn))` when the
    /// directory accepted the password.
    async fn bind(&self, dn: &str, password: &Secret) -> Result<Option<Pooled<'_>>, BackendError> {
        for attempt in 0..2 {
            let mut conn = self.binds.get().await?;
            let ldap = conn.ldap()?;
            let result = ldap
                .with_timeout(self.directory.timeout)
                .simple_bind(dn, password.expose())
                .await;
            match result {
                Ok(result) if result.rc == 0 => return Ok(Some(conn)),
                Ok(result) if REFUSALS.contains(&result.rc) => {
                    tracing::debug!(dn, rc = result.rc, "directory refused the bind");
                    return Ok(None);
                }
                Ok(result) if UNAVAILABLE.contains(&result.rc) => {
                    conn.discard();
                    return Err(BackendError::Unavailable(format!(
                        "bind: result {}",
                        result.rc
                    )));
                }
                Ok(result) => {
                    tracing::warn!(dn, rc = result.rc, text = %result.text, "unexpected bind result, refused");
                    return Ok(None);
                }
                Err(err) if attempt == 0 => {
                    tracing::debug!(error = %err, "pooled directory connection failed, retrying");
                    conn.discard();
                    self.binds.clear();
                }
                Err(err) => {
                    conn.discard();
                    return Err(BackendError::Unavailable(format!("bind: {err}")));
                }
            }
        }
        Err(BackendError::Unavailable("bind failed twice".into()))
    }

    /// The claims of a user who just bound on `conn`.
    async fn identity(
        &self,
        username: &str,
        mut entry: Entry,
        conn: &mut Pooled<'_>,
    ) -> Result<Identity, BackendError> {
        let timeout = self.directory.timeout;
        let wants_claims =
            self.settings.email_attribute.is_some() || self.settings.name_attribute.is_some();
        if self.service.is_none() && wants_claims {
            // Direct-bind mode: read the claims from the user's own entry, as the user.
            let attributes = self.claim_attributes();
            let own = base_search(conn.ldap()?, timeout, &entry.dn, &attributes).await;
            entry.attributes = own.map_err(|f| f.into_backend_error("reading the user's entry"))?;
        }
        let first = |name: &Option<String>| {
            name.as_ref()
                .and_then(|n| first_value(&entry.attributes, n))
        };
        Ok(Identity {
            username: username.to_string(),
            groups: self.groups(username, &entry.dn, conn).await?,
            email: first(&self.settings.email_attribute),
            name: first(&self.settings.name_attribute),
        })
    }

    /// Group names: searched as the service account when there is one,
    /// otherwise as the user on their own connection.
    async fn groups(
        &self,
        username: &str,
        dn: &str,
        conn: &mut Pooled<'_>,
    ) -> Result<Vec<String>, BackendError> {
        let Some(groups) = &self.settings.groups else {
            return Ok(Vec::new());
        };
        let filter = escape::filter(&groups.filter, username, dn);
        let attributes = [groups.name_attribute.clone()];
        let entries = match &self.service {
            Some(pool) => {
                self.search(pool, &groups.base_dn, &filter, &attributes, 0)
                    .await?
            }
            None => search_on(
                conn.ldap()?,
                self.directory.timeout,
                &groups.base_dn,
                &filter,
                &attributes,
                0,
            )
            .await
            .map_err(|f| f.into_backend_error("group search"))?,
        };
        let mut names: Vec<String> = entries
            .iter()
            .filter_map(|e| first_value(&e.attributes, &groups.name_attribute))
            .collect();
        names.sort();
        Ok(names)
    }
}

/// What went wrong with one operation.
enum Failure {
    /// The connection failed or timed out: worth a fresh connection.
    Transport(LdapError),
    /// The directory answered with an error code.
    Result(u32, String),
}

impl Failure {
    fn into_backend_error(self, what: &str) -> BackendError {
        match self {
            Self::Transport(err) => BackendError::Unavailable(format!("{what}: {err}")),
            Self::Result(rc, text) => {
                tracing::error!(rc, text = %text, "directory {what} failed: check the backend.ldap settings");
                BackendError::Unavailable(format!("{what}: result {rc}"))
            }
        }
    }
}

async fn search_on(
    ldap: &mut Ldap,
    timeout: std::time::Duration,
    base: &str,
    filter: &str,
    attributes: &[String],
    limit: i32,
) -> Result<Vec<Entry>, Failure> {
    let options = SearchOptions::new().sizelimit(limit);
    let response = ldap
        .with_search_options(options)
        .with_timeout(timeout)
        .search(base, Scope::Subtree, filter, attributes.to_vec())
        .await
        .map_err(Failure::Transport)?;
    let (entries, result) = (response.0, response.1);
    // Size limit exceeded (4) still returns the entries found: with a limit
    // of 2 for user searches, that is "several", which the caller refuses.
    if result.rc != 0 && result.rc != 4 {
        return Err(Failure::Result(result.rc, result.text));
    }
    let entries = entries.into_iter().map(SearchEntry::construct);
    Ok(entries
        .map(|e| Entry {
            dn: e.dn,
            attributes: e.attrs,
        })
        .collect())
}

async fn base_search(
    ldap: &mut Ldap,
    timeout: std::time::Duration,
    dn: &str,
    attributes: &[String],
) -> Result<HashMap<String, Vec<String>>, Failure> {
    let response = ldap
        .with_timeout(timeout)
        .search(dn, Scope::Base, "(objectClass=*)", attributes.to_vec())
        .await
        .map_err(Failure::Transport)?;
    if response.1.rc != 0 {
        return Err(Failure::Result(response.1.rc, response.1.text));
    }
    let entry = response.0.into_iter().next().map(SearchEntry::construct);
    Ok(entry.map(|e| e.attrs).unwrap_or_default())
}

/// The first value of an attribute, its name compared without case.
fn first_value(attributes: &HashMap<String, Vec<String>>, name: &str) -> Option<String> {
    let values = attributes
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, v)| v);
    values.and_then(|v| v.first()).cloned()
}

#[async_trait]
impl Backend for LdapBackend {
    fn name(&self) -> &'static str {
        "ldap"
    }

    async fn authenticate(
        &self,
        username: &str,
        password: &Secret,
    ) -> Result<Identity, BackendError> {
        // A simple bind with a DN and an empty password is an
        // unauthenticated bind, which directories answer with success.
        if password.is_empty() {
            tracing::debug!(user = username, "empty password refused before any bind");
            return Err(BackendError::Refused);
        }
        let entry = self.locate(username).await?;
        let dn = entry
            .as_ref()
            .map_or(self.decoy_dn.as_str(), |e| e.dn.as_str())
            .to_string();
        let bound = self.bind(&dn, password).await?;
        match (entry, bound) {
            (Some(entry), Some(mut conn)) => self.identity(username, entry, &mut conn).await,
            _ => Err(BackendError::Refused),
        }
    }

    async fn health(&self) -> Result<(), BackendError> {
        match &self.service {
            Some(pool) => {
                let mut conn = pool.get().await?;
                let probe = base_search(
                    conn.ldap()?,
                    self.directory.timeout,
                    "",
                    &["1.1".to_string()],
                )
                .await;
                probe.map(drop).map_err(|failure| {
                    conn.discard();
                    failure.into_backend_error("health check")
                })
            }
            None => {
                let mut ldap = self.directory.connect().await?;
                let _ = ldap.unbind().await;
                Ok(())
            }
        }
    }

    async fn diagnose(&self) -> Vec<Diagnosis> {
        let mut steps = Vec::new();
        for url in self.directory.urls() {
            self.diagnose_server(url, &mut steps).await;
        }
        steps
    }
}

impl LdapBackend {
    async fn diagnose_server(&self, url: &str, steps: &mut Vec<Diagnosis>) {
        let address = url
            .split("://")
            .nth(1)
            .unwrap_or_default()
            .trim_end_matches('/');
        let tcp = tokio::time::timeout(
            self.directory.timeout,
            tokio::net::TcpStream::connect(address),
        )
        .await;
        let tcp = match tcp {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err("timed out".to_string()),
        };
        let reachable = tcp.is_ok();
        steps.push(Diagnosis {
            step: format!("connect {url}"),
            outcome: tcp,
        });
        if !reachable {
            return;
        }
        let secure = url.starts_with("ldaps://") || self.settings.starttls;
        let connected = self.directory.connect_to(url).await;
        let outcome = connected.as_ref().map(|_| ()).map_err(Clone::clone);
        let step = if secure {
            format!("tls {url}")
        } else {
            format!("ldap {url}")
        };
        steps.push(Diagnosis { step, outcome });
        let (Ok(mut ldap), LdapLocate::Search(search)) = (connected, &self.settings.locate) else {
            return;
        };
        if let (Some(dn), Some(password)) = (&search.bind_dn, &search.bind_password) {
            let bound = ldap
                .with_timeout(self.directory.timeout)
                .simple_bind(dn, password.expose())
                .await;
            let outcome = match bound {
                Ok(result) if result.rc == 0 => Ok(()),
                Ok(result) => Err(format!("result {} {}", result.rc, result.text)),
                Err(err) => Err(err.to_string()),
            };
            let ok = outcome.is_ok();
            steps.push(Diagnosis {
                step: format!("service bind {dn}"),
                outcome,
            });
            if !ok {
                return;
            }
        }
        let found = base_search(
            &mut ldap,
            self.directory.timeout,
            &search.base_dn,
            &["1.1".to_string()],
        )
        .await;
        let outcome = found.map(drop).map_err(|failure| match failure {
            Failure::Transport(err) => err.to_string(),
            Failure::Result(rc, text) => format!("result {rc} {text}"),
        });
        steps.push(Diagnosis {
            step: format!("search {}", search.base_dn),
            outcome,
        });
    }
}

//! The PAM backend: the host's own accounts, through its PAM stack.
//!
//! Every PAM call blocks, and some stacks take seconds (pam_unix's delay
//! after a failure, network modules). Each check therefore opens, uses and
//! drops its PAM handle inside one blocking task, at most `max_concurrent`
//! at once, and the login gives up waiting after `timeout`, so nothing else
//! the server does waits on PAM.

use std::ffi::{CStr, CString};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pam_client::{Context, ConversationHandler, ErrorCode, Flag};
use tokio::sync::Semaphore;

use super::{Backend, BackendError, Diagnosis, Identity};
use crate::secret::Secret;
use crate::settings::PamSettings;

/// See the module documentation.
pub struct PamBackend {
    settings: PamSettings,
    permits: Arc<Semaphore>,
}

impl PamBackend {
    /// A backend for the configured PAM service.
    pub fn new(settings: &PamSettings) -> Self {
        let permits = Arc::new(Semaphore::new(settings.max_concurrent.max(1)));
        Self {
            settings: settings.clone(),
            permits,
        }
    }
}

#[async_trait]
impl Backend for PamBackend {
    fn name(&self) -> &'static str {
        "pam"
    }

    async fn authenticate(
        &self,
        username: &str,
        password: &Secret,
    ) -> Result<Identity, BackendError> {
        // PAM takes C strings: a NUL byte can match no account.
        if username.contains('\0') || password.expose().contains('\0') || password.is_empty() {
            return Err(BackendError::Refused);
        }
        let deadline = Instant::now() + self.settings.timeout;
        let permit =
            tokio::time::timeout_at(deadline.into(), Arc::clone(&self.permits).acquire_owned())
                .await
                .map_err(|_| {
                    BackendError::Unavailable("every PAM slot stayed busy until the timeout".into())
                })?
                .map_err(|_| BackendError::Fault("PAM slots closed".into()))?;

        let request = Check {
            service: self.settings.service.clone(),
            username: username.to_string(),
            password: password.clone(),
            groups: self.settings.groups,
        };
        // The permit travels with the blocking task: a call that outlives the
        // timeout still holds its slot until PAM returns, so the bound holds.
        let task = tokio::task::spawn_blocking(move || {
            let result = request.run();
            drop(permit);
            result
        });
        match tokio::time::timeout_at(deadline.into(), task).await {
            Ok(Ok(result)) => result,
            Ok(Err(err)) => Err(BackendError::Fault(format!("PAM task failed: {err}"))),
            Err(_) => Err(BackendError::Unavailable(
                "the PAM stack did not answer in time".into(),
            )),
        }
    }

    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }

    async fn diagnose(&self) -> Vec<Diagnosis> {
        let folder =
            std::env::var("PAM_WRAPPER_SERVICE_DIR").unwrap_or_else(|_| "/etc/pam.d".into());
        let path = std::path::Path::new(&folder).join(&self.settings.service);
        let outcome = std::fs::metadata(&path)
            .map(drop)
            .map_err(|e| e.to_string());
        vec![Diagnosis {
            step: format!("PAM service file {}", path.display()),
            outcome,
        }]
    }
}

/// One check, run on a blocking thread.
struct Check {
    service: String,
    username: String,
    password: Secret,
    groups: bool,
}

impl Check {
    fn run(self) -> Result<Identity, BackendError> {
        let conversation = Answers {
            username: self.username.clone(),
            password: self.password,
        };
        let mut context = Context::new(&self.service, Some(&self.username), conversation)
            .map_err(|e| unavailable("pam_start", e.code()))?;
        context
            .authenticate(Flag::DISALLOW_NULL_AUTHTOK)
            .map_err(|e| refusal(&self.username, "auth", e.code()))?;
        context
            .acct_mgmt(Flag::DISALLOW_NULL_AUTHTOK)
            .map_err(|e| refusal(&self.username, "account", e.code()))?;

        // A module may have canonicalised the name (case, realm).
        let username = context.user().unwrap_or(self.username);
        let groups = if self.groups {
            unix_groups(&username)
        } else {
            Vec::new()
        };
        Ok(Identity {
            username,
            groups,
            email: None,
            name: None,
        })
    }
}

fn unavailable(step: &str, code: ErrorCode) -> BackendError {
    tracing::error!(step, code = ?code, "the PAM stack failed");
    BackendError::Unavailable(format!("{step}: {code:?}"))
}

/// What a failed PAM phase means for the client: a refusal for anything
/// about the account or its credentials, unavailable for a broken stack.
fn refusal(username: &str, phase: &str, code: ErrorCode) -> BackendError {
    match code {
        ErrorCode::NEW_AUTHTOK_REQD | ErrorCode::AUTHTOK_EXPIRED => {
            tracing::info!(
                user = username,
                phase,
                "PAM refused: the password must be changed first"
            );
            BackendError::Refused
        }
        ErrorCode::AUTH_ERR
        | ErrorCode::USER_UNKNOWN
        | ErrorCode::MAXTRIES
        | ErrorCode::PERM_DENIED
        | ErrorCode::ACCT_EXPIRED
        | ErrorCode::CRED_INSUFFICIENT
        | ErrorCode::CRED_EXPIRED
        | ErrorCode::CONV_ERR => {
            tracing::debug!(user = username, phase, code = ?code, "PAM refused");
            BackendError::Refused
        }
        other => unavailable(phase, other),
    }
}

/// Answers PAM's prompts: the username to visible prompts, the password to
/// hidden ones; messages are logged at debug level.
struct Answers {
    username: String,
    password: Secret,
}

impl ConversationHandler for Answers {
    fn prompt_echo_on(&mut self, _prompt: &CStr) -> Result<CString, ErrorCode> {
        CString::new(self.username.as_str()).map_err(|_| ErrorCode::CONV_ERR)
    }

    fn prompt_echo_off(&mut self, _prompt: &CStr) -> Result<CString, ErrorCode> {
        CString::new(self.password.expose()).map_err(|_| ErrorCode::CONV_ERR)
    }

    fn text_info(&mut self, message: &CStr) {
        tracing::debug!(message = %message.to_string_lossy(), "PAM information");
    }

    fn error_msg(&mut self, message: &CStr) {
        tracing::debug!(message = %message.to_string_lossy(), "PAM error message");
    }
}

/// The names of the account's Unix groups (primary and supplementary);
/// none for a name the host's user database does not know.
fn unix_groups(username: &str) -> Vec<String> {
    use nix::unistd::{Group, User, getgrouplist};

    let Ok(Some(user)) = User::from_name(username) else {
        return Vec::new();
    };
    let Ok(name) = CString::new(username) else {
        return Vec::new();
    };
    let gids = getgrouplist(&name, user.gid).unwrap_or_default();
    let mut names: Vec<String> = gids
        .into_iter()
        .filter_map(|gid| Group::from_gid(gid).ok().flatten())
        .map(|g| g.name)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// How long a PAM check may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

//! Credential backends: the one trait the HTTP layer talks to, and the
//! backends that implement it.
//!
//! A backend answers "who is this?" for a username and password, says what
//! else it can do (register users, change passwords), and does it. The HTTP
//! layer never guesses a capability: it asks [`Backend::capabilities`].

pub mod hasher;
pub mod ldap;
pub mod memory;
pub mod pam;

use async_trait::async_trait;

use crate::secret::Secret;

/// Who a successful login is, with what the backend knows about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The username as the backend knows it (the token's `sub`).
    pub username: String,
    /// Group names, for the `groups` claim (left out when empty).
    pub groups: Vec<String>,
    /// The `email` claim, when known.
    pub email: Option<String>,
    /// The `name` claim, when known.
    pub name: Option<String>,
}

impl Identity {
    /// An identity that carries only a username.
    pub fn named(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            groups: Vec::new(),
            email: None,
            name: None,
        }
    }
}

/// What a backend can do besides checking passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Accepts self-registration.
    pub register: bool,
    /// Accepts password changes.
    pub change_password: bool,
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name, already checked against the username policy.
    pub username: String,
    /// Password, already checked against the password policy.
    pub password: Secret,
    /// Email address, already checked for shape.
    pub email: String,
}

/// Where to send a password-reset token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The account's username.
    pub username: String,
    /// Its email address, when it has one.
    pub email: Option<String>,
}

/// One step of a backend's self-check, for `kisee check-settings`.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// What was tried (`connect ldap://host:389`).
    pub step: String,
    /// Whether it worked, and why not.
    pub outcome: Result<(), String>,
}

/// Why a backend did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The credentials were not accepted. Unknown user, wrong password and
    /// refused account are all this one variant: which it was is for the
    /// debug log only.
    #[error("credentials refused")]
    Refused,
    /// The backend cannot do this (read-only directory, PAM).
    #[error("not supported by this backend")]
    NotSupported,
    /// Registration of a name that exists.
    #[error("user already exists")]
    AlreadyExists,
    /// The backend's service cannot be reached now; worth retrying.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// Anything else that went wrong on the server's side.
    #[error("backend fault: {0}")]
    Fault(String),
}

/// A credential backend. Implement this trait to put Kisee in front of
/// another kind of account store; the HTTP layer needs nothing else.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// A short name for logs and metrics (`memory`, `pam`, `ldap`).
    fn name(&self) -> &'static str;

    /// What this backend can do besides authenticate; read-only unless a
    /// backend says otherwise.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Checks a username and password. Must take the same time, give or
    /// take noise, whether the user is unknown or the password is wrong.
    async fn authenticate(
        &self,
        username: &str,
        password: &Secret,
    ) -> Result<Identity, BackendError>;

    /// Creates an account. Exactly one of several concurrent registrations
    /// of one name succeeds; the rest get [`BackendError::AlreadyExists`].
    async fn register(&self, _user: NewUser) -> Result<(), BackendError> {
        Err(BackendError::NotSupported)
    }

    /// Replaces a user's password (the caller has authorized the change).
    async fn change_password(&self, _username: &str, _new: &Secret) -> Result<(), BackendError> {
        Err(BackendError::NotSupported)
    }

    /// Finds the account a password-recovery request names, by username or
    /// by email address. `Ok(None)` when there is none.
    async fn find_contact(
        &self,
        _username: Option<&str>,
        _email: Option<&str>,
    ) -> Result<Option<Contact>, BackendError> {
        Ok(None)
    }

    /// Whether the backend's service can be reached now.
    async fn health(&self) -> Result<(), BackendError>;

    /// Checks the configuration against the real service, step by step,
    /// so an operator can see what works without trying a login.
    async fn diagnose(&self) -> Vec<Diagnosis> {
        Vec::new()
    }
}

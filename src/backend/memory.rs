//! The in-memory backend: accounts from the settings file, plus registered
//! accounts and changed passwords kept durably in an optional users file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::hasher::{Hasher, hash_now};
use super::{Backend, BackendError, Capabilities, Contact, Identity, NewUser};
use crate::secret::Secret;
use crate::settings::{MemorySettings, StaticUser};

/// One account as it is kept in memory and in the users file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Account {
    username: String,
    password_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    /// Whether the account belongs in the users file (registered, or a
    /// password changed since start), as opposed to settings-only.
    #[serde(skip)]
    persisted: bool,
}

/// The users file's layout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    version: u32,
    users: Vec<Account>,
}

const USERS_FILE_VERSION: u32 = 1;

/// Accounts held in memory; see the module documentation.
pub struct MemoryBackend {
    hasher: Hasher,
    accounts: RwLock<HashMap<String, Arc<Account>>>,
    users_file: Option<PathBuf>,
    /// Serializes writers so that a check for an existing name, the write to
    /// disk and the insert happen as one step.
    writes: tokio::sync::Mutex<()>,
    writable: bool,
}

/// The demo account made when `demo_root` is on, to be shown to the operator.
pub struct DemoAccount {
    /// Always `root`.
    pub username: String,
    /// Random, made at start.
    pub password: Secret,
}

impl DemoAccount {
    /// Shows the account on the terminal. It exists to be tried by hand:
    /// its password is shown there once, and never written to the log.
    pub fn announce(&self) {
        eprintln!(
            "demo account: username {} password {}",
            self.username,
            self.password.expose()
        );
    }
}

impl MemoryBackend {
    /// Builds the backend: static users, then the users file on top, then
    /// the demo account when asked for and no `root` exists.
    pub fn new(settings: &MemorySettings) -> Result<(Self, Option<DemoAccount>), String> {
        let mut accounts: HashMap<String, Arc<Account>> = settings
            .users
            .iter()
            .map(|u| (u.username.clone(), Arc::new(static_account(u))))
            .collect();
        if let Some(path) = &settings.users_file {
            for account in load_users_file(path)? {
                accounts.insert(account.username.clone(), Arc::new(account));
            }
        }
        let demo = settings
            .demo_root
            .then(|| add_demo_root(&mut accounts))
            .transpose()?
            .flatten();
        let hashes = accounts.values().map(|a| a.password_hash.as_str());
        let hasher = Hasher::new(settings.hash_concurrency, hashes, settings.registration)
            .map_err(|e| e.to_string())?;
        let backend = Self {
            hasher,
            accounts: RwLock::new(accounts),
            users_file: settings.users_file.clone(),
            writes: tokio::sync::Mutex::new(()),
            writable: settings.registration,
        };
        Ok((backend, demo))
    }

    fn account(&self, username: &str) -> Option<Arc<Account>> {
        let accounts = self
            .accounts
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        accounts.get(username).cloned()
    }

    /// Writes `changed` to disk (when a users file is configured) and then
    /// to memory. The caller holds `writes`.
    async fn commit(&self, changed: Account) -> Result<(), BackendError> {
        if let Some(path) = &self.users_file {
            let file = self.snapshot_with(&changed);
            let path = path.clone();
            tokio::task::spawn_blocking(move || write_durably(&path, &file))
                .await
                .map_err(|e| BackendError::Fault(format!("users file task failed: {e}")))?
                .map_err(|e| BackendError::Fault(format!("cannot write the users file: {e}")))?;
        }
        let mut accounts = self
            .accounts
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        accounts.insert(changed.username.clone(), Arc::new(changed));
        Ok(())
    }

    /// The users file's content once `changed` is applied.
    fn snapshot_with(&self, changed: &Account) -> UsersFile {
        let accounts = self
            .accounts
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut users: Vec<Account> = accounts
            .values()
            .filter(|a| a.persisted && a.username != changed.username)
            .map(|a| Account::clone(a))
            .collect();
        users.push(changed.clone());
        users.sort_by(|a, b| a.username.cmp(&b.username));
        UsersFile {
            version: USERS_FILE_VERSION,
            users,
        }
    }
}

fn static_account(user: &StaticUser) -> Account {
    Account {
        username: user.username.clone(),
        password_hash: user.password_hash.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        groups: user.groups.clone(),
        persisted: false,
    }
}

fn add_demo_root(
    accounts: &mut HashMap<String, Arc<Account>>,
) -> Result<Option<DemoAccount>, String> {
    if accounts.contains_key("root") {
        return Ok(None);
    }
    let password = Secret::new(crate::token::random_id());
    let password_hash = hash_now(&password).map_err(|e| e.to_string())?;
    let account = Account {
        username: "root".into(),
        password_hash,
        email: None,
        name: None,
        groups: Vec::new(),
        persisted: false,
    };
    accounts.insert("root".into(), Arc::new(account));
    Ok(Some(DemoAccount {
        username: "root".into(),
        password,
    }))
}

/// Reads the users file; a missing file is an empty one, anything that does
/// not parse is refused (and left as it is).
fn load_users_file(path: &Path) -> Result<Vec<Account>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(format!("cannot read users file {}: {err}", path.display())),
    };
    let file: UsersFile = serde_json::from_str(&text).map_err(|err| {
        format!(
            "users file {} is corrupt ({err}); it was left untouched",
            path.display()
        )
    })?;
    if file.version != USERS_FILE_VERSION {
        return Err(format!(
            "users file {} has unknown version {}",
            path.display(),
            file.version
        ));
    }
    let invalid = file
        .users
        .iter()
        .find(|a| !super::hasher::is_supported_hash(&a.password_hash));
    if let Some(account) = invalid {
        return Err(format!(
            "users file {}: {:?} has an unsupported hash",
            path.display(),
            account.username
        ));
    }
    Ok(file
        .users
        .into_iter()
        .map(|a| Account {
            persisted: true,
            ..a
        })
        .collect())
}

/// Replaces the file so that a crash at any point leaves either the old or
/// the new content: write a temporary file beside it, sync it, rename it
/// over the old one, then sync the folder so the rename itself is on disk.
fn write_durably(path: &Path, file: &UsersFile) -> std::io::Result<()> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let bytes = serde_json::to_vec_pretty(file).map_err(std::io::Error::other)?;
    let tmp = folder.join(format!(".{}.tmp", crate::token::random_id()));
    crate::files::create_private(&tmp, &bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    std::fs::File::open(folder)?.sync_all()
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            register: self.writable,
            change_password: self.writable,
        }
    }

    async fn authenticate(
        &self,
        username: &str,
        password: &Secret,
    ) -> Result<Identity, BackendError> {
        let account = self.account(username);
        let phc = account.as_ref().map(|a| a.password_hash.as_str());
        let matched = self.hasher.verify(phc, password).await?;
        match (account, matched) {
            (Some(account), true) => Ok(identity(&account)),
            (None, _) => {
                tracing::debug!(
                    user = username,
                    reason = "unknown user",
                    "memory backend refused"
                );
                Err(BackendError::Refused)
            }
            (Some(_), false) => {
                tracing::debug!(
                    user = username,
                    reason = "wrong password",
                    "memory backend refused"
                );
                Err(BackendError::Refused)
            }
        }
    }

    async fn register(&self, user: NewUser) -> Result<(), BackendError> {
        if !self.writable {
            return Err(BackendError::NotSupported);
        }
        let password_hash = self.hasher.hash(&user.password).await?;
        let _writer = self.writes.lock().await;
        if self.account(&user.username).is_some() {
            return Err(BackendError::AlreadyExists);
        }
        let account = Account {
            username: user.username,
            password_hash,
            email: Some(user.email),
            name: None,
            groups: Vec::new(),
            persisted: true,
        };
        self.commit(account).await
    }

    async fn change_password(&self, username: &str, new: &Secret) -> Result<(), BackendError> {
        if !self.writable {
            return Err(BackendError::NotSupported);
        }
        let password_hash = self.hasher.hash(new).await?;
        let _writer = self.writes.lock().await;
        let current = self.account(username).ok_or(BackendError::Refused)?;
        let changed = Account {
            password_hash,
            persisted: true,
            ..Account::clone(&current)
        };
        self.commit(changed).await
    }

    async fn find_contact(
        &self,
        username: Option<&str>,
        email: Option<&str>,
    ) -> Result<Option<Contact>, BackendError> {
        let accounts = self
            .accounts
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let by_name = username.and_then(|name| accounts.get(name));
        let by_email = || {
            let wanted = email?;
            accounts.values().find(|a| {
                a.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(wanted))
            })
        };
        let found = by_name.or_else(by_email);
        Ok(found.map(|a| Contact {
            username: a.username.clone(),
            email: a.email.clone(),
        }))
    }

    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

fn identity(account: &Account) -> Identity {
    Identity {
        username: account.username.clone(),
        groups: account.groups.clone(),
        email: account.email.clone(),
        name: account.name.clone(),
    }
}

//! Password recovery: the per-user reset stamps that make reset tokens
//! single-use, and the delivery of a reset token to its user.
//!
//! Every reset token carries the user's current stamp. Changing the
//! password replaces the stamp, so the token just used and every other
//! reset token of that user stop working at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::backend::Contact;
use crate::settings::RecoverySettings;
use crate::token::random_id;

/// Reset stamps and the delivery channel.
pub struct Recovery {
    stamps: Arc<Mutex<HashMap<String, String>>>,
    delivery: RecoverySettings,
    public_url: String,
}

impl Recovery {
    /// Recovery delivering as `delivery` says, with links under `public_url`.
    pub fn new(delivery: RecoverySettings, public_url: &str) -> Self {
        let stamps = Arc::new(Mutex::new(HashMap::new()));
        Self {
            stamps,
            delivery,
            public_url: public_url.into(),
        }
    }

    /// The same stamps with another delivery (after a settings reload), so
    /// that reset tokens issued before the reload stay valid.
    pub fn reconfigured(&self, delivery: RecoverySettings, public_url: &str) -> Self {
        Self {
            stamps: Arc::clone(&self.stamps),
            delivery,
            public_url: public_url.into(),
        }
    }

    /// The user's current stamp, made on first use.
    pub fn stamp(&self, username: &str) -> String {
        let mut stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        stamps
            .entry(username.to_string())
            .or_insert_with(random_id)
            .clone()
    }

    /// Whether `stamp` is the user's current one.
    pub fn is_current(&self, username: &str, stamp: &str) -> bool {
        let stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        stamps.get(username).is_some_and(|current| current == stamp)
    }

    /// Uses up `stamp` if it is the user's current one, in one step, so
    /// that one reset token cannot serve two requests at once.
    pub fn consume(&self, username: &str, stamp: &str) -> bool {
        let mut stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        match stamps.get_mut(username) {
            Some(current) if current == stamp => {
                *current = random_id();
                true
            }
            _ => false,
        }
    }

    /// Invalidates every reset token of the user (after a password change).
    pub fn rotate(&self, username: &str) {
        let mut stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        stamps.insert(username.to_string(), random_id());
    }

    /// Hands the token to the user through the configured channel.
    pub async fn deliver(&self, contact: &Contact, token: &str) {
        match &self.delivery {
            RecoverySettings::Log => {
                tracing::debug!(user = %contact.username, reset_token = token, "password reset token");
            }
            RecoverySettings::File(folder) => self.deliver_to_folder(folder, contact, token).await,
        }
    }

    async fn deliver_to_folder(&self, folder: &Path, contact: &Contact, token: &str) {
        let Some(email) = &contact.email else {
            tracing::info!(user = %contact.username, "no email address: reset token not sent");
            return;
        };
        let message = self.message(&contact.username, email, token);
        let folder = folder.to_path_buf();
        let written = tokio::task::spawn_blocking(move || write_message(&folder, &message)).await;
        match written {
            Ok(Ok(path)) => {
                tracing::info!(user = %contact.username, file = %path.display(), "reset message written")
            }
            Ok(Err(err)) => {
                tracing::error!(user = %contact.username, error = %err, "cannot write reset message")
            }
            Err(err) => tracing::error!(error = %err, "reset message task failed"),
        }
    }

    /// An RFC 5322 message, as a mail spool would hold it.
    fn message(&self, username: &str, email: &str, token: &str) -> String {
        let host = self
            .public_url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split([':', '/']).next());
        let host = host.unwrap_or("localhost");
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let user_url = format!(
            "{}/users/{}/",
            self.public_url,
            crate::http::documents::encode_segment(username)
        );
        format!(
            "From: Kisee <kisee@{host}>\r\nTo: <{email}>\r\nSubject: Password reset\r\n\
             Date: {date}\r\nMessage-ID: <{id}@{host}>\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n\
             A password reset was asked for the account {username}.\r\n\
             If it was not you, ignore this message: the password is unchanged.\r\n\r\n\
             Reset token: {token}\r\n\r\n\
             To choose a new password, send a JSON Patch replacing /password to\r\n\
             {user_url} with the header \"Authorization: Bearer <token>\".\r\n\
             The token works once.\r\n",
            id = random_id(),
        )
    }
}

/// Writes the message under a temporary name, then renames it into place,
/// so a spool reader never sees half a message.
fn write_message(folder: &Path, message: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(folder)?;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let name = format!("{millis}-{}.eml", random_id());
    let tmp = folder.join(format!(".{name}.tmp"));
    crate::files::create_private(&tmp, message.as_bytes())?;
    let path = folder.join(name);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotating_the_stamp_retires_the_old_one() {
        let recovery = Recovery::new(RecoverySettings::Log, "https://kisee.test");
        let first = recovery.stamp("alice");
        assert!(recovery.is_current("alice", &first));
        recovery.rotate("alice");
        assert!(!recovery.is_current("alice", &first));
        assert!(recovery.is_current("alice", &recovery.stamp("alice")));
        assert!(!recovery.is_current("bob", &first));
    }
}

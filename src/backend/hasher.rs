//! Argon2 password hashing, off the async runtime and under a bound.
//!
//! Each verify with the default parameters costs about 20 ms of CPU and
//! 19 MiB of memory, so verifies run on the blocking pool and at most
//! `concurrency` of them at once: a burst of logins queues instead of
//! allocating a hash's memory per request.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

use super::BackendError;
use crate::secret::Secret;

/// Hashes and verifies passwords with Argon2id.
#[derive(Debug, Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified in place of an unknown user's
    /// so that an unknown user costs what a wrong password costs.
    dummy: Arc<str>,
}

/// Whether `phc` is an Argon2 PHC string this server can verify.
pub fn is_supported_hash(phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|hash| matches!(hash.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d"))
}

/// Hashes `password` with Argon2id and its default parameters.
pub fn hash_now(password: &Secret) -> Result<String, BackendError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| BackendError::Fault(format!("argon2 hash failed: {err}")))
}

fn verify_now(phc: &str, password: &Secret) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.expose().as_bytes(), &hash)
            .is_ok()
    })
}

impl Hasher {
    /// A hasher running at most `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Result<Self, BackendError> {
        let decoy = Secret::new(crate::token::random_id());
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: hash_now(&decoy)?.into(),
        })
    }

    /// Verifies `password` against `phc`; with no hash (unknown user) the
    /// same work is done against a decoy and the answer is `false`.
    pub async fn verify(&self, phc: Option<&str>, password: &Secret) -> Result<bool, BackendError> {
        let known = phc.is_some();
        let phc: Arc<str> = phc.map_or_else(|| Arc::clone(&self.dummy), Arc::from);
        let password = password.clone();
        let matched = self.run(move || verify_now(&phc, &password)).await?;
        Ok(known && matched)
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: &Secret) -> Result<String, BackendError> {
        let password = password.clone();
        self.run(move || hash_now(&password)).await?
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, BackendError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| BackendError::Fault("hasher closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| BackendError::Fault(format!("hash task failed: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = Hasher::new(2).unwrap_or_else(|e| panic!("{e}"));
        let phc = hasher
            .hash(&Secret::new("correct horse"))
            .await
            .unwrap_or_default();
        assert!(is_supported_hash(&phc));
        assert_eq!(
            hasher
                .verify(Some(&phc), &Secret::new("correct horse"))
                .await
                .ok(),
            Some(true)
        );
        assert_eq!(
            hasher.verify(Some(&phc), &Secret::new("wrong")).await.ok(),
            Some(false)
        );
        assert_eq!(
            hasher
                .verify(None, &Secret::new("correct horse"))
                .await
                .ok(),
            Some(false)
        );
    }

    #[test]
    fn only_argon2_hashes_are_supported() {
        assert!(!is_supported_hash("$2b$12$abcdefghijklmnopqrstuv"));
        assert!(!is_supported_hash("plain"));
    }
}

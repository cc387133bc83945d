//! Argon2 password hashing, off the async runtime, under a bound, in
//! memory that is allocated once and reused.
//!
//! Each hash with the default parameters costs about 20 ms of CPU and
//! 19 MiB of memory. Hashes run on the blocking pool, at most `concurrency`
//! at once, each in one of at most `concurrency` working buffers that are
//! kept and reused: a burst of logins queues instead of allocating a hash's
//! memory per request, and the allocator never gets the chance to keep
//! freed buffers per thread.

use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, ParamsBuilder, Version};
use tokio::sync::Semaphore;

use super::BackendError;
use crate::secret::Secret;

/// The most memory one hash may ask for: 1 GiB, in 1 KiB blocks. A stored
/// hash that wants more can match no password here.
const MAX_BLOCKS: usize = 1 << 20;

/// Working memory for one hash at a time.
type Buffer = Vec<Block>;

/// Hashes and verifies passwords with Argon2.
#[derive(Debug, Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    buffers: Arc<Mutex<Vec<Buffer>>>,
    /// A hash of a random password, verified in place of an unknown user's
    /// so that an unknown user costs what a wrong password costs.
    dummy: Arc<str>,
}

/// Whether `phc` is an Argon2 PHC string this server can verify.
pub fn is_supported_hash(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Algorithm::try_from(hash.algorithm).is_ok()
            && Params::try_from(&hash).is_ok_and(|p| p.block_count() <= MAX_BLOCKS)
    })
}

/// Hashes `password` with Argon2id and its default parameters.
pub fn hash_now(password: &Secret) -> Result<String, BackendError> {
    hash_with(password, Params::default(), &mut Buffer::new())
}

fn hash_with(
    password: &Secret,
    params: Params,
    buffer: &mut Buffer,
) -> Result<String, BackendError> {
    let fault = |err: String| BackendError::Fault(format!("argon2 hash failed: {err}"));
    let salt = SaltString::generate(&mut OsRng);
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt
        .decode_b64(&mut raw_salt)
        .map_err(|e| fault(e.to_string()))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    buffer.resize(params.block_count(), Block::new());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.expose().as_bytes(),
            raw_salt,
            &mut out,
            &mut buffer[..],
        )
        .map_err(|e| fault(e.to_string()))?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|e: argon2::password_hash::Error| fault(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fault(e.to_string()))?),
    };
    Ok(hash.to_string())
}

/// Recomputes the hash of `password` with the parameters and salt of `phc`
/// in `buffer`, and compares in constant time.
fn verify_with(phc: &str, password: &Secret, buffer: &mut Buffer) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let Ok(version) = hash.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let params = Params::try_from(&hash).and_then(|p| with_output_len(&p, expected.len()));
    let Ok(params) = params else { return false };
    if params.block_count() > MAX_BLOCKS {
        return false;
    }
    let mut raw_salt = [0u8; 64];
    let Ok(raw_salt) = salt.decode_b64(&mut raw_salt) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    buffer.resize(params.block_count(), Block::new());
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.expose().as_bytes(),
        raw_salt,
        &mut out,
        &mut buffer[..],
    );
    // `Output` compares in constant time.
    computed.is_ok() && Output::new(&out).is_ok_and(|out| out == expected)
}

fn with_output_len(params: &Params, len: usize) -> argon2::password_hash::Result<Params> {
    let mut builder = ParamsBuilder::new();
    builder
        .m_cost(params.m_cost())
        .t_cost(params.t_cost())
        .p_cost(params.p_cost());
    builder.output_len(len);
    builder.build().map_err(Into::into)
}

/// Hashes this cheap (memory in KiB times passes) run on the async worker:
/// handing them to the blocking pool would cost more than the hash.
const INLINE_COST: u64 = 64;

/// The work a hash with `params` takes, in KiB of memory times passes.
fn cost_of(params: &Params) -> u64 {
    u64::from(params.m_cost()) * u64::from(params.t_cost())
}

/// The parameters of a stored hash, when it parses.
fn params_of(phc: &str) -> Option<Params> {
    PasswordHash::new(phc)
        .ok()
        .and_then(|hash| Params::try_from(&hash).ok())
}

impl Hasher {
    /// A hasher running at most `concurrency` hashes at once. Its decoy
    /// costs as much as the costliest of `hashes` (and of the default
    /// parameters when `with_default`, for accounts still to be made), so
    /// that no known user is slower to refuse than an unknown one.
    pub fn new<'a>(
        concurrency: usize,
        hashes: impl IntoIterator<Item = &'a str>,
        with_default: bool,
    ) -> Result<Self, BackendError> {
        let known = hashes.into_iter().filter_map(params_of);
        let defaults = (with_default).then(Params::default);
        let costliest = known
            .chain(defaults)
            .max_by_key(cost_of)
            .unwrap_or_default();
        let decoy = Secret::new(crate::token::random_id());
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            buffers: Arc::new(Mutex::new(Vec::new())),
            dummy: hash_with(&decoy, costliest, &mut Buffer::new())?.into(),
        })
    }

    /// Verifies `password` against `phc`; with no hash (unknown user) the
    /// same work is done against the decoy and the answer is `false`.
    pub async fn verify(&self, phc: Option<&str>, password: &Secret) -> Result<bool, BackendError> {
        let known = phc.is_some();
        let phc: Arc<str> = phc.map_or_else(|| Arc::clone(&self.dummy), Arc::from);
        let cost = params_of(&phc).map_or(u64::MAX, |p| cost_of(&p));
        let password = password.clone();
        let matched = self
            .run(cost, move |buffer| verify_with(&phc, &password, buffer))
            .await?;
        Ok(known && matched)
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: &Secret) -> Result<String, BackendError> {
        let password = password.clone();
        let cost = cost_of(&Params::default());
        self.run(cost, move |buffer| {
            hash_with(&password, Params::default(), buffer)
        })
        .await?
    }

    /// Runs `work` with a permit and a buffer: on the blocking pool, or
    /// right here when it is cheap. Buffers never outnumber permits, so
    /// memory stays within the bound.
    async fn run<T: Send + 'static>(
        &self,
        cost: u64,
        work: impl FnOnce(&mut Buffer) -> T + Send + 'static,
    ) -> Result<T, BackendError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| BackendError::Fault("hasher closed".into()))?;
        let buffers = Arc::clone(&self.buffers);
        let with_buffer = move || {
            let mut buffer = buffers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
                .unwrap_or_default();
            let result = work(&mut buffer);
            buffers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(buffer);
            result
        };
        if cost <= INLINE_COST {
            return Ok(with_buffer());
        }
        tokio::task::spawn_blocking(with_buffer)
            .await
            .map_err(|err| BackendError::Fault(format!("hash task failed: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use argon2::PasswordVerifier;

    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = Hasher::new(2, [], true).unwrap_or_else(|e| panic!("{e}"));
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
    fn hashes_agree_with_the_argon2_crate_both_ways() {
        let ours = hash_now(&Secret::new("pa55word")).unwrap_or_default();
        let parsed = PasswordHash::new(&ours).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            Argon2::default()
                .verify_password(b"pa55word", &parsed)
                .is_ok()
        );

        let params = Params::new(64, 3, 2, None).unwrap_or_else(|e| panic!("{e}"));
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2::PasswordHasher::hash_password(&other, b"password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(is_supported_hash(&theirs));
        let mut buffer = Buffer::new();
        assert!(verify_with(&theirs, &Secret::new("password"), &mut buffer));
        assert!(!verify_with(&theirs, &Secret::new("Password"), &mut buffer));
    }

    #[test]
    fn the_decoy_costs_as_much_as_the_costliest_known_hash() {
        let cheap =
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let dear =
            "$argon2id$v=19$m=256,t=4,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let hasher = Hasher::new(1, [cheap, dear], false).unwrap_or_else(|e| panic!("{e}"));
        let decoy = params_of(&hasher.dummy).unwrap_or_default();
        assert_eq!((decoy.m_cost(), decoy.t_cost()), (256, 4));
        let only_cheap = Hasher::new(1, [cheap], true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            params_of(&only_cheap.dummy).map(|p| p.m_cost()),
            Some(Params::default().m_cost())
        );
    }

    #[test]
    fn only_argon2_hashes_are_supported() {
        assert!(!is_supported_hash("$2b$12$abcdefghijklmnopqrstuv"));
        assert!(!is_supported_hash("plain"));
        assert!(!is_supported_hash(
            "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
    }
}

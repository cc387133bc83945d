//! Tokens: signing login and password-reset JWTs, verifying the ones that
//! come back, and publishing the public keys.

mod es256;
mod keys;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::JwsHeader;
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};

pub use keys::{Algorithm, KeyError, PublicKey, SigningKey};

use crate::backend::Identity;
use crate::settings::JwtSettings;

/// The `aud` of password-reset tokens. Verifiers that check audiences (and
/// PyJWT-based ones such as Pasee, which refuse any unexpected `aud`)
/// therefore never take a reset token for a login token.
pub const RESET_AUDIENCE: &str = "kisee:password-reset";
const RESET_PURPOSE: &str = "password-reset";
/// The `typ` header of password-reset tokens (RFC 8725, section 3.11): a
/// verifier that checks types never takes one for a login token.
pub const RESET_TYPE: &str = "kisee-reset+jwt";

/// 128 random bits, base64url: token ids, decoy passwords, file names.
pub fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// Where the current time comes from, so tests can move it.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The system's clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// Why a token could not be made or was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, a bad signature, an unknown key, an unexpected algorithm.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Signed by us but past its `exp`.
    #[error("expired token")]
    Expired,
    /// Signing failed (a fault of the server).
    #[error("signing failed: {0}")]
    Signing(String),
}

/// A token this server signed, once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// A login token.
    Login {
        /// Its subject.
        sub: String,
    },
    /// A password-reset token.
    Reset {
        /// Its subject.
        sub: String,
        /// The user's reset stamp when it was issued.
        stamp: String,
    },
}

/// A newly signed token.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The compact JWS.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
}

/// Signs and verifies tokens with the configured keys.
pub struct TokenService {
    signing: SigningKey,
    published: Vec<PublicKey>,
    issuer: String,
    audience: Option<String>,
    lifetime: Duration,
    reset_lifetime: Duration,
    clock: Arc<dyn Clock>,
    jwks: Value,
}

impl TokenService {
    /// Loads the keys the settings name. Every problem is returned, each
    /// with the settings path it concerns. `Ok((service, true))` means the
    /// key was generated because none was configured.
    pub fn new(settings: &JwtSettings, clock: Arc<dyn Clock>) -> Result<(Self, bool), Vec<String>> {
        let mut problems = Vec::new();
        let (signing, generated) = match &settings.private_key {
            Some(path) => (
                load(path, SigningKey::from_pem, "jwt.private_key", &mut problems),
                false,
            ),
            None => (
                SigningKey::generate()
                    .map_err(|e| problems.push(format!("jwt: {e}")))
                    .ok(),
                true,
            ),
        };
        let published: Vec<PublicKey> = settings
            .additional_public_keys
            .iter()
            .filter_map(|path| {
                load(
                    path,
                    PublicKey::from_pem,
                    "jwt.additional_public_keys",
                    &mut problems,
                )
            })
            .collect();
        let Some(signing) = signing.filter(|_| problems.is_empty()) else {
            return Err(problems);
        };
        let jwks = jwks(&signing, &published);
        let service = Self {
            signing,
            published,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            lifetime: settings.lifetime,
            reset_lifetime: settings.reset_lifetime,
            clock,
            jwks,
        };
        Ok((service, generated))
    }

    /// The JWKS document: the signing key, then the additional keys.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// The signing key's public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.signing.public
    }

    /// Signs a login token for `identity`.
    pub fn issue_login(&self, identity: &Identity) -> Result<Issued, TokenError> {
        let mut claims = self.base_claims(&identity.username, self.lifetime);
        if let Some(audience) = &self.audience {
            claims.insert("aud".into(), json!(audience));
        }
        if !identity.groups.is_empty() {
            claims.insert("groups".into(), json!(identity.groups));
        }
        if let Some(email) = &identity.email {
            claims.insert("email".into(), json!(email));
        }
        if let Some(name) = &identity.name {
            claims.insert("name".into(), json!(name));
        }
        self.sign(claims, "JWT")
    }

    /// Signs a password-reset token carrying the user's current reset stamp.
    pub fn issue_reset(&self, username: &str, stamp: &str) -> Result<Issued, TokenError> {
        let mut claims = self.base_claims(username, self.reset_lifetime);
        claims.insert("aud".into(), json!(RESET_AUDIENCE));
        claims.insert("purpose".into(), json!(RESET_PURPOSE));
        claims.insert("rst".into(), json!(stamp));
        // The original Kisee named the user in this claim; clients that read
        // it to build the password-change URL keep working.
        claims.insert("password_reset_for".into(), json!(username));
        self.sign(claims, RESET_TYPE)
    }

    fn base_claims(&self, subject: &str, lifetime: Duration) -> serde_json::Map<String, Value> {
        let now = self.clock.now();
        let mut claims = serde_json::Map::new();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("sub".into(), json!(subject));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now.saturating_add(lifetime.as_secs())));
        claims.insert("jti".into(), json!(random_id()));
        claims
    }

    fn sign(
        &self,
        claims: serde_json::Map<String, Value>,
        typ: &str,
    ) -> Result<Issued, TokenError> {
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let payload =
            JwtPayload::from_map(claims).map_err(|e| TokenError::Signing(e.to_string()))?;
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(&self.signing.public.kid);
        let token = jwt::encode_with_signer(&payload, &header, self.signing.signer())
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        Ok(Issued { token, jti })
    }

    /// Checks a token's signature (against the key its `kid` names), issuer
    /// and expiry, and says which kind of token it is.
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let key = self.key_for(token)?;
        let (payload, header) = jwt::decode_with_verifier(token, key.verifier())
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let reset_typed = header.token_type() == Some(RESET_TYPE);
        let claim = |name: &str| {
            payload
                .claim(name)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        if claim("iss").as_deref() != Some(self.issuer.as_str()) {
            return Err(TokenError::Invalid("unexpected issuer".into()));
        }
        let exp = payload.claim("exp").and_then(Value::as_u64);
        if exp.is_none_or(|exp| exp <= self.clock.now()) {
            return Err(TokenError::Expired);
        }
        let sub = claim("sub").ok_or_else(|| TokenError::Invalid("no subject".into()))?;
        let reset = claim("purpose").as_deref() == Some(RESET_PURPOSE)
            && claim("aud").as_deref() == Some(RESET_AUDIENCE);
        match (reset, reset_typed, claim("rst")) {
            (true, true, Some(stamp)) => Ok(Verified::Reset { sub, stamp }),
            (false, false, _) => Ok(Verified::Login { sub }),
            _ => Err(TokenError::Invalid(
                "a reset token's type, claims and stamp disagree".into(),
            )),
        }
    }

    fn key_for(&self, token: &str) -> Result<&PublicKey, TokenError> {
        let header = jwt::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let kid = header.claim("kid").and_then(Value::as_str);
        let keys = std::iter::once(&self.signing.public).chain(&self.published);
        let mut keys = keys.filter(|key| kid.is_none_or(|kid| key.kid == kid));
        keys.next()
            .ok_or_else(|| TokenError::Invalid("unknown key id".into()))
    }
}

fn load<T>(
    path: &std::path::Path,
    parse: impl Fn(&[u8]) -> Result<T, KeyError>,
    key: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    let bytes = std::fs::read(path)
        .map_err(|e| problems.push(format!("{key}: cannot read {}: {e}", path.display())))
        .ok()?;
    parse(&bytes)
        .map_err(|e| problems.push(format!("{key}: {}: {e}", path.display())))
        .ok()
}

fn jwks(signing: &SigningKey, published: &[PublicKey]) -> Value {
    let mut keys = vec![signing.public.jwk.clone()];
    for key in published {
        if key.kid != signing.public.kid {
            keys.push(key.jwk.clone());
        }
    }
    json!({ "keys": keys })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    struct FakeClock(AtomicU64);

    impl Clock for FakeClock {
        fn now(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn service(clock: Arc<FakeClock>) -> TokenService {
        let settings = JwtSettings {
            issuer: "https://kisee.test".into(),
            private_key: None,
            additional_public_keys: Vec::new(),
            lifetime: Duration::from_secs(3600),
            audience: None,
            reset_lifetime: Duration::from_secs(600),
        };
        TokenService::new(&settings, clock)
            .map(|(s, _)| s)
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn a_login_token_verifies_until_it_expires() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000_000)));
        let tokens = service(Arc::clone(&clock));
        let issued = tokens
            .issue_login(&Identity::named("alice"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            tokens.verify(&issued.token).ok(),
            Some(Verified::Login {
                sub: "alice".into()
            })
        );
        clock.0.store(1_003_600, Ordering::SeqCst);
        assert!(matches!(
            tokens.verify(&issued.token),
            Err(TokenError::Expired)
        ));
    }

    #[test]
    fn a_reset_token_says_what_it_is_and_carries_its_stamp() {
        let tokens = service(Arc::new(FakeClock(AtomicU64::new(1_000_000))));
        let issued = tokens
            .issue_reset("bob", "s1")
            .unwrap_or_else(|e| panic!("{e}"));
        let expected = Verified::Reset {
            sub: "bob".into(),
            stamp: "s1".into(),
        };
        assert_eq!(tokens.verify(&issued.token).ok(), Some(expected));
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let tokens = service(Arc::new(FakeClock(AtomicU64::new(1_000_000))));
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD
            .encode(br#"{"iss":"https://kisee.test","sub":"root","exp":9999999999}"#);
        let forged = format!("{header}.{body}.");
        assert!(matches!(
            tokens.verify(&forged),
            Err(TokenError::Invalid(_))
        ));
    }
}

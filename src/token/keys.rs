//! Signing and verification keys: loading PEM files, choosing the algorithm
//! from the key type, and publishing public keys as JWKs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::{ES256, EdDSA, JwsSigner, JwsVerifier, RS256};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use serde_json::{Value, json};

use super::es256::Es256Signer;

/// The JWS algorithms Kisee signs with, one per supported key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, on keys of 2048 bits or more.
    Rs256,
}

impl Algorithm {
    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }
}

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM key OpenSSL can read.
    #[error("not a readable PEM key")]
    Unreadable,
    /// A key type or curve that has no algorithm here.
    #[error("unsupported key: {0}")]
    Unsupported(String),
    /// OpenSSL or josekit refused an operation on a valid key.
    #[error("key operation failed: {0}")]
    Crypto(String),
}

fn crypto(err: impl std::fmt::Display) -> KeyError {
    KeyError::Crypto(err.to_string())
}

/// A public key as verifiers see it.
pub struct PublicKey {
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// RFC 7638 thumbprint, used as `kid`.
    pub kid: String,
    /// SubjectPublicKeyInfo PEM.
    pub pem: String,
    /// The public JWK, with `kid`, `use` and `alg`.
    pub jwk: Value,
    verifier: Box<dyn JwsVerifier>,
}

impl PublicKey {
    /// Loads a public key from PEM; a private key PEM gives its public half.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let public = match PKey::public_key_from_pem(pem) {
            Ok(public) => public,
            Err(_) => {
                let private = PKey::private_key_from_pem(pem).map_err(|_| KeyError::Unreadable)?;
                public_half(&private)?
            }
        };
        Self::from_pkey(&public)
    }

    fn from_pkey(key: &PKey<Public>) -> Result<Self, KeyError> {
        let algorithm = algorithm_of(key)?;
        let members = thumbprint_members(key, algorithm)?;
        let kid = thumbprint(&members);
        let pem = String::from_utf8(key.public_key_to_pem().map_err(crypto)?).map_err(crypto)?;
        let verifier = verifier_for(algorithm, pem.as_bytes())?;
        let mut jwk: serde_json::Map<String, Value> = members
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        jwk.insert("kid".into(), json!(kid));
        jwk.insert("use".into(), json!("sig"));
        jwk.insert("alg".into(), json!(algorithm.name()));
        let jwk = Value::Object(jwk);
        Ok(Self {
            algorithm,
            kid,
            pem,
            jwk,
            verifier,
        })
    }

    /// The verifier for tokens this key signed.
    pub fn verifier(&self) -> &dyn JwsVerifier {
        self.verifier.as_ref()
    }
}

/// A private key Kisee signs with, and its public half.
pub struct SigningKey {
    signer: Box<dyn JwsSigner>,
    /// What verifiers need.
    pub public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a private key (PKCS#8, SEC1 or PKCS#1 PEM) and picks its algorithm.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let private = PKey::private_key_from_pem(pem).map_err(|_| KeyError::Unreadable)?;
        Self::from_pkey(&private)
    }

    /// A fresh P-256 key, for a server started without a configured key.
    pub fn generate() -> Result<Self, KeyError> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(crypto)?;
        let ec = EcKey::generate(&group).map_err(crypto)?;
        Self::from_pkey(&PKey::from_ec_key(ec).map_err(crypto)?)
    }

    fn from_pkey(private: &PKey<Private>) -> Result<Self, KeyError> {
        let public = PublicKey::from_pkey(&public_half(private)?)?;
        let signer = signer_for(public.algorithm, private)?;
        Ok(Self { signer, public })
    }

    /// The signer.
    pub fn signer(&self) -> &dyn JwsSigner {
        self.signer.as_ref()
    }
}

fn public_half(private: &PKey<Private>) -> Result<PKey<Public>, KeyError> {
    let der = private.public_key_to_der().map_err(crypto)?;
    PKey::public_key_from_der(&der).map_err(crypto)
}

/// The algorithm for a key, refusing every type and curve without one.
fn algorithm_of(key: &PKey<Public>) -> Result<Algorithm, KeyError> {
    match key.id() {
        Id::EC => {
            let curve = key.ec_key().map_err(crypto)?.group().curve_name();
            match curve {
                Some(Nid::X9_62_PRIME256V1) => Ok(Algorithm::Es256),
                Some(nid) => {
                    let name = nid.short_name().unwrap_or("an unnamed curve");
                    Err(KeyError::Unsupported(format!(
                        "EC key on {name}; ES256 needs P-256 (prime256v1)"
                    )))
                }
                None => Err(KeyError::Unsupported("EC key on an unnamed curve".into())),
            }
        }
        Id::ED25519 => Ok(Algorithm::EdDsa),
        Id::RSA if key.bits() >= 2048 => Ok(Algorithm::Rs256),
        Id::RSA => Err(KeyError::Unsupported(format!(
            "RSA key of {} bits; 2048 or more needed",
            key.bits()
        ))),
        _ => Err(KeyError::Unsupported(
            "use a P-256, Ed25519 or RSA key".into(),
        )),
    }
}

/// The signer for a key: josekit's for Ed25519 and RSA, josekit driving
/// aws-lc-rs for P-256 (see [`Es256Signer`]).
fn signer_for(
    algorithm: Algorithm,
    private: &PKey<Private>,
) -> Result<Box<dyn JwsSigner>, KeyError> {
    let pem = || private.private_key_to_pem_pkcs8().map_err(crypto);
    Ok(match algorithm {
        Algorithm::Es256 => {
            let der = private.private_key_to_pkcs8().map_err(crypto)?;
            Box::new(Es256Signer::from_pkcs8(&der).map_err(KeyError::Crypto)?)
        }
        Algorithm::EdDsa => Box::new(EdDSA.signer_from_pem(pem()?).map_err(crypto)?),
        Algorithm::Rs256 => Box::new(RS256.signer_from_pem(pem()?).map_err(crypto)?),
    })
}

fn verifier_for(algorithm: Algorithm, spki_pem: &[u8]) -> Result<Box<dyn JwsVerifier>, KeyError> {
    Ok(match algorithm {
        Algorithm::Es256 => Box::new(ES256.verifier_from_pem(spki_pem).map_err(crypto)?),
        Algorithm::EdDsa => Box::new(EdDSA.verifier_from_pem(spki_pem).map_err(crypto)?),
        Algorithm::Rs256 => Box::new(RS256.verifier_from_pem(spki_pem).map_err(crypto)?),
    })
}

/// The JWK members RFC 7638 hashes for this key type, in the sorted order
/// the RFC requires.
type Members = Vec<(&'static str, String)>;

fn thumbprint_members(key: &PKey<Public>, algorithm: Algorithm) -> Result<Members, KeyError> {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    match algorithm {
        Algorithm::Es256 => {
            let ec = key.ec_key().map_err(crypto)?;
            let mut ctx = BigNumContext::new().map_err(crypto)?;
            let (mut x, mut y) = (
                BigNum::new().map_err(crypto)?,
                BigNum::new().map_err(crypto)?,
            );
            ec.public_key()
                .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
                .map_err(crypto)?;
            let x = x.to_vec_padded(32).map_err(crypto)?;
            let y = y.to_vec_padded(32).map_err(crypto)?;
            Ok(vec![
                ("crv", "P-256".into()),
                ("kty", "EC".into()),
                ("x", b64(&x)),
                ("y", b64(&y)),
            ])
        }
        Algorithm::EdDsa => {
            let raw = key.raw_public_key().map_err(crypto)?;
            Ok(vec![
                ("crv", "Ed25519".into()),
                ("kty", "OKP".into()),
                ("x", b64(&raw)),
            ])
        }
        Algorithm::Rs256 => {
            let rsa = key.rsa().map_err(crypto)?;
            let (e, n) = (b64(&rsa.e().to_vec()), b64(&rsa.n().to_vec()));
            Ok(vec![("e", e), ("kty", "RSA".into()), ("n", n)])
        }
    }
}

/// RFC 7638: SHA-256 over the required members, sorted, without spaces.
/// The values are base64url or constants, so no escaping is needed.
fn thumbprint(members: &Members) -> String {
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("\"{k}\":\"{v}\""))
        .collect();
    let canonical = format!("{{{}}}", body.join(","));
    URL_SAFE_NO_PAD.encode(openssl::sha::sha256(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thumbprint_matches_the_rfc_7638_example() {
        // The RSA key of RFC 7638, section 3.1, and its published thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let members = vec![
            ("e", "AQAB".to_string()),
            ("kty", "RSA".into()),
            ("n", n.into()),
        ];
        assert_eq!(
            thumbprint(&members),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_secp256k1_key_is_refused() {
        let group = EcGroup::from_curve_name(Nid::SECP256K1).unwrap_or_else(|e| panic!("{e}"));
        let ec = EcKey::generate(&group).unwrap_or_else(|e| panic!("{e}"));
        let pem = ec.private_key_to_pem().unwrap_or_default();
        let err = SigningKey::from_pem(&pem)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("secp256k1") && err.contains("P-256"), "{err}");
    }

    #[test]
    fn ed25519_and_rsa_keys_pick_their_algorithm() {
        let ed = PKey::generate_ed25519().unwrap_or_else(|e| panic!("{e}"));
        let ed_pem = ed.private_key_to_pem_pkcs8().unwrap_or_default();
        let key = SigningKey::from_pem(&ed_pem).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.public.algorithm, Algorithm::EdDsa);

        let rsa = openssl::rsa::Rsa::generate(1024).unwrap_or_else(|e| panic!("{e}"));
        let small = rsa.private_key_to_pem().unwrap_or_default();
        assert!(matches!(
            SigningKey::from_pem(&small),
            Err(KeyError::Unsupported(_))
        ));
    }
}

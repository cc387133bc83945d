//! ES256 signatures for josekit, made by aws-lc-rs.
//!
//! josekit builds and serializes every token (header, claims, compact
//! form) and verifies every token; this module only makes the P-256
//! signature it asks for. josekit's own ES256 signer goes through
//! OpenSSL's EVP interface, which it sets up anew for each signature, and
//! OpenSSL's P-256 code is slower: the signature takes about 1.6 times as
//! long as aws-lc-rs's on the same machine (`cargo bench --bench signing`),
//! and it is the largest single cost of a login. aws-lc-rs is the library
//! rustls already uses for every TLS handshake, so it adds no new
//! cryptography to the build. The key is parsed once; each signature is
//! the raw `r || s` pair RFC 7518 asks for, which aws-lc-rs produces as
//! such.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use josekit::JoseError;
use josekit::jws::{ES256, JwsAlgorithm, JwsSigner};

/// Bytes in an ES256 signature: `r` and `s`, 32 bytes each.
const SIGNATURE_BYTES: usize = 64;

/// A P-256 private key, ready to sign.
#[derive(Clone)]
pub(super) struct Es256Signer {
    key: Arc<EcdsaKeyPair>,
    rng: SystemRandom,
}

impl Es256Signer {
    /// The signer for a P-256 private key in PKCS#8 DER.
    pub(super) fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|e| format!("aws-lc-rs cannot use this P-256 key: {e}"))?;
        Ok(Self {
            key: Arc::new(key),
            rng: SystemRandom::new(),
        })
    }
}

/// Names the algorithm only: the key stays out of logs.
impl fmt::Debug for Es256Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Es256Signer")
    }
}

impl JwsSigner for Es256Signer {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &ES256
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn signature_len(&self) -> usize {
        SIGNATURE_BYTES
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        let signature = self
            .key
            .sign(&self.rng, message)
            .map_err(|e| JoseError::InvalidSignature(anyhow::anyhow!("ES256 signing: {e}")))?;
        Ok(signature.as_ref().to_vec())
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use josekit::jws::JwsVerifier;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;

    use super::*;

    fn key_pair() -> (Es256Signer, impl JwsVerifier) {
        let group =
            EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap_or_else(|e| panic!("{e}"));
        let ec = EcKey::generate(&group).unwrap_or_else(|e| panic!("{e}"));
        let private = PKey::from_ec_key(ec).unwrap_or_else(|e| panic!("{e}"));
        let der = private
            .private_key_to_pkcs8()
            .unwrap_or_else(|e| panic!("{e}"));
        let spki = private
            .public_key_to_pem()
            .unwrap_or_else(|e| panic!("{e}"));
        let signer = Es256Signer::from_pkcs8(&der).unwrap_or_else(|e| panic!("{e}"));
        let verifier = ES256
            .verifier_from_pem(spki)
            .unwrap_or_else(|e| panic!("{e}"));
        (signer, verifier)
    }

    #[test]
    fn josekit_verifies_what_it_signs_and_nothing_else() {
        let (signer, verifier) = key_pair();
        for length in [0, 1, 31, 32, 300, 4096] {
            let message = vec![b'k'; length];
            let signature = signer.sign(&message).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(signature.len(), SIGNATURE_BYTES);
            assert!(
                verifier.verify(&message, &signature).is_ok(),
                "{length} bytes"
            );

            let mut changed = message.clone();
            changed.push(b'!');
            assert!(verifier.verify(&changed, &signature).is_err());
        }
    }

    #[test]
    fn every_signature_is_fresh() {
        // ECDSA with a repeated nonce gives the private key away.
        let (signer, _) = key_pair();
        let first = signer.sign(b"same message").unwrap_or_default();
        let second = signer.sign(b"same message").unwrap_or_default();
        assert_ne!(first, second);
    }

    #[test]
    fn debug_output_names_no_key_material() {
        let (signer, _) = key_pair();
        assert_eq!(format!("{signer:?}"), "Es256Signer");
    }

    #[test]
    fn a_key_on_another_curve_is_refused() {
        let group = EcGroup::from_curve_name(Nid::SECP384R1).unwrap_or_else(|e| panic!("{e}"));
        let ec = EcKey::generate(&group).unwrap_or_else(|e| panic!("{e}"));
        let private = PKey::from_ec_key(ec).unwrap_or_else(|e| panic!("{e}"));
        let der = private.private_key_to_pkcs8().unwrap_or_default();
        assert!(Es256Signer::from_pkcs8(&der).is_err());
    }
}

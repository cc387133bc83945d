//! Reading, verifying and forging JWTs.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::{Jwk, KeyPair as _};
use josekit::jws::{ES256, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Map, Value, json};

use super::server::Server;

/// A token's header and claims.
#[derive(Debug)]
pub(crate) struct Token {
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
}

impl Token {
    /// A claim that must be present.
    pub(crate) fn claim(&self, name: &str) -> &Value {
        self.claims
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` claim in {:?}", self.claims))
    }

    /// A claim that must be a whole number of seconds.
    pub(crate) fn seconds(&self, name: &str) -> u64 {
        let value = self.claim(name);
        value
            .as_u64()
            .unwrap_or_else(|| panic!("`{name}` is not whole seconds: {value}"))
    }
}

/// Decodes a compact JWS without checking its signature.
pub(crate) fn decode_unverified(token: &str) -> Token {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {token:?}");
    Token {
        header: decode_part(parts[0]),
        claims: decode_part(parts[1]),
    }
}

fn decode_part(part: &str) -> Map<String, Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("a JSON object")
}

/// Verifies a token against the key of the JWKS whose `kid` it names.
pub(crate) async fn verify_with_jwks(server: &Server, token: &str) -> Token {
    let unverified = decode_unverified(token);
    let kid = unverified.header["kid"].as_str().expect("a kid header");
    let jwks = server.get("/.well-known/jwks.json").send().await.json();
    let key = jwks["keys"]
        .as_array()
        .expect("a keys list")
        .iter()
        .find(|key| key["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS {jwks}"));
    verify_with_jwk(key, token)
}

/// Verifies an ES256 token with one public JWK.
pub(crate) fn verify_with_jwk(key: &Value, token: &str) -> Token {
    let jwk = Jwk::from_bytes(serde_json::to_vec(key).expect("JWK")).expect("a JWK");
    let verifier = ES256.verifier_from_jwk(&jwk).expect("an ES256 verifier");
    let (payload, header) = jwt::decode_with_verifier(token, &verifier)
        .unwrap_or_else(|e| panic!("the signature does not verify: {e}"));
    Token {
        header: header.claims_set().clone(),
        claims: payload.claims_set().clone(),
    }
}

/// Verifies an ES256 token with a public key PEM.
pub(crate) fn verify_with_pem(pem: &str, token: &str) -> Token {
    let verifier = ES256.verifier_from_pem(pem).expect("an ES256 verifier");
    let (payload, header) = jwt::decode_with_verifier(token, &verifier)
        .unwrap_or_else(|e| panic!("the signature does not verify: {e}"));
    Token {
        header: header.claims_set().clone(),
        claims: payload.claims_set().clone(),
    }
}

/// Signs claims with an ES256 private key PEM under the given header fields.
pub(crate) fn sign(
    key_pem: &str,
    header: &Map<String, Value>,
    claims: &Map<String, Value>,
) -> String {
    let mut jws_header = JwsHeader::new();
    for (name, value) in header {
        if name != "alg" {
            jws_header
                .set_claim(name, Some(value.clone()))
                .expect("a header field");
        }
    }
    let payload = JwtPayload::from_map(claims.clone()).expect("claims");
    let signer = ES256.signer_from_pem(key_pem).expect("an ES256 signer");
    jwt::encode_with_signer(&payload, &jws_header, &signer).expect("signed")
}

/// An `alg: none` token carrying these claims, with an empty signature.
pub(crate) fn unsigned(claims: &Map<String, Value>) -> String {
    let header = json!({"alg": "none", "typ": "JWT"});
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("JSON"));
    format!(
        "{}.{}.",
        encode(&header),
        encode(&Value::Object(claims.clone()))
    )
}

/// The RFC 7638 thumbprint of an EC public JWK.
pub(crate) fn ec_thumbprint(jwk: &Value) -> String {
    let canonical = format!(
        r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
        jwk["crv"].as_str().expect("crv"),
        jwk["kty"].as_str().expect("kty"),
        jwk["x"].as_str().expect("x"),
        jwk["y"].as_str().expect("y"),
    );
    URL_SAFE_NO_PAD.encode(openssl::sha::sha256(canonical.as_bytes()))
}

/// The public JWK of an ES256 private key PEM.
pub(crate) fn public_jwk_of(private_pem: &str) -> Value {
    let pair = ES256.key_pair_from_pem(private_pem).expect("a P-256 key");
    let jwk = pair.to_jwk_public_key();
    serde_json::to_value(jwk.as_ref()).expect("JWK JSON")
}

/// Seconds since the epoch, now.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The RFC 7638 thumbprint of a P-256 public key PEM.
pub(crate) fn public_pem_thumbprint(pem: &str) -> String {
    use openssl::bn::{BigNum, BigNumContext};
    let key = openssl::ec::EcKey::public_key_from_pem(pem.as_bytes()).expect("an EC public key");
    let mut context = BigNumContext::new().expect("bignum context");
    let (mut x, mut y) = (BigNum::new().expect("x"), BigNum::new().expect("y"));
    key.public_key()
        .affine_coordinates(key.group(), &mut x, &mut y, &mut context)
        .expect("affine coordinates");
    let coordinate = |n: &BigNum| URL_SAFE_NO_PAD.encode(n.to_vec_padded(32).expect("32 bytes"));
    ec_thumbprint(&json!({"kty": "EC", "crv": "P-256", "x": coordinate(&x), "y": coordinate(&y)}))
}

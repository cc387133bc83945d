//! A relying party as deployed: it fetches the JWKS once, keeps it, and
//! verifies tokens offline by their `kid` until it is told to refresh.

use josekit::jwk::Jwk;
use josekit::jws::ES256;
use josekit::jwt;
use serde_json::{Map, Value};

use crate::common::ISSUER;
use crate::common::client::Client;
use crate::common::tokens::now;

/// The keys a verifier holds, as fetched.
#[derive(Clone, Debug)]
pub(crate) struct Verifier {
    jwks: Value,
}

impl Verifier {
    /// Fetches the JWKS.
    pub(crate) async fn fetch(client: &Client) -> Verifier {
        let res = client.get("/.well-known/jwks.json").send().await;
        assert_eq!(res.code(), 200, "JWKS: {}", res.text());
        Verifier { jwks: res.json() }
    }

    /// The `kid` of every key held, in the JWKS's order.
    pub(crate) fn kids(&self) -> Vec<String> {
        self.keys()
            .iter()
            .map(|key| key["kid"].as_str().expect("every key has a kid").to_owned())
            .collect()
    }

    pub(crate) fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// Checks the signature with the key the token's `kid` names, then the
    /// issuer and expiry; returns the claims.
    pub(crate) fn verify(&self, token: &str) -> Result<Map<String, Value>, String> {
        let header = jwt::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        let kid = header
            .claim("kid")
            .and_then(Value::as_str)
            .ok_or("no kid in the header")?;
        let key = self
            .keys()
            .iter()
            .find(|key| key["kid"] == kid)
            .ok_or_else(|| format!("kid {kid} is not among the keys held {:?}", self.kids()))?;
        let jwk =
            Jwk::from_bytes(serde_json::to_vec(key).expect("JWK")).map_err(|e| e.to_string())?;
        let verifier = ES256.verifier_from_jwk(&jwk).map_err(|e| e.to_string())?;
        let (payload, _) = jwt::decode_with_verifier(token, &verifier)
            .map_err(|e| format!("the signature does not verify with kid {kid}: {e}"))?;
        let claims = payload.claims_set().clone();
        if claims.get("iss").and_then(Value::as_str) != Some(ISSUER) {
            return Err(format!("unexpected issuer in {claims:?}"));
        }
        if claims
            .get("exp")
            .and_then(Value::as_u64)
            .is_none_or(|exp| exp <= now())
        {
            return Err(format!("expired: {claims:?}"));
        }
        Ok(claims)
    }

    fn keys(&self) -> &[Value] {
        self.jwks["keys"].as_array().expect("a keys list")
    }
}

/// The `kid` a token's header names, unverified.
pub(crate) fn kid_of(token: &str) -> String {
    let header = jwt::decode_header(token).expect("a JWT header");
    header
        .claim("kid")
        .and_then(Value::as_str)
        .expect("a kid")
        .to_owned()
}

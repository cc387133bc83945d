//! Where the time of one login token goes, from the whole down to the
//! signature: `TokenService::issue_login` (claims, JSON, base64, and the
//! ES256 signature josekit asks aws-lc-rs for), beside josekit's JWT
//! encoding of the same claims with josekit's own OpenSSL signer; then the
//! P-256 signature alone three ways: aws-lc-rs (what Kisee signs with),
//! josekit's OpenSSL signer, and OpenSSL's ECDSA without the EVP set-up
//! josekit does for every signature.
//!
//! `cargo bench --bench signing`; `scripts/bench` runs it with short timings
//! and reads the medians criterion writes.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use criterion::{Criterion, criterion_group, criterion_main};
use josekit::jws::{ES256, JwsHeader, JwsSigner};
use josekit::jwt::{self, JwtPayload};
use kisee::backend::Identity;
use kisee::settings::JwtSettings;
use kisee::token::{SystemClock, TokenService};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use serde_json::json;

/// Bytes in a login token's signing input (base64url header and claims);
/// the signature's cost hardly depends on them.
const SIGNING_INPUT_BYTES: usize = 300;

fn token_service() -> Option<TokenService> {
    let settings = JwtSettings {
        issuer: "http://127.0.0.1:8140".into(),
        // None: a fresh P-256 key, so ES256, as in the throughput runs.
        private_key: None,
        additional_public_keys: Vec::new(),
        lifetime: Duration::from_secs(3600),
        audience: None,
        reset_lifetime: Duration::from_secs(12 * 3600),
    };
    match TokenService::new(&settings, Arc::new(SystemClock)) {
        Ok((service, _)) => Some(service),
        Err(problems) => {
            eprintln!("signing bench: cannot make a token service: {problems:?}");
            None
        }
    }
}

fn issue_login(c: &mut Criterion) {
    let Some(tokens) = token_service() else {
        return;
    };
    let identity = Identity::named("bench");
    c.bench_function("issue_login", |b| {
        b.iter(|| tokens.issue_login(black_box(&identity)).is_ok())
    });
}

fn josekit_jwt_encode(c: &mut Criterion) {
    let Some(signer) = josekit_signer() else {
        return;
    };
    let claims = json!({
        "iss": "http://127.0.0.1:8140",
        "sub": "bench",
        "iat": 1_796_293_814_u64,
        "exp": 1_796_297_414_u64,
        "jti": "VnielZKD1nsMPdP_-q-Qdw",
    });
    let Some(map) = claims.as_object().cloned() else {
        return;
    };
    let Ok(payload) = JwtPayload::from_map(map) else {
        return;
    };
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id("0Yubzr6qJfxos4TfxlOUquJh4ANC0GyH12QWL_n6xBw");
    c.bench_function("josekit_jwt_encode_es256", |b| {
        b.iter(|| jwt::encode_with_signer(black_box(&payload), &header, &signer).is_ok())
    });
}

fn josekit_sign(c: &mut Criterion) {
    let Some(signer) = josekit_signer() else {
        return;
    };
    let input = vec![b'x'; SIGNING_INPUT_BYTES];
    c.bench_function("josekit_es256_sign", |b| {
        b.iter(|| signer.sign(black_box(&input)).is_ok())
    });
}

fn aws_lc_sign(c: &mut Criterion) {
    let Ok(key) = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING) else {
        eprintln!("signing bench: aws-lc-rs cannot make a P-256 key");
        return;
    };
    let rng = SystemRandom::new();
    let input = vec![b'x'; SIGNING_INPUT_BYTES];
    c.bench_function("aws_lc_rs_es256_sign", |b| {
        b.iter(|| key.sign(&rng, black_box(&input)).is_ok())
    });
}

fn openssl_direct_sign(c: &mut Criterion) {
    let Some(key) = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)
        .and_then(|group| EcKey::generate(&group))
        .ok()
    else {
        eprintln!("signing bench: OpenSSL cannot make a P-256 key");
        return;
    };
    let input = vec![b'x'; SIGNING_INPUT_BYTES];
    c.bench_function("openssl_direct_es256_sign", |b| {
        b.iter(|| {
            let digest = openssl::sha::sha256(black_box(&input));
            EcdsaSig::sign(&digest, &key).is_ok()
        })
    });
}

fn josekit_signer() -> Option<impl JwsSigner> {
    let pair = ES256.generate_key_pair().ok()?;
    ES256.signer_from_der(pair.to_der_private_key()).ok()
}

fn short() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = signing;
    config = short();
    targets = issue_login, josekit_jwt_encode, josekit_sign, aws_lc_sign, openssl_direct_sign
}
criterion_main!(signing);

//! `/jwt/`: the tokens document, logins, the token itself, and the keys that
//! verify it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::time::{Duration, Instant};

use common::tokens::{
    decode_unverified, ec_thumbprint, now, public_jwk_of, verify_with_jwks, verify_with_pem,
};
use common::{
    Fixture, ISSUER, REFUSED, TestUser, abs, alice, assert_problem, carol, login, login_status,
};
use serde_json::{Value, json};

const COREAPI_ACCEPTS: [Option<&str>; 4] = [
    None,
    Some("*/*"),
    Some("application/coreapi+json"),
    Some("application/vnd.coreapi+json"),
];

#[tokio::test]
async fn get_jwt_is_a_coreapi_document_with_an_add_token_link() {
    let server = Fixture::new().start();

    let res = server.get("/jwt/").send().await;

    assert_eq!(res.code(), 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    let doc = res.json();
    assert_eq!(doc["_type"], "document");
    assert_eq!(
        doc["_meta"],
        json!({"url": abs("/jwt/"), "title": "JSON Web Tokens"})
    );
    assert_eq!(doc["tokens"], json!([]));
    let link = &doc["add_token"];
    assert_eq!(link["_type"], "link");
    assert_eq!(link["url"], abs("/jwt/"));
    assert_eq!(link["action"], "post");
    assert_eq!(link["title"], "Create a new JWT");
    assert_eq!(link["fields"], credentials_fields());
    common::assert_coreapi_links(&doc);
}

fn credentials_fields() -> Value {
    json!([
        {"name": "username", "required": true, "schema": {"type": "string"}},
        {"name": "password", "required": true, "schema": {"type": "string", "format": "password"}},
    ])
}

#[tokio::test]
async fn accept_application_json_selects_the_plain_form() {
    let server = Fixture::new().start();

    let res = server.get("/jwt/").accept("application/json").send().await;

    assert_eq!(res.code(), 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.json(), json!({"tokens": [], "add_token": abs("/jwt/")}));
}

#[tokio::test]
async fn every_other_accept_selects_the_coreapi_form() {
    let server = Fixture::new().start();

    for accept in COREAPI_ACCEPTS {
        let mut request = server.get("/jwt/");
        if let Some(accept) = accept {
            request = request.accept(accept);
        }
        let res = request.send().await;
        assert_eq!(
            res.header("content-type"),
            Some("application/json"),
            "{accept:?}"
        );
        assert_eq!(res.json()["_type"], "document", "{accept:?}");
    }
}

#[tokio::test]
async fn a_login_answers_201_with_the_token_and_its_location() {
    let user = alice();
    let server = Fixture::new().user(&user).start();

    let res = server
        .post("/jwt/")
        .json(&json!({"username": user.username, "password": user.password}))
        .send()
        .await;

    assert_eq!(res.code(), 201, "{}", res.text());
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let doc = res.json();
    assert_eq!(doc["_type"], "document");
    assert_eq!(doc["_meta"]["title"], "JSON Web Tokens");
    assert_eq!(doc["add_token"]["fields"], credentials_fields());
    let token = doc["tokens"][0].as_str().unwrap();
    let jti = decode_unverified(token)
        .claim("jti")
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(res.header("location"), Some(format!("/jwt/{jti}").as_str()));
}

#[tokio::test]
async fn a_login_in_the_plain_form_returns_the_token_and_the_link_url() {
    let user = alice();
    let server = Fixture::new().user(&user).start();

    let res = server
        .post("/jwt/")
        .accept("application/json")
        .json(&json!({"username": user.username, "password": user.password}))
        .send()
        .await;

    assert_eq!(res.code(), 201);
    let doc = res.json();
    assert_eq!(doc["add_token"], abs("/jwt/"));
    assert_eq!(doc["tokens"].as_array().map(Vec::len), Some(1));
    assert!(doc.get("_type").is_none(), "{doc}");
}

#[tokio::test]
async fn the_token_is_es256_signed_by_the_published_key() {
    let user = alice();
    let fixture = Fixture::new().user(&user);
    let server = fixture.start();

    let token = login(&server, &user.username, &user.password).await;
    let verified = verify_with_jwks(&server, &token).await;

    assert_eq!(verified.header["alg"], "ES256");
    assert_eq!(verified.header["typ"], "JWT");
    let signing_key = public_jwk_of(&fixture.jwt_key_pem);
    assert_eq!(verified.header["kid"], ec_thumbprint(&signing_key));
}

#[tokio::test]
async fn the_token_claims_come_from_the_settings_and_the_user() {
    let user = alice();
    let server = Fixture::new().user(&user).start();

    let token = login(&server, &user.username, &user.password).await;
    let claims = verify_with_jwks(&server, &token).await;

    assert_eq!(claims.claim("iss"), ISSUER);
    assert_eq!(claims.claim("sub"), "alice");
    assert_eq!(claims.claim("email"), "alice@example.org");
    assert_eq!(claims.claim("name"), "Alice Liddell");
    assert_eq!(claims.claim("groups"), &json!(["admins", "staff"]));
    assert!(
        claims.claims.get("aud").is_none(),
        "no audience is configured"
    );
}

#[tokio::test]
async fn the_token_lives_one_hour_in_whole_seconds_by_default() {
    let user = alice();
    let server = Fixture::new().user(&user).start();

    let token = login(&server, &user.username, &user.password).await;
    let claims = verify_with_jwks(&server, &token).await;

    let (iat, exp) = (claims.seconds("iat"), claims.seconds("exp"));
    assert_eq!(exp - iat, 3600);
    assert!(iat.abs_diff(now()) <= 60, "iat {iat} is not now");
}

#[tokio::test]
async fn claims_the_backend_does_not_know_are_left_out() {
    let user = carol();
    let server = Fixture::new().user(&user).start();

    let token = login(&server, &user.username, &user.password).await;
    let claims = verify_with_jwks(&server, &token).await.claims;

    assert_eq!(claims["sub"], "carol");
    assert!(claims.get("email").is_none(), "{claims:?}");
    assert!(claims.get("name").is_none(), "{claims:?}");
}

#[tokio::test]
async fn token_ids_are_long_url_safe_and_distinct() {
    let user = alice();
    let server = Fixture::new().user(&user).start();

    let first = login(&server, &user.username, &user.password).await;
    let second = login(&server, &user.username, &user.password).await;

    let jti = |token: &str| {
        let claims = decode_unverified(token).claims;
        claims["jti"].as_str().unwrap().to_owned()
    };
    let (a, b) = (jti(&first), jti(&second));
    assert_ne!(a, b);
    for id in [&a, &b] {
        // 128 bits take at least 22 base64url characters (32 in hex).
        assert!(id.len() >= 22, "jti {id:?} is too short for 128 bits");
        let url_safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        assert!(id.chars().all(url_safe), "jti {id:?}");
    }
}

#[tokio::test]
async fn a_configured_audience_and_lifetime_shape_the_claims() {
    let user = alice();
    let server = Fixture::new()
        .user(&user)
        .set("jwt.audience", json!("pasee"))
        .set("jwt.lifetime", json!("5m"))
        .start();

    let token = login(&server, &user.username, &user.password).await;
    let claims = verify_with_jwks(&server, &token).await;

    let aud = claims.claim("aud");
    assert!(aud == "pasee" || aud == &json!(["pasee"]), "aud {aud}");
    assert_eq!(claims.seconds("exp") - claims.seconds("iat"), 300);
}

#[tokio::test]
async fn the_login_key_is_accepted_for_username() {
    let user = alice();
    let server = Fixture::new().user(&user).start();

    let res = server
        .post("/jwt/")
        .json(&json!({"login": user.username, "password": user.password}))
        .send()
        .await;

    assert_eq!(res.code(), 201, "{}", res.text());
    let token = res.json()["tokens"][0].as_str().unwrap().to_owned();
    assert_eq!(decode_unverified(&token).claims["sub"], "alice");
}

#[tokio::test]
async fn username_wins_over_login() {
    let user = alice();
    let server = Fixture::new().user(&user).start();

    let winner = json!({"username": "alice", "login": "mallory", "password": user.password});
    let loser = json!({"username": "mallory", "login": "alice", "password": user.password});
    let accepted = server.post("/jwt/").json(&winner).send().await;
    let refused = server.post("/jwt/").json(&loser).send().await;

    assert_eq!(accepted.code(), 201, "{}", accepted.text());
    assert_problem(&refused, 403, REFUSED);
}

#[tokio::test]
async fn missing_or_unusable_credentials_are_422() {
    let server = Fixture::new().user(&alice()).start();
    let bodies = [
        json!({}),
        json!({"username": "alice"}),
        json!({"password": "x"}),
        json!({"username": null, "password": null}),
        json!({"username": "alice", "password": null}),
        json!({"username": 42, "password": "x"}),
        json!({"username": "alice", "password": 42}),
        json!({"username": ["alice"], "password": "x"}),
        json!({"username": {"name": "alice"}, "password": "x"}),
        json!({"username": "alice", "password": true}),
        json!({"username": "", "password": "x"}),
        json!({"username": "alice", "password": ""}),
        json!({"login": null, "password": "x"}),
    ];

    for body in bodies {
        let res = server.post("/jwt/").json(&body).send().await;
        assert_problem(&res, 422, "Missing username or password.");
    }
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same() {
    let server = Fixture::new().user(&alice()).start();

    let unknown = json!({"username": "nobody", "password": "whatever-1"});
    let wrong = json!({"username": "alice", "password": "whatever-1"});
    let unknown = server.post("/jwt/").json(&unknown).send().await;
    let wrong = server.post("/jwt/").json(&wrong).send().await;

    assert_problem(&unknown, 403, REFUSED);
    assert_eq!(unknown.code(), wrong.code());
    assert_eq!(unknown.reason(), wrong.reason());
    assert_eq!(unknown.body, wrong.body);
    assert_eq!(unknown.header("content-type"), wrong.header("content-type"));
}

#[tokio::test]
async fn unknown_user_and_wrong_password_take_the_same_time() {
    // Real-cost hashes: a server that skipped the hash for an unknown user
    // would answer it ten times faster or more. Each unknown-user attempt is
    // compared with the wrong-password attempt made right after it, so that
    // both see the same load from tests running beside this one.
    let users: Vec<TestUser> = (0..PAIRS)
        .map(|i| TestUser::new(&format!("timed{i}"), "the-real-password").real_cost())
        .collect();
    let fixture = users.iter().fold(Fixture::new(), |f, user| f.user(user));
    let server = fixture.start();
    login_status(&server, "warm-up", "warm-up").await;

    let mut ratios = Vec::new();
    for i in 0..PAIRS {
        let unknown = timed_refusal(&server, &format!("ghost{i}")).await;
        let wrong = timed_refusal(&server, &format!("timed{i}")).await;
        ratios.push(unknown.as_secs_f64() / wrong.as_secs_f64());
    }

    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[PAIRS / 2];
    assert!(
        (0.33..=3.0).contains(&ratio),
        "median unknown/wrong ratio {ratio:.2}: {ratios:.2?}"
    );
}

/// Pairs of timed refusals; 2 × 15 failures stay under the per-client throttle.
const PAIRS: usize = 15;

async fn timed_refusal(server: &common::Server, username: &str) -> Duration {
    let started = Instant::now();
    let status = login_status(server, username, "not-the-password").await;
    assert_eq!(status, 403, "{username}");
    started.elapsed()
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_with_detail() {
    let server = Fixture::new().user(&alice()).start();
    let bodies: [&[u8]; 5] = [
        b"",
        b"{",
        b"username=alice&password=x",
        br#"{"username": "alice", "password": "x",}"#,
        b"\xff\xfe{}",
    ];

    for body in bodies {
        let res = server.post("/jwt/").body(body).send().await;
        assert_problem(&res, 400, "Malformed JSON");
    }
}

#[tokio::test]
async fn bodies_are_json_whatever_the_content_type() {
    let user = alice();
    let server = Fixture::new().user(&user).start();
    let body = json!({"username": user.username, "password": user.password}).to_string();
    let content_types = [
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("application/octet-stream"),
        None,
    ];

    for content_type in content_types {
        let mut request = server.post("/jwt/").body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let res = request.send().await;
        assert_eq!(res.code(), 201, "{content_type:?}: {}", res.text());
    }
}

#[tokio::test]
async fn a_token_by_id_is_404() {
    let user = alice();
    let server = Fixture::new().user(&user).start();
    let token = login(&server, &user.username, &user.password).await;
    let jti = decode_unverified(&token).claims["jti"]
        .as_str()
        .unwrap()
        .to_owned();

    let known = server.get(&format!("/jwt/{jti}")).send().await;
    let unknown = server.get("/jwt/not-a-token-id").send().await;

    assert_problem(&known, 404, "Not Found");
    assert_problem(&unknown, 404, "Not Found");
}

#[tokio::test]
async fn the_jwks_publishes_the_signing_key_with_its_thumbprint_as_kid() {
    let fixture = Fixture::new();
    let server = fixture.start();

    let res = server.get("/.well-known/jwks.json").send().await;

    assert_eq!(res.code(), 200);
    let keys = res.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = &keys[0];
    let expected = public_jwk_of(&fixture.jwt_key_pem);
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!((&key["x"], &key["y"]), (&expected["x"], &expected["y"]));
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["kid"], ec_thumbprint(key));
    assert!(key.get("d").is_none(), "the JWKS leaks the private key");
}

#[tokio::test]
async fn the_jwks_also_publishes_additional_public_keys() {
    let (_, next_public) = common::pki::p256_key_pair();
    let fixture = Fixture::new().set("jwt.additional_public_keys", json!(["next.pem"]));
    std::fs::write(fixture.dir().join("next.pem"), &next_public).unwrap();
    let server = fixture.start();

    let jwks = server.get("/.well-known/jwks.json").send().await.json();

    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap())
        .collect();
    let signing = ec_thumbprint(&public_jwk_of(&fixture.jwt_key_pem));
    let next = common::tokens::public_pem_thumbprint(&next_public);
    assert_eq!(kids.len(), 2, "{jwks}");
    assert!(kids.contains(&signing.as_str()), "{jwks}");
    assert!(kids.contains(&next.as_str()), "{jwks}");
}

#[tokio::test]
async fn the_public_key_route_gives_a_pem_that_verifies_tokens() {
    let user = alice();
    let server = Fixture::new().user(&user).start();
    let token = login(&server, &user.username, &user.password).await;

    let res = server.get("/public-key/").send().await;

    assert_eq!(res.code(), 200);
    let body = res.json();
    assert_eq!(body["algorithm"], "ES256");
    let pem = body["public_key"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    assert_eq!(verify_with_pem(pem, &token).claims["sub"], "alice");
}

#[tokio::test]
async fn repeated_failures_for_one_user_are_throttled_with_retry_after() {
    let server = Fixture::new().user(&alice()).start();
    let wrong = json!({"username": "alice", "password": "guess"});

    let mut throttled = None;
    for attempt in 1..=12 {
        let res = server.post("/jwt/").json(&wrong).send().await;
        if res.code() == 429 {
            throttled = Some((attempt, res));
            break;
        }
        assert_problem(&res, 403, REFUSED);
    }

    let (attempt, res) = throttled.expect("no 429 after 12 failures");
    assert!(attempt > 1, "throttled on the first attempt");
    let retry_after = res.header("retry-after").unwrap_or_default();
    assert!(retry_after.parse::<u64>().is_ok_and(|s| s > 0), "{res:?}");
    assert_eq!(res.json()["status"], 429);
}

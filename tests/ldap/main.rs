//! The LDAP backend against a real OpenLDAP slapd started for each test:
//! logins in both modes, escaping, refusals, TLS, a directory that goes
//! away and comes back, read-only behaviour, load, `check-settings`, and
//! secrets kept out of the logs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

#[path = "../common/mod.rs"]
mod common;

mod certs;
mod seed;
mod slapd;

mod directory;
mod empty_password;
mod load;
mod login;
mod outage;
mod probe;
mod read_only;
mod refusals;
mod secrets;
mod settings_errors;
mod tls;

use common::tokens::verify_with_jwks;
use common::{Fixture, REFUSED, Response, Server, assert_problem, try_login};
use serde_json::{Map, Value, json};

use seed::Person;
use slapd::{Mode, Slapd};

/// Kisee in front of this directory. The throttle is off: these tests send
/// many failures from one address on purpose.
fn kisee(slapd: &Slapd, mode: Mode) -> Fixture {
    with_backend(slapd.backend(mode))
}

/// Kisee with this `backend` section, throttle off.
fn with_backend(backend: Value) -> Fixture {
    let off = json!({"failures": 0});
    Fixture::new()
        .set("backend", backend)
        .set("throttle", json!({"per_user": off, "per_client": off}))
}

/// Logs in, checks the token's signature against the JWKS, and returns its
/// claims.
async fn login_claims(server: &Server, username: &str, password: &str) -> Map<String, Value> {
    let res = try_login(server, username, password).await;
    assert_eq!(res.code(), 201, "login as {username:?}: {}", res.text());
    let token = res.json()["tokens"][0]
        .as_str()
        .expect("a token in `tokens`")
        .to_owned();
    verify_with_jwks(server, &token).await.claims
}

/// The `groups` claim, sorted; none at all reads as an empty list.
fn groups_claim(claims: &Map<String, Value>) -> Vec<String> {
    let Some(groups) = claims.get("groups") else {
        return Vec::new();
    };
    let list = groups
        .as_array()
        .unwrap_or_else(|| panic!("groups: {groups}"));
    let mut names: Vec<String> = list
        .iter()
        .map(|g| g.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Logs in as the person and checks every claim the directory gives.
async fn assert_logs_in(server: &Server, person: &Person) {
    let claims = login_claims(server, person.uid, person.password).await;
    let who = person.uid;
    assert_eq!(claims["sub"], person.uid, "sub of {who:?}");
    assert_eq!(groups_claim(&claims), person.groups(), "groups of {who:?}");
    assert_eq!(claims["email"], person.mail, "email of {who:?}");
    assert_eq!(claims["name"], person.cn, "name of {who:?}");
}

/// Asserts the one refusal and returns the response, to compare bytes.
async fn assert_refused(server: &Server, username: &str, password: &str) -> Response {
    let res = try_login(server, username, password).await;
    assert_problem(&res, 403, REFUSED);
    res
}

/// A 503 with a usable `Retry-After`, and no token anywhere in it.
fn assert_unavailable(res: &Response) {
    let context = format!("{} {}", res.status, res.text());
    assert_eq!(res.code(), 503, "{context}");
    let retry = res.header("retry-after").unwrap_or_default();
    let seconds = retry.parse::<u64>().is_ok_and(|s| s > 0);
    assert!(
        seconds || httpdate::parse_http_date(retry).is_ok(),
        "Retry-After {retry:?} in {context}"
    );
    assert!(!res.text().contains("tokens"), "{context}");
}

/// `GET /health`: its status code and its `status` field.
async fn health(server: &Server) -> (u16, Value) {
    let res = server.get("/health").send().await;
    (res.code(), res.json()["status"].clone())
}

//! The settings file and the command line: errors reported all at once with
//! their paths, environment overrides, relative paths, keys, durations,
//! `check-settings` and `hash-password`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::time::Duration;

use common::server::Exit;
use common::tokens::{decode_unverified, verify_with_jwks};
use common::users::hash_matches;
use common::{Fixture, Server, alice, eventually, login, login_status, register};
use serde_json::json;

/// A file with three mistakes in three sections.
const THREE_MISTAKES: &str = r#"
server:
  listen: "127.0.0.1:0"
  listn: "127.0.0.1:8140"
  tls:
    certificate: tls/cert.pem
    private_key: tls/key.pem
jwt:
  issuer: "https://kisee.test"
  private_key: jwt-signing.pem
  lifetime: "forever"
backend:
  kind: memory
  memory:
    users:
      - username: alice
        pasword_hash: "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
log:
  level: debug
  format: json
"#;

/// Where the mistakes of [`THREE_MISTAKES`] are.
const THREE_MISTAKE_PATHS: [&str; 3] = [
    "server.listn",
    "jwt.lifetime",
    "backend.memory.users[0].pasword_hash",
];

fn assert_mentions_all(exit: &Exit, needles: &[&str]) {
    let stderr = exit.stderr_text();
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{needle} not reported\n{}",
            exit.describe()
        );
    }
}

#[test]
fn several_mistakes_are_all_reported_at_once_with_their_paths() {
    let fixture = Fixture::new().raw_settings(THREE_MISTAKES);

    let exit = fixture.fail_to_start();

    assert_mentions_all(&exit, &THREE_MISTAKE_PATHS);
}

#[test]
fn check_settings_accepts_a_valid_file_without_listening() {
    let fixture = Fixture::new().user(&alice());

    let exit = fixture.check_settings();

    assert!(exit.status.success(), "{}", exit.describe());
    assert!(
        exit.stdout_text().contains("settings OK"),
        "{}",
        exit.describe()
    );
    assert!(common::server::listening_addrs(&exit.stderr).is_empty());
}

#[test]
fn check_settings_reports_every_mistake_and_fails() {
    let fixture = Fixture::new().raw_settings(THREE_MISTAKES);

    let exit = fixture.check_settings();

    assert!(!exit.status.success(), "{}", exit.describe());
    assert!(
        !exit.stdout_text().contains("settings OK"),
        "{}",
        exit.describe()
    );
    assert_mentions_all(&exit, &THREE_MISTAKE_PATHS);
}

#[test]
fn a_bad_duration_is_an_error_with_its_path() {
    let fixture = Fixture::new().set("jwt.reset_lifetime", json!("ten minutes"));

    let exit = fixture.fail_to_start();

    assert_mentions_all(&exit, &["jwt.reset_lifetime"]);
}

#[test]
fn an_unknown_backend_kind_is_an_error_with_its_path() {
    let fixture = Fixture::new().set("backend.kind", json!("carrier-pigeon"));

    let exit = fixture.fail_to_start();

    assert_mentions_all(&exit, &["backend.kind"]);
}

#[test]
fn a_missing_settings_file_is_an_error_naming_it() {
    let fixture = Fixture::new();
    let missing = fixture.dir().join("nowhere.yaml");
    let mut command = fixture.command();
    command.arg("--settings").arg(&missing);

    let exit = Exit::run(command, None);

    assert!(!exit.status.success(), "{}", exit.describe());
    assert!(
        exit.stderr_text().contains("nowhere.yaml"),
        "{}",
        exit.describe()
    );
}

#[test]
fn a_file_that_is_not_yaml_is_refused() {
    let fixture = Fixture::new().raw_settings("server: [unclosed\n  listen: {\n");

    let exit = fixture.fail_to_start();

    assert!(!exit.stderr_text().trim().is_empty(), "{}", exit.describe());
}

#[test]
fn a_missing_certificate_is_an_error_naming_it() {
    let fixture = Fixture::new().set("server.tls.certificate", json!("tls/absent.pem"));

    let exit = fixture.fail_to_start();

    let stderr = exit.stderr_text();
    let named = stderr.contains("absent.pem") || stderr.contains("server.tls.certificate");
    assert!(named, "{}", exit.describe());
}

#[test]
fn a_secp256k1_signing_key_is_refused_without_printing_it() {
    let fixture = Fixture::new().set("jwt.private_key", json!("k1.pem"));
    let key_path = fixture.dir().join("k1.pem");
    common::pki::write_secp256k1_key(&key_path);
    let key_pem = std::fs::read_to_string(&key_path).unwrap();

    let exit = fixture.fail_to_start();

    let stderr = exit.stderr_text();
    let mentions = stderr.contains("jwt.private_key") || stderr.contains("secp256k1");
    assert!(
        mentions,
        "the error does not mention the key\n{}",
        exit.describe()
    );
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !stderr.contains(line),
            "the key leaked\n{}",
            exit.describe()
        );
    }
}

#[tokio::test]
async fn an_environment_variable_overrides_a_key() {
    let user = alice();
    let server = Fixture::new()
        .user(&user)
        .env("KISEE_JWT__ISSUER", "https://override.example")
        .start();

    let token = login(&server, &user.username, &user.password).await;

    assert_eq!(
        decode_unverified(&token).claims["iss"],
        "https://override.example"
    );
}

#[tokio::test]
async fn an_environment_variable_overrides_a_nested_boolean() {
    let server = Fixture::new()
        .env("KISEE_BACKEND__MEMORY__REGISTRATION", "true")
        .start();

    let res = register(&server, "dave", "dave-password-1").await;

    assert_eq!(res.code(), 201, "{}", res.text());
}

#[test]
fn a_bad_environment_value_is_an_error_with_its_path() {
    let fixture = Fixture::new().env("KISEE_SERVER__MAX_BODY_BYTES", "lots");

    let exit = fixture.fail_to_start();

    assert_mentions_all(&exit, &["server.max_body_bytes"]);
}

#[tokio::test]
async fn relative_paths_resolve_against_the_settings_folder() {
    // The server runs from `/`: the TLS and JWT paths in the fixture are
    // relative already, and so is the users file here.
    let fixture = Fixture::new()
        .set("backend.memory.registration", json!(true))
        .set("backend.memory.users_file", json!("users.db"));
    let server = fixture.start();

    let res = register(&server, "dave", "dave-password-1").await;

    assert_eq!(res.code(), 201, "{}", res.text());
    let stored = std::fs::read(fixture.dir().join("users.db")).unwrap();
    assert!(String::from_utf8_lossy(&stored).contains("dave"));
}

#[tokio::test]
async fn a_lifetime_may_be_a_number_of_seconds() {
    let user = alice();
    let server = Fixture::new()
        .user(&user)
        .set("jwt.lifetime", json!(120))
        .start();

    let token = login(&server, &user.username, &user.password).await;

    let claims = decode_unverified(&token);
    assert_eq!(claims.seconds("exp") - claims.seconds("iat"), 120);
}

#[tokio::test]
async fn without_a_signing_key_an_ephemeral_one_is_made_with_a_warning() {
    let user = alice();
    let server = Fixture::new().user(&user).unset("jwt.private_key").start();

    let token = login(&server, &user.username, &user.password).await;

    assert_eq!(
        verify_with_jwks(&server, &token).await.claims["sub"],
        "alice"
    );
    let warned = server
        .log_records()
        .iter()
        .any(|r| r["level"] == "WARN" && r.to_string().to_lowercase().contains("key"));
    assert!(
        warned,
        "no WARN about the key:\n{}",
        server.logs().join("\n")
    );
}

/// The word after "password" on the output line that shows the demo account,
/// waiting (bounded) for the line to be printed.
async fn demo_root_password(server: &Server) -> String {
    let find = || {
        let output = server.output();
        let line = output
            .lines()
            .find(|l| l.contains("root") && l.to_lowercase().contains("password"))?
            .to_owned();
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| w.to_lowercase().starts_with("password"))?;
        let word = words.get(at + 1)?;
        Some(word.trim_matches(|c: char| "\"',:=".contains(c)).to_owned())
    };
    eventually(Duration::from_secs(5), "the demo account line", || {
        let found = find();
        async move { found }
    })
    .await
}

#[tokio::test]
async fn the_demo_root_account_has_a_random_password_shown_at_start() {
    let fixture = Fixture::new().set("backend.memory.demo_root", json!(true));
    let mut first = fixture.start();
    let first_password = demo_root_password(&first).await;
    assert_eq!(login_status(&first, "root", &first_password).await, 201);
    first.kill();

    let second = fixture.start();
    let second_password = demo_root_password(&second).await;

    assert_ne!(first_password, second_password);
    assert_eq!(login_status(&second, "root", &first_password).await, 403);
    assert_eq!(login_status(&second, "root", &second_password).await, 201);
}

#[tokio::test]
async fn there_is_no_root_account_by_default() {
    let fixture = Fixture::new().set("backend.memory.demo_root", json!(true));
    let demo = fixture.start();
    let password = demo_root_password(&demo).await;
    drop(demo);

    let server = fixture.unset("backend.memory.demo_root").start();

    assert_eq!(login_status(&server, "root", &password).await, 403);
}

#[tokio::test]
async fn every_listen_address_is_served() {
    let server = Fixture::new()
        .set("server.listen", json!(["127.0.0.1:0", "127.0.0.1:0"]))
        .start();

    let addrs = server.addrs().to_vec();

    assert_eq!(addrs.len(), 2);
    assert_ne!(addrs[0], addrs[1]);
    for addr in addrs {
        let res = server.client_for(addr).get("/health").send().await;
        assert_eq!(res.code(), 200, "{addr}");
    }
}

#[tokio::test]
async fn a_smaller_body_limit_is_enforced() {
    let user = alice();
    let server = Fixture::new()
        .user(&user)
        .set("server.max_body_bytes", json!(1024))
        .start();
    let login = json!({"username": user.username, "password": user.password}).to_string();

    let padded = format!("{login}{}", " ".repeat(900 - login.len()));
    let over = format!("{login}{}", " ".repeat(2000));
    let fits = server.post("/jwt/").body(padded).send().await;
    let too_large = server.post("/jwt/").body(over).send().await;

    assert_eq!(fits.code(), 201, "{}", fits.text());
    common::assert_problem(&too_large, 413, "Request body too large");
}

#[tokio::test]
async fn hash_password_prints_a_phc_string_the_server_accepts() {
    let fixture = Fixture::new();
    let mut command = fixture.command();
    command.arg("hash-password");

    let exit = Exit::run(command, Some("s3cret-Passw0rd"));

    assert!(exit.status.success(), "{}", exit.describe());
    let lines: Vec<&String> = exit.stdout.iter().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "{}", exit.describe());
    let phc = lines[0].trim().to_owned();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    assert!(hash_matches(&phc, "s3cret-Passw0rd"));
    let user = json!([{"username": "erin", "password_hash": phc}]);
    let server = fixture.set("backend.memory.users", user).start();
    assert_eq!(login_status(&server, "erin", "s3cret-Passw0rd").await, 201);
}

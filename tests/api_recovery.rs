//! `/password_recoveries/`: the recovery document, reset requests delivered
//! to a spool folder, and what a reset token may and may not do.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use common::mail::{Mail, spooled, wait_for_mails};
use common::tokens::{decode_unverified, now, sign, unsigned};
use common::{
    Fixture, Server, abs, alice, assert_problem, bob, carol, login, login_status, password_patch,
    patch_basic, patch_bearer,
};
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "a-brand-new-Passw0rd";

/// Alice and Bob have an email, Carol has none; messages go to `spool/`.
fn with_spool() -> Fixture {
    let fixture = Fixture::new()
        .user(&alice())
        .user(&bob())
        .user(&carol())
        .set("backend.memory.registration", json!(true))
        .set("recovery", json!({"delivery": "file", "folder": "spool"}));
    std::fs::create_dir(fixture.dir().join("spool")).unwrap();
    fixture
}

async fn request_reset(server: &Server, body: &Value) {
    let res = server.post("/password_recoveries/").json(body).send().await;
    assert_eq!(res.code(), 201, "{body}: {}", res.text());
    assert!(res.body.is_empty(), "{body}: {}", res.text());
}

/// Asks for a reset for Alice and returns the message she gets.
async fn reset_mail_for_alice(fixture: &Fixture, server: &Server) -> Mail {
    let spool = fixture.dir().join("spool");
    let before = spooled(&spool);
    request_reset(server, &json!({"username": "alice"})).await;
    let mails = wait_for_mails(&spool, before.len() + 1).await;
    let mut new = mails.into_iter().filter(|m| !before.contains(&m.path));
    new.next().expect("a new message")
}

async fn change_with_token(server: &Server, user: &str, token: &str, password: &str) -> Value {
    let res = patch_bearer(server, user, token, &password_patch(password)).await;
    let body = if res.body.is_empty() {
        Value::Null
    } else {
        res.json()
    };
    json!({"status": res.code(), "body": body})
}

#[tokio::test]
async fn the_recovery_document_offers_a_reset_password_link() {
    let server = with_spool().start();

    let res = server.get("/password_recoveries/").send().await;

    assert_eq!(res.code(), 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    let doc = res.json();
    assert_eq!(doc["_type"], "document");
    assert_eq!(doc["_meta"]["title"], "Forgotten password management");
    assert_eq!(doc["_meta"]["url"], abs("/password_recoveries/"));
    let link = &doc["reset_password"];
    assert_eq!(link["_type"], "link");
    assert_eq!(link["action"], "post");
    assert_eq!(link["url"], abs("/password_recoveries/"));
    let names: Vec<&str> = link["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["username", "email"]);
    assert!(doc.get("recover").is_none(), "{doc}");
    common::assert_coreapi_links(&doc);
}

#[tokio::test]
async fn the_recovery_document_in_plain_form_has_link_urls() {
    let server = with_spool().start();

    let res = server
        .get("/password_recoveries/")
        .accept("application/json")
        .send()
        .await;

    assert_eq!(res.json()["reset_password"], abs("/password_recoveries/"));
}

#[tokio::test]
async fn the_forgotten_passwords_alias_serves_the_same_document() {
    let server = with_spool().start();

    let alias = server.get("/forgotten_passwords/").send().await;
    let current = server.get("/password_recoveries/").send().await;

    assert_eq!(alias.code(), 200);
    assert_eq!(
        alias.json()["reset_password"],
        current.json()["reset_password"]
    );
}

#[tokio::test]
async fn basic_credentials_earn_a_recover_link_to_the_user() {
    let user = alice();
    let server = with_spool().start();

    let res = server
        .get("/password_recoveries/")
        .basic(&user.username, &user.password)
        .send()
        .await;

    assert_eq!(res.code(), 200);
    let link = &res.json()["recover"];
    assert_eq!(link["url"], abs("/users/alice/"));
    assert_eq!(link["action"], "patch");
    assert_eq!(link["title"], "Change password");
    common::assert_coreapi_links(&res.json());
}

#[tokio::test]
async fn a_reset_token_earns_a_recover_link_to_the_user() {
    let fixture = with_spool();
    let server = fixture.start();
    let mail = reset_mail_for_alice(&fixture, &server).await;

    let res = server
        .get("/password_recoveries/")
        .bearer(&mail.token)
        .send()
        .await;

    assert_eq!(res.code(), 200);
    assert_eq!(res.json()["recover"]["url"], abs("/users/alice/"));
}

#[tokio::test]
async fn a_recovery_request_answers_201_whether_or_not_the_user_exists() {
    let server = with_spool().start();
    let bodies = [
        json!({"username": "alice"}),
        json!({"username": "nobody"}),
        json!({"email": "nobody@example.org"}),
        json!({"login": "nobody"}),
    ];

    for body in bodies {
        request_reset(&server, &body).await;
    }
}

#[tokio::test]
async fn the_forgotten_passwords_alias_accepts_requests() {
    let fixture = with_spool();
    let server = fixture.start();

    let res = server
        .post("/forgotten_passwords/")
        .json(&json!({"username": "alice"}))
        .send()
        .await;

    assert_eq!(res.code(), 201, "{}", res.text());
    let mails = wait_for_mails(&fixture.dir().join("spool"), 1).await;
    assert!(
        mails[0].to.contains("alice@example.org"),
        "{}",
        mails[0].text
    );
}

#[tokio::test]
async fn a_recovery_request_naming_nobody_is_400() {
    let server = with_spool().start();

    for body in [json!({}), json!({"name": "alice"})] {
        let res = server
            .post("/password_recoveries/")
            .json(&body)
            .send()
            .await;
        assert_problem(&res, 400, "Missing required fields email or username");
    }
}

#[tokio::test]
async fn the_reset_token_is_mailed_to_the_user_and_nowhere_else() {
    let fixture = with_spool();
    let server = fixture.start();

    let mail = reset_mail_for_alice(&fixture, &server).await;

    assert!(mail.to.contains("alice@example.org"), "{}", mail.text);
    assert_eq!(mail.token.split('.').count(), 3, "{}", mail.text);
    assert_eq!(decode_unverified(&mail.token).claims["sub"], "alice");
    for record in server.log_records() {
        let level = record["level"].as_str().unwrap_or_default();
        if !matches!(level, "DEBUG" | "TRACE") {
            assert!(!record.to_string().contains(&mail.token), "{record}");
        }
    }
}

#[tokio::test]
async fn recovery_by_email_or_login_reaches_the_same_user() {
    let fixture = with_spool();
    let server = fixture.start();

    request_reset(&server, &json!({"email": "bob@example.org"})).await;
    request_reset(&server, &json!({"login": "bob"})).await;

    let mails = wait_for_mails(&fixture.dir().join("spool"), 2).await;
    for mail in &mails {
        assert!(mail.to.contains("bob@example.org"), "{}", mail.text);
        assert_eq!(decode_unverified(&mail.token).claims["sub"], "bob");
    }
}

#[tokio::test]
async fn unknown_users_and_users_without_email_get_no_message() {
    let fixture = with_spool();
    let server = fixture.start();

    request_reset(&server, &json!({"username": "nobody"})).await;
    request_reset(&server, &json!({"username": "carol"})).await;
    request_reset(&server, &json!({"username": "alice"})).await;

    let mails = wait_for_mails(&fixture.dir().join("spool"), 1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].to.contains("alice@example.org"),
        "{}",
        mails[0].text
    );
}

#[tokio::test]
async fn a_reset_token_changes_the_password_exactly_once() {
    let fixture = with_spool();
    let server = fixture.start();
    let mail = reset_mail_for_alice(&fixture, &server).await;

    let first = change_with_token(&server, "alice", &mail.token, NEW_PASSWORD).await;
    let again = change_with_token(&server, "alice", &mail.token, "yet-another-Passw0rd").await;

    assert_eq!(first["status"], 204, "{first}");
    assert_eq!(again["status"], 401, "{again}");
    assert_eq!(again["body"]["title"], "Bad authorization");
    assert_eq!(login_status(&server, "alice", NEW_PASSWORD).await, 201);
    assert_eq!(login_status(&server, "alice", &alice().password).await, 403);
}

#[tokio::test]
async fn every_reset_token_dies_when_the_password_changes() {
    let fixture = with_spool();
    let server = fixture.start();
    let first = reset_mail_for_alice(&fixture, &server).await;
    let second = reset_mail_for_alice(&fixture, &server).await;
    assert_ne!(first.token, second.token);

    let used = change_with_token(&server, "alice", &first.token, NEW_PASSWORD).await;
    let stale = change_with_token(&server, "alice", &second.token, "yet-another-Passw0rd").await;

    assert_eq!(used["status"], 204, "{used}");
    assert_eq!(stale["status"], 401, "{stale}");
    assert_eq!(login_status(&server, "alice", NEW_PASSWORD).await, 201);
}

#[tokio::test]
async fn a_basic_password_change_kills_pending_reset_tokens() {
    let user = alice();
    let fixture = with_spool();
    let server = fixture.start();
    let mail = reset_mail_for_alice(&fixture, &server).await;

    let basic = patch_basic(
        &server,
        "alice",
        &user.username,
        &user.password,
        &password_patch(NEW_PASSWORD),
    )
    .await;
    let stale = change_with_token(&server, "alice", &mail.token, "yet-another-Passw0rd").await;

    assert_eq!(basic.code(), 204, "{}", basic.text());
    assert_eq!(stale["status"], 401, "{stale}");
}

#[tokio::test]
async fn a_reset_token_is_not_a_password() {
    let fixture = with_spool();
    let server = fixture.start();
    let mail = reset_mail_for_alice(&fixture, &server).await;

    let as_login = login_status(&server, "alice", &mail.token).await;
    let as_basic = patch_basic(
        &server,
        "alice",
        "alice",
        &mail.token,
        &password_patch(NEW_PASSWORD),
    )
    .await;

    assert_eq!(as_login, 403);
    assert_problem(&as_basic, 401, "Bad authorization");
    let still = change_with_token(&server, "alice", &mail.token, NEW_PASSWORD).await;
    assert_eq!(still["status"], 204, "{still}");
}

#[tokio::test]
async fn a_reset_token_does_not_apply_to_another_user() {
    let fixture = with_spool();
    let server = fixture.start();
    let mail = reset_mail_for_alice(&fixture, &server).await;

    let res = patch_bearer(&server, "bob", &mail.token, &password_patch(NEW_PASSWORD)).await;

    assert_problem(&res, 403, "Token does not apply to user resource.");
    assert_eq!(login_status(&server, "bob", &bob().password).await, 201);
}

#[tokio::test]
async fn an_expired_or_unsigned_reset_token_is_401() {
    let fixture = with_spool();
    let server = fixture.start();
    let mail = reset_mail_for_alice(&fixture, &server).await;
    let genuine = decode_unverified(&mail.token);
    let mut claims = genuine.claims.clone();
    claims.insert("iat".into(), json!(now() - 7200));
    claims.insert("exp".into(), json!(now() - 3600));

    let expired = sign(&fixture.jwt_key_pem, &genuine.header, &claims);
    let none = unsigned(&genuine.claims);
    for token in [expired, none] {
        let res = change_with_token(&server, "alice", &token, NEW_PASSWORD).await;
        assert_eq!(res["status"], 401, "{res}");
        assert_eq!(res["body"]["title"], "Bad authorization", "{res}");
    }
    let genuine_use = change_with_token(&server, "alice", &mail.token, NEW_PASSWORD).await;
    assert_eq!(genuine_use["status"], 204, "{genuine_use}");
}

#[tokio::test]
async fn a_reset_token_lives_for_the_configured_reset_lifetime() {
    let fixture = with_spool().set("jwt.reset_lifetime", json!("30m"));
    let server = fixture.start();

    let mail = reset_mail_for_alice(&fixture, &server).await;

    let token = decode_unverified(&mail.token);
    assert_eq!(token.seconds("exp") - token.seconds("iat"), 1800);
}

#[tokio::test]
async fn a_reset_token_lives_twelve_hours_by_default() {
    let fixture = with_spool();
    let server = fixture.start();

    let mail = reset_mail_for_alice(&fixture, &server).await;

    let token = decode_unverified(&mail.token);
    assert_eq!(token.seconds("exp") - token.seconds("iat"), 12 * 3600);
}

#[tokio::test]
async fn a_login_token_earns_no_recover_link() {
    let user = alice();
    let server = with_spool().start();
    let token = login(&server, &user.username, &user.password).await;

    let res = server
        .get("/password_recoveries/")
        .bearer(&token)
        .send()
        .await;

    let recover = res.json().get("recover").cloned();
    assert!(
        res.code() >= 400 || recover.is_none(),
        "{} {recover:?}",
        res.code()
    );
}

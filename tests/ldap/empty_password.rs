//! The empty-password hole: slapd answers a DN with an empty password as a
//! successful bind (see `directory.rs`), so Kisee must refuse it before it
//! ever binds, on every path that checks a password.

use serde_json::json;

use crate::common::{abs, assert_problem};
use crate::seed::ALICE;
use crate::slapd::{Mode, Slapd};
use crate::{Server, kisee, with_backend};

/// Whether `GET /password_recoveries/` with these Basic credentials offers
/// the `recover` link, which only a proven user gets.
async fn recovery_offers_recover(server: &Server, username: &str, password: &str) -> bool {
    let res = server
        .get("/password_recoveries/")
        .basic(username, password)
        .send()
        .await;
    res.code() < 400 && res.json().get("recover").is_some()
}

async fn assert_the_hole_is_closed(server: &Server) {
    let res = server
        .post("/jwt/")
        .json(&json!({"username": ALICE.uid, "password": ""}))
        .send()
        .await;
    assert_problem(&res, 422, "Missing username or password.");

    assert!(!recovery_offers_recover(server, ALICE.uid, "").await);
    assert!(!recovery_offers_recover(server, "nobody-here", "").await);

    // The same path with her real password does reach the directory.
    assert!(recovery_offers_recover(server, ALICE.uid, ALICE.password).await);
    let res = server
        .get("/password_recoveries/")
        .basic(ALICE.uid, ALICE.password)
        .send()
        .await;
    assert_eq!(res.json()["recover"]["url"], abs("/users/alice/"));
}

#[tokio::test]
async fn an_empty_password_never_proves_a_user_by_direct_bind() {
    let slapd = Slapd::start_new();
    // Nothing is read after the bind, so only the bind decides: anonymous
    // may not read people, which would otherwise hide the hole.
    let mut backend = slapd.backend(Mode::DirectBind);
    let ldap = backend["ldap"].as_object_mut().unwrap();
    ldap.remove("groups");
    ldap.remove("attributes");
    let server = with_backend(backend).start();

    assert_the_hole_is_closed(&server).await;
}

#[tokio::test]
async fn an_empty_password_never_proves_a_user_by_search() {
    let slapd = Slapd::start_new();
    let server = kisee(&slapd, Mode::Search).start();
    assert_the_hole_is_closed(&server).await;
}

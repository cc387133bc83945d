//! A directory is read-only to Kisee: no registration, no password change,
//! and nothing in the documents offers them.

use serde_json::json;

use crate::common::{assert_problem, password_patch};
use crate::seed::ALICE;
use crate::slapd::{Mode, Slapd};
use crate::{Server, kisee};

fn started(mode: Mode) -> (Slapd, Server) {
    let slapd = Slapd::start_new();
    let server = kisee(&slapd, mode).start();
    (slapd, server)
}

#[tokio::test]
async fn registration_is_not_available() {
    let (_slapd, server) = started(Mode::Search);

    let body =
        json!({"username": "newcomer", "password": "a-Fine-Passw0rd", "email": "new@example.org"});
    let res = server.post("/users/").json(&body).send().await;

    assert_problem(&res, 403, "Registration is not available");
}

#[tokio::test]
async fn password_change_is_not_available_even_with_the_right_password() {
    let (_slapd, server) = started(Mode::DirectBind);

    let res = server
        .patch("/users/alice/")
        .basic(ALICE.uid, ALICE.password)
        .json(&password_patch("a-brand-new-Passw0rd"))
        .send()
        .await;

    assert_problem(&res, 403, "Password change is not available");
}

#[tokio::test]
async fn json_home_allows_only_get_on_users() {
    let (_slapd, server) = started(Mode::Search);

    let home = server.get("/").send().await.json();

    assert_eq!(home["resources"]["users"]["hints"]["allow"], json!(["GET"]));
}

#[tokio::test]
async fn the_users_document_has_no_register_link() {
    let (_slapd, server) = started(Mode::DirectBind);

    let res = server.get("/users/").send().await;

    assert_eq!(res.code(), 200, "{}", res.text());
    let doc = res.json();
    assert!(doc.get("register_user").is_none(), "{doc}");
    assert_eq!(doc["_meta"]["title"], "Users", "{doc}");
}

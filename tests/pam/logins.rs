//! Logins through pam_matrix: who gets a token, who is refused and how,
//! which groups the token carries, and what a read-only backend offers.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Server, assert_problem};
use crate::host::{SystemUser, assert_root};
use crate::wrapper::Stack;
use crate::{accepted_claims, assert_logs_hold_none_of, assert_refused, password, try_login};

/// A stack with one account both phases accept and one the account phase
/// refuses, and a server on it.
struct Accounts {
    server: Server,
    _stack: Stack,
    good: String,
    refused: String,
}

fn accounts() -> Accounts {
    let (good, refused) = (password("good"), password("refused"));
    let stack =
        Stack::new()
            .account("alice", &good)
            .account_of("dave", &refused, "another-service");
    let server = stack.fixture().start();
    Accounts {
        server,
        _stack: stack,
        good,
        refused,
    }
}

#[tokio::test]
async fn the_right_password_gets_a_token_for_that_user() {
    let a = accounts();

    let res = try_login(&a.server, "alice", &a.good).await;

    let claims = accepted_claims(&a.server, &res).await;
    assert_eq!(claims["sub"], "alice");
    assert_logs_hold_none_of(&a.server, &[&a.good]);
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let a = accounts();
    let wrong = password("wrong");

    assert_refused(&try_login(&a.server, "alice", &wrong).await);
    assert_logs_hold_none_of(&a.server, &[&wrong]);
}

#[tokio::test]
async fn an_unknown_user_is_refused() {
    let a = accounts();

    assert_refused(&try_login(&a.server, "nobody-here", &a.good).await);
}

#[tokio::test]
async fn an_account_the_account_phase_refuses_gets_no_token() {
    let a = accounts();

    assert_refused(&try_login(&a.server, "dave", &a.refused).await);

    // The password was right: the refusal came from pam_acct_mgmt. The log
    // line may reach the harness a moment after the answer: poll for it.
    let account_refusal = |server: &Server| {
        server.log_records().into_iter().any(|record| {
            let fields = &record["fields"];
            fields["user"] == "dave" && fields["phase"] == "account"
        })
    };
    let server = &a.server;
    crate::common::eventually(
        Duration::from_secs(5),
        "an account-phase refusal in the log",
        || {
            let found = account_refusal(server);
            async move { found.then_some(()) }
        },
    )
    .await;
}

#[tokio::test]
async fn every_kind_of_refusal_gets_the_same_bytes() {
    let a = accounts();
    let wrong = password("wrong");

    let responses = [
        try_login(&a.server, "alice", &wrong).await,
        try_login(&a.server, "nobody-here", &wrong).await,
        try_login(&a.server, "dave", &a.refused).await,
    ];

    for res in &responses {
        assert_refused(res);
        assert_eq!(res.body, responses[0].body, "bodies differ");
        assert_eq!(
            res.header("content-type"),
            responses[0].header("content-type")
        );
    }
}

#[tokio::test]
async fn the_token_carries_the_unix_groups_of_the_account() {
    assert_root();
    let user = SystemUser::create(3);
    let secret = password("groups");
    let stack = Stack::new().account(&user.name, &secret);
    let server = stack.fixture().start();

    let claims = accepted_claims(&server, &try_login(&server, &user.name, &secret).await).await;

    assert_eq!(claims["sub"], user.name.as_str());
    assert_eq!(claims["groups"], json!(user.group_names()));
}

#[tokio::test]
async fn root_has_the_root_group_in_its_token() {
    let secret = password("root");
    let stack = Stack::new().account("root", &secret);
    let server = stack.fixture().start();

    let claims = accepted_claims(&server, &try_login(&server, "root", &secret).await).await;

    let groups = claims.get("groups").and_then(Value::as_array);
    assert!(
        groups.is_some_and(|g| g.contains(&json!("root"))),
        "groups of root: {claims:?}"
    );
}

#[tokio::test]
async fn an_account_the_host_does_not_know_has_no_groups_claim() {
    let a = accounts();

    let claims = accepted_claims(&a.server, &try_login(&a.server, "alice", &a.good).await).await;

    assert!(!claims.contains_key("groups"), "claims: {claims:?}");
}

#[tokio::test]
async fn groups_false_leaves_the_groups_claim_out() {
    let secret = password("root");
    let stack = Stack::new().account("root", &secret);
    let server = stack
        .fixture()
        .set("backend.pam.groups", json!(false))
        .start();

    let claims = accepted_claims(&server, &try_login(&server, "root", &secret).await).await;

    assert!(!claims.contains_key("groups"), "claims: {claims:?}");
}

#[tokio::test]
async fn registration_is_refused_and_not_advertised() {
    let a = accounts();
    let body = json!({"username": "eve", "password": password("new"), "email": "eve@example.org"});

    let res = a.server.post("/users/").json(&body).send().await;
    assert_problem(&res, 403, "Registration is not available");

    let home = a.server.get("/").send().await.json();
    assert_eq!(home["resources"]["users"]["hints"]["allow"], json!(["GET"]));
    let users = a.server.get("/users/").send().await.json();
    assert!(
        users.get("register_user").is_none(),
        "users document: {users}"
    );
}

#[tokio::test]
async fn a_password_change_is_refused() {
    let a = accounts();
    let patch = json!([{"op": "replace", "path": "/password", "value": password("new")}]);

    let res = a
        .server
        .patch("/users/alice/")
        .basic("alice", &a.good)
        .json(&patch)
        .send()
        .await;

    assert_problem(&res, 403, "Password change is not available");
    let again = try_login(&a.server, "alice", &a.good).await;
    assert_eq!(again.code(), 201, "the old password stopped working");
}

#[tokio::test]
async fn no_password_of_any_login_reaches_the_logs() {
    let a = accounts();
    let wrong = password("wrong");

    try_login(&a.server, "alice", &a.good).await;
    try_login(&a.server, "alice", &wrong).await;
    try_login(&a.server, "nobody-here", &wrong).await;
    try_login(&a.server, "dave", &a.refused).await;

    assert_logs_hold_none_of(&a.server, &[&a.good, &a.refused, &wrong]);
}

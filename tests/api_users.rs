//! `/users/`: the users document, registration and its policy, and password
//! changes with `PATCH /users/{username}/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use common::tokens::decode_unverified;
use common::{
    Fixture, Server, abs, alice, assert_problem, assert_problem_among, bob, login, login_status,
    password_patch, patch_basic, patch_bearer, register,
};
use serde_json::{Value, json};
use tokio::task::JoinSet;

const NEW_PASSWORD: &str = "a-brand-new-Passw0rd";

fn writable() -> Fixture {
    Fixture::new()
        .user(&alice())
        .user(&bob())
        .set("backend.memory.registration", json!(true))
}

#[tokio::test]
async fn the_users_document_offers_registration_with_the_enforced_policy() {
    let server = writable()
        .set("registration.password_min_length", json!(12))
        .start();

    let res = server.get("/users/").send().await;

    assert_eq!(res.code(), 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    let doc = res.json();
    assert_eq!(doc["_type"], "document");
    assert_eq!(
        doc["_meta"],
        json!({"url": abs("/users/"), "title": "Users"})
    );
    assert_eq!(doc["users"], json!([]));
    let link = &doc["register_user"];
    assert_eq!(link["_type"], "link");
    assert_eq!(link["url"], abs("/users/"));
    assert_eq!(link["action"], "post");
    assert_eq!(link["title"], "Register a new user");
    assert_eq!(link["fields"], registration_fields(12));
    common::assert_coreapi_links(&doc);
}

fn registration_fields(min_length: u64) -> Value {
    json!([
        {"name": "username", "required": true, "schema": {"type": "string"}},
        {"name": "password", "required": true,
         "schema": {"type": "string", "minLength": min_length, "format": "password"}},
        {"name": "email", "required": true, "schema": {"type": "string", "format": "email"}},
    ])
}

#[tokio::test]
async fn the_users_document_has_a_patch_link_to_the_user_resource() {
    let server = writable().start();

    let doc = server.get("/users/").send().await.json();

    let link = &doc["patch"];
    assert_eq!(link["_type"], "link");
    assert_eq!(link["url"], abs("/users/{username}/"));
    assert_eq!(link["action"], "patch");
}

#[tokio::test]
async fn the_default_minimum_password_length_is_8() {
    let server = writable().start();

    let doc = server.get("/users/").send().await.json();

    assert_eq!(doc["register_user"]["fields"], registration_fields(8));
}

#[tokio::test]
async fn the_users_document_has_no_register_link_when_registration_is_off() {
    let server = Fixture::new().user(&alice()).start();

    let doc = server.get("/users/").send().await.json();

    assert_eq!(doc["_meta"]["title"], "Users");
    assert!(doc.get("register_user").is_none(), "{doc}");
}

#[tokio::test]
async fn the_users_document_in_plain_form_is_content_and_urls() {
    let server = writable().start();

    let res = server
        .get("/users/")
        .accept("application/json")
        .send()
        .await;

    let doc = res.json();
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(doc["users"], json!([]));
    assert_eq!(doc["patch"], abs("/users/{username}/"));
    assert_eq!(doc["register_user"], abs("/users/"));
    assert!(doc.get("_type").is_none(), "{doc}");
}

#[tokio::test]
async fn the_users_document_is_coreapi_for_any_other_accept() {
    let server = writable().start();

    for accept in [
        "*/*",
        "application/coreapi+json",
        "application/vnd.coreapi+json",
    ] {
        let res = server.get("/users/").accept(accept).send().await;
        assert_eq!(res.json()["_type"], "document", "{accept}");
    }
}

#[tokio::test]
async fn a_registration_answers_201_and_the_new_user_can_log_in() {
    let server = writable().start();

    let res = register(&server, "dave", "dave-password-1").await;

    assert_eq!(res.code(), 201, "{}", res.text());
    assert!(res.body.is_empty(), "{}", res.text());
    assert_eq!(res.header("location"), Some("/users/dave/"));
    let token = login(&server, "dave", "dave-password-1").await;
    let claims = decode_unverified(&token).claims;
    assert_eq!(claims["sub"], "dave");
    assert_eq!(claims["email"], "dave@example.org");
}

#[tokio::test]
async fn the_location_of_a_registration_is_percent_encoded() {
    let server = writable()
        .set(
            "registration.username_pattern",
            json!(r"^[\p{L}0-9 ._@-]{1,64}$"),
        )
        .start();

    let res = register(&server, "zoë b", "zoe-password-1").await;

    assert_eq!(res.code(), 201, "{}", res.text());
    let location = res.header("location").unwrap().to_owned();
    assert_eq!(location, "/users/zo%C3%AB%20b/");
    let change = server
        .patch(&location)
        .basic("zoë b", "zoe-password-1")
        .json(&password_patch(NEW_PASSWORD))
        .send()
        .await;
    assert_eq!(change.code(), 204, "{}", change.text());
    assert_eq!(login_status(&server, "zoë b", NEW_PASSWORD).await, 201);
}

#[tokio::test]
async fn registration_is_refused_when_it_is_off() {
    let server = Fixture::new().user(&alice()).start();

    let res = register(&server, "dave", "dave-password-1").await;

    assert_problem(&res, 403, "Registration is not available");
    assert_eq!(login_status(&server, "dave", "dave-password-1").await, 403);
}

#[tokio::test]
async fn a_registration_missing_a_string_field_is_400() {
    let server = writable().start();
    let bodies = [
        json!({"password": "dave-password-1", "email": "dave@example.org"}),
        json!({"username": "dave", "email": "dave@example.org"}),
        json!({"username": "dave", "password": "dave-password-1"}),
        json!({"username": null, "password": "dave-password-1", "email": "dave@example.org"}),
        json!({"username": 7, "password": "dave-password-1", "email": "dave@example.org"}),
        json!({"username": "dave", "password": ["x"], "email": "dave@example.org"}),
        json!({"username": "dave", "password": "dave-password-1", "email": {"a": 1}}),
        json!({}),
    ];

    for body in bodies {
        let res = server.post("/users/").json(&body).send().await;
        assert_problem(&res, 400, "Missing required input fields");
    }
}

#[tokio::test]
async fn an_email_that_is_not_an_address_is_400() {
    let server = writable().start();

    for email in ["not-an-email", "dave@", "@example.org"] {
        let body = json!({"username": "dave", "password": "dave-password-1", "email": email});
        let res = server.post("/users/").json(&body).send().await;
        assert_problem(&res, 400, "Email is not valid");
    }
}

#[tokio::test]
async fn a_username_outside_the_default_pattern_is_400() {
    let server = writable().start();
    let too_long = "a".repeat(65);

    for username in ["bad name", "semi;colon", "slash/y", too_long.as_str()] {
        let res = register(&server, username, "a-good-password").await;
        assert_problem(&res, 400, "Username does not match the allowed pattern");
    }
    let longest = "a".repeat(64);
    assert_eq!(
        register(&server, &longest, "a-good-password").await.code(),
        201
    );
}

#[tokio::test]
async fn a_configured_username_pattern_is_enforced() {
    let server = writable()
        .set("registration.username_pattern", json!("^[a-z]+$"))
        .start();

    let refused = register(&server, "Dave", "a-good-password").await;
    let accepted = register(&server, "dave", "a-good-password").await;

    assert_problem(&refused, 400, "Username does not match the allowed pattern");
    assert_eq!(accepted.code(), 201, "{}", accepted.text());
}

#[tokio::test]
async fn a_password_below_the_configured_minimum_is_400() {
    let server = writable()
        .set("registration.password_min_length", json!(12))
        .start();

    let short = register(&server, "dave", "elevenchars").await;
    let enough = register(&server, "dave", "twelve-chars").await;

    assert_problem(&short, 400, "Password is too short");
    assert_eq!(enough.code(), 201, "{}", enough.text());
}

#[tokio::test]
async fn a_password_below_the_default_minimum_of_8_is_400() {
    let server = writable().start();

    let short = register(&server, "dave", "7-chars").await;
    let enough = register(&server, "dave", "8-chars!").await;

    assert_problem(&short, 400, "Password is too short");
    assert_eq!(enough.code(), 201, "{}", enough.text());
}

#[tokio::test]
async fn a_password_over_1024_bytes_is_400() {
    let server = writable().start();

    let long = register(&server, "dave", &"p".repeat(1025)).await;
    let longest = register(&server, "erin", &"p".repeat(1024)).await;

    assert_problem(&long, 400, "Password is too long");
    assert_eq!(longest.code(), 201, "{}", longest.text());
}

#[tokio::test]
async fn a_taken_username_is_409() {
    let server = writable().start();

    let first = register(&server, "dave", "dave-password-1").await;
    let again = register(&server, "dave", "other-password-2").await;
    let static_user = register(&server, "alice", "other-password-2").await;

    assert_eq!(first.code(), 201);
    assert_problem(&again, 409, "User already exist");
    assert_problem(&static_user, 409, "User already exist");
    assert_eq!(login_status(&server, "dave", "dave-password-1").await, 201);
}

#[tokio::test]
async fn concurrent_registrations_of_one_name_give_exactly_one_201() {
    // The per-client registration limit would answer 429 past ten attempts.
    let server = writable()
        .set("throttle.registrations_per_client.count", json!(0))
        .start();
    let body = json!({"username": "racer", "password": "racer-password", "email": "r@example.org"});

    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let request = server.client().post("/users/").json(&body);
        tasks.spawn(request.send());
    }
    let mut codes = Vec::new();
    while let Some(res) = tasks.join_next().await {
        codes.push(res.unwrap().code());
    }

    let created = codes.iter().filter(|c| **c == 201).count();
    let conflicts = codes.iter().filter(|c| **c == 409).count();
    assert_eq!((created, conflicts), (1, 19), "{codes:?}");
}

async fn change_with_basic(server: &Server, user: &str, password: &str, patch: &Value) -> u16 {
    patch_basic(server, user, user, password, patch)
        .await
        .code()
}

#[tokio::test]
async fn registration_bodies_are_json_whatever_the_content_type() {
    let server = writable().start();
    let body = json!({"username": "dave", "password": "dave-password-1", "email": "d@example.org"});

    let res = server
        .post("/users/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await;

    assert_eq!(res.code(), 201, "{}", res.text());
}

#[tokio::test]
async fn a_password_change_is_refused_when_the_backend_is_read_only() {
    let user = alice();
    let server = Fixture::new().user(&user).start();

    let res = patch_basic(
        &server,
        "alice",
        &user.username,
        &user.password,
        &password_patch(NEW_PASSWORD),
    )
    .await;

    assert_problem(&res, 403, "Password change is not available");
    assert_eq!(login_status(&server, "alice", &user.password).await, 201);
}

#[tokio::test]
async fn a_password_change_with_basic_answers_204_and_replaces_the_password() {
    let user = alice();
    let server = writable().start();

    let res = patch_basic(
        &server,
        "alice",
        &user.username,
        &user.password,
        &password_patch(NEW_PASSWORD),
    )
    .await;

    assert_eq!(res.code(), 204, "{}", res.text());
    assert!(res.body.is_empty());
    assert_eq!(login_status(&server, "alice", NEW_PASSWORD).await, 201);
    assert_eq!(login_status(&server, "alice", &user.password).await, 403);
}

#[tokio::test]
async fn the_basic_scheme_is_case_insensitive() {
    let user = alice();
    let server = writable().start();
    let credentials = common_base64(&format!("alice:{}", user.password));

    let res = server
        .patch("/users/alice/")
        .header("authorization", format!("bASIC {credentials}"))
        .json(&password_patch(NEW_PASSWORD))
        .send()
        .await;

    assert_eq!(res.code(), 204, "{}", res.text());
}

fn common_base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn an_add_operation_on_the_password_works_like_replace() {
    let user = alice();
    let server = writable().start();
    let patch = json!([{"op": "add", "path": "/password", "value": NEW_PASSWORD}]);

    let code = change_with_basic(&server, "alice", &user.password, &patch).await;

    assert_eq!(code, 204);
    assert_eq!(login_status(&server, "alice", NEW_PASSWORD).await, 201);
}

#[tokio::test]
async fn a_patch_without_authorization_is_401_with_a_challenge() {
    let server = writable().start();

    let res = server
        .patch("/users/alice/")
        .json(&password_patch(NEW_PASSWORD))
        .send()
        .await;

    assert_problem(&res, 401, "Missing authorization header");
    assert!(res.header("www-authenticate").is_some(), "{res:?}");
}

#[tokio::test]
async fn wrong_basic_credentials_are_401_with_a_challenge() {
    let server = writable().start();

    let res = patch_basic(
        &server,
        "alice",
        "alice",
        "not-her-password",
        &password_patch(NEW_PASSWORD),
    )
    .await;

    assert_problem(&res, 401, "Bad authorization");
    assert!(res.header("www-authenticate").is_some(), "{res:?}");
    assert_eq!(login_status(&server, "alice", NEW_PASSWORD).await, 403);
}

#[tokio::test]
async fn a_login_token_cannot_change_a_password() {
    let user = alice();
    let server = writable().start();
    let token = login(&server, &user.username, &user.password).await;

    let res = patch_bearer(&server, "alice", &token, &password_patch(NEW_PASSWORD)).await;

    assert_problem(&res, 403, "Use a password lost token or basic auth.");
    assert_eq!(login_status(&server, "alice", &user.password).await, 201);
}

#[tokio::test]
async fn credentials_for_another_user_are_403() {
    let user = alice();
    let server = writable().start();

    let res = patch_basic(
        &server,
        "bob",
        &user.username,
        &user.password,
        &password_patch(NEW_PASSWORD),
    )
    .await;

    assert_problem(&res, 403, "Token does not apply to user resource.");
    assert_eq!(login_status(&server, "bob", &bob().password).await, 201);
}

#[tokio::test]
async fn a_patch_of_anything_but_the_password_is_400() {
    let user = alice();
    let server = writable().start();
    let patches = [
        json!([{"op": "replace", "path": "/email", "value": "new@example.org"}]),
        json!([{"op": "replace", "path": "/username", "value": "mallory"}]),
        json!([{"op": "replace", "path": "/groups", "value": "admins"}]),
    ];

    for patch in patches {
        let res = patch_basic(&server, "alice", &user.username, &user.password, &patch).await;
        assert_problem(&res, 400, "Only password can be patched.");
    }
}

#[tokio::test]
async fn a_patch_that_is_not_one_password_operation_is_400() {
    let user = alice();
    let server = writable().start();
    let operation = password_patch(NEW_PASSWORD)[0].clone();
    let patches = [
        json!([]),
        json!([{"op": "replace", "path": "/password"}]),
        json!([{"op": "replace", "path": "/password", "value": 12345678}]),
        json!([{"op": "replace", "path": "/password", "value": null}]),
        json!([{"path": "/password", "value": NEW_PASSWORD}]),
        json!([{"op": "frobnicate", "path": "/password", "value": NEW_PASSWORD}]),
        json!({"op": "replace", "path": "/password", "value": NEW_PASSWORD}),
        json!({"password": NEW_PASSWORD}),
        json!(null),
        json!("replace"),
        json!([operation.clone(), operation]),
    ];

    for patch in patches {
        let res = patch_basic(&server, "alice", &user.username, &user.password, &patch).await;
        let titles = ["Invalid json patch.", "Only password can be patched."];
        assert_problem_among(&res, 400, &titles);
    }
    assert_eq!(login_status(&server, "alice", &user.password).await, 201);
}

#[tokio::test]
async fn a_new_password_that_breaks_the_policy_is_400() {
    let user = alice();
    let server = writable().start();
    let too_long = "p".repeat(1025);

    for value in ["short", too_long.as_str()] {
        let res = patch_basic(
            &server,
            "alice",
            &user.username,
            &user.password,
            &password_patch(value),
        )
        .await;
        let titles = [
            "Password is too short",
            "Password is too long",
            "Invalid json patch.",
        ];
        assert_problem_among(&res, 400, &titles);
    }
    assert_eq!(login_status(&server, "alice", &user.password).await, 201);
}

#[tokio::test]
async fn a_registered_user_can_change_their_password() {
    let server = writable().start();
    assert_eq!(
        register(&server, "dave", "dave-password-1").await.code(),
        201
    );

    let patch = password_patch(NEW_PASSWORD);
    let code = change_with_basic(&server, "dave", "dave-password-1", &patch).await;

    assert_eq!(code, 204);
    assert_eq!(login_status(&server, "dave", NEW_PASSWORD).await, 201);
    assert_eq!(login_status(&server, "dave", "dave-password-1").await, 403);
}

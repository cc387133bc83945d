//! The harness shared by every integration test: it starts the real `kisee`
//! binary on 127.0.0.1:0 with certificates made at test time, and talks to it
//! over HTTPS.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part of the harness"
)]

pub(crate) mod client;
pub(crate) mod mail;
pub(crate) mod pki;
pub(crate) mod server;
pub(crate) mod tokens;
pub(crate) mod users;

use std::future::Future;
use std::time::{Duration, Instant};

use http::Version;
use serde_json::{Value, json};

pub(crate) use client::Response;
pub(crate) use server::{Fixture, ISSUER, PUBLIC_URL, Server};
pub(crate) use users::{TestUser, alice, bob, carol};

/// The media type of every error.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json; charset=utf-8";

/// An absolute URL under the fixture's public base URL.
pub(crate) fn abs(path: &str) -> String {
    format!("{PUBLIC_URL}{path}")
}

/// Asserts an error response: status, title in the reason phrase (HTTP/1.1),
/// the problem media type, and exactly the documented body.
pub(crate) fn assert_problem(res: &Response, status: u16, title: &str) {
    let context = format!("{} {:?}", res.status, res.text());
    assert_eq!(res.code(), status, "status of {context}");
    assert_eq!(
        res.header("content-type"),
        Some(PROBLEM_JSON),
        "type of {context}"
    );
    if res.version == Version::HTTP_11 {
        assert_eq!(res.reason(), title, "reason phrase of {context}");
    }

    let mut body = res.json();
    if title == "Malformed JSON" {
        let detail = body.as_object_mut().and_then(|b| b.remove("detail"));
        let detail = detail.and_then(|d| d.as_str().map(str::to_owned));
        assert!(
            detail.is_some_and(|d| !d.is_empty()),
            "no detail in {context}"
        );
    }
    let expected =
        json!({"_type": "error", "_meta": {"title": title}, "title": title, "status": status});
    assert_eq!(body, expected, "body of {context}");
}

/// Like [`assert_problem`] where the contract allows several titles.
pub(crate) fn assert_problem_among(res: &Response, status: u16, titles: &[&str]) {
    let body = res.json();
    let title = body["title"].as_str().unwrap_or_default();
    assert!(
        titles.contains(&title),
        "title {title:?} is none of {titles:?} in {} {body}",
        res.status
    );
    assert_problem(res, status, title);
}

/// The title of every refused login, whatever was wrong with it.
pub(crate) const REFUSED: &str = "Failed identification for kisee.";

/// `POST /jwt/` with these credentials, whatever the answer.
pub(crate) async fn try_login(server: &Server, username: &str, password: &str) -> Response {
    server
        .post("/jwt/")
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
}

/// `PATCH /users/{target}/` with `patch`, proven by Basic credentials.
pub(crate) async fn patch_basic(
    server: &Server,
    target: &str,
    username: &str,
    password: &str,
    patch: &Value,
) -> Response {
    server
        .patch(&format!("/users/{target}/"))
        .basic(username, password)
        .json(patch)
        .send()
        .await
}

/// `PATCH /users/{target}/` with `patch`, proven by a bearer token.
pub(crate) async fn patch_bearer(
    server: &Server,
    target: &str,
    token: &str,
    patch: &Value,
) -> Response {
    server
        .patch(&format!("/users/{target}/"))
        .bearer(token)
        .json(patch)
        .send()
        .await
}

/// Logs in and returns the token, failing the test unless it is a 201.
pub(crate) async fn login(server: &Server, username: &str, password: &str) -> String {
    let res = try_login(server, username, password).await;
    assert_eq!(res.code(), 201, "login as {username}: {}", res.text());
    res.json()["tokens"][0]
        .as_str()
        .expect("a token in `tokens`")
        .to_owned()
}

/// Whether these credentials are accepted by `POST /jwt/`.
pub(crate) async fn login_status(server: &Server, username: &str, password: &str) -> u16 {
    try_login(server, username, password).await.code()
}

/// Registers a user and returns the response.
pub(crate) async fn register(server: &Server, username: &str, password: &str) -> Response {
    // An address that is valid whatever characters the username holds.
    let local: String = username
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(32)
        .collect();
    let email = format!(
        "{}@example.org",
        if local.is_empty() { "user" } else { &local }
    );
    server
        .post("/users/")
        .json(&json!({"username": username, "password": password, "email": email}))
        .send()
        .await
}

/// A JSON Patch replacing the password.
pub(crate) fn password_patch(new_password: &str) -> Value {
    json!([{"op": "replace", "path": "/password", "value": new_password}])
}

/// Polls `check` until it yields a value, failing after `bound`.
pub(crate) async fn eventually<T, F, Fut>(bound: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + bound;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Walks a coreapi document and checks the shape rules of every link in it:
/// a `title` only when not empty, fields with a name, `required` only when
/// true.
pub(crate) fn assert_coreapi_links(doc: &Value) {
    let Some(object) = doc.as_object() else {
        return;
    };
    if doc["_type"] == "link" {
        assert!(
            doc["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://")),
            "{doc}"
        );
        assert!(doc["action"].is_string(), "{doc}");
        if let Some(title) = doc.get("title") {
            assert!(
                title.as_str().is_some_and(|t| !t.is_empty()),
                "empty title in {doc}"
            );
        }
        for field in doc["fields"].as_array().into_iter().flatten() {
            assert!(field["name"].is_string(), "{field}");
            if let Some(required) = field.get("required") {
                assert_eq!(
                    required,
                    &Value::Bool(true),
                    "`required` only when true: {field}"
                );
            }
        }
    }
    for value in object.values() {
        assert_coreapi_links(value);
    }
}

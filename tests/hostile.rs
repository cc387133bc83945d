//! Hostile input: bodies, headers and raw protocol abuse. None of it may earn
//! a 5xx; each row names the 4xx it must get. Stalled clients are cut off,
//! and no password ever reaches the logs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::client::read_until_closed;
use common::tokens::{now, sign, unsigned};
use common::{
    Fixture, ISSUER, PROBLEM_JSON, Response, alice, assert_problem, assert_problem_among, login,
    password_patch, register,
};
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;

/// One hostile input and the statuses it may get.
struct Row {
    what: &'static str,
    body: Vec<u8>,
    statuses: &'static [u16],
}

fn row(what: &'static str, body: impl Into<Vec<u8>>, statuses: &'static [u16]) -> Row {
    Row {
        what,
        body: body.into(),
        statuses,
    }
}

/// `[[[...]]]`, `depth` levels deep.
fn deep_array(depth: usize) -> Vec<u8> {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}

/// `{"username": {"a": {"a": ...}}, "password": "x"}`, `depth` levels deep.
fn deep_credentials(depth: usize) -> Vec<u8> {
    let inner = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    format!(r#"{{"username": {inner}, "password": "x"}}"#).into_bytes()
}

/// A body just over the default 64 KiB limit.
fn huge_body() -> Vec<u8> {
    let padding = "x".repeat(70_000);
    format!(r#"{{"username": "alice", "password": "{padding}"}}"#).into_bytes()
}

/// Asserts the response is one of the allowed 4xx, as a problem document.
fn assert_rejected(res: &Response, what: &str, statuses: &[u16]) {
    let context = format!("{what}: {} {:?}", res.status, res.text());
    assert!(
        statuses.contains(&res.code()),
        "expected {statuses:?}, {context}"
    );
    assert_eq!(res.header("content-type"), Some(PROBLEM_JSON), "{context}");
    assert_eq!(res.json()["status"], res.code(), "{context}");
}

fn body_rows() -> Vec<Row> {
    vec![
        row("JSON null", "null", &[400, 422]),
        row("a number", "42", &[400, 422]),
        row("a string", r#""alice""#, &[400, 422]),
        row("an empty array", "[]", &[400, 422]),
        row("an array of strings", r#"["alice", "x"]"#, &[400, 422]),
        row("10 000-deep array", deep_array(10_000), &[400]),
        row("10 000-deep object", deep_credentials(10_000), &[400]),
        row(
            "invalid UTF-8",
            b"{\"username\": \"\xff\xfe\", \"password\": \"x\"}".to_vec(),
            &[400],
        ),
        row(
            "a lone surrogate",
            r#"{"username": "\ud800", "password": "x"}"#,
            &[400, 422],
        ),
        row("truncated JSON", r#"{"username": "alice", "pass"#, &[400]),
        row(
            "trailing garbage",
            r#"{"username": "alice", "password": "x"} {}"#,
            &[400],
        ),
        row("a body over the limit", huge_body(), &[413]),
    ]
}

#[tokio::test]
async fn hostile_login_bodies_get_their_4xx() {
    let server = Fixture::new().user(&alice()).start();
    let mut rows = body_rows();
    rows.push(row(
        "nested credentials",
        r#"{"username": {"username": "alice"}, "password": {"password": "x"}}"#,
        &[422],
    ));
    rows.push(row(
        "null credentials",
        r#"{"username": null, "password": null}"#,
        &[422],
    ));

    for Row {
        what,
        body,
        statuses,
    } in rows
    {
        let res = server.post("/jwt/").body(body).send().await;
        assert_rejected(&res, what, statuses);
    }
}

#[tokio::test]
async fn deep_nesting_and_bad_bytes_are_malformed_json() {
    let server = Fixture::new().user(&alice()).start();
    let bodies = [
        deep_array(10_000),
        deep_credentials(10_000),
        b"{\"username\": \"\xc3\x28\", \"password\": \"x\"}".to_vec(),
    ];

    for body in bodies {
        let res = server.post("/jwt/").body(body).send().await;
        assert_problem(&res, 400, "Malformed JSON");
    }
}

#[tokio::test]
async fn hostile_registration_bodies_get_their_4xx() {
    let server = Fixture::new()
        .set("backend.memory.registration", json!(true))
        .start();
    let mut rows = body_rows();
    for r in &mut rows {
        // Registration answers every unusable body with a 400.
        if r.statuses == [400, 422] {
            r.statuses = &[400];
        }
    }
    let long_name = format!(
        r#"{{"username": "{}", "password": "long-enough", "email": "a@b.org"}}"#,
        "n".repeat(10_000)
    );
    rows.push(row("a 10 000-character username", long_name, &[400]));

    for Row {
        what,
        body,
        statuses,
    } in rows
    {
        let res = server.post("/users/").body(body).send().await;
        assert_rejected(&res, what, statuses);
    }
}

#[tokio::test]
async fn hostile_recovery_bodies_get_their_4xx() {
    let server = Fixture::new().user(&alice()).start();
    let mut rows = body_rows();
    for r in &mut rows {
        if r.statuses == [400, 422] {
            r.statuses = &[400];
        }
    }
    rows.push(row("a number username", r#"{"username": 42}"#, &[400]));
    rows.push(row(
        "null fields",
        r#"{"username": null, "email": null}"#,
        &[400],
    ));

    for Row {
        what,
        body,
        statuses,
    } in rows
    {
        let res = server.post("/password_recoveries/").body(body).send().await;
        assert_rejected(&res, what, statuses);
    }
}

#[tokio::test]
async fn hostile_patch_bodies_get_their_4xx() {
    let user = alice();
    let server = Fixture::new()
        .user(&user)
        .set("backend.memory.registration", json!(true))
        .start();
    let operation = r#"{"op": "replace", "path": "/password", "value": "a-new-password"}"#;
    let rows = [
        row("an empty body", "", &[400]),
        row("JSON null", "null", &[400]),
        row("an empty patch", "[]", &[400]),
        row("an empty operation", "[{}]", &[400]),
        row(
            "a patch without value",
            r#"[{"op": "replace", "path": "/password"}]"#,
            &[400],
        ),
        row(
            "a number value",
            r#"[{"op": "replace", "path": "/password", "value": 1}]"#,
            &[400],
        ),
        row(
            "an object value",
            r#"[{"op": "add", "path": "/password", "value": {}}]"#,
            &[400],
        ),
        row(
            "a path that is not a string",
            r#"[{"op": "replace", "path": 1, "value": "x"}]"#,
            &[400],
        ),
        row(
            "an operation that is not an object",
            r#"["replace"]"#,
            &[400],
        ),
        row("an operation outside an array", operation, &[400]),
        row(
            "a test operation",
            r#"[{"op": "test", "path": "/password", "value": "x"}]"#,
            &[400],
        ),
        row("10 000-deep array", deep_array(10_000), &[400]),
        row(
            "invalid UTF-8",
            b"[{\"op\": \"replace\", \"path\": \"/password\", \"value\": \"\xff\"}]".to_vec(),
            &[400],
        ),
        row("a body over the limit", huge_body(), &[413]),
    ];

    for Row {
        what,
        body,
        statuses,
    } in rows
    {
        let res = server
            .patch("/users/alice/")
            .basic(&user.username, &user.password)
            .body(body)
            .send()
            .await;
        assert_rejected(&res, what, statuses);
    }
    assert_eq!(
        common::login_status(&server, "alice", &user.password).await,
        201
    );
}

/// Claims that would do for Alice, were they signed by the server.
fn alice_claims() -> Map<String, Value> {
    let claims = json!({
        "iss": ISSUER, "sub": "alice", "iat": now(), "exp": now() + 3600,
        "jti": "forged-token-identifier-000000",
    });
    claims.as_object().unwrap().clone()
}

fn authorization_rows() -> Vec<(&'static str, Vec<u8>)> {
    let b64 = |bytes: &[u8]| STANDARD.encode(bytes);
    let (foreign_key, _) = common::pki::p256_key_pair();
    let header = json!({"alg": "ES256", "typ": "JWT"})
        .as_object()
        .unwrap()
        .clone();
    let bearer = |token: String| format!("Bearer {token}").into_bytes();
    vec![
        ("Bearer alone", b"Bearer".to_vec()),
        ("Bearer without a space", b"Bearerabc.def.ghi".to_vec()),
        ("Bearer garbage", b"Bearer garbage".to_vec()),
        ("Bearer of three dots", b"Bearer ...".to_vec()),
        ("Bearer with bad base64", b"Bearer a.b.c".to_vec()),
        ("Bearer alg none", bearer(unsigned(&alice_claims()))),
        (
            "Bearer signed by a foreign key",
            bearer(sign(&foreign_key, &header, &alice_claims())),
        ),
        ("Bearer 8 000 characters", bearer("a".repeat(8000))),
        ("Basic alone", b"Basic".to_vec()),
        (
            "Basic that is not base64",
            b"Basic !!!not-base64!!!".to_vec(),
        ),
        (
            "Basic without a colon",
            format!("Basic {}", b64(b"alice")).into_bytes(),
        ),
        (
            "Basic of invalid UTF-8",
            format!("Basic {}", b64(b"alice:\xff\xfe")).into_bytes(),
        ),
        (
            "Basic without a space",
            format!("Basic{}", b64(b"alice:x")).into_bytes(),
        ),
        (
            "Basic with a wrong password",
            format!("Basic {}", b64(b"alice:wrong")).into_bytes(),
        ),
        ("Digest", b"Digest username=\"alice\"".to_vec()),
        ("an unknown scheme", b"Negotiate YWxpY2U=".to_vec()),
        ("obs-text bytes", b"Bearer \xe9\xe8\xff".to_vec()),
    ]
}

#[tokio::test]
async fn unusable_authorization_headers_are_401_with_a_challenge() {
    let server = Fixture::new()
        .user(&alice())
        .set("backend.memory.registration", json!(true))
        .start();

    for (what, value) in authorization_rows() {
        let res = server
            .patch("/users/alice/")
            .header("authorization", value)
            .json(&password_patch("a-new-password"))
            .send()
            .await;
        assert_eq!(res.code(), 401, "{what}: {}", res.text());
        assert_problem(&res, 401, "Bad authorization");
        assert!(
            res.header("www-authenticate").is_some(),
            "{what}: no challenge"
        );
    }
    assert_eq!(
        common::login_status(&server, "alice", &alice().password).await,
        201
    );
}

#[tokio::test]
async fn an_empty_authorization_header_is_401() {
    let server = Fixture::new()
        .user(&alice())
        .set("backend.memory.registration", json!(true))
        .start();

    let res = server
        .patch("/users/alice/")
        .header("authorization", "")
        .json(&password_patch("a-new-password"))
        .send()
        .await;

    let titles = ["Missing authorization header", "Bad authorization"];
    assert_problem_among(&res, 401, &titles);
}

#[tokio::test]
async fn an_expired_login_token_changes_nothing() {
    let user = alice();
    let fixture = Fixture::new()
        .user(&user)
        .set("backend.memory.registration", json!(true));
    let server = fixture.start();
    let token = login(&server, &user.username, &user.password).await;
    let genuine = common::tokens::decode_unverified(&token);
    let mut claims = genuine.claims.clone();
    claims.insert("exp".into(), json!(now() - 60));

    let expired = sign(&fixture.jwt_key_pem, &genuine.header, &claims);
    let res = server
        .patch("/users/alice/")
        .bearer(&expired)
        .json(&password_patch("a-new-password"))
        .send()
        .await;

    let titles = [
        "Bad authorization",
        "Use a password lost token or basic auth.",
    ];
    assert_problem_among(&res, res.code(), &titles);
    assert!(matches!(res.code(), 401 | 403), "{}", res.code());
}

async fn raw_status_line(server: &common::Server, request: &[u8]) -> String {
    let head = server.client().raw_exchange(request).await;
    head.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn an_absurd_content_length_is_400() {
    let server = Fixture::new().start();
    let request = b"POST /jwt/ HTTP/1.1\r\nHost: localhost\r\n\
        Content-Length: 99999999999999999999999\r\n\r\n{}";

    let status = raw_status_line(&server, request).await;

    assert!(status.starts_with("HTTP/1.1 400"), "{status:?}");
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_413() {
    let server = Fixture::new().start();
    let mut request = b"POST /jwt/ HTTP/1.1\r\nHost: localhost\r\n\
        Content-Length: 1000000000\r\n\r\n"
        .to_vec();
    request.extend(std::iter::repeat_n(b' ', 70_000));

    let status = raw_status_line(&server, &request).await;

    assert_eq!(status, "HTTP/1.1 413 Request body too large");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let server = Fixture::new().start();
    let mut request = b"POST /jwt/ HTTP/1.1\r\nHost: localhost\r\n\
        Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for _ in 0..20 {
        request.extend_from_slice(b"1000\r\n");
        request.extend(std::iter::repeat_n(b' ', 0x1000));
        request.extend_from_slice(b"\r\n");
    }

    let status = raw_status_line(&server, &request).await;

    assert_eq!(status, "HTTP/1.1 413 Request body too large");
}

#[tokio::test]
async fn malformed_request_heads_are_400() {
    let server = Fixture::new().start();
    let requests: [&[u8]; 4] = [
        b"GARBAGE\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n",
        b"POST /jwt/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}",
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nBad Header Name: x\r\n\r\n",
    ];

    for request in requests {
        let status = raw_status_line(&server, request).await;
        assert!(
            status.starts_with("HTTP/1.1 400"),
            "{:?}: {status:?}",
            String::from_utf8_lossy(request)
        );
    }
}

#[tokio::test]
async fn too_many_headers_are_refused_with_a_4xx() {
    let server = Fixture::new().start();
    let mut request = b"GET /health HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    for i in 0..500 {
        request.extend_from_slice(format!("X-Pad-{i}: {}\r\n", "v".repeat(100)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");

    let status = raw_status_line(&server, &request).await;

    assert!(status.starts_with("HTTP/1.1 4"), "{status:?}");
}

/// The 1 s timeouts above, not an error, closed the connection: it lasted.
fn assert_closed_by_a_timeout(started: Instant) {
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_millis(700),
        "closed after only {lasted:?}"
    );
}

#[tokio::test]
async fn a_stalled_request_head_is_cut_off() {
    let server = Fixture::new()
        .set("server.header_timeout", json!("1s"))
        .start();
    let mut tls = server.client().raw_tls().await;

    tls.write_all(b"GET /health HTTP/1.1\r\nHost: local")
        .await
        .unwrap();
    let started = Instant::now();
    let received = read_until_closed(&mut tls, Duration::from_secs(10)).await;
    assert_closed_by_a_timeout(started);

    let received = received.expect("the connection is still open 10 s later");
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text:?}"
    );
}

#[tokio::test]
async fn a_stalled_body_is_cut_off() {
    let server = Fixture::new()
        .set("server.body_timeout", json!("1s"))
        .start();
    let mut tls = server.client().raw_tls().await;

    let head = b"POST /jwt/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{\"user";
    tls.write_all(head).await.unwrap();
    let started = Instant::now();
    let received = read_until_closed(&mut tls, Duration::from_secs(10)).await;
    assert_closed_by_a_timeout(started);

    let received = received.expect("the connection is still open 10 s later");
    let text = String::from_utf8_lossy(&received);
    let status = text.lines().next().unwrap_or_default();
    assert!(
        text.is_empty() || status.starts_with("HTTP/1.1 4"),
        "{text:?}"
    );
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_off() {
    let server = Fixture::new()
        .set("server.handshake_timeout", json!("1s"))
        .start();
    let mut tcp = server.client().raw_tcp().await;

    let started = Instant::now();
    let received = read_until_closed(&mut tcp, Duration::from_secs(10)).await;
    assert_closed_by_a_timeout(started);

    assert!(
        received.is_some(),
        "the connection is still open 10 s later"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = Fixture::new()
        .set("server.idle_timeout", json!("1s"))
        .start();
    let mut tls = server.client().raw_tls().await;

    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let received = read_until_closed(&mut tls, Duration::from_secs(10)).await;
    assert_closed_by_a_timeout(started);

    let received = received.expect("the idle connection is still open 10 s later");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
}

#[tokio::test]
async fn the_logs_never_contain_a_password_the_test_used() {
    let user = alice();
    let server = Fixture::new()
        .user(&user)
        .set("backend.memory.registration", json!(true))
        .start();
    let wrong = "wrong-But-Secret-7q2x";
    let registered = "registered-Secret-9k4w";
    let changed = "changed-Secret-3m8v";

    login(&server, &user.username, &user.password).await;
    common::login_status(&server, "alice", wrong).await;
    common::login_status(&server, "nobody", wrong).await;
    assert_eq!(register(&server, "dave", registered).await.code(), 201);
    let res = server
        .patch("/users/dave/")
        .basic("dave", registered)
        .json(&password_patch(changed))
        .send()
        .await;
    assert_eq!(res.code(), 204);
    server
        .patch("/users/dave/")
        .basic("dave", wrong)
        .json(&password_patch(wrong))
        .send()
        .await;

    let output = server.output();
    assert!(output.contains("listening"), "the logs were not captured");
    let basic = STANDARD.encode(format!("dave:{registered}"));
    for secret in [
        user.password.as_str(),
        wrong,
        registered,
        changed,
        basic.as_str(),
    ] {
        assert!(
            !output.contains(secret),
            "{secret} is in the logs:\n{output}"
        );
    }
}

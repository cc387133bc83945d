//! Input bounds: credentials no account can match are refused before the
//! backend sees them, and request heads are bounded in size and count.

use serde_json::json;

use super::{REFUSED, backend_checks, try_login};
use crate::common::{Fixture, alice, assert_problem, register};

/// Bodies of a megabyte and more get through the body limit.
const TWO_MEGABYTES: u64 = 2 * 1024 * 1024;

#[tokio::test]
async fn oversized_credentials_are_refused_without_asking_the_backend() {
    let alice = alice();
    let server = Fixture::new()
        .user(&alice)
        .set("server.max_body_bytes", json!(TWO_MEGABYTES))
        .set("throttle.per_user.failures", json!(0))
        .start();
    let megabyte = "p".repeat(1024 * 1024);
    let oversized = [
        ("alice", megabyte.as_str(), "a 1 MiB password"),
        ("alice", &megabyte[..1025], "a 1025-byte password"),
        (&megabyte[..300], "a-password", "a 300-byte username"),
        (&megabyte[..257], "a-password", "a 257-byte username"),
    ];

    for (username, password, what) in oversized {
        let before = backend_checks(&server).await;
        let res = try_login(&server, username, password).await;
        assert_problem(&res, 403, REFUSED);
        let after = backend_checks(&server).await;
        assert_eq!(after, before, "{what} reached the backend");
    }
}

#[tokio::test]
async fn credentials_at_the_size_bounds_still_reach_the_backend() {
    // The other side of the test above: its metric does move, and the
    // bounds are not tighter than documented.
    let server = Fixture::new()
        .user(&alice())
        .set("throttle.per_user.failures", json!(0))
        .start();
    let longest_password = "p".repeat(1024);
    let longest_username = "u".repeat(256);
    let at_bounds = [
        ("alice", longest_password.as_str()),
        (longest_username.as_str(), "a-password"),
    ];

    for (n, (username, password)) in at_bounds.into_iter().enumerate() {
        let res = try_login(&server, username, password).await;
        assert_problem(&res, 403, REFUSED);
        assert_eq!(backend_checks(&server).await, n as u64 + 1);
    }
}

#[tokio::test]
async fn a_megabyte_password_is_refused_by_the_registration_policy() {
    let server = Fixture::new()
        .set("backend.memory.registration", json!(true))
        .set("server.max_body_bytes", json!(TWO_MEGABYTES))
        .start();

    let res = register(&server, "dave", &"p".repeat(1024 * 1024)).await;

    assert_problem(&res, 400, "Password is too long");
    let again = register(&server, "dave", "long-enough-Passw0rd").await;
    assert_eq!(
        again.code(),
        201,
        "the refused attempt took the name: {}",
        again.text()
    );
}

/// A raw HTTP/1.1 GET of /health with `extra` header lines, and the status
/// line of its answer.
async fn status_with_headers(server: &crate::common::Server, extra: &[String]) -> String {
    let mut request = String::from("GET /health HTTP/1.1\r\nHost: localhost\r\n");
    for line in extra {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    let head = server.client().raw_exchange(request.as_bytes()).await;
    head.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_request_head_over_16_kib_is_431_and_one_of_8_kib_is_served() {
    let server = Fixture::new().start();
    let header = |size: usize| vec![format!("X-Padding: {}", "v".repeat(size))];

    let served = status_with_headers(&server, &header(8 * 1024)).await;
    let refused = status_with_headers(&server, &header(17 * 1024)).await;

    assert!(served.starts_with("HTTP/1.1 200"), "{served:?}");
    assert_eq!(refused, "HTTP/1.1 431 Request Header Fields Too Large");
}

#[tokio::test]
async fn a_65th_header_is_431_and_64_are_served() {
    let server = Fixture::new().start();
    // With Host and Connection, `n` more lines make n + 2 headers.
    let headers = |n: usize| -> Vec<String> { (0..n).map(|i| format!("X-H{i}: v")).collect() };

    let served = status_with_headers(&server, &headers(62)).await;
    let refused = status_with_headers(&server, &headers(63)).await;

    assert!(served.starts_with("HTTP/1.1 200"), "{served:?}");
    assert_eq!(refused, "HTTP/1.1 431 Request Header Fields Too Large");
}

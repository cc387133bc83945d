//! The PAM backend against the real Linux-PAM library: pam_matrix under
//! pam_wrapper for logins, refusals, groups and load; a slow pam_exec stack
//! for the concurrency bound and the timeout; the host's own pam_unix, as
//! root; `check-settings`; and passwords kept out of the logs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

#[path = "../common/mod.rs"]
mod common;

mod host;
mod slow_stack;
mod wrapper;

mod check_settings;
mod load;
mod logins;
mod slow;
mod unix;

use common::{REFUSED, Response, Server, assert_problem, tokens, try_login};

/// A password no other test uses, long enough that finding it in a log
/// cannot be a coincidence.
fn password(label: &str) -> String {
    format!(
        "{label}-{:016x}{:08x}",
        rand::random::<u64>(),
        rand::random::<u32>()
    )
}

/// Asserts a 201 and returns the token's claims, its signature checked
/// against the server's JWKS.
async fn accepted_claims(
    server: &Server,
    res: &Response,
) -> serde_json::Map<String, serde_json::Value> {
    assert_eq!(res.code(), 201, "login refused: {}", res.text());
    let token = res.json()["tokens"][0]
        .as_str()
        .expect("a token in `tokens`")
        .to_owned();
    tokens::verify_with_jwks(server, &token).await.claims
}

/// Asserts the one answer every refused login gets.
fn assert_refused(res: &Response) {
    assert_problem(res, 403, REFUSED);
}

/// Asserts that nothing the server printed holds any of these passwords.
fn assert_logs_hold_none_of(server: &Server, passwords: &[&str]) {
    let output = server.output();
    assert!(
        output.lines().count() > 1,
        "the server printed nothing to search"
    );
    for password in passwords {
        assert!(
            !output.contains(password),
            "a password appears in the server's output:\n{output}"
        );
    }
}

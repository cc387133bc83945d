//! Abuse resistance, end to end against the real binary: the login and
//! registration throttles, refusals that say nothing about which part was
//! wrong, bounded input, bounded connections, stalled clients, and CORS.
//!
//! What tests/api_*.rs and tests/hostile.rs already show is not repeated
//! here: this file fills the gaps around them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

#[path = "abuse/bounds.rs"]
mod bounds;
#[path = "abuse/connections.rs"]
mod connections;
#[path = "abuse/cors.rs"]
mod cors;
#[path = "abuse/net.rs"]
mod net;
#[path = "abuse/stats.rs"]
mod stats;
#[path = "abuse/throttling.rs"]
mod throttling;
#[path = "abuse/uniform.rs"]
mod uniform;

use common::{REFUSED, Response, Server, assert_problem, try_login};

/// The title of every throttled request.
const THROTTLED: &str = "Too many failed attempts, retry later";

/// Asserts a 429 problem whose `Retry-After` is whole seconds from 1 to
/// `window`, and returns it.
fn assert_throttled(res: &Response, window: u64) -> u64 {
    assert_problem(res, 429, THROTTLED);
    let header = res.header("retry-after");
    let seconds = header.and_then(|v| v.parse::<u64>().ok());
    assert!(
        seconds.is_some_and(|s| (1..=window).contains(&s)),
        "Retry-After {header:?} is not 1 to {window} seconds"
    );
    seconds.unwrap_or_default()
}

/// `kisee_backend_checks_total{backend="memory"}`: the credential checks
/// that reached the backend so far (0 before the first).
async fn backend_checks(server: &Server) -> u64 {
    let res = server.get("/metrics").send().await;
    assert_eq!(res.code(), 200, "GET /metrics: {}", res.text());
    let text = res.text();
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(r#"kisee_backend_checks_total{backend="memory"} "#));
    value.map_or(0, |v| {
        v.trim()
            .parse()
            .unwrap_or_else(|e| panic!("backend checks {v:?}: {e}"))
    })
}

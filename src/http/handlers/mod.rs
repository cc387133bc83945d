//! One module per resource. Each handler reads top to bottom: parse the
//! request, check it, act, answer.

pub(super) mod health;
pub(super) mod home;
pub(super) mod keys;
pub(super) mod recovery;
pub(super) mod tokens;
pub(super) mod users;

use std::net::SocketAddr;
use std::time::Instant;

use http::StatusCode;
use serde_json::Value;

use crate::app::App;
use crate::audit::{Event, Outcome};
use crate::http::error::ApiResult;
use crate::http::request::Request;

/// A string member of a JSON object, when present and a string.
fn string_member<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

/// Writes the audit event of a handler's result.
fn audit(
    app: &App,
    request: &Request,
    event: &'static str,
    user: &str,
    started: Instant,
    result: &ApiResult,
) {
    let (outcome, reason) = match result {
        Ok(_) => (Outcome::Success, ""),
        Err(err) => match err.status() {
            StatusCode::TOO_MANY_REQUESTS => (Outcome::Throttled, err.title()),
            StatusCode::SERVICE_UNAVAILABLE => (Outcome::Unavailable, err.title()),
            status if status.is_server_error() => (Outcome::Error, err.title()),
            _ => (Outcome::Refused, err.title()),
        },
    };
    audit_event(app, request.peer, event, user, (outcome, reason), started);
}

/// Writes one audit event: what, for whom, from where, with what result.
fn audit_event(
    app: &App,
    peer: SocketAddr,
    event: &'static str,
    user: &str,
    (outcome, reason): (Outcome, &str),
    started: Instant,
) {
    let backend = app.backend.name();
    Event {
        event,
        user,
        peer,
        backend,
        outcome,
        reason,
        started,
    }
    .log();
}

//! One module per resource. Each handler reads top to bottom: parse the
//! request, check it, act, answer.

pub(super) mod health;
pub(super) mod home;
pub(super) mod keys;
pub(super) mod recovery;
pub(super) mod tokens;
pub(super) mod users;

use serde_json::Value;

/// A string member of a JSON object, when present and a string.
fn string_member<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

//! What the comparison looks at in an answer, with the parts that differ
//! by nature (base URLs, token ids, times, versions, parser messages) put
//! in a form both servers share; and the differences between two such
//! observations, one line each.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use regex::Regex;
use serde_json::{Map, Value, json};

use super::plain::Reply;

/// The headers compared on every answer.
pub(crate) const DEFAULT_HEADERS: &[&str] = &[
    "content-type",
    "location",
    "allow",
    "www-authenticate",
    "retry-after",
];

/// The headers compared where security and caching are looked at.
pub(crate) const SECURITY_HEADERS: &[&str] = &[
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "vary",
    "x-content-type-options",
    "cache-control",
    "strict-transport-security",
];

/// Which part of an answer a check compares. Errors are always compared
/// whole (their body shape is part of every check); the rest keeps checks
/// about one thing from repeating a difference that another check owns.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Focus {
    /// Status, reason phrase, the default headers and the whole body.
    Whole,
    /// Status, reason phrase and the default headers; a body only when it
    /// is an error.
    Outcome,
    /// As `Outcome`, plus the form of the document: coreapi or plain, and
    /// its top-level keys.
    Form,
    /// As `Outcome`, plus the shape of the token in `tokens[0]`.
    Token,
    /// As `Outcome`, plus every absolute URL in the body, by JSON path.
    Urls,
    /// As `Outcome`, plus these JSON pointers into the body.
    Pick(&'static [&'static str]),
    /// Status, reason phrase and these headers only.
    Headers(&'static [&'static str]),
}

/// One answer as compared: status, reason phrase and named aspects
/// (`header NAME`, `body`, or anything a check adds). `Value::Null` is
/// "absent".
#[derive(Clone, Debug)]
pub(crate) struct Observation {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) aspects: BTreeMap<String, Value>,
}

impl Observation {
    /// An observation that is not an HTTP answer: only aspects.
    pub(crate) fn facts(aspects: impl IntoIterator<Item = (String, Value)>) -> Self {
        Observation {
            status: 0,
            reason: String::new(),
            aspects: aspects.into_iter().collect(),
        }
    }
}

/// How one server's own values are recognised.
pub(crate) struct Normaliser {
    /// The configured base URL, path prefix included.
    base: String,
    /// Scheme and authority of the base URL.
    origin: String,
}

impl Normaliser {
    pub(crate) fn new(base: &str) -> Self {
        let after_scheme = base.find("://").map_or(0, |i| i + 3);
        let origin_end = base[after_scheme..]
            .find('/')
            .map_or(base.len(), |i| after_scheme + i);
        Normaliser {
            base: base.to_owned(),
            origin: base[..origin_end].to_owned(),
        }
    }

    pub(crate) fn observe(&self, reply: &Reply, focus: Focus) -> Observation {
        let headers = match focus {
            Focus::Headers(headers) => headers,
            _ => DEFAULT_HEADERS,
        };
        let mut aspects = BTreeMap::new();
        for name in headers {
            let value = reply
                .header(name)
                .map_or(Value::Null, |v| Value::String(self.text(v)));
            aspects.insert(format!("header {name}"), value);
        }
        let body = self.body(reply);
        let is_error = reply.status >= 400;
        let projected = match focus {
            Focus::Headers(_) => None,
            _ if is_error => Some(body),
            Focus::Whole => Some(body),
            Focus::Outcome => None,
            Focus::Form => Some(form(&body)),
            Focus::Token => Some(body["tokens"][0].clone()),
            Focus::Urls => Some(urls(&body)),
            Focus::Pick(pointers) => Some(pick(&body, pointers)),
        };
        if let Some(projected) = projected {
            aspects.insert("body".to_owned(), projected);
        }
        Observation {
            status: reply.status,
            reason: reply.reason.clone(),
            aspects,
        }
    }

    fn body(&self, reply: &Reply) -> Value {
        if reply.body.is_empty() {
            return Value::String("(empty)".to_owned());
        }
        match reply.json_opt() {
            Some(json) => self.json(&json),
            None => Value::String(format!("(text) {}", self.text(&reply.text()))),
        }
    }

    /// A string with this server's URLs and token ids made generic.
    pub(crate) fn text(&self, text: &str) -> String {
        let text = text
            .replace(&self.base, "{base}")
            .replace(&self.origin, "{origin}");
        let jti = Regex::new(r"^/jwt/[A-Za-z0-9_-]{16,}$").expect("regex");
        jti.replace(&text, "/jwt/<jti>").into_owned()
    }

    pub(crate) fn json(&self, value: &Value) -> Value {
        match value {
            Value::String(text) if looks_like_jwt(text) => token_shape(text),
            Value::String(text) => Value::String(self.text(text)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), self.member(key, value)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn member(&self, key: &str, value: &Value) -> Value {
        match (key, value) {
            // Each server's JSON parser words its message its own way.
            ("detail", Value::String(text)) if !text.is_empty() => json!("<parser message>"),
            // Each server reports its own version.
            ("version", Value::String(_)) => json!("<version>"),
            _ => self.json(value),
        }
    }
}

/// Whether a document is in coreapi or plain form, and its keys.
fn form(body: &Value) -> Value {
    let Some(map) = body.as_object() else {
        return body.clone();
    };
    let kind = if map.get("_type") == Some(&json!("document")) {
        "coreapi"
    } else {
        "plain"
    };
    let keys: Vec<&String> = map.keys().filter(|k| !k.starts_with('_')).collect();
    json!({"form": kind, "keys": keys})
}

/// Every string holding a base URL, keyed by its JSON pointer.
fn urls(body: &Value) -> Value {
    fn walk(at: &str, value: &Value, found: &mut Map<String, Value>) {
        match value {
            Value::String(text) if text.contains("{base}") || text.contains("{origin}") => {
                found.insert(at.trim_start_matches('/').to_owned(), value.clone());
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(&format!("{at}/{i}"), item, found);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    walk(&format!("{at}/{key}"), item, found);
                }
            }
            _ => {}
        }
    }
    let mut found = Map::new();
    walk("", body, &mut found);
    Value::Object(found)
}

/// The values at these JSON pointers (null where absent).
fn pick(body: &Value, pointers: &[&str]) -> Value {
    let picked: Map<String, Value> = pointers
        .iter()
        .map(|p| {
            let value = body.pointer(p).cloned().unwrap_or(Value::Null);
            (p.trim_start_matches('/').to_owned(), value)
        })
        .collect();
    Value::Object(picked)
}

/// A value made of random bytes: long, URL-safe base64, with digits.
fn looks_random(value: &Value) -> bool {
    value.as_str().is_some_and(|text| {
        text.len() >= 16
            && text.chars().any(|c| c.is_ascii_digit())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

fn looks_like_jwt(text: &str) -> bool {
    text.starts_with("eyJ") && text.split('.').count() == 3
}

/// A token's header and claims with the values that change on every
/// issue made generic: ids, key ids, and times relative to now.
pub(crate) fn token_shape(token: &str) -> Value {
    let mut parts = token.split('.');
    let mut decode = || -> Map<String, Value> {
        let part = parts.next().unwrap_or_default();
        let bytes = URL_SAFE_NO_PAD.decode(part).unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    };
    let header = decode();
    let claims = decode();

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    let relative = |value: &Value| -> Value {
        let Some(at) = value.as_f64() else {
            return value.clone();
        };
        // Whole minutes from now: both servers' clocks are this machine's.
        let minutes = ((at - now) / 60.0).round();
        if minutes == 0.0 {
            json!("<now>")
        } else {
            json!(format!("<now{minutes:+}min>"))
        }
    };
    let header: Map<String, Value> = header
        .into_iter()
        .map(|(k, v)| {
            let v = if k == "kid" { json!("<key id>") } else { v };
            (k, v)
        })
        .collect();
    let claims: Map<String, Value> = claims
        .into_iter()
        .map(|(k, v)| {
            let v = match k.as_str() {
                "iat" | "exp" | "nbf" => relative(&v),
                "jti" => json!("<jti>"),
                _ if looks_random(&v) => json!("<random>"),
                _ => v,
            };
            (k, v)
        })
        .collect();
    json!({"header": header, "claims": claims})
}

/// The differences between the original's and our observation of one
/// check, one line each. A different status is one difference, summed up
/// by both statuses and reason phrases; otherwise every aspect counts.
pub(crate) fn differences(check: &str, original: &Observation, ours: &Observation) -> Vec<String> {
    if original.status != ours.status {
        let describe = |o: &Observation| {
            let kind = match &o.aspects.get("body") {
                Some(Value::String(text)) if text.starts_with("(text)") => " (plain text)",
                _ => "",
            };
            format!("{} {}{kind}", o.status, o.reason)
        };
        return vec![format!(
            "{check}: original {}, ours {}",
            describe(original),
            describe(ours)
        )];
    }

    let mut found = Vec::new();
    if original.reason != ours.reason {
        found.push(format!(
            "{check}: reason phrase: original {:?}, ours {:?}",
            original.reason, ours.reason
        ));
    }
    let mut keys: Vec<&String> = original.aspects.keys().chain(ours.aspects.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let left = original.aspects.get(key).unwrap_or(&Value::Null);
        let right = ours.aspects.get(key).unwrap_or(&Value::Null);
        json_differences(&format!("{check}: {key}"), left, right, &mut found);
    }
    found
}

fn json_differences(at: &str, original: &Value, ours: &Value, found: &mut Vec<String>) {
    match (original, ours) {
        (Value::Object(left), Value::Object(right)) => {
            let mut keys: Vec<&String> = left.keys().chain(right.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let l = left.get(key).unwrap_or(&Value::Null);
                let r = right.get(key).unwrap_or(&Value::Null);
                json_differences(&format!("{at}/{key}"), l, r, found);
            }
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => {
            for (i, (l, r)) in left.iter().zip(right).enumerate() {
                json_differences(&format!("{at}/{i}"), l, r, found);
            }
        }
        (left, right) if left != right => {
            found.push(format!(
                "{at}: original {}, ours {}",
                shown(left),
                shown(right)
            ));
        }
        _ => {}
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "absent".to_owned(),
        other => other.to_string(),
    }
}

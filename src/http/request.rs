//! What handlers know about a request: its parts, its body already read
//! within the limits, and helpers to parse JSON, the client's preferred
//! form and the `Authorization` header.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;
use serde_json::Value;

use super::documents::Form;
use super::error::ApiError;
use crate::secret::Secret;

/// A request whose body has been read. Its `Debug` leaves out the body and
/// the headers, which carry passwords and tokens.
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, as sent (percent-encoded).
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The client's address.
    pub peer: SocketAddr,
}

/// Credentials from an `Authorization` header; `Debug` prints the scheme
/// and the username only.
pub enum Authorization {
    /// `Basic`, decoded.
    Basic {
        /// The username.
        username: String,
        /// The password.
        password: Secret,
    },
    /// `Bearer` with a token.
    Bearer(String),
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("peer", &self.peer)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { username, .. } => write!(f, "Basic({username:?}, _)"),
            Self::Bearer(_) => f.write_str("Bearer(_)"),
        }
    }
}

/// Reads a body of at most `limit` bytes within `timeout`.
pub async fn read_body<B>(body: B, limit: usize, timeout: Duration) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await;
    match collected {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err))
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
            ))
        }
        Ok(Err(_)) => Err(ApiError::bad_request("Request body could not be read")),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "Request body too slow",
        )),
    }
}

impl Request {
    /// The form the client asked for: plain when `Accept` names
    /// `application/json`, coreapi for anything else.
    pub fn form(&self) -> Form {
        let accept = self
            .headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let ranges = accept.flat_map(|v| v.split(',')).filter_map(media_range);
        // The most preferred range decides; on a tie, the first listed.
        let best = ranges.fold(None, |best: Option<(String, f32)>, (media, q)| match best {
            Some((_, best_q)) if best_q >= q => best,
            _ => Some((media, q)),
        });
        match best {
            Some((media, q)) if q > 0.0 && media == "application/json" => Form::Plain,
            _ => Form::CoreApi,
        }
    }

    /// The body as JSON, whatever the `Content-Type` says.
    pub fn json(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body).map_err(|err| ApiError::malformed_json(err.to_string()))
    }

    /// The credentials of the `Authorization` header.
    pub fn authorization(&self) -> Result<Authorization, ApiError> {
        let header = self.headers.get(AUTHORIZATION);
        let header =
            header.ok_or_else(|| ApiError::unauthorized("Missing authorization header"))?;
        let bad = || ApiError::unauthorized("Bad authorization");
        let text = header.to_str().map_err(|_| bad())?;
        let (scheme, credentials) = text.trim().split_once(' ').ok_or_else(bad)?;
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            parse_basic(credentials).ok_or_else(bad)
        } else if scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty() {
            Ok(Authorization::Bearer(credentials.to_string()))
        } else {
            Err(bad())
        }
    }
}

/// A media range of an `Accept` header, lower-cased, with its quality.
fn media_range(range: &str) -> Option<(String, f32)> {
    let mut parts = range.split(';');
    let media = parts.next()?.trim().to_ascii_lowercase();
    let q = parts
        .filter_map(|p| p.trim().strip_prefix("q="))
        .find_map(|q| q.trim().parse::<f32>().ok())
        .unwrap_or(1.0);
    (!media.is_empty()).then_some((media, q))
}

fn parse_basic(credentials: &str) -> Option<Authorization> {
    let decoded = String::from_utf8(STANDARD.decode(credentials).ok()?).ok()?;
    let (username, password) = decoded.split_once(':')?;
    let username = username.to_string();
    Some(Authorization::Basic {
        username,
        password: Secret::new(password),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_for(accept: &str) -> Form {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            http::HeaderValue::from_str(accept).unwrap_or_else(|_| panic!()),
        );
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let request = Request {
            method: Method::GET,
            path: "/".into(),
            headers,
            body: Bytes::new(),
            peer,
        };
        request.form()
    }

    #[test]
    fn the_most_preferred_media_range_picks_the_form() {
        assert_eq!(form_for("application/json"), Form::Plain);
        assert_eq!(form_for("Application/JSON; charset=utf-8"), Form::Plain);
        assert_eq!(form_for("*/*"), Form::CoreApi);
        assert_eq!(form_for("application/coreapi+json"), Form::CoreApi);
        assert_eq!(
            form_for("application/json;q=0.5, application/coreapi+json"),
            Form::CoreApi
        );
        assert_eq!(
            form_for("application/coreapi+json;q=0.1, application/json"),
            Form::Plain
        );
        assert_eq!(form_for("application/json;q=0"), Form::CoreApi);
    }
}

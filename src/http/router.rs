//! From a request to a handler: the route table, method checks, CORS, and
//! the headers every response carries.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use hyper::body::Body;
use percent_encoding::percent_decode_str;

use super::error::{ApiError, ApiResult};
use super::handlers;
use super::request::{Request, read_body};
use super::response::{Resp, empty};
use crate::app::App;

/// Every resource the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`: the JSON-home document.
    Home,
    /// `/jwt/`: tokens.
    Jwt,
    /// `/jwt/{jti}`: a token (never stored, so never found).
    Token,
    /// `/users/`: registration.
    Users,
    /// `/users/{username}/`: a user, for password changes.
    User(String),
    /// `/password_recoveries/` (and its old name `/forgotten_passwords/`).
    Recoveries,
    /// `/health` (and `/health/`).
    Health,
    /// `/.well-known/jwks.json`.
    Jwks,
    /// `/public-key/`.
    PublicKey,
    /// `/metrics`, when served on the main listener.
    Metrics,
}

/// The methods a route answers, and the same as an `Allow` header value.
struct MethodSet {
    methods: &'static [Method],
    allow: &'static str,
}

const READ: MethodSet = MethodSet {
    methods: &[Method::GET, Method::HEAD],
    allow: "GET, HEAD",
};
const READ_POST: MethodSet = MethodSet {
    methods: &[Method::GET, Method::HEAD, Method::POST],
    allow: "GET, HEAD, POST",
};
const PATCH: MethodSet = MethodSet {
    methods: &[Method::PATCH],
    allow: "PATCH",
};

impl Route {
    /// The route for an exact path, if any.
    pub fn parse(path: &str) -> Option<Self> {
        let fixed = match path {
            "/" => Some(Self::Home),
            "/jwt/" => Some(Self::Jwt),
            "/users/" => Some(Self::Users),
            "/password_recoveries/" | "/forgotten_passwords/" => Some(Self::Recoveries),
            "/health" | "/health/" => Some(Self::Health),
            "/.well-known/jwks.json" => Some(Self::Jwks),
            "/public-key/" => Some(Self::PublicKey),
            "/metrics" => Some(Self::Metrics),
            _ => None,
        };
        fixed.or_else(|| Self::parse_item(path))
    }

    fn parse_item(path: &str) -> Option<Self> {
        if let Some(jti) = path.strip_prefix("/jwt/") {
            return (!jti.contains('/')).then_some(Self::Token);
        }
        let segment = path.strip_prefix("/users/")?.strip_suffix('/')?;
        if segment.is_empty() || segment.contains('/') {
            return None;
        }
        let name = percent_decode_str(segment).decode_utf8().ok()?;
        Some(Self::User(name.into_owned()))
    }

    /// The methods this route answers.
    pub fn methods(&self) -> &'static [Method] {
        self.method_set().methods
    }

    /// The methods this route answers, as an `Allow` header value.
    pub fn allow(&self) -> &'static str {
        self.method_set().allow
    }

    fn method_set(&self) -> &'static MethodSet {
        match self {
            Self::Jwt | Self::Users | Self::Recoveries => &READ_POST,
            Self::User(_) => &PATCH,
            Self::Home
            | Self::Token
            | Self::Health
            | Self::Jwks
            | Self::PublicKey
            | Self::Metrics => &READ,
        }
    }
}

/// The service function: never fails, every error becomes a response.
/// Generic over the body so that tests and fuzzers can drive it in-process.
pub async fn handle<B>(
    app: Arc<App>,
    peer: SocketAddr,
    tls: bool,
    request: hyper::Request<B>,
) -> Result<Resp, Infallible>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let origin = request.headers().get(header::ORIGIN).cloned();
    let is_head = request.method() == Method::HEAD;
    let mut response = respond(&app, peer, request)
        .await
        .unwrap_or_else(ApiError::into_response);
    if is_head {
        *response.body_mut() = http_body_util::Full::default();
    }
    Ok(decorate(&app, response, tls, origin))
}

async fn respond<B>(app: &Arc<App>, peer: SocketAddr, request: hyper::Request<B>) -> ApiResult
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    let route =
        Route::parse(parts.uri.path()).filter(|r| *r != Route::Metrics || app.metrics_on_main);
    let route = route.ok_or_else(ApiError::not_found)?;
    if parts.method == Method::OPTIONS {
        return preflight(app, &route, &parts.headers);
    }
    if !route.methods().contains(&parts.method) {
        return Err(ApiError::method_not_allowed(route.allow()));
    }

    let server = &app.server;
    let body = read_body(body, server.max_body_bytes, server.body_timeout).await?;
    let path = parts.uri.path().to_string();
    let request = Request {
        method: parts.method,
        path,
        headers: parts.headers,
        body,
        peer,
    };
    dispatch(app, route, &request).await
}

async fn dispatch(app: &Arc<App>, route: Route, request: &Request) -> ApiResult {
    let post = request.method == Method::POST;
    match route {
        Route::Home => Ok(handlers::home::get(app)),
        Route::Jwt if post => handlers::tokens::post(app, request).await,
        Route::Jwt => Ok(handlers::tokens::get(app, request)),
        Route::Token => Err(ApiError::not_found()),
        Route::Users if post => handlers::users::register(app, request).await,
        Route::Users => Ok(handlers::users::get(app, request)),
        Route::User(name) => handlers::users::change_password(app, request, &name).await,
        Route::Recoveries if post => handlers::recovery::post(app, request),
        Route::Recoveries => Ok(handlers::recovery::get(app, request).await),
        Route::Health => Ok(handlers::health::get(app).await),
        Route::Jwks => Ok(handlers::keys::jwks(app)),
        Route::PublicKey => Ok(handlers::keys::public_key(app)),
        Route::Metrics => Ok(handlers::health::metrics(app)),
    }
}

/// Answers a CORS preflight from an allowed origin; otherwise OPTIONS is a
/// method like any other the route does not allow.
fn preflight(app: &App, route: &Route, headers: &http::HeaderMap) -> ApiResult {
    let allowed_origin = headers
        .get(header::ORIGIN)
        .is_some_and(|o| origin_allowed(app, o));
    let asks = headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if !(allowed_origin && asks) {
        return Err(ApiError::method_not_allowed(route.allow()));
    }
    let mut response = empty(StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    let methods = HeaderValue::from_static(route.allow());
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    let allow_headers = HeaderValue::from_static("Authorization, Content-Type, Accept");
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    Ok(response)
}

fn origin_allowed(app: &App, origin: &HeaderValue) -> bool {
    let origin = origin.to_str().unwrap_or_default();
    app.server
        .cors_origins
        .iter()
        .any(|allowed| allowed == origin)
}

/// Headers on every response: no sniffing, no caching of anything that may
/// carry a token, HSTS over TLS, and CORS for configured origins only.
fn decorate(app: &App, mut response: Resp, tls: bool, origin: Option<HeaderValue>) -> Resp {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if tls {
        let hsts = HeaderValue::from_static("max-age=31536000");
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    if let Some(origin) = origin.filter(|o| origin_allowed(app, o)) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_exact() {
        assert_eq!(Route::parse("/jwt/"), Some(Route::Jwt));
        assert_eq!(Route::parse("/jwt"), None);
        assert_eq!(
            Route::parse("/users/al%20ice/"),
            Some(Route::User("al ice".into()))
        );
        assert_eq!(Route::parse("/users/alice"), None);
        assert_eq!(Route::parse("/users/a/b/"), None);
        assert_eq!(Route::parse("/users/%ff/"), None);
        assert_eq!(
            Route::parse("/forgotten_passwords/"),
            Some(Route::Recoveries)
        );
        assert_eq!(Route::parse("/health/"), Some(Route::Health));
        assert_eq!(Route::parse("/jwt/abc"), Some(Route::Token));
    }

    #[test]
    fn each_allow_header_lists_its_methods() {
        for set in [READ, READ_POST, PATCH] {
            let listed: Vec<&str> = set.methods.iter().map(Method::as_str).collect();
            assert_eq!(set.allow, listed.join(", "));
        }
    }
}

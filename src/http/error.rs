//! The one error type of the HTTP layer, and the one place that turns
//! errors into `application/problem+json` responses.
//!
//! On HTTP/1.1 the status line's reason phrase is the error's title, as the
//! original Kisee answered and its clients read.

use std::borrow::Cow;

use http::StatusCode;
use http::header::{ALLOW, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::json;

use super::response::{Resp, json_response};
use crate::backend::BackendError;

/// The title of every refused login, for unknown users and wrong
/// passwords alike.
pub const FAILED_IDENTIFICATION: &str = "Failed identification for kisee.";

/// An answer other than success, with what the client may know about it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    title: Cow<'static, str>,
    detail: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// Handlers return this.
pub type ApiResult = Result<Resp, ApiError>;

impl ApiError {
    /// An error with a status and a title.
    pub fn new(status: StatusCode, title: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            title: title.into(),
            detail: None,
            headers: Vec::new(),
        }
    }

    /// 400 with a title.
    pub fn bad_request(title: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, title)
    }

    /// 403 with a title.
    pub fn forbidden(title: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, title)
    }

    /// 401 with a title and the challenge every 401 carries.
    pub fn unauthorized(title: impl Into<Cow<'static, str>>) -> Self {
        let challenge = HeaderValue::from_static("Basic realm=\"kisee\", Bearer realm=\"kisee\"");
        Self::new(StatusCode::UNAUTHORIZED, title).with_header(WWW_AUTHENTICATE, challenge)
    }

    /// 400 for a body that is not JSON, naming what was wrong.
    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self {
            detail: Some(detail.into()),
            ..Self::bad_request("Malformed JSON")
        }
    }

    /// 404 for a path no route serves.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found")
    }

    /// 405 with the methods the route allows (an `Allow` header value).
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let allow = HeaderValue::from_static(allow);
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").with_header(ALLOW, allow)
    }

    /// 503 with `Retry-After`, for a backend that cannot be reached.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Authentication backend unavailable",
        )
        .with_header(RETRY_AFTER, HeaderValue::from_static("5"))
    }

    /// 429 with `Retry-After`, for a throttled user or client.
    pub fn throttled(retry_after: u64) -> Self {
        let value = HeaderValue::from(retry_after.max(1));
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts, retry later",
        )
        .with_header(RETRY_AFTER, value)
    }

    /// 500. The body says nothing about what went wrong.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    }

    /// Adds a header to the answer.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The status, for logs.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The title, for logs.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The answer for a backend error in the general case. Handlers match
    /// the variants they have their own words for before calling this.
    /// Internal detail is logged here, once, and never sent.
    pub fn from_backend(err: BackendError) -> Self {
        match err {
            BackendError::Refused => Self::forbidden(FAILED_IDENTIFICATION),
            BackendError::AlreadyExists => Self::new(StatusCode::CONFLICT, "User already exist"),
            BackendError::NotSupported => Self::forbidden("Not available on this backend"),
            BackendError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "backend unavailable");
                Self::unavailable()
            }
            BackendError::Fault(detail) => {
                tracing::error!(error = %detail, "backend fault");
                Self::internal()
            }
        }
    }

    /// The problem+json response.
    pub fn into_response(self) -> Resp {
        let mut body = json!({
            "_type": "error",
            "_meta": {"title": self.title},
            "title": self.title,
            "status": self.status.as_u16(),
        });
        if let Some(detail) = &self.detail {
            body["detail"] = json!(detail);
        }
        let content_type = "application/problem+json; charset=utf-8";
        let mut response = json_response(self.status, content_type, &body);
        let reason = hyper::ext::ReasonPhrase::try_from(self.title.into_owned());
        if let Ok(reason) = reason {
            response.extensions_mut().insert(reason);
        }
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

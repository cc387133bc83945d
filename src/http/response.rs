//! Building responses: JSON bodies, empty bodies, and headers common to all.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;

/// Every response this server sends.
pub type Resp = Response<Full<Bytes>>;

/// A JSON body with the given status and content type.
pub fn json_response(status: StatusCode, content_type: &'static str, body: &Value) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `200 OK` with `application/json`.
pub fn ok_json(body: &Value) -> Resp {
    json_response(StatusCode::OK, "application/json", body)
}

/// An empty body with a status.
pub fn empty(status: StatusCode) -> Resp {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Adds a `Location` header; a value that is not a valid header is left out.
pub fn with_location(mut response: Resp, location: &str) -> Resp {
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

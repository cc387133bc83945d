//! One request shape for every server in these tests, and one answer
//! shape: sent over plain HTTP/1.1 to the Python peers, and through the
//! shared harness's HTTPS client to ours.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use hyper::ext::ReasonPhrase;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::common::client::Client;

/// The bound on one exchange.
const EXCHANGE_BOUND: Duration = Duration::from_secs(30);

/// A request, replayable against any server.
#[derive(Clone, Debug)]
pub(crate) struct Req {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Req {
    pub(crate) fn new(method: &'static str, path: &str) -> Self {
        Req {
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub(crate) fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    pub(crate) fn patch(path: &str) -> Self {
        Self::new("PATCH", path)
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn accept(self, media_type: &str) -> Self {
        self.header("accept", media_type)
    }

    /// A JSON body labelled `application/json`.
    pub(crate) fn json(self, value: &Value) -> Self {
        self.header("content-type", "application/json")
            .raw(serde_json::to_vec(value).expect("JSON"))
    }

    /// Body bytes, with whatever Content-Type the caller set (or none).
    pub(crate) fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub(crate) fn basic(self, username: &str, password: &str) -> Self {
        let credentials = STANDARD.encode(format!("{username}:{password}"));
        self.header("authorization", &format!("Basic {credentials}"))
    }

    pub(crate) fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }
}

/// A whole answer.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// The HTTP/1.1 reason phrase as sent.
    pub(crate) reason: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, failing the test with the body if it is not.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {:?}", self.status, self.text()))
    }

    /// The body as JSON when it is some.
    pub(crate) fn json_opt(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Sends a request over plain HTTP/1.1, on a connection of its own.
pub(crate) async fn send_plain(addr: SocketAddr, req: &Req) -> Reply {
    let what = format!("{} http://{addr}{}", req.method, req.path);
    tokio::time::timeout(EXCHANGE_BOUND, exchange(addr, req))
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {EXCHANGE_BOUND:?}"))
}

async fn exchange(addr: SocketAddr, req: &Req) -> Reply {
    let what = format!("{} http://{addr}{}", req.method, req.path);
    let tcp = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap_or_else(|e| panic!("{what}: handshake: {e}"));
    tokio::spawn(connection);

    let mut builder = http::Request::builder()
        .method(req.method)
        .uri(&req.path)
        .header("host", addr.to_string());
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(Full::new(Bytes::from(req.body.clone())))
        .expect("a request");
    let response = sender
        .send_request(request)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));

    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{what}: body: {e}"))
        .to_bytes();
    let reason = parts
        .extensions
        .get::<ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .unwrap_or_else(|| parts.status.canonical_reason().unwrap_or("").to_owned());
    Reply {
        status: parts.status.as_u16(),
        reason,
        headers: parts.headers,
        body,
    }
}

/// Sends a request to our server through the shared harness's client.
pub(crate) async fn send_ours(client: &Client, req: &Req) -> Reply {
    let mut builder = client.request(req.method, &req.path);
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    let res = builder.body(req.body.clone()).send().await;
    Reply {
        status: res.code(),
        reason: res.reason().to_owned(),
        headers: res.headers.clone(),
        body: res.body.clone(),
    }
}

//! A test HTTPS client: one hyper connection per request over rustls, trusting
//! only the test CA; and raw TLS sockets for requests no client would send.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::ext::ReasonPhrase;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The bound on any one exchange with the server.
const EXCHANGE_BOUND: Duration = Duration::from_secs(30);

/// What a client needs to reach one listen address. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Client {
    addr: SocketAddr,
    http1: Arc<ClientConfig>,
    http2: Arc<ClientConfig>,
    no_alpn: Arc<ClientConfig>,
}

impl Client {
    pub(crate) fn new(addr: SocketAddr, ca_der: &[u8]) -> Self {
        Client {
            addr,
            http1: Arc::new(tls_config(ca_der, Some(b"http/1.1"))),
            http2: Arc::new(tls_config(ca_der, Some(b"h2"))),
            no_alpn: Arc::new(tls_config(ca_der, None)),
        }
    }

    pub(crate) fn with_addr(&self, addr: SocketAddr) -> Self {
        Client {
            addr,
            ..self.clone()
        }
    }

    pub(crate) fn request(&self, method: &str, path: &str) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            method: Method::from_bytes(method.as_bytes()).expect("a method"),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            http2: false,
        }
    }

    pub(crate) fn get(&self, path: &str) -> RequestBuilder {
        self.request("GET", path)
    }

    pub(crate) fn post(&self, path: &str) -> RequestBuilder {
        self.request("POST", path)
    }

    pub(crate) fn patch(&self, path: &str) -> RequestBuilder {
        self.request("PATCH", path)
    }

    /// A TLS connection (ALPN `http/1.1`) to write raw bytes on.
    pub(crate) async fn raw_tls(&self) -> TlsStream<TcpStream> {
        self.raw_tls_with(&self.http1).await
    }

    /// A TLS connection that agreed on HTTP/2 (ALPN `h2`).
    pub(crate) async fn raw_h2(&self) -> TlsStream<TcpStream> {
        self.raw_tls_with(&self.http2).await
    }

    /// A TLS connection that offered no ALPN protocol.
    pub(crate) async fn raw_tls_without_alpn(&self) -> TlsStream<TcpStream> {
        self.raw_tls_with(&self.no_alpn).await
    }

    async fn raw_tls_with(&self, config: &Arc<ClientConfig>) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.expect("TCP connect");
        let name = ServerName::try_from("localhost").expect("server name");
        TlsConnector::from(Arc::clone(config))
            .connect(name, tcp)
            .await
            .expect("TLS handshake")
    }

    /// A plain TCP connection to the TLS port.
    pub(crate) async fn raw_tcp(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("TCP connect")
    }

    /// Sends raw bytes over TLS and returns the response head (status line
    /// and headers) as text, or what came before the server closed.
    pub(crate) async fn raw_exchange(&self, request: &[u8]) -> String {
        let mut tls = self.raw_tls().await;
        // The server may answer and close before it reads everything.
        let _ = tls.write_all(request).await;
        let _ = tls.flush().await;
        read_head(&mut tls).await
    }
}

/// A TLS client configuration trusting `ca_der` and offering `alpn`.
pub(crate) fn tls_config(ca_der: &[u8], alpn: Option<&[u8]>) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der.to_vec()))
        .expect("the test CA is valid");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.into_iter().map(<[u8]>::to_vec).collect();
    config
}

/// Reads until the end of a response head, the end of the stream, or the
/// exchange bound.
pub(crate) async fn read_head<S: AsyncReadExt + Unpin>(stream: &mut S) -> String {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let reading = async {
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(EXCHANGE_BOUND, reading).await;
    String::from_utf8_lossy(&received).into_owned()
}

/// Reads until the peer closes; `None` if it is still open after `bound`.
pub(crate) async fn read_until_closed<S: AsyncReadExt + Unpin>(
    stream: &mut S,
    bound: Duration,
) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let reading = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(bound, reading).await.ok()?;
    Some(received)
}

/// One request, sent on a connection of its own.
pub(crate) struct RequestBuilder {
    client: Client,
    method: Method,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
    http2: bool,
}

impl RequestBuilder {
    /// Adds a header; the value may hold any byte a header may carry.
    pub(crate) fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        let value = HeaderValue::from_bytes(value.as_ref()).expect("a header value");
        self.headers.push((name, value));
        self
    }

    pub(crate) fn accept(self, media_type: &str) -> Self {
        self.header("accept", media_type)
    }

    /// A JSON body, labelled `application/json`.
    pub(crate) fn json(self, value: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(serde_json::to_vec(value).expect("JSON"))
    }

    /// Raw body bytes, with no Content-Type.
    pub(crate) fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub(crate) fn basic(self, username: &str, password: &str) -> Self {
        let credentials = STANDARD.encode(format!("{username}:{password}"));
        self.header("authorization", format!("Basic {credentials}"))
    }

    pub(crate) fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Use HTTP/2, negotiated with ALPN `h2`.
    pub(crate) fn http2(mut self) -> Self {
        self.http2 = true;
        self
    }

    pub(crate) async fn send(self) -> Response {
        let what = format!("{} {}", self.method, self.path);
        tokio::time::timeout(EXCHANGE_BOUND, self.exchange())
            .await
            .unwrap_or_else(|_| panic!("{what}: no response within 30 s"))
    }

    async fn exchange(self) -> Response {
        let what = format!("{} {}", self.method, self.path);
        let config = if self.http2 {
            self.client.http2.clone()
        } else {
            self.client.http1.clone()
        };
        let tcp = TcpStream::connect(self.client.addr)
            .await
            .expect("TCP connect");
        let name = ServerName::try_from("localhost").expect("server name");
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let io = TokioIo::new(tls);

        let http2 = self.http2;
        let request = self.into_request();
        let response = if http2 {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .expect("HTTP/2 handshake");
            tokio::spawn(connection);
            sender.send_request(request).await
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .expect("HTTP/1.1 handshake");
            tokio::spawn(connection);
            sender.send_request(request).await
        };
        let response = response.unwrap_or_else(|e| panic!("{what}: {e:?}"));
        Response::read(response, &what).await
    }

    fn into_request(self) -> http::Request<Full<Bytes>> {
        let port = self.client.addr.port();
        let uri = if self.http2 {
            format!("https://localhost:{port}{}", self.path)
        } else {
            self.path.clone()
        };
        let mut builder = http::Request::builder().method(self.method).uri(uri);
        if self.http2 {
            builder = builder.version(Version::HTTP_2);
        } else {
            builder = builder.header("host", format!("localhost:{port}"));
        }
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(Bytes::from(self.body)))
            .expect("a request")
    }
}

/// A whole response: head and collected body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    reason: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Response {
    async fn read(response: http::Response<hyper::body::Incoming>, what: &str) -> Response {
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{what}: reading the body: {e:?}"))
            .to_bytes();
        let reason = parts
            .extensions
            .get::<ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
        Response {
            status: parts.status,
            version: parts.version,
            reason,
            headers: parts.headers,
            body,
        }
    }

    /// The status code as a number.
    pub(crate) fn code(&self) -> u16 {
        self.status.as_u16()
    }

    /// The HTTP/1.1 reason phrase (hyper only records non-canonical ones).
    pub(crate) fn reason(&self) -> &str {
        match &self.reason {
            Some(reason) => reason,
            None => self.status.canonical_reason().unwrap_or(""),
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The values of a comma-separated list header, trimmed.
    pub(crate) fn header_list(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect()
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; fails the test with the body if it is not.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} response is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }
}

//! Connections the harness's client does not make: an HTTP/1.1 connection
//! kept open across requests that reports the certificate the server
//! showed, fallible requests (to count what a shutdown loses rather than
//! panic on the first loss), and plain HTTP for the metrics address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::common::client::tls_config;

/// The bound on any one exchange.
const EXCHANGE_BOUND: Duration = Duration::from_secs(30);

/// A status and a whole body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 connection over TLS, kept open for as many requests as the
/// server allows.
pub(crate) struct KeptConnection {
    sender: SendRequest<Full<Bytes>>,
    /// The leaf certificate the server presented, DER.
    pub(crate) leaf_der: Vec<u8>,
    port: u16,
}

impl KeptConnection {
    /// Connects and completes the TLS handshake with a fresh client
    /// configuration (no session cache: every handshake is a full one).
    pub(crate) async fn open(addr: SocketAddr, ca_der: &[u8]) -> Result<Self, String> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("TCP connect to {addr}: {e}"))?;
        let name = ServerName::try_from("localhost").expect("server name");
        let tls = TlsConnector::from(Arc::new(tls_config(ca_der, Some(b"http/1.1"))))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
        let leaf_der = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(<[CertificateDer<'_>]>::first)
            .map(|leaf| leaf.to_vec())
            .ok_or("the server showed no certificate")?;
        let sender = handshake(tls).await?;
        Ok(KeptConnection {
            sender,
            leaf_der,
            port: addr.port(),
        })
    }

    /// Sends one request on this connection and reads the whole answer.
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<Answer, String> {
        let host = format!("localhost:{}", self.port);
        let request = request(method, path, &host, json);
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| format!("the connection is gone: {e}"))?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| format!("{method} {path}: {e}"))?;
            read_answer(response).await
        };
        tokio::time::timeout(EXCHANGE_BOUND, exchange)
            .await
            .map_err(|_| format!("{method} {path}: no answer within {EXCHANGE_BOUND:?}"))?
    }
}

/// One request on a TLS connection of its own; every failure is returned.
pub(crate) async fn try_send(
    addr: SocketAddr,
    ca_der: &[u8],
    method: &str,
    path: &str,
    json: Option<&serde_json::Value>,
) -> Result<Answer, String> {
    let mut connection = KeptConnection::open(addr, ca_der).await?;
    connection.send(method, path, json).await
}

/// `GET path` over plain HTTP/1.1, as a Prometheus scraper does.
pub(crate) async fn plain_get(addr: SocketAddr, path: &str) -> Result<Answer, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("TCP connect to {addr}: {e}"))?;
    let mut sender = handshake(tcp).await?;
    let host = addr.to_string();
    let response = sender
        .send_request(request("GET", path, &host, None))
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    read_answer(response).await
}

/// The leaf certificate a new TLS connection is shown.
pub(crate) async fn leaf_seen_by_new_connection(addr: SocketAddr, ca_der: &[u8]) -> Vec<u8> {
    KeptConnection::open(addr, ca_der)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .leaf_der
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

fn request(
    method: &str,
    path: &str,
    host: &str,
    json: Option<&serde_json::Value>,
) -> http::Request<Full<Bytes>> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    let body = match json {
        Some(value) => {
            builder = builder.header("content-type", "application/json");
            serde_json::to_vec(value).expect("JSON")
        }
        None => Vec::new(),
    };
    builder
        .body(Full::new(Bytes::from(body)))
        .expect("a request")
}

async fn read_answer(response: http::Response<hyper::body::Incoming>) -> Result<Answer, String> {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(Answer {
        status: parts.status.as_u16(),
        content_type,
        body,
    })
}

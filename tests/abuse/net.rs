//! Connections the shared harness does not make: from a chosen loopback
//! source address (a second client), kept alive across requests (quieter
//! timings), and allowed to fail (a server that refuses connections).
//!
//! The server is trusted by pinning the certificate the fixture wrote, since
//! the fixture keeps its CA to itself.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The bound on one exchange, connection included.
const EXCHANGE_BOUND: Duration = Duration::from_secs(30);

/// The loopback address the harness's own client connects from.
pub(crate) const FIRST_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

/// Another loopback address: Linux routes all of 127/8 to `lo`, so a socket
/// bound here reaches the server as a different client.
pub(crate) const SECOND_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Accepts exactly one certificate, and checks the handshake signatures
/// made with its key.
#[derive(Debug)]
struct Pinned {
    certificate: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the fixture's certificate".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client of the server at `server`, connecting from `source`.
#[derive(Clone)]
pub(crate) struct Peer {
    server: SocketAddr,
    source: IpAddr,
    tls: Arc<ClientConfig>,
}

impl Peer {
    /// A client trusting the certificate in `fixture_dir/tls/cert.pem`.
    pub(crate) fn new(fixture_dir: &Path, server: SocketAddr, source: IpAddr) -> Self {
        let pem = fixture_dir.join("tls/cert.pem");
        let certificate = CertificateDer::from_pem_file(&pem).expect("the fixture's certificate");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Pinned {
            certificate,
            provider: Arc::clone(&provider),
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Peer {
            server,
            source,
            tls: Arc::new(config),
        }
    }

    /// A TCP connection from the source address.
    pub(crate) async fn tcp(&self) -> io::Result<TcpStream> {
        let socket = match self.source {
            IpAddr::V4(_) => TcpSocket::new_v4()?,
            IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(self.source, 0))?;
        socket.connect(self.server).await
    }

    /// A TLS connection from the source address; an error if the server
    /// closes it during the handshake.
    pub(crate) async fn tls(&self) -> io::Result<TlsStream<TcpStream>> {
        let tcp = self.tcp().await?;
        let name = ServerName::try_from("localhost").expect("server name");
        TlsConnector::from(Arc::clone(&self.tls))
            .connect(name, tcp)
            .await
    }

    /// An HTTP/1.1 connection to send several requests on.
    pub(crate) async fn open(&self) -> Result<Connection, String> {
        let opening = async {
            let tls = self.tls().await.map_err(|e| format!("TLS: {e}"))?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
            tokio::spawn(connection);
            Ok(Connection {
                sender,
                host: format!("localhost:{}", self.server.port()),
            })
        };
        tokio::time::timeout(EXCHANGE_BOUND, opening)
            .await
            .map_err(|_| format!("no connection within {EXCHANGE_BOUND:?}"))?
    }

    /// One request on a connection of its own.
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Answer, String> {
        self.open().await?.send(method, path, body).await
    }

    /// `GET path` on a connection of its own.
    pub(crate) async fn get(&self, path: &str) -> Result<Answer, String> {
        self.send("GET", path, b"").await
    }

    /// `POST path` with a JSON body, on a connection of its own.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Answer {
        let bytes = serde_json::to_vec(body).expect("JSON");
        self.send("POST", path, &bytes)
            .await
            .unwrap_or_else(|e| panic!("POST {path} from {}: {e}", self.source))
    }
}

/// An open HTTP/1.1 connection.
pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Connection {
    /// Sends one request and reads the whole answer.
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Answer, String> {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| format!("request: {e}"))?;
        let exchange = async {
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| format!("{method} {path}: {e}"))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| format!("{method} {path}: body: {e}"))?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(EXCHANGE_BOUND, exchange)
            .await
            .map_err(|_| format!("{method} {path}: no answer within {EXCHANGE_BOUND:?}"))?
    }
}

/// A response, head and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn code(&self) -> u16 {
        self.status.as_u16()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

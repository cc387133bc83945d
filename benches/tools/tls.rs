//! TLS clients: `hold` keeps many keep-alive connections open while the
//! server's memory is sampled; `handshakes` pays a new connection for every
//! request, with full or resumed handshakes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::{ClientConfig, HandshakeKind, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::Outcome;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where to connect and whom to trust.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// The server, `127.0.0.1:PORT`.
    #[arg(long)]
    addr: String,
    /// The CA certificate that signed the server's (PEM).
    #[arg(long)]
    ca: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct HoldArgs {
    #[command(flatten)]
    target: Target,
    /// Connections to open and hold.
    #[arg(long, default_value_t = 5000)]
    connections: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 50)]
    parallel: usize,
    /// Longest hold, in seconds; closing standard input ends it sooner.
    #[arg(long, default_value_t = 60.0)]
    hold_seconds: f64,
    /// Plain HTTP instead of TLS (for the share of memory TLS takes).
    #[arg(long)]
    plain: bool,
}

/// A held connection, TLS or not.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

#[derive(Debug, clap::Args)]
pub(crate) struct HandshakeArgs {
    #[command(flatten)]
    target: Target,
    /// Clients connecting at once.
    #[arg(long, default_value_t = 10)]
    connections: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Offer the session tickets the server sent before.
    #[arg(long)]
    resume: bool,
    /// The JSON body POSTed to /jwt/.
    #[arg(long)]
    body: String,
}

fn client_config(ca: &PathBuf, resume: bool) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Ok(Arc::new(config))
}

async fn connect(connector: &TlsConnector, addr: &str) -> Result<TlsStream<TcpStream>, Error> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let name = ServerName::try_from(host.to_string())?;
    Ok(connector.connect(name, tcp).await?)
}

/// Reads one HTTP/1.1 response with a `Content-Length`; returns its status.
async fn read_response<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> Result<u16, Error> {
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {line:?}"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err("connection closed inside the headers".into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(status)
}

pub(crate) async fn hold(args: HoldArgs) -> Outcome {
    let connector = TlsConnector::from(client_config(&args.target.ca, true)?);
    let addr = Arc::new(args.target.addr.clone());
    let slots = Arc::new(Semaphore::new(args.parallel.max(1)));
    let plain = args.plain;
    let started = Instant::now();

    let mut opening = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let (connector, addr, slots) = (connector.clone(), Arc::clone(&addr), Arc::clone(&slots));
        opening.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await?;
            let stream: Box<dyn Stream> = if plain {
                let tcp = TcpStream::connect(addr.as_str()).await?;
                tcp.set_nodelay(true)?;
                Box::new(tcp)
            } else {
                Box::new(connect(&connector, &addr).await?)
            };
            let mut reader = BufReader::new(stream);
            let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            reader.get_mut().write_all(request.as_bytes()).await?;
            read_response(&mut reader).await?;
            Ok::<_, Error>(reader)
        }));
    }
    let mut held = Vec::with_capacity(args.connections);
    let mut failed = 0usize;
    let mut first_error = None;
    for task in opening {
        match task.await? {
            Ok(stream) => held.push(stream),
            Err(err) => {
                failed += 1;
                first_error.get_or_insert_with(|| err.to_string());
            }
        }
    }

    let report = json!({
        "open": held.len(),
        "failed": failed,
        "first_error": first_error,
        "seconds": started.elapsed().as_secs_f64(),
    });
    println!("{report}");
    // Held until the caller has sampled: it closes our standard input.
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    let wait = Duration::from_secs_f64(args.hold_seconds);
    let _ = tokio::time::timeout(wait, stdin.read_line(&mut line)).await;
    drop(held);
    Ok(())
}

pub(crate) async fn handshakes(args: HandshakeArgs) -> Outcome {
    let connector = TlsConnector::from(client_config(&args.target.ca, args.resume)?);
    let request = Arc::new(format!(
        "POST /jwt/ HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        args.target.addr,
        args.body.len(),
        args.body
    ));
    let addr = Arc::new(args.target.addr.clone());
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));

    let started = Instant::now();
    let mut workers = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let (connector, addr, request, counts, stop) = (
            connector.clone(),
            Arc::clone(&addr),
            Arc::clone(&request),
            Arc::clone(&counts),
            Arc::clone(&stop),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let outcome = one_request(&connector, &addr, &request).await;
                counts.record(outcome);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let ok = counts.ok.load(Ordering::Relaxed);
    let report = json!({
        "requests": ok,
        "resumed": counts.resumed.load(Ordering::Relaxed),
        "failures": counts.failed.load(Ordering::Relaxed),
        "seconds": elapsed,
        "per_second": ok as f64 / elapsed,
    });
    println!("{report}");
    Ok(())
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    resumed: AtomicU64,
    failed: AtomicU64,
}

impl Counts {
    fn record(&self, outcome: Result<bool, Error>) {
        let counter = match outcome {
            Ok(resumed) => {
                if resumed {
                    self.resumed.fetch_add(1, Ordering::Relaxed);
                }
                &self.ok
            }
            Err(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One POST on a fresh connection; `Ok(true)` when the handshake resumed.
async fn one_request(connector: &TlsConnector, addr: &str, request: &str) -> Result<bool, Error> {
    let stream = connect(connector, addr).await?;
    let resumed = stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(request.as_bytes()).await?;
    let status = read_response(&mut reader).await?;
    // Read on to the end so that the session tickets sent after the
    // handshake reach the client's cache before the next connection.
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest).await;
    if status != 201 {
        return Err(format!("status {status}").into());
    }
    Ok(resumed)
}

//! Listening and serving connections: TCP accept with a connection bound,
//! the TLS handshake, HTTP/1.1 or HTTP/2 as ALPN agreed (or as the first
//! bytes tell, without it), and the timeouts that drop clients who stall.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::{ServerConfig, ServerConnection};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::response::Resp;
use super::router;
use super::watchdog::{Watch, Watched};
use crate::app::App;

/// Largest request head (request line and headers) accepted on HTTP/1.1,
/// and the header list limit on HTTP/2.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers accepted in one HTTP/1.1 request.
const MAX_HEADERS: usize = 64;
/// Streams one HTTP/2 connection may run at once.
const MAX_STREAMS: u32 = 100;
/// How long requests in flight may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Binds every address, failing on the first that cannot be bound.
pub async fn bind(addrs: &[SocketAddr]) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// One configuration of the server: the application, its TLS acceptor and
/// its HTTP settings. A reload replaces it: new connections take the new
/// TLS and HTTP settings, and every request, on any connection, is served
/// by the application current when it arrives.
struct Generation {
    app: Arc<App>,
    tls: Option<TlsAcceptor>,
    builders: Builders,
}

/// HTTP settings, by what is known of the protocol a client will speak.
///
/// Over TLS, ALPN has told; over plain TCP, a look at the first bytes
/// that leaves them in the socket (see [`sniff`]): the connection is then
/// served as HTTP/1.1 or HTTP/2 outright. Only a TLS client that offered
/// no ALPN protocol goes through hyper-util's detection, which reads the
/// first bytes and hands them back to hyper in a way that makes hyper
/// double its read buffer (16 KiB kept for reading rather than 8).
struct Builders {
    sniffing: auto::Builder<TokioExecutor>,
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(app: &App) -> Self {
        let sniffing = http_builder(app);
        Self {
            http1: sniffing.clone().http1_only(),
            http2: sniffing.clone().http2_only(),
            sniffing,
        }
    }

    fn get(&self, protocol: Protocol) -> &auto::Builder<TokioExecutor> {
        match protocol {
            Protocol::Unknown => &self.sniffing,
            Protocol::Http1 => &self.http1,
            Protocol::Http2 => &self.http2,
        }
    }
}

/// What a connection is known to speak before its first request.
#[derive(Debug, Clone, Copy)]
enum Protocol {
    Unknown,
    Http1,
    Http2,
}

impl Protocol {
    /// The protocol ALPN agreed on, if any.
    fn agreed(tls: &ServerConnection) -> Self {
        match tls.alpn_protocol() {
            Some(b"h2") => Self::Http2,
            Some(b"http/1.1") => Self::Http1,
            _ => Self::Unknown,
        }
    }
}

/// The running server: the current generation, the connection bound and
/// the shutdown signal.
pub struct Live {
    current: RwLock<Arc<Generation>>,
    permits: Arc<Semaphore>,
    max_connections: usize,
    stop: watch::Sender<bool>,
}

impl Live {
    /// A server for `app`, with TLS when `tls` is given.
    pub fn new(app: Arc<App>, tls: Option<Arc<ServerConfig>>) -> Arc<Self> {
        let max_connections = app.server.max_connections.clamp(1, Semaphore::MAX_PERMITS);
        let (stop, _) = watch::channel(false);
        Arc::new(Self {
            current: RwLock::new(Arc::new(Generation::new(app, tls))),
            permits: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            stop,
        })
    }

    /// The application new connections are served by.
    pub fn app(&self) -> Arc<App> {
        Arc::clone(&self.generation().app)
    }

    /// Serves new connections with `app` and `tls` from now on.
    pub fn replace(&self, app: Arc<App>, tls: Option<Arc<ServerConfig>>) {
        let generation = Arc::new(Generation::new(app, tls));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = generation;
    }

    fn generation(&self) -> Arc<Generation> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Generation {
    fn new(app: Arc<App>, tls: Option<Arc<ServerConfig>>) -> Self {
        let builders = Builders::new(&app);
        Self {
            app,
            tls: tls.map(TlsAcceptor::from),
            builders,
        }
    }
}

/// Serves until `shutdown` resolves, then stops accepting and lets
/// requests in flight finish for a bounded time.
pub async fn run(live: Arc<Live>, listeners: Vec<TcpListener>, shutdown: impl Future<Output = ()>) {
    let tls = live.generation().tls.is_some();
    for listener in listeners {
        announce(&listener, tls);
        tokio::spawn(accept_loop(Arc::clone(&live), listener));
    }
    shutdown.await;

    let open = live.max_connections - live.permits.available_permits();
    tracing::info!(connections = open, "shutting down: no new connections");
    let _ = live.stop.send(true);
    // Every connection holds a permit until it ends: holding them all
    // means every connection has ended.
    let all = u32::try_from(live.max_connections).unwrap_or(u32::MAX);
    match tokio::time::timeout(SHUTDOWN_GRACE, live.permits.acquire_many(all)).await {
        Ok(_) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!("requests still in flight after the grace period were dropped"),
    }
}

fn announce(listener: &TcpListener, tls: bool) {
    match listener.local_addr() {
        Ok(addr) => tracing::info!(addr = %addr, tls, "listening"),
        Err(err) => tracing::warn!(error = %err, "listening on an unknown address"),
    }
}

fn http_builder(app: &App) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(app.server.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEAD_BYTES as u32);
    builder
}

async fn accept_loop(live: Arc<Live>, listener: TcpListener) {
    let mut stopped = live.stop.subscribe();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&live.permits).try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: too many open connections");
            continue;
        };
        let live = Arc::clone(&live);
        tokio::spawn(async move {
            let generation = live.generation();
            generation.app.metrics.open_connections.inc();
            serve(&live, &generation, stream, peer).await;
            generation.app.metrics.open_connections.dec();
            drop(permit);
        });
    }
}

// What an idle connection costs is mostly what its task and its hyper
// connection hold, so the code below keeps both small: the handshake and
// the hyper connection are boxed and built outside the async functions
// (an async function keeps every local it has moved from until the local's
// scope ends, and sizes its task for the largest await), and each request's
// handler future is boxed (hyper keeps a slot for it, the whole connection
// long). An idle keep-alive connection then costs its buffers, not
// several copies of its state.

/// Serves one connection: the TLS handshake and HTTP settings of the
/// generation current when it was accepted, and for each request the
/// application current when the request arrives, so that a reload reaches
/// long-lived connections too.
async fn serve(live: &Arc<Live>, shared: &Generation, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let Some(tls) = &shared.tls else {
        let Some(protocol) = first_bytes(live, shared, &stream, peer).await else {
            return;
        };
        let (connection, watch) = open_http(live, shared, stream, peer, false, protocol);
        return drive(live, shared, connection, &watch, peer).await;
    };
    let opened = handshake(shared, tls, stream, peer).await.map(|stream| {
        let protocol = Protocol::agreed(stream.get_ref().1);
        open_http(live, shared, stream, peer, true, protocol)
    });
    if let Some((connection, watch)) = opened {
        drive(live, shared, connection, &watch, peer).await;
    }
}

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113,
/// section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How long to wait before looking again at first bytes that may still
/// grow into the HTTP/2 preface.
const SNIFF_PAUSE: Duration = Duration::from_millis(10);

/// What a plain-TCP client speaks, told from its first bytes without
/// taking them from the socket: HTTP/2 if they are the HTTP/2 preface,
/// HTTP/1.1 from the first byte that differs from it (`G` of `GET`, `O` of
/// `POST`). `None` when the client closed, or sent nothing decisive
/// within `within` (the time it has for a whole request head).
async fn sniff(stream: &TcpStream, within: Duration) -> Option<Protocol> {
    let deadline = tokio::time::Instant::now() + within;
    let mut first = [0; H2_PREFACE.len()];
    loop {
        let seen = tokio::time::timeout_at(deadline, stream.peek(&mut first))
            .await
            .ok()?
            .ok()?;
        if seen == 0 {
            return None;
        }
        if first[..seen] != H2_PREFACE[..seen] {
            return Some(Protocol::Http1);
        }
        if seen == H2_PREFACE.len() {
            return Some(Protocol::Http2);
        }
        // A part of the preface: the socket stays readable, so wait
        // rather than peek again at once (and the timeout above would
        // never fire on a peek that returns at once).
        if tokio::time::Instant::now() + SNIFF_PAUSE > deadline {
            return None;
        }
        tokio::time::sleep(SNIFF_PAUSE).await;
    }
}

/// The protocol of a plain-TCP connection, or `None` when it is to be
/// closed: nothing decisive within the header timeout, or shutdown began.
async fn first_bytes(
    live: &Live,
    shared: &Generation,
    stream: &TcpStream,
    peer: SocketAddr,
) -> Option<Protocol> {
    let mut stopped = live.stop.subscribe();
    let sniffed = tokio::select! {
        sniffed = sniff(stream, shared.app.server.header_timeout) => sniffed,
        _ = stopped.wait_for(|stop| *stop) => None,
    };
    if sniffed.is_none() {
        tracing::debug!(%peer, "connection closed before a request began");
    }
    sniffed
}

/// The TLS handshake, within the handshake timeout; `None` when it failed.
async fn handshake(
    shared: &Generation,
    tls: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let timeout = shared.app.server.handshake_timeout;
    let accepting = Box::pin(tokio::time::timeout(timeout, tls.accept(stream)));
    let failure = match accepting.await {
        Ok(Ok(stream)) => return Some(stream),
        Ok(Err(err)) => err.to_string(),
        Err(_) => "timed out".to_owned(),
    };
    shared.app.metrics.tls_handshake_failures.inc();
    tracing::debug!(%peer, error = %failure, "TLS handshake failed");
    None
}

/// A hyper connection, HTTP/1.1 or HTTP/2 as the client speaks.
type Connection<'a, T> = auto::Connection<'a, TokioIo<Watched<T>>, Requests, TokioExecutor>;

/// The hyper connection over `io` and the watch its watchdog reads.
fn open_http<'a, T>(
    live: &Arc<Live>,
    shared: &'a Generation,
    io: T,
    peer: SocketAddr,
    tls: bool,
    protocol: Protocol,
) -> (Pin<Box<Connection<'a, T>>>, Arc<Watch>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watch = Watch::new();
    let requests = Requests {
        live: Arc::clone(live),
        watch: Arc::clone(&watch),
        peer,
        tls,
    };
    let io = TokioIo::new(Watched::new(io, Arc::clone(&watch)));
    let builder = shared.builders.get(protocol);
    let connection = Box::pin(builder.serve_connection(io, requests));
    (connection, watch)
}

/// Runs a connection to its end: until the client leaves, the watchdog
/// gives up on it, or shutdown drains it.
async fn drive<T>(
    live: &Live,
    shared: &Generation,
    mut connection: Pin<Box<Connection<'_, T>>>,
    watch: &Watch,
    peer: SocketAddr,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (header_timeout, idle_timeout) = (
        shared.app.server.header_timeout,
        shared.app.server.idle_timeout,
    );
    let mut stopped = live.stop.subscribe();
    // Shutdown may have begun during the handshake: drain at once then.
    let mut draining = *stopped.borrow();
    if draining {
        connection.as_mut().graceful_shutdown();
    }

    loop {
        let deadline = watch.deadline(header_timeout, idle_timeout);
        let wake = deadline.unwrap_or_else(|| Instant::now() + idle_timeout);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            _ = stopped.changed(), if !draining => {
                // Finish what is in flight, accept nothing new.
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            () = watch.changed() => {}
            () = tokio::time::sleep_until(wake.into()) => {
                let due = watch.deadline(header_timeout, idle_timeout);
                if due.is_some_and(|due| due <= Instant::now()) {
                    tracing::debug!(%peer, "connection closed: no request in time");
                    return;
                }
            }
        }
    }
}

/// The service of one connection: each request is served by the
/// application current when it arrives, and counted by the connection's
/// watchdog while it runs.
struct Requests {
    live: Arc<Live>,
    watch: Arc<Watch>,
    peer: SocketAddr,
    tls: bool,
}

/// One request being handled.
type Handling = Pin<Box<dyn Future<Output = Result<Resp, Infallible>> + Send>>;

impl Service<hyper::Request<Incoming>> for Requests {
    type Response = Resp;
    type Error = Infallible;
    type Future = Handling;

    fn call(&self, request: hyper::Request<Incoming>) -> Handling {
        let guard = self.watch.request_started();
        let app = self.live.app();
        let (peer, tls) = (self.peer, self.tls);
        Box::pin(async move {
            let response = router::handle(app, peer, tls, request).await;
            drop(guard);
            response
        })
    }
}

/// Serves `/metrics` alone, over plain HTTP/1.1, on its own address (for a
/// scrape network that clients never reach).
pub async fn run_metrics(app: Arc<App>, listener: TcpListener) {
    match listener.local_addr() {
        Ok(addr) => tracing::info!(addr = %addr, "metrics listening"),
        Err(err) => tracing::warn!(error = %err, "metrics listening on an unknown address"),
    }
    // Scrapers are few: a small bound keeps a flood from costing tasks.
    let scrapers = Arc::new(Semaphore::new(16));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = Arc::clone(&scrapers).try_acquire_owned() else {
            continue;
        };
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let app = Arc::clone(&app);
                async move {
                    Ok::<_, std::convert::Infallible>(metrics_only(&app, request.uri().path()))
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(60), connection).await;
            drop(permit);
        });
    }
}

fn metrics_only(app: &App, path: &str) -> super::response::Resp {
    if path == "/metrics" {
        super::handlers::health::metrics(app)
    } else {
        super::error::ApiError::not_found().into_response()
    }
}

//! Connections: a bound on how many are open, and clients that trickle
//! bytes to hold one are dropped while others are served.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::net::{FIRST_CLIENT, Peer};
use crate::common::client::read_until_closed;
use crate::common::{Fixture, Server, eventually};

/// The gap between two trickled bytes.
const TRICKLE: Duration = Duration::from_millis(300);
/// How long a trickling client may last before the test gives up on the
/// server cutting it off; shorter than the whole trickle takes.
const CUT_OFF_BOUND: Duration = Duration::from_secs(10);

#[tokio::test]
async fn connections_past_the_limit_are_closed_unserved_until_others_end() {
    // Long timeouts: the held connections must stay open on their own.
    let fixture = Fixture::new()
        .set("server.max_connections", json!(5))
        .set("server.handshake_timeout", json!("60s"))
        .set("server.header_timeout", json!("60s"))
        .set("server.idle_timeout", json!("60s"));
    let server = fixture.start();
    let peer = Peer::new(fixture.dir(), server.addr(), FIRST_CLIENT);
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(peer.tls().await.expect("one of the first five connections"));
    }

    // Each handshake finished after its accept: the five hold every slot.
    let sixth = peer.get("/health").await;
    assert!(sixth.is_err(), "a sixth connection was served: {sixth:?}");
    eventually(Duration::from_secs(10), "the refusal is logged", || {
        let logs = server.logs();
        let refused = logs.iter().any(|l| l.contains("too many open connections"));
        async move { refused.then_some(()) }
    })
    .await;
    // The held ones are real connections, served when they ask.
    let head = request_on(
        &mut held[0],
        "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head:?}");

    drop(held);
    let served = eventually(
        Duration::from_secs(10),
        "a new connection is served",
        || {
            let peer = peer.clone();
            async move { peer.get("/health").await.ok() }
        },
    )
    .await;
    assert_eq!(served.code(), 200, "{}", served.text());
}

/// Writes a request on an open connection and reads the answer's head.
async fn request_on<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.expect("write");
    stream.flush().await.expect("flush");
    crate::common::client::read_head(stream).await
}

/// What a stalling client saw: the bytes it got back before the server
/// closed or answered, and when that happened.
struct Stalled {
    received: Option<Vec<u8>>,
    after: Duration,
}

/// Sends `prefix` at once, then `slow` one byte every [`TRICKLE`], until
/// the server closes the connection or `stop_at_head` and a whole response
/// head came back. `received` is `None` if neither happened within
/// [`CUT_OFF_BOUND`].
async fn trickle(server: &Server, prefix: &[u8], slow: &[u8], stop_at_head: bool) -> Stalled {
    let tls = server.client().raw_tls().await;
    let (mut reader, mut writer) = tokio::io::split(tls);
    let started = Instant::now();
    let writing = async {
        let _ = writer.write_all(prefix).await;
        for byte in slow {
            if writer.write_all(&[*byte]).await.is_err() || writer.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(TRICKLE).await;
        }
        // Keep the write side open: a close would end the request anyway.
        std::future::pending::<()>().await;
    };
    let reading = async {
        if stop_at_head {
            let head = crate::common::client::read_head(&mut reader).await;
            Some(head.into_bytes())
        } else {
            read_until_closed(&mut reader, CUT_OFF_BOUND).await
        }
    };
    let received = tokio::select! {
        received = tokio::time::timeout(CUT_OFF_BOUND, reading) => received.ok().flatten(),
        () = writing => unreachable!("the writer never ends"),
    };
    Stalled {
        received,
        after: started.elapsed(),
    }
}

/// Asserts the stalling client was cut off by a 1 s timeout: not sooner
/// (an error would close at once), not after the bound.
fn assert_cut_off_by_the_timeout(stalled: &Stalled, what: &str) -> String {
    let received = stalled
        .received
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: still open after {CUT_OFF_BOUND:?}"));
    assert!(
        stalled.after >= Duration::from_millis(700),
        "{what}: cut off after only {:?}",
        stalled.after
    );
    String::from_utf8_lossy(received).into_owned()
}

/// A head that takes 30 s to trickle, far longer than the bound.
fn slow_head() -> Vec<u8> {
    format!(
        "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: {}\r\n\r\n",
        "s".repeat(50)
    )
    .into_bytes()
}

#[tokio::test]
async fn a_head_trickled_byte_by_byte_is_cut_off_while_others_are_served() {
    let server = Fixture::new()
        .set("server.header_timeout", json!("1s"))
        .start();
    let head = slow_head();

    let (stalled, other) = tokio::join!(
        trickle(&server, b"", &head, false),
        server.get("/health").send()
    );

    let received = assert_cut_off_by_the_timeout(&stalled, "the trickled head");
    assert!(
        received.is_empty() || received.starts_with("HTTP/1.1 408"),
        "{received:?}"
    );
    assert_eq!(other.code(), 200, "{}", other.text());
}

#[tokio::test]
async fn a_body_trickled_slower_than_the_body_timeout_is_cut_off_while_others_are_served() {
    let server = Fixture::new()
        .set("server.body_timeout", json!("1s"))
        .start();
    let body = br#"{"username": "alice", "password": "a-password-of-some-length-here"}"#;
    let head = format!(
        "POST /jwt/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );

    let (stalled, other) = tokio::join!(
        trickle(&server, head.as_bytes(), body, true),
        server.get("/health").send()
    );

    let received = assert_cut_off_by_the_timeout(&stalled, "the trickled body");
    assert!(
        received.is_empty() || received.starts_with("HTTP/1.1 408 Request body too slow"),
        "{received:?}"
    );
    assert_eq!(other.code(), 200, "{}", other.text());
}

/// What an HTTP/2 client sends first (RFC 9113, section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One HTTP/2 frame.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("a small payload");
    let mut frame = length.to_be_bytes()[1..].to_vec();
    frame.extend_from_slice(&[kind, flags]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

#[tokio::test]
async fn a_request_head_stalled_on_http2_is_cut_off_by_the_header_timeout() {
    // The HTTP/2 twin of the stalled head in tests/hostile.rs: a HEADERS
    // frame without END_HEADERS, then nothing. The idle timeout is long,
    // so only the header timeout can end it within the bound.
    const SETTINGS: u8 = 0x4;
    const HEADERS: u8 = 0x1;
    const ACK: u8 = 0x1;
    const END_STREAM: u8 = 0x1;
    let server = Fixture::new()
        .set("server.header_timeout", json!("1s"))
        .set("server.idle_timeout", json!("60s"))
        .start();
    let mut tls = server.client().raw_h2().await;
    let mut opening = H2_PREFACE.to_vec();
    opening.extend(h2_frame(SETTINGS, 0, 0, &[]));
    opening.extend(h2_frame(SETTINGS, ACK, 0, &[]));
    // `:method: GET` (static table entry 2), and the block left open.
    opening.extend(h2_frame(HEADERS, END_STREAM, 1, &[0x82]));
    tls.write_all(&opening).await.expect("write");
    tls.flush().await.expect("flush");

    let started = Instant::now();
    let received = read_until_closed(&mut tls, CUT_OFF_BOUND).await;

    let stalled = Stalled {
        received,
        after: started.elapsed(),
    };
    assert_cut_off_by_the_timeout(&stalled, "the stalled HTTP/2 head");
    let received = stalled.received.unwrap_or_default();
    // The server's first frame is its SETTINGS: this was HTTP/2.
    assert_eq!(received.get(3), Some(&SETTINGS), "not HTTP/2: {received:?}");
}

/// The opening of an HTTP/2 client: the preface, empty SETTINGS, and a
/// whole `GET /health` (HPACK: `:method: GET`, `:scheme: https`, `:path`
/// `/health` literal, `:authority: localhost` literal).
fn h2_get_health() -> Vec<u8> {
    const SETTINGS: u8 = 0x4;
    const HEADERS: u8 = 0x1;
    const END_STREAM_AND_HEADERS: u8 = 0x1 | 0x4;
    let mut block = vec![0x82, 0x87];
    block.extend([0x44, 7]);
    block.extend(b"/health");
    block.extend([0x41, 9]);
    block.extend(b"localhost");
    let mut opening = H2_PREFACE.to_vec();
    opening.extend(h2_frame(SETTINGS, 0, 0, &[]));
    opening.extend(h2_frame(HEADERS, END_STREAM_AND_HEADERS, 1, &block));
    opening
}

/// The frame types the server sent until it closed or went quiet.
async fn h2_frames_received<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Vec<u8> {
    stream.write_all(&h2_get_health()).await.expect("write");
    stream.flush().await.expect("flush");
    let received = read_until_closed(stream, Duration::from_secs(2))
        .await
        .unwrap_or_default();
    let mut kinds = Vec::new();
    let mut at = 0;
    while let Some(header) = received.get(at..at + 9) {
        let length =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        kinds.push(header[3]);
        at += 9 + length;
    }
    kinds
}

#[tokio::test]
async fn alpn_decides_the_protocol_and_without_it_the_first_bytes_do() {
    const HEADERS: u8 = 0x1;
    let server = Fixture::new()
        .set("server.idle_timeout", json!("1s"))
        .start();
    let client = server.client();
    let health = "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

    // ALPN h2: an HTTP/2 exchange, whose answer is a HEADERS frame.
    let frames = h2_frames_received(&mut client.raw_h2().await).await;
    assert!(frames.contains(&HEADERS), "h2 over ALPN h2: {frames:?}");

    // ALPN http/1.1: HTTP/1.1, and an HTTP/2 preface is not taken for one.
    let head = request_on(&mut client.raw_tls().await, health).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut http1 = client.raw_tls().await;
    http1.write_all(&h2_get_health()).await.expect("write");
    http1.flush().await.expect("flush");
    let answer = read_until_closed(&mut http1, Duration::from_secs(5))
        .await
        .unwrap_or_default();
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
        "h2 preface over ALPN http/1.1: {:?}",
        String::from_utf8_lossy(&answer)
    );

    // No ALPN: the server tells from the first bytes, both ways.
    let head = request_on(&mut client.raw_tls_without_alpn().await, health).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let frames = h2_frames_received(&mut client.raw_tls_without_alpn().await).await;
    assert!(frames.contains(&HEADERS), "h2 without ALPN: {frames:?}");
}

#[tokio::test]
async fn plain_http_is_told_apart_by_its_first_bytes_and_silence_is_cut_off() {
    const HEADERS: u8 = 0x1;
    let server = Fixture::new()
        .unset("server.tls")
        .set("server.header_timeout", json!("1s"))
        .set("server.idle_timeout", json!("1s"))
        .start();
    let connect = || TcpStream::connect(server.addr());
    let health = "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

    let head = request_on(&mut connect().await.expect("connect"), health).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // `P` could open the HTTP/2 preface: the server waits for the next byte.
    let mut patch = connect().await.expect("connect");
    patch.write_all(b"P").await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let head = request_on(
        &mut patch,
        "ATCH /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");

    // HTTP/2 with prior knowledge.
    let frames = h2_frames_received(&mut connect().await.expect("connect")).await;
    assert!(frames.contains(&HEADERS), "h2 over plain TCP: {frames:?}");

    // Nothing, or a part of the preface, then silence: closed by the
    // header timeout, without an answer.
    for sent in [&b""[..], &H2_PREFACE[..12]] {
        let mut silent = connect().await.expect("connect");
        silent.write_all(sent).await.expect("write");
        let started = Instant::now();
        let stalled = Stalled {
            received: read_until_closed(&mut silent, CUT_OFF_BOUND).await,
            after: started.elapsed(),
        };
        let received = assert_cut_off_by_the_timeout(&stalled, "a silent plain connection");
        assert!(received.is_empty(), "{received:?}");
    }
}

//! The Python programs the interop tests run beside ours: where
//! scripts/test-interop installed them, starting them on a free port,
//! reading what they print, and stopping them.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::plain::{Req, send_plain};

/// How long a Python peer may take to answer its first request.
const START_BOUND: Duration = Duration::from_secs(60);

/// The path of a program that scripts/test-interop installed and named in
/// an environment variable. Fails the test, never skips it, when missing.
pub(crate) fn installed(variable: &str) -> PathBuf {
    let how = "run these tests with scripts/test-interop, which makes the Python \
               virtualenvs under target/interop/ and sets it";
    let Some(value) = std::env::var_os(variable) else {
        panic!("{variable} is not set: {how}");
    };
    let path = PathBuf::from(value);
    assert!(
        path.is_file(),
        "{variable}={} is not a file: {how}",
        path.display()
    );
    path
}

/// A port nobody listens on now. The peers take a port number, not 0, so
/// one is picked here and handed over.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Everything a peer printed, stdout and stderr interleaved.
type Lines = Arc<Mutex<Vec<String>>>;

/// A running Python peer. Killed when dropped.
pub(crate) struct Peer {
    name: &'static str,
    child: Child,
    lines: Lines,
    pub(crate) addr: SocketAddr,
}

impl Peer {
    /// Starts `command` and waits until `GET ready_path` on `port` answers.
    pub(crate) async fn start(
        name: &'static str,
        mut command: Command,
        port: u16,
        ready_path: &str,
    ) -> Peer {
        // Unbuffered, so that what the peer prints is seen when printed;
        // no TERM, so that the original's demo prints no colour codes.
        command
            .env("PYTHONUNBUFFERED", "1")
            .env_remove("TERM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        let lines = Lines::default();
        drain(child.stdout.take().expect("stdout"), lines.clone());
        drain(child.stderr.take().expect("stderr"), lines.clone());

        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let peer = Peer {
            name,
            child,
            lines,
            addr,
        };
        peer.wait_until_ready(ready_path).await;
        peer
    }

    async fn wait_until_ready(&self, path: &str) {
        let deadline = Instant::now() + START_BOUND;
        loop {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                let reply = send_plain(self.addr, &Req::get(path)).await;
                assert_eq!(
                    reply.status,
                    200,
                    "{} GET {path}:\n{}",
                    self.name,
                    self.output()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} does not answer on {} within {START_BOUND:?}\n{}",
                self.name,
                self.addr,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every line printed so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines lock").clone()
    }

    pub(crate) fn output(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits for the `nth` (from 0) line that `pick` accepts, and returns
    /// what `pick` made of it.
    pub(crate) async fn nth_line<T>(&self, nth: usize, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.lines().iter().filter_map(|l| pick(l)).nth(nth);
            if let Some(found) = found {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{}: the awaited line was not printed\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(pipe: impl Read + Send + 'static, lines: Lines) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        while let Ok(n) = reader.read_until(b'\n', &mut buf) {
            if n == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
            lines.lock().expect("lines lock").push(line);
            buf.clear();
        }
    });
}

//! A `kisee` process the test can signal and wait for: the harness's
//! `Server` keeps its child to itself, and these tests need the pid (for
//! SIGHUP and SIGTERM) and the exit status.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::common::Fixture;
use crate::common::client::Client;
use crate::common::eventually;
use crate::common::server::listening_addrs;

/// How long a start, a reload or a log line may take to show up.
const LOG_BOUND: Duration = Duration::from_secs(20);

/// Stderr lines, shared with the thread that reads them.
type Lines = Arc<Mutex<Vec<String>>>;

/// A running `kisee`, started from a fixture's settings file. Killed when
/// dropped, unless it already exited.
pub(crate) struct Kisee {
    child: Child,
    stderr: Lines,
    addr: SocketAddr,
    client: Client,
}

impl Kisee {
    /// Writes the fixture's settings, starts the server and waits for its
    /// `listening` line. `ca_der` is the CA its certificate chains to.
    pub(crate) async fn start(fixture: &Fixture, ca_der: &[u8]) -> Kisee {
        let mut command = fixture.command();
        command.arg("--settings").arg(fixture.write_settings());
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the kisee binary starts");
        let stderr = Lines::default();
        read_lines(child.stderr.take().expect("stderr"), Arc::clone(&stderr));

        let lines = Arc::clone(&stderr);
        let addr = eventually(LOG_BOUND, "a `listening` line", || {
            let lines = Arc::clone(&lines);
            async move {
                let lines = lines.lock().expect("log lock");
                listening_addrs(&lines).first().copied()
            }
        })
        .await;
        let client = Client::new(addr, ca_der);
        Kisee {
            child,
            stderr,
            addr,
            client,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A one-request-per-connection HTTPS client trusting the test CA.
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    pub(crate) fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("a pid fits an i32");
        kill(Pid::from_raw(pid), signal).expect("the signal is sent");
    }

    /// The JSON log records so far.
    pub(crate) fn records(&self) -> Vec<Value> {
        let lines = self.stderr.lock().expect("log lock");
        lines
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Everything on stderr so far, for failure messages.
    pub(crate) fn log_text(&self) -> String {
        self.stderr.lock().expect("log lock").join("\n")
    }

    /// How many records there are now: a mark to wait for later ones from.
    pub(crate) fn mark(&self) -> usize {
        self.records().len()
    }

    /// The records after `mark` whose message is `message`.
    pub(crate) fn messages_since(&self, mark: usize, message: &str) -> Vec<Value> {
        self.records()
            .into_iter()
            .skip(mark)
            .filter(|record| record["fields"]["message"] == message)
            .collect()
    }

    /// Waits for a record with this message after `mark`, and returns it.
    pub(crate) async fn wait_for_message(&self, mark: usize, message: &str) -> Value {
        let deadline = Instant::now() + LOG_BOUND;
        loop {
            if let Some(record) = self.messages_since(mark, message).into_iter().next() {
                return record;
            }
            assert!(
                Instant::now() < deadline,
                "no {message:?} in the log within {LOG_BOUND:?}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends SIGHUP and waits for the reload's verdict: the `settings
    /// reloaded` record, or the summary `reload refused` one.
    pub(crate) async fn reload(&self) -> Reload {
        let mark = self.mark();
        self.signal(Signal::SIGHUP);
        let deadline = Instant::now() + LOG_BOUND;
        loop {
            if !self.messages_since(mark, "settings reloaded").is_empty() {
                return Reload::Applied;
            }
            let summary = "reload refused: the running settings stay";
            if !self.messages_since(mark, summary).is_empty() {
                let problems = self.messages_since(mark, "reload refused");
                return Reload::Refused(problems);
            }
            assert!(
                Instant::now() < deadline,
                "no verdict on the reload within {LOG_BOUND:?}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends SIGHUP and fails the test unless the reload is applied.
    pub(crate) async fn reload_applied(&self) {
        match self.reload().await {
            Reload::Applied => {}
            Reload::Refused(problems) => panic!("the reload was refused: {problems:?}"),
        }
    }

    /// The exit status, if the process has ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits for the process to end, at most `bound`.
    pub(crate) async fn wait_exit(&mut self, bound: Duration) -> ExitStatus {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "kisee still runs {bound:?} later\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Kisee {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What came of a SIGHUP.
#[derive(Debug)]
pub(crate) enum Reload {
    Applied,
    /// The `reload refused` records, one per problem.
    Refused(Vec<Value>),
}

fn read_lines(pipe: impl Read + Send + 'static, lines: Lines) {
    thread::spawn(move || {
        let reader = BufReader::new(pipe);
        for line in reader.lines() {
            let Ok(line) = line else { break };
            lines.lock().expect("log lock").push(line);
        }
    });
}

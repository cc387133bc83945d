//! Starting the real `kisee` binary: a settings file in a temporary folder,
//! the process, its logs, and its readiness.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use super::client::{Client, RequestBuilder};
use super::pki::{Pki, p256_key_pair};
use super::users::TestUser;

/// How long a start may take before the test fails.
const START_BOUND: Duration = Duration::from_secs(20);

/// The base of every absolute link, as the fixture configures it.
pub(crate) const PUBLIC_URL: &str = "https://localhost";

/// The issuer the fixture configures.
pub(crate) const ISSUER: &str = "https://kisee.test";

/// A settings file and everything it points to, in a folder of its own.
pub(crate) struct Fixture {
    dir: TempDir,
    pki: Pki,
    settings: Value,
    raw_settings: Option<String>,
    env: Vec<(String, String)>,
    /// The JWT signing key the settings name, PKCS#8 PEM.
    pub(crate) jwt_key_pem: String,
}

impl Fixture {
    /// TLS on 127.0.0.1:0, a P-256 signing key, a memory backend with no
    /// users, JSON logs at debug. Every path in the file is relative.
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let pki = Pki::generate();
        let (jwt_key_pem, _) = p256_key_pair();

        std::fs::create_dir(dir.path().join("tls")).expect("tls folder");
        write(&dir.path().join("tls/cert.pem"), &pki.leaf_cert_pem);
        write(&dir.path().join("tls/key.pem"), &pki.leaf_key_pem);
        write(&dir.path().join("jwt-signing.pem"), &jwt_key_pem);

        let settings = json!({
            "server": {
                "listen": "127.0.0.1:0",
                "public_url": PUBLIC_URL,
                "tls": {"certificate": "tls/cert.pem", "private_key": "tls/key.pem"},
            },
            "jwt": {"issuer": ISSUER, "private_key": "jwt-signing.pem"},
            "backend": {"kind": "memory", "memory": {"users": []}},
            "log": {"level": "debug", "format": "json"},
        });
        Fixture {
            dir,
            pki,
            settings,
            raw_settings: None,
            env: Vec::new(),
            jwt_key_pem,
        }
    }

    /// Adds a static account.
    pub(crate) fn user(mut self, user: &TestUser) -> Self {
        let users = self.settings["backend"]["memory"]["users"]
            .as_array_mut()
            .expect("users is a list");
        users.push(user.settings_entry());
        self
    }

    /// Sets a key by its dotted path (`backend.memory.registration`).
    pub(crate) fn set(mut self, path: &str, value: Value) -> Self {
        let mut node = &mut self.settings;
        for key in path.split('.') {
            if !node.is_object() {
                *node = json!({});
            }
            node = node
                .as_object_mut()
                .expect("an object")
                .entry(key)
                .or_insert(Value::Null);
        }
        *node = value;
        self
    }

    /// Removes a key by its dotted path.
    pub(crate) fn unset(mut self, path: &str) -> Self {
        let (parent, last) = path.rsplit_once('.').unwrap_or(("", path));
        let mut node = &mut self.settings;
        for key in parent.split('.').filter(|k| !k.is_empty()) {
            node = &mut node[key];
        }
        node.as_object_mut().expect("an object").remove(last);
        self
    }

    /// Writes this text as the settings file instead of the built one.
    pub(crate) fn raw_settings(mut self, yaml: &str) -> Self {
        self.raw_settings = Some(yaml.to_owned());
        self
    }

    /// An environment variable for the server process.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn settings_path(&self) -> PathBuf {
        self.dir.path().join("settings.yaml")
    }

    /// Writes the settings file (JSON is YAML) and returns its path.
    pub(crate) fn write_settings(&self) -> PathBuf {
        let text = match &self.raw_settings {
            Some(raw) => raw.clone(),
            None => serde_json::to_string_pretty(&self.settings).expect("settings serialise"),
        };
        let path = self.settings_path();
        write(&path, &text);
        path
    }

    /// The `kisee` command with a clean environment, run from `/` so that
    /// relative paths can only resolve against the settings folder.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kisee"));
        command.current_dir("/");
        for (key, _) in std::env::vars() {
            if key.starts_with("KISEE_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Starts the server and waits until every listen address is bound.
    pub(crate) fn start(&self) -> Server {
        let path = self.write_settings();
        let mut command = self.command();
        command.arg("--settings").arg(&path);
        Server::spawn(command, self.listener_count(), &self.pki)
    }

    /// Runs the server expecting it to refuse to start: it must exit
    /// non-zero without ever listening.
    pub(crate) fn fail_to_start(&self) -> Exit {
        let path = self.write_settings();
        let mut command = self.command();
        command.arg("--settings").arg(&path);
        let exit = Exit::run(command, None);
        assert!(
            !exit.status.success(),
            "the server should have refused to start\n{}",
            exit.describe()
        );
        assert!(
            listening_addrs(&exit.stderr).is_empty(),
            "the server listened before failing\n{}",
            exit.describe()
        );
        exit
    }

    /// Runs `kisee check-settings --settings PATH`.
    pub(crate) fn check_settings(&self) -> Exit {
        let path = self.write_settings();
        let mut command = self.command();
        command.arg("check-settings").arg("--settings").arg(&path);
        Exit::run(command, None)
    }

    fn listener_count(&self) -> usize {
        match &self.settings["server"]["listen"] {
            Value::Array(list) if self.raw_settings.is_none() => list.len(),
            _ => 1,
        }
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Lines a child wrote, shared with the thread that reads them.
type Lines = Arc<Mutex<Vec<String>>>;

/// Reads a pipe line by line into `lines`, telling `tx` about each one.
fn drain(
    pipe: impl Read + Send + 'static,
    lines: Lines,
    tx: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
            lines.lock().expect("log lock").push(line.clone());
            if let Some(tx) = &tx {
                let _ = tx.send(line);
            }
        }
    })
}

/// The addresses announced by `listening` log lines.
pub(crate) fn listening_addrs(lines: &[String]) -> Vec<SocketAddr> {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|record| record["fields"]["message"] == "listening")
        .filter_map(|record| record["fields"]["addr"].as_str()?.parse().ok())
        .collect()
}

/// A running `kisee`. Killed when dropped.
pub(crate) struct Server {
    child: Child,
    addrs: Vec<SocketAddr>,
    stderr: Lines,
    stdout: Lines,
    client: Client,
}

impl Server {
    fn spawn(mut command: Command, listeners: usize, pki: &Pki) -> Server {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the kisee binary starts");

        let stderr = Lines::default();
        let stdout = Lines::default();
        let (tx, rx) = mpsc::channel();
        drain(
            child.stderr.take().expect("stderr"),
            stderr.clone(),
            Some(tx),
        );
        drain(child.stdout.take().expect("stdout"), stdout.clone(), None);

        let addrs = wait_for_listening(&rx, listeners, &mut child, &stderr);
        let client = Client::new(addrs[0], &pki.ca_der);
        Server {
            child,
            addrs,
            stderr,
            stdout,
            client,
        }
    }

    /// The first listen address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub(crate) fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// A client for the first address, to move into tasks.
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// A client for another of the listen addresses.
    pub(crate) fn client_for(&self, addr: SocketAddr) -> Client {
        self.client.with_addr(addr)
    }

    pub(crate) fn request(&self, method: &str, path: &str) -> RequestBuilder {
        self.client.request(method, path)
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

    /// Every stderr line so far.
    pub(crate) fn logs(&self) -> Vec<String> {
        self.stderr.lock().expect("log lock").clone()
    }

    /// The stderr lines that parse as JSON log records.
    pub(crate) fn log_records(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Everything the process printed, stderr then stdout.
    pub(crate) fn output(&self) -> String {
        let mut text = self.logs().join("\n");
        text.push('\n');
        text.push_str(&self.stdout.lock().expect("stdout lock").join("\n"));
        text
    }

    /// SIGKILL, as a crash would: no chance to flush or clean up.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for_listening(
    rx: &Receiver<String>,
    listeners: usize,
    child: &mut Child,
    stderr: &Lines,
) -> Vec<SocketAddr> {
    let deadline = Instant::now() + START_BOUND;
    let mut addrs = Vec::new();
    while addrs.len() < listeners {
        let left = deadline.saturating_duration_since(Instant::now());
        let why = match rx.recv_timeout(left) {
            Ok(line) => {
                addrs.extend(listening_addrs(&[line]));
                continue;
            }
            Err(RecvTimeoutError::Timeout) => "no `listening` line within 20 s",
            Err(RecvTimeoutError::Disconnected) => "the process closed stderr (it exited)",
        };
        let _ = child.kill();
        let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
        let logs = stderr.lock().expect("log lock").join("\n");
        panic!("kisee did not start: {why}; exit {status}\n--- stderr ---\n{logs}");
    }
    addrs
}

/// How a short-lived `kisee` run ended.
pub(crate) struct Exit {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<String>,
    pub(crate) stderr: Vec<String>,
}

impl Exit {
    /// Runs a command to its end (20 s at most), feeding it `stdin` if given.
    pub(crate) fn run(mut command: Command, stdin: Option<&str>) -> Exit {
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the kisee binary starts");
        if let Some(text) = stdin {
            feed(child.stdin.take().expect("stdin"), text);
        }
        let stderr = Lines::default();
        let stdout = Lines::default();
        let readers = [
            drain(child.stderr.take().expect("stderr"), stderr.clone(), None),
            drain(child.stdout.take().expect("stdout"), stdout.clone(), None),
        ];

        let status = wait_bounded(&mut child, &stderr);
        // The pipes close with the process, so the readers end too.
        for reader in readers {
            reader.join().expect("pipe reader");
        }
        Exit {
            status,
            stdout: stdout.lock().expect("stdout lock").clone(),
            stderr: stderr.lock().expect("stderr lock").clone(),
        }
    }

    pub(crate) fn stderr_text(&self) -> String {
        self.stderr.join("\n")
    }

    pub(crate) fn stdout_text(&self) -> String {
        self.stdout.join("\n")
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout_text(),
            self.stderr_text()
        )
    }
}

fn feed(mut stdin: ChildStdin, text: &str) {
    use std::io::Write;
    stdin.write_all(text.as_bytes()).expect("write stdin");
    // Dropping stdin closes it: the program sees end of input.
}

fn wait_bounded(child: &mut Child, stderr: &Lines) -> ExitStatus {
    let deadline = Instant::now() + START_BOUND;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let logs = stderr.lock().expect("log lock").join("\n");
            panic!("kisee did not exit within 20 s\n--- stderr ---\n{logs}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

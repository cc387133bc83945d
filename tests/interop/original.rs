//! The original Python Kisee 21.9.0 with its in-memory demo backend: a
//! settings.toml in the format its `load_conf` reads, a P-256 signing key
//! (PyJWT 2.10 signs ES256 with it; the secp256k1 keys the original shipped
//! are refused by current PyJWT), and what its demo prints: the `root`
//! password and every password-reset challenge.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use tempfile::TempDir;
use toml::Table;

use super::peers::{Peer, free_port, installed};
use crate::common::ISSUER;
use crate::common::pki::p256_key_pair;

/// A running original Kisee. Stopped when dropped.
pub(crate) struct OriginalKisee {
    peer: Peer,
    dir: TempDir,
    /// The `server.hostname` it was given: the base of its links.
    pub(crate) base: String,
    /// Its signing key, PKCS#8 PEM.
    pub(crate) private_pem: String,
    /// Its verification key, SPKI PEM.
    pub(crate) public_pem: String,
    /// Reset challenges already handed out, per username.
    consumed: Mutex<std::collections::HashMap<String, usize>>,
}

impl OriginalKisee {
    /// Starts it on a free port; `prefix` is appended to its hostname, as
    /// when a proxy serves it under a path.
    pub(crate) async fn start(prefix: &str) -> Self {
        let program = installed("INTEROP_ORIGINAL_KISEE");
        let dir = tempfile::tempdir().expect("temporary folder");
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}{prefix}");
        let (private_pem, public_pem) = p256_key_pair();

        let settings = settings_toml(port, &base, &private_pem, &public_pem);
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, &settings).expect("write settings.toml");

        let mut command = Command::new(program);
        command.arg("--settings").arg(&path).current_dir(dir.path());
        let peer = Peer::start("the original Kisee", command, port, "/health").await;
        OriginalKisee {
            peer,
            dir,
            base,
            private_pem,
            public_pem,
            consumed: Mutex::default(),
        }
    }

    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.peer.addr
    }

    /// The settings file it runs with.
    pub(crate) fn settings_path(&self) -> PathBuf {
        self.dir.path().join("settings.toml")
    }

    /// The demo's `root` password, printed at start.
    pub(crate) async fn root_password(&self) -> String {
        self.peer
            .nth_line(0, |line| {
                line.trim().strip_prefix("password: ").map(str::to_owned)
            })
            .await
    }

    /// The next password-reset challenge printed for `username`, or `None`
    /// when none comes within a few seconds.
    pub(crate) async fn next_reset_token(&self, username: &str) -> Option<String> {
        let nth = *self
            .consumed
            .lock()
            .expect("lock")
            .get(username)
            .unwrap_or(&0);
        let prefix = format!("Password reset challenge for user {username} is ");
        let pick = |line: &str| line.trim().strip_prefix(&prefix).map(str::to_owned);
        let found = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            self.peer.nth_line(nth, pick),
        )
        .await
        .ok()?;
        self.consumed
            .lock()
            .expect("lock")
            .insert(username.to_owned(), nth + 1);
        Some(found)
    }
}

/// The original's settings: `[server]` host, port and hostname, `[jwt]`
/// iss and the key pair as PEM text, `[identity_backend]` class.
pub(crate) fn settings_toml(port: u16, base: &str, private_pem: &str, public_pem: &str) -> String {
    let mut server = Table::new();
    server.insert("host".into(), "127.0.0.1".into());
    server.insert("port".into(), i64::from(port).into());
    server.insert("hostname".into(), base.into());
    let mut jwt = Table::new();
    jwt.insert("iss".into(), ISSUER.into());
    jwt.insert("private_key".into(), private_pem.into());
    jwt.insert("public_key".into(), public_pem.into());
    let mut backend = Table::new();
    backend.insert("class".into(), "kisee.providers.demo.DemoBackend".into());

    let mut root = Table::new();
    root.insert("server".into(), server.into());
    root.insert("jwt".into(), jwt.into());
    root.insert("identity_backend".into(), backend.into());
    toml::to_string(&root).expect("TOML")
}

//! Our server, started through the shared harness: as the comparison runs
//! it (the same demo as the original's), and as a peer such as Pasee
//! reaches it (a real port in its public URL, a CA the peer can trust).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::client::Client;
use crate::common::mail::{spooled, wait_for_mails};
use crate::common::pki::Pki;
use crate::common::{Fixture, PUBLIC_URL, Server};

use super::peers::free_port;

/// A running `kisee` and what the tests need to talk to it.
pub(crate) struct OursKisee {
    pub(crate) fixture: Fixture,
    pub(crate) server: Server,
    /// A client that trusts the certificate it serves.
    pub(crate) client: Client,
    /// Its `server.public_url`.
    pub(crate) base: String,
    /// Reset messages already handed out.
    seen: Mutex<HashSet<PathBuf>>,
}

/// The settings beside the original's demo: a `root` account with a
/// random password, open registration, reset tokens written to a spool
/// folder (the demo printed them). The throttle is off: the original had
/// none, and the comparison makes more failed attempts than it allows.
pub(crate) fn demo_fixture() -> Fixture {
    let off = |count_key: &str, window: &str| json!({count_key: 0, "window": window});
    Fixture::new()
        .set("backend.memory.demo_root", json!(true))
        .set("backend.memory.registration", json!(true))
        .set("recovery", json!({"delivery": "file", "folder": "spool"}))
        .set(
            "throttle",
            json!({
                "per_user": off("failures", "5m"),
                "per_client": off("failures", "5m"),
                "registrations_per_client": off("count", "1h"),
            }),
        )
}

impl OursKisee {
    /// Starts the fixture as it is; its public URL is `base`.
    pub(crate) fn start(fixture: Fixture, base: &str) -> Self {
        let server = fixture.start();
        let client = server.client();
        OursKisee {
            fixture,
            server,
            client,
            base: base.to_owned(),
            seen: Mutex::default(),
        }
    }

    /// Starts the fixture the way the comparison's demo runs.
    pub(crate) fn start_demo() -> Self {
        Self::start(demo_fixture(), PUBLIC_URL)
    }

    /// Starts the fixture on a port picked here, with that port in its
    /// public URL so that the links it hands out are reachable, serving a
    /// certificate from `pki`, whose CA a peer is told to trust.
    pub(crate) fn start_reachable(fixture: Fixture, pki: &Pki) -> Self {
        let port = free_port();
        let tls = fixture.dir().join("peer-tls");
        std::fs::create_dir_all(&tls).expect("tls folder");
        std::fs::write(tls.join("cert.pem"), &pki.leaf_cert_pem).expect("certificate");
        std::fs::write(tls.join("key.pem"), &pki.leaf_key_pem).expect("key");
        let base = format!("https://localhost:{port}");
        let fixture = fixture
            .set("server.listen", json!(format!("127.0.0.1:{port}")))
            .set("server.public_url", json!(base))
            .set(
                "server.tls",
                json!({"certificate": tls.join("cert.pem"), "private_key": tls.join("key.pem")}),
            );
        let mut ours = Self::start(fixture, &base);
        ours.client = Client::new(ours.server.addr(), &pki.ca_der);
        ours
    }

    /// The demo `root` password, printed at start.
    pub(crate) fn root_password(&self) -> String {
        let marker = "demo account: username root password ";
        self.server
            .output()
            .lines()
            .find_map(|line| line.split_once(marker).map(|(_, p)| p.trim().to_owned()))
            .unwrap_or_else(|| panic!("no demo account printed\n{}", self.server.output()))
    }

    /// The next reset token spooled for `email`, or `None` when none comes
    /// within a few seconds.
    pub(crate) async fn next_reset_token(&self, email: &str) -> Option<String> {
        let folder = self.fixture.dir().join("spool");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let seen = self.seen.lock().expect("lock").len();
            if spooled(&folder).len() > seen {
                let mails = wait_for_mails(&folder, seen + 1).await;
                let mut seen = self.seen.lock().expect("lock");
                let fresh = mails
                    .into_iter()
                    .find(|m| !seen.contains(&m.path) && m.to.contains(email));
                if let Some(mail) = fresh {
                    seen.insert(mail.path.clone());
                    return Some(mail.token);
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Its signing key's public half, SPKI PEM.
    pub(crate) fn public_pem(&self) -> String {
        public_pem_of(&self.fixture.jwt_key_pem)
    }
}

/// The SPKI PEM of a private key PEM.
pub(crate) fn public_pem_of(private_pem: &str) -> String {
    let key =
        openssl::pkey::PKey::private_key_from_pem(private_pem.as_bytes()).expect("a private key");
    String::from_utf8(key.public_key_to_pem().expect("public PEM")).expect("ASCII")
}

/// The PEM of a DER certificate, for a peer's trust store.
pub(crate) fn certificate_pem(der: &[u8]) -> String {
    let cert = openssl::x509::X509::from_der(der).expect("a certificate");
    String::from_utf8(cert.to_pem().expect("PEM")).expect("ASCII")
}

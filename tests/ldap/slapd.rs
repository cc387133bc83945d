//! A private OpenLDAP `slapd` for one test: certificates, configuration and
//! seed data in a temporary folder, two free ports on 127.0.0.1, and the
//! process, which can be stopped and started again on the same ports.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use super::certs::DirectoryCerts;
use super::seed::{self, GROUPS, PEOPLE, READER_DN, READER_PASSWORD};

/// How long slapd may take to answer after it is launched.
const READY_BOUND: Duration = Duration::from_secs(15);

/// How many times a first start picks new ports when slapd cannot bind.
const PORT_ATTEMPTS: usize = 3;

/// How Kisee finds a user's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `bind_dn_template`: bind straight to `uid={username},ou=people,...`.
    DirectBind,
    /// `search`: the reader finds the entry, then Kisee binds as it.
    Search,
}

/// Which listener Kisee is pointed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `ldap://` upgraded with StartTLS.
    StartTls,
    /// `ldaps://`, TLS from the first byte.
    Ldaps,
}

/// A running (or stopped) slapd. Killed when dropped.
pub(crate) struct Slapd {
    dir: TempDir,
    port: u16,
    tls_port: u16,
    child: Option<Child>,
}

impl Slapd {
    /// Makes certificates, configuration and seed data, then starts slapd
    /// and waits until it answers.
    pub(crate) fn start_new() -> Slapd {
        let dir = tempfile::tempdir().expect("temporary folder");
        write_certificates(dir.path());
        write_config(dir.path());
        load_seed(dir.path());

        let mut slapd = Slapd {
            dir,
            port: 0,
            tls_port: 0,
            child: None,
        };
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            (slapd.port, slapd.tls_port) = two_free_ports();
            match slapd.launch() {
                Ok(()) => return slapd,
                // Another process may have taken a port in between: retry.
                Err(why) => last_failure = why,
            }
        }
        panic!("slapd did not start: {last_failure}");
    }

    /// Starts slapd again, on the same ports, after [`Slapd::stop`].
    pub(crate) fn start(&mut self) {
        assert!(self.child.is_none(), "slapd is already running");
        let deadline = Instant::now() + READY_BOUND;
        // The old listening sockets may linger for a moment after a kill.
        while let Err(why) = self.launch() {
            assert!(Instant::now() < deadline, "slapd did not restart: {why}");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills slapd and waits for it to end. Connections to it break.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `ldap://127.0.0.1:PORT` (plain, or for StartTLS).
    pub(crate) fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:PORT` (implicit TLS).
    pub(crate) fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }

    /// The URL for a transport.
    pub(crate) fn url(&self, transport: Transport) -> String {
        match transport {
            Transport::StartTls => self.ldap_url(),
            Transport::Ldaps => self.ldaps_url(),
        }
    }

    /// The CA that signed the directory's certificate (PEM).
    pub(crate) fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A CA that did not sign it (PEM).
    pub(crate) fn wrong_ca_path(&self) -> PathBuf {
        self.dir.path().join("wrong-ca.pem")
    }

    /// The folder slapd lives in; tests may put their own files there.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What slapd wrote on stdout and stderr so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// The `backend` section of Kisee's settings, StartTLS on `ldap://`,
    /// groups and attributes wanted, dead servers skipped for one second.
    pub(crate) fn backend(&self, mode: Mode) -> Value {
        self.backend_over(mode, Transport::StartTls)
    }

    /// Like [`Slapd::backend`], over the given transport.
    pub(crate) fn backend_over(&self, mode: Mode, transport: Transport) -> Value {
        let mut ldap = json!({
            "urls": [self.url(transport)],
            "starttls": true,
            "ca_certificate": self.ca_path(),
            "timeout": "5s",
            "retry_dead_after": "1s",
            "groups": {"base_dn": GROUPS, "filter": "(member={dn})", "name_attribute": "cn"},
            "attributes": {"email": "mail", "name": "cn"},
            "pool_size": 8,
        });
        match mode {
            Mode::DirectBind => {
                ldap["bind_dn_template"] = json!(format!("uid={{username}},{PEOPLE}"));
            }
            Mode::Search => ldap["search"] = search_section("(uid={username})"),
        }
        json!({"kind": "ldap", "ldap": ldap})
    }

    fn launch(&mut self) -> Result<(), String> {
        let log = append(&self.dir.path().join("slapd.log"));
        let listeners = format!("{}/ {}/", self.ldap_url(), self.ldaps_url());
        let child = Command::new("slapd")
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .args(["-h", &listeners, "-d", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run slapd: {e}"))?;
        self.child = Some(child);
        self.wait_until_ready()
    }

    /// Polls with an anonymous `ldapwhoami` until slapd answers, it exits,
    /// or the bound passes.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_BOUND;
        loop {
            let child = self.child.as_mut().expect("a launched slapd");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Err(format!("slapd exited with {status}\n{}", self.log()));
            }
            if ldapwhoami(&self.ldap_url(), None, &[]).status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!("no answer within {READY_BOUND:?}\n{}", self.log()));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `search` section, finding people with `filter` as the reader.
pub(crate) fn search_section(filter: &str) -> Value {
    json!({
        "base_dn": PEOPLE,
        "filter": filter,
        "bind_dn": READER_DN,
        "bind_password": READER_PASSWORD,
    })
}

/// `ldapwhoami -x -H URL ARGS...`, with a network timeout, trusting `ca`
/// (and requiring a valid certificate) when TLS is used.
pub(crate) fn ldapwhoami(url: &str, ca: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new("ldapwhoami");
    command
        .args(["-x", "-o", "nettimeout=2", "-H", url])
        .args(args)
        .env("LDAPTLS_REQCERT", "demand")
        .stdin(Stdio::null());
    if let Some(ca) = ca {
        command.env("LDAPTLS_CACERT", ca);
    }
    command.output().expect("ldapwhoami runs")
}

fn two_free_ports() -> (u16, u16) {
    // Both are held at once so that they differ; slapd binds them right after.
    let first = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let second = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = |l: &TcpListener| l.local_addr().expect("local address").port();
    (port(&first), port(&second))
}

fn write_certificates(dir: &Path) {
    let certs = DirectoryCerts::generate();
    write(&dir.join("ca.pem"), &certs.ca_pem);
    write(&dir.join("server.pem"), &certs.server_cert_pem);
    write(&dir.join("server-key.pem"), &certs.server_key_pem);
    write(&dir.join("wrong-ca.pem"), &certs.wrong_ca_pem);
}

fn write_config(dir: &Path) {
    std::fs::create_dir(dir.join("db")).expect("database folder");
    let d = dir.display();
    let admin_hash = slappasswd(seed::ADMIN_PASSWORD);
    let config = format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema

modulepath /usr/lib/ldap
moduleload back_mdb

pidfile "{d}/slapd.pid"
argsfile "{d}/slapd.args"

# Many directories answer a DN with an empty password as a successful
# unauthenticated bind (RFC 4513, 5.1.2); slapd does when allowed to, which
# is the hole Kisee must close itself.
allow bind_anon_dn

TLSCACertificateFile "{d}/ca.pem"
TLSCertificateFile "{d}/server.pem"
TLSCertificateKeyFile "{d}/server-key.pem"

database mdb
suffix "{suffix}"
rootdn "{admin}"
rootpw {admin_hash}
directory "{d}/db"
index objectClass,uid,cn,member eq

access to attrs=userPassword
    by anonymous auth
    by * none

access to dn.subtree="{groups}"
    by dn.exact="{reader}" read
    by users read
    by * none

access to *
    by dn.exact="{reader}" read
    by self read
    by * none
"#,
        suffix = seed::SUFFIX,
        admin = seed::ADMIN_DN,
        groups = GROUPS,
        reader = READER_DN,
    );
    write(&dir.join("slapd.conf"), &config);
}

/// Loads the seed offline, before slapd ever runs.
fn load_seed(dir: &Path) {
    let ldif = seed::ldif(&slappasswd);
    write(&dir.join("seed.ldif"), &ldif);
    let output = Command::new("slapadd")
        .arg("-q")
        .arg("-f")
        .arg(dir.join("slapd.conf"))
        .arg("-l")
        .arg(dir.join("seed.ldif"))
        .output()
        .expect("slapadd runs");
    assert!(
        output.status.success(),
        "slapadd failed: {}\n{}\n--- seed ---\n{ldif}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A `{SSHA}` hash of the password, as `slappasswd -s` makes it.
fn slappasswd(password: &str) -> String {
    let output = Command::new("slappasswd")
        .args(["-n", "-s", password])
        .output()
        .expect("slappasswd runs");
    assert!(output.status.success(), "slappasswd failed: {output:?}");
    String::from_utf8(output.stdout).expect("an ASCII hash")
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

//! PAM stacks under pam_wrapper: a service folder of our own, a pam_matrix
//! password file, and a Kisee fixture that runs against them.

use std::path::{Path, PathBuf};

use serde_json::json;
use tempfile::TempDir;

use crate::common::Fixture;

const LIBPAM_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so";
const PAM_MATRIX: &str = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so";
const PAM_DENY: &str = "/usr/lib/x86_64-linux-gnu/security/pam_deny.so";

/// The service name the stacks are written under.
pub(crate) const SERVICE: &str = "kisee-matrix";

/// A service file and its pam_matrix accounts, in a temporary folder.
pub(crate) struct Stack {
    dir: TempDir,
    accounts: Vec<String>,
    auth_first: Vec<String>,
}

impl Stack {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::create_dir(dir.path().join("services")).expect("service folder");
        Stack {
            dir,
            accounts: Vec::new(),
            auth_first: Vec::new(),
        }
    }

    /// An account both PAM phases accept.
    pub(crate) fn account(self, username: &str, password: &str) -> Self {
        self.account_of(username, password, SERVICE)
    }

    /// An account recorded for another service: its password passes the
    /// auth phase, and the account phase refuses it.
    pub(crate) fn account_of(mut self, username: &str, password: &str, service: &str) -> Self {
        self.accounts
            .push(format!("{username}:{password}:{service}"));
        self
    }

    /// An auth line (absolute module path) that runs before pam_matrix.
    pub(crate) fn auth_first(mut self, line: &str) -> Self {
        self.auth_first.push(line.to_owned());
        self
    }

    /// The folder pam_wrapper reads service files from.
    pub(crate) fn service_dir(&self) -> PathBuf {
        self.dir.path().join("services")
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the files and returns a fixture that runs Kisee on them with
    /// the documented defaults for the PAM backend.
    pub(crate) fn fixture(&self) -> Fixture {
        self.write();
        let backend = json!({
            "kind": "pam",
            "pam": {"service": SERVICE, "groups": true, "max_concurrent": 16, "timeout": "10s"},
        });
        wrapped(Fixture::new().set("backend", backend), &self.service_dir())
    }

    fn write(&self) {
        let passdb = self.dir.path().join("passdb");
        std::fs::write(&passdb, self.accounts.join("\n") + "\n").expect("write passdb");

        let matrix = format!("{PAM_MATRIX} passdb={}", passdb.display());
        let mut lines = self.auth_first.clone();
        lines.push(format!("auth required {matrix}"));
        lines.push(format!("account required {matrix}"));
        let services = self.service_dir();
        std::fs::write(services.join(SERVICE), lines.join("\n") + "\n").expect("service file");

        let deny = ["auth", "account", "password", "session"]
            .map(|phase| format!("{phase} required {PAM_DENY}\n"))
            .concat();
        std::fs::write(services.join("other"), deny).expect("`other` service file");
    }
}

/// The environment that puts a process under pam_wrapper with this folder.
pub(crate) fn wrapped(fixture: Fixture, service_dir: &Path) -> Fixture {
    fixture
        .env("LD_PRELOAD", LIBPAM_WRAPPER)
        .env("PAM_WRAPPER", "1")
        .env(
            "PAM_WRAPPER_SERVICE_DIR",
            &service_dir.display().to_string(),
        )
}

//! `kisee check-settings` on the PAM backend: it looks for the service file
//! where PAM (or pam_wrapper) will read it.

use serde_json::json;

use crate::wrapper::{SERVICE, Stack};

#[test]
fn check_settings_finds_the_pam_service_file() {
    let stack = Stack::new().account("alice", "unused-password");

    let exit = stack.fixture().check_settings();

    let expected = format!(
        "ok: PAM service file {}",
        stack.service_dir().join(SERVICE).display()
    );
    assert!(exit.status.success(), "{}", exit.describe());
    assert!(
        exit.stdout.contains(&expected),
        "no {expected:?} line:\n{}",
        exit.describe()
    );
}

#[test]
fn check_settings_fails_on_a_service_without_a_file() {
    let stack = Stack::new();

    let fixture = stack
        .fixture()
        .set("backend.pam.service", json!("no-such-service"));
    let exit = fixture.check_settings();

    let missing = stack.service_dir().join("no-such-service");
    let prefix = format!("FAILED: PAM service file {}", missing.display());
    assert!(!exit.status.success(), "{}", exit.describe());
    assert!(
        exit.stdout.iter().any(|line| line.starts_with(&prefix)),
        "no {prefix:?} line:\n{}",
        exit.describe()
    );
}

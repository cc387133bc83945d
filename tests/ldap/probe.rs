//! `kisee check-settings` with an LDAP backend probes the directory step by
//! step: one `ok:` or `FAILED:` line per step on stdout, in order.

use serde_json::json;

use crate::common::server::Exit;
use crate::seed::{PEOPLE, READER_DN};
use crate::slapd::{Mode, Slapd, Transport};
use crate::with_backend;

/// The step lines of a run, in order.
fn steps(exit: &Exit) -> Vec<&str> {
    exit.stdout
        .iter()
        .map(String::as_str)
        .filter(|line| line.starts_with("ok: ") || line.starts_with("FAILED: "))
        .collect()
}

fn check(slapd: &Slapd, mode: Mode, transport: Transport) -> Exit {
    with_backend(slapd.backend_over(mode, transport)).check_settings()
}

#[test]
fn check_settings_probes_connect_tls_service_bind_and_search() {
    let slapd = Slapd::start_new();
    let url = slapd.ldap_url();

    let exit = check(&slapd, Mode::Search, Transport::StartTls);

    assert!(exit.status.success(), "{}", exit.describe());
    let expected = [
        format!("ok: connect {url}"),
        format!("ok: tls {url}"),
        format!("ok: service bind {READER_DN}"),
        format!("ok: search {PEOPLE}"),
    ];
    assert_eq!(steps(&exit), expected, "{}", exit.describe());
    assert_eq!(exit.stdout.last().map(String::as_str), Some("settings OK"));
}

#[test]
fn check_settings_over_ldaps_in_direct_bind_mode_probes_connect_and_tls() {
    let slapd = Slapd::start_new();
    let url = slapd.ldaps_url();

    let exit = check(&slapd, Mode::DirectBind, Transport::Ldaps);

    assert!(exit.status.success(), "{}", exit.describe());
    let expected = [format!("ok: connect {url}"), format!("ok: tls {url}")];
    assert_eq!(steps(&exit), expected, "{}", exit.describe());
    assert_eq!(exit.stdout.last().map(String::as_str), Some("settings OK"));
}

#[test]
fn check_settings_fails_on_a_wrong_service_password() {
    let slapd = Slapd::start_new();
    let mut backend = slapd.backend(Mode::Search);
    backend["ldap"]["search"]["bind_password"] = json!("not-the-Reader-Pw-6");

    let exit = with_backend(backend).check_settings();

    assert!(!exit.status.success(), "{}", exit.describe());
    let failed = format!("FAILED: service bind {READER_DN}: ");
    let steps = steps(&exit);
    assert!(
        steps.iter().any(|s| s.starts_with(&failed)),
        "{}",
        exit.describe()
    );
    assert!(
        steps[..2].iter().all(|s| s.starts_with("ok: ")),
        "{}",
        exit.describe()
    );
    assert!(
        !exit.describe().contains("not-the-Reader-Pw-6"),
        "{}",
        exit.describe()
    );
}

#[test]
fn check_settings_fails_to_connect_to_a_stopped_directory() {
    let mut slapd = Slapd::start_new();
    slapd.stop();

    let exit = check(&slapd, Mode::Search, Transport::StartTls);

    assert!(!exit.status.success(), "{}", exit.describe());
    let failed = format!("FAILED: connect {}: ", slapd.ldap_url());
    let first = steps(&exit).first().map(|s| s.to_string());
    assert!(
        first.is_some_and(|s| s.starts_with(&failed)),
        "{}",
        exit.describe()
    );
    assert_ne!(exit.stdout.last().map(String::as_str), Some("settings OK"));
}

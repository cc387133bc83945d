//! TLS to the directory: ldaps and StartTLS with the right CA work; a
//! directory whose certificate the configured CA did not sign is
//! unreachable, never a refusal and never a login.

use serde_json::json;

use crate::seed::{ALICE, BOB};
use crate::slapd::{Mode, Slapd, Transport};
use crate::{assert_logs_in, assert_unavailable, health, try_login, with_backend};

async fn assert_tls_logins_work(mode: Mode, transport: Transport) {
    let slapd = Slapd::start_new();
    let server = with_backend(slapd.backend_over(mode, transport)).start();

    assert_logs_in(&server, &ALICE).await;
    assert_eq!(health(&server).await, (200, json!("green")));
}

async fn assert_wrong_ca_is_unavailable(mode: Mode, transport: Transport) {
    let slapd = Slapd::start_new();
    let mut backend = slapd.backend_over(mode, transport);
    backend["ldap"]["ca_certificate"] = json!(slapd.wrong_ca_path());
    let server = with_backend(backend).start();

    for (username, password) in [(ALICE.uid, ALICE.password), (BOB.uid, "wrong-Password-9")] {
        assert_unavailable(&try_login(&server, username, password).await);
    }
    assert_eq!(health(&server).await, (503, json!("red")));
}

#[tokio::test]
async fn ldaps_with_the_right_ca_certificate_gives_tokens_by_search() {
    assert_tls_logins_work(Mode::Search, Transport::Ldaps).await;
}

#[tokio::test]
async fn ldaps_with_the_right_ca_certificate_gives_tokens_by_direct_bind() {
    assert_tls_logins_work(Mode::DirectBind, Transport::Ldaps).await;
}

#[tokio::test]
async fn starttls_with_the_right_ca_certificate_gives_tokens_by_search() {
    assert_tls_logins_work(Mode::Search, Transport::StartTls).await;
}

#[tokio::test]
async fn a_directory_signed_by_another_ca_is_unavailable_over_ldaps_by_search() {
    assert_wrong_ca_is_unavailable(Mode::Search, Transport::Ldaps).await;
}

#[tokio::test]
async fn a_directory_signed_by_another_ca_is_unavailable_over_starttls_by_direct_bind() {
    assert_wrong_ca_is_unavailable(Mode::DirectBind, Transport::StartTls).await;
}

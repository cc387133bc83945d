//! Wrong passwords, unknown users, injection attempts and ambiguous
//! searches: one refusal, the same bytes every time.

use serde_json::json;

use crate::seed::{ALICE, BOB, GROUPS, TWINS};
use crate::slapd::{Mode, Slapd, search_section};
use crate::{Server, assert_refused, kisee, login_claims, with_backend};

/// Usernames that would reach alice's entry, or several entries, if Kisee
/// pasted them into a filter or a DN unescaped.
const INJECTIONS: &[&str] = &[
    "*",
    "al*",
    "*lice",
    "alice)(uid=*",
    "*)(|(uid=*",
    "alice)(|(objectClass=*)",
    "alice\\29",
    "alice,ou=people",
    "alice,ou=people,dc=example,dc=org",
    "uid=alice,ou=people,dc=example,dc=org",
    "alice+cn=Alice Liddell",
];

async fn assert_unknown_and_wrong_look_the_same(server: &Server) {
    let wrong = assert_refused(server, ALICE.uid, "not-alices-Password-1").await;
    let unknown = assert_refused(server, "nobody-here", "not-alices-Password-1").await;
    let another = assert_refused(server, BOB.uid, ALICE.password).await;

    assert_eq!(wrong.body, unknown.body, "unknown user and wrong password");
    assert_eq!(wrong.body, another.body, "another user's password");
}

async fn assert_injections_are_refused(server: &Server) {
    for username in INJECTIONS {
        assert_refused(server, username, ALICE.password).await;
    }
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_identical_refusals_by_direct_bind() {
    let slapd = Slapd::start_new();
    let server = kisee(&slapd, Mode::DirectBind).start();
    assert_unknown_and_wrong_look_the_same(&server).await;
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_identical_refusals_by_search() {
    let slapd = Slapd::start_new();
    let server = kisee(&slapd, Mode::Search).start();
    assert_unknown_and_wrong_look_the_same(&server).await;
}

#[tokio::test]
async fn filter_and_dn_injection_attempts_are_refused_by_direct_bind() {
    let slapd = Slapd::start_new();
    let server = kisee(&slapd, Mode::DirectBind).start();
    assert_injections_are_refused(&server).await;
}

#[tokio::test]
async fn filter_and_dn_injection_attempts_are_refused_by_search() {
    let slapd = Slapd::start_new();
    let server = kisee(&slapd, Mode::Search).start();
    assert_injections_are_refused(&server).await;
}

#[tokio::test]
async fn a_search_that_finds_several_entries_is_a_refusal() {
    let slapd = Slapd::start_new();
    let mut backend = slapd.backend(Mode::Search);
    backend["ldap"]["search"] = search_section("(cn={username})");
    let server = with_backend(backend).start();

    // The filter works where it finds one entry ...
    let claims = login_claims(&server, ALICE.cn, ALICE.password).await;
    assert_eq!(claims["sub"], ALICE.cn);

    // ... and refuses both twins, whose cn is the same.
    for twin in TWINS {
        assert_refused(&server, twin.cn, twin.password).await;
    }
}

#[tokio::test]
async fn a_search_base_that_holds_no_one_refuses_everyone() {
    let slapd = Slapd::start_new();
    let mut backend = slapd.backend(Mode::Search);
    backend["ldap"]["search"]["base_dn"] = json!(GROUPS);
    let server = with_backend(backend).start();

    assert_refused(&server, ALICE.uid, ALICE.password).await;
}

//! Right passwords: tokens with the directory's groups, email and name, in
//! both modes, including for people whose names need escaping.

use crate::seed::{ALICE, AWKWARD, BOB, CAROL};
use crate::slapd::{Mode, Slapd};
use crate::{assert_logs_in, kisee, login_claims};

#[tokio::test]
async fn alice_bob_and_carol_get_their_own_claims_by_direct_bind() {
    let slapd = Slapd::start_new();
    let server = kisee(&slapd, Mode::DirectBind).start();

    for person in [ALICE, BOB, CAROL] {
        assert_logs_in(&server, &person).await;
    }
}

#[tokio::test]
async fn alice_bob_and_carol_get_their_own_claims_by_search() {
    let slapd = Slapd::start_new();
    let server = kisee(&slapd, Mode::Search).start();

    for person in [ALICE, BOB, CAROL] {
        assert_logs_in(&server, &person).await;
    }
}

#[tokio::test]
async fn names_that_need_escaping_log_in_by_direct_bind() {
    let slapd = Slapd::start_new();
    let server = kisee(&slapd, Mode::DirectBind).start();

    for person in AWKWARD {
        assert_logs_in(&server, &person).await;
    }
}

#[tokio::test]
async fn names_that_need_escaping_log_in_by_search() {
    let slapd = Slapd::start_new();
    let server = kisee(&slapd, Mode::Search).start();

    for person in AWKWARD {
        assert_logs_in(&server, &person).await;
    }
}

#[tokio::test]
async fn without_groups_and_attributes_the_token_carries_only_the_username() {
    let slapd = Slapd::start_new();
    let mut backend = slapd.backend(Mode::Search);
    let ldap = backend["ldap"].as_object_mut().unwrap();
    ldap.remove("groups");
    ldap.remove("attributes");
    let server = crate::with_backend(backend).start();

    let claims = login_claims(&server, ALICE.uid, ALICE.password).await;

    assert_eq!(claims["sub"], ALICE.uid);
    for absent in ["groups", "email", "name"] {
        assert!(!claims.contains_key(absent), "{absent} in {claims:?}");
    }
}

#[tokio::test]
async fn the_subject_is_the_username_as_it_was_sent() {
    let slapd = Slapd::start_new();
    let server = kisee(&slapd, Mode::Search).start();

    // uid matches without regard to case, so this finds alice's entry.
    let claims = login_claims(&server, "ALICE", ALICE.password).await;

    assert_eq!(claims["sub"], "ALICE");
    assert_eq!(claims["email"], ALICE.mail);
}

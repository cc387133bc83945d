//! The harness on its own: the private slapd answers as the other tests
//! assume it does, before Kisee is involved at all.

use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ldap3::{LdapConnAsync, Scope, SearchEntry};

use crate::seed::{
    ALICE, GROUPS, PEOPLE, Person, READER_DN, READER_PASSWORD, escape_filter_value, people,
};
use crate::slapd::{Slapd, ldapwhoami};

fn bind_as(slapd: &Slapd, person: &Person, password: &str) -> Output {
    ldapwhoami(
        &slapd.ldap_url(),
        None,
        &["-D", &person.dn(), "-w", password],
    )
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `ldapsearch` bound as `dn` (anonymous when empty), for one attribute.
fn ldapsearch(
    slapd: &Slapd,
    dn: &str,
    password: &str,
    base: &str,
    filter: &str,
    attribute: &str,
) -> Output {
    let mut command = Command::new("ldapsearch");
    command.args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &slapd.ldap_url()]);
    if !dn.is_empty() {
        command.args(["-D", dn, "-w", password]);
    }
    command
        .args(["-b", base, filter, attribute])
        .output()
        .expect("ldapsearch runs")
}

/// The sorted values of `attribute` that a successful search found.
fn search_as(
    slapd: &Slapd,
    dn: &str,
    password: &str,
    base: &str,
    filter: &str,
    attribute: &str,
) -> Vec<String> {
    let output = ldapsearch(slapd, dn, password, base, filter, attribute);
    assert!(output.status.success(), "ldapsearch {filter}: {output:?}");
    let mut values: Vec<String> = stdout(&output)
        .lines()
        .filter_map(|line| ldif_value(line, attribute))
        .collect();
    values.sort();
    values
}

/// The value of an LDIF line for this attribute, plain or base64.
fn ldif_value(line: &str, attribute: &str) -> Option<String> {
    let rest = line.strip_prefix(attribute)?.strip_prefix(':')?;
    match rest.strip_prefix(':') {
        Some(encoded) => {
            let bytes = STANDARD.decode(encoded.trim()).expect("base64 in LDIF");
            Some(String::from_utf8(bytes).expect("UTF-8 value"))
        }
        None => Some(rest.trim_start().to_owned()),
    }
}

#[test]
fn slapd_binds_alice_with_her_password_and_refuses_a_wrong_one() {
    let slapd = Slapd::start_new();

    let right = bind_as(&slapd, &ALICE, ALICE.password);
    assert!(right.status.success(), "{right:?}");
    assert_eq!(stdout(&right), format!("dn:{}", ALICE.dn()));

    let wrong = bind_as(&slapd, &ALICE, "not-her-password");
    assert_eq!(
        wrong.status.code(),
        Some(49),
        "invalid credentials: {wrong:?}"
    );
}

#[test]
fn slapd_takes_a_dn_with_an_empty_password_as_a_successful_unauthenticated_bind() {
    let slapd = Slapd::start_new();

    let empty = bind_as(&slapd, &ALICE, "");

    // The hole Kisee must close: success, yet nobody is authenticated.
    assert!(empty.status.success(), "{empty:?}");
    assert_eq!(stdout(&empty), "anonymous");
}

#[test]
fn every_seeded_person_binds_with_their_own_password_only() {
    let slapd = Slapd::start_new();
    for person in people() {
        let right = bind_as(&slapd, &person, person.password);
        assert!(right.status.success(), "{}: {right:?}", person.uid);
        let wrong = bind_as(&slapd, &person, ALICE.password);
        let expected = if person.uid == ALICE.uid {
            Some(0)
        } else {
            Some(49)
        };
        assert_eq!(
            wrong.status.code(),
            expected,
            "{} with alice's password",
            person.uid
        );
    }
}

#[test]
fn slapd_serves_ldaps_and_starttls_to_clients_trusting_the_test_ca_only() {
    let slapd = Slapd::start_new();
    let (ca, wrong) = (slapd.ca_path(), slapd.wrong_ca_path());
    let reader = ["-D", READER_DN, "-w", READER_PASSWORD];
    let starttls = ["-ZZ", "-D", READER_DN, "-w", READER_PASSWORD];

    assert!(
        ldapwhoami(&slapd.ldaps_url(), Some(&ca), &reader)
            .status
            .success()
    );
    assert!(
        ldapwhoami(&slapd.ldap_url(), Some(&ca), &starttls)
            .status
            .success()
    );
    assert!(
        !ldapwhoami(&slapd.ldaps_url(), Some(&wrong), &reader)
            .status
            .success()
    );
    assert!(
        !ldapwhoami(&slapd.ldap_url(), Some(&wrong), &starttls)
            .status
            .success()
    );
}

#[test]
fn slapd_stops_and_starts_again_on_the_same_ports() {
    let mut slapd = Slapd::start_new();
    let urls = (slapd.ldap_url(), slapd.ldaps_url());

    slapd.stop();
    assert!(
        !ldapwhoami(&urls.0, None, &[]).status.success(),
        "still answering"
    );

    slapd.start();
    assert_eq!((slapd.ldap_url(), slapd.ldaps_url()), urls);
    assert!(bind_as(&slapd, &ALICE, ALICE.password).status.success());
    let reader = ["-D", READER_DN, "-w", READER_PASSWORD];
    let ldaps = ldapwhoami(&urls.1, Some(&slapd.ca_path()), &reader);
    assert!(ldaps.status.success(), "{ldaps:?}");
}

#[test]
fn the_reader_sees_people_but_anonymous_sees_nothing() {
    let slapd = Slapd::start_new();

    let twins = search_as(
        &slapd,
        READER_DN,
        READER_PASSWORD,
        PEOPLE,
        "(cn=Twin)",
        "uid",
    );
    assert_eq!(twins, ["twin1", "twin2"]);
    let all = search_as(&slapd, READER_DN, READER_PASSWORD, PEOPLE, "(uid=*)", "uid");
    assert_eq!(all.len(), people().len(), "{all:?}");

    // Hidden entries: either no such object (32), or nothing found.
    let anonymous = ldapsearch(&slapd, "", "", PEOPLE, "(uid=*)", "uid");
    let hidden = anonymous.status.code() == Some(32)
        || (anonymous.status.success() && stdout(&anonymous).is_empty());
    assert!(hidden, "{anonymous:?}");
}

#[test]
fn each_person_finds_their_own_groups_with_an_escaped_member_filter() {
    let slapd = Slapd::start_new();
    for person in people() {
        let filter = format!("(member={})", escape_filter_value(&person.dn()));
        let groups = search_as(&slapd, &person.dn(), person.password, GROUPS, &filter, "cn");
        assert_eq!(groups, person.groups(), "groups of {}", person.uid);
    }
}

#[tokio::test]
async fn a_connection_bound_as_the_reader_can_bind_again_as_a_user() {
    let slapd = Slapd::start_new();
    let (conn, mut ldap) = LdapConnAsync::new(&slapd.ldap_url()).await.unwrap();
    ldap3::drive!(conn);

    ldap.simple_bind(READER_DN, READER_PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    let filter = format!("(uid={})", ALICE.uid);
    let (entries, _) = ldap
        .search(PEOPLE, Scope::Subtree, &filter, ["mail"])
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(entries.len(), 1);
    let entry = SearchEntry::construct(entries.into_iter().next().unwrap());
    assert_eq!(entry.attrs["mail"], [ALICE.mail]);

    let rebind = ldap.simple_bind(&entry.dn, ALICE.password).await.unwrap();
    assert_eq!(rebind.rc, 0, "{rebind:?}");
    let wrong = ldap.simple_bind(&entry.dn, BAD_PASSWORD).await.unwrap();
    assert_eq!(wrong.rc, 49, "{wrong:?}");
}

const BAD_PASSWORD: &str = "definitely-Not-The-Pw-0";

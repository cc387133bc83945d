//! Exactly one way of finding users: a DN template or a search, never both
//! and never neither. Either mistake stops Kisee before it listens.

use crate::slapd::{Mode, Slapd, search_section};
use crate::with_backend;

fn assert_refused_naming_backend_ldap(backend: serde_json::Value) {
    let exit = with_backend(backend).fail_to_start();
    assert!(
        exit.stderr_text().contains("backend.ldap"),
        "{}",
        exit.describe()
    );
}

#[test]
fn a_template_and_a_search_together_are_a_settings_error() {
    let slapd = Slapd::start_new();
    let mut backend = slapd.backend(Mode::DirectBind);
    backend["ldap"]["search"] = search_section("(uid={username})");

    assert_refused_naming_backend_ldap(backend);
}

#[test]
fn neither_a_template_nor_a_search_is_a_settings_error() {
    let slapd = Slapd::start_new();
    let mut backend = slapd.backend(Mode::DirectBind);
    backend["ldap"]
        .as_object_mut()
        .unwrap()
        .remove("bind_dn_template");

    assert_refused_naming_backend_ldap(backend);
}

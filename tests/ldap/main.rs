//! The LDAP backend against a real OpenLDAP slapd started for each test:
//! logins in both modes, escaping, refusals, TLS, a directory that goes
//! away and comes back, read-only behaviour, load, `check-settings`, and
//! secrets kept out of the logs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

#[path = "../common/mod.rs"]
mod common;

mod certs;
mod seed;
mod slapd;

mod directory;

//! Interoperability with the Python world this server replaces: a real
//! Pasee federating our Kisee, the original Kisee 21.9.0 answering the same
//! requests as ours side by side (every difference must be a known one),
//! and settings migrated from the original's format. The Python programs
//! come from the virtualenvs that scripts/test-interop makes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

#[path = "../common/mod.rs"]
mod common;

mod compare;
mod migrated;
mod observe;
mod original;
mod ours;
mod pasee;
mod peers;
mod plain;

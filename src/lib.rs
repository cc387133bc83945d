//! Kisee exchanges a username and password for a signed JWT, over HTTPS.
//!
//! The crate is laid out by role: [`settings`] reads and validates the
//! settings file, [`backend`] holds the credential backends behind one trait,
//! [`token`] signs and verifies JWTs, [`recovery`] delivers password-reset
//! tokens, [`tls`] builds the rustls configuration and [`http`] serves the
//! Kisee API. [`app`] ties them together and [`cli`] is the command line.

pub mod app;
pub mod audit;
pub mod backend;
pub mod cli;
mod files;
pub mod http;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod migrate;
pub mod policy;
pub mod recovery;
pub mod secret;
pub mod settings;
pub mod throttle;
pub mod throttle_store;
pub mod tls;
pub mod token;

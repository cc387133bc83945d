//! The HTTP layer: the listener and its connections ([`server`]), routing
//! ([`router`]), the handlers of each resource, the documents they answer
//! with, and the one error type mapped to responses in one place.

pub mod documents;
pub mod error;
mod handlers;
pub mod request;
pub mod response;
pub mod router;
pub mod server;
mod watchdog;

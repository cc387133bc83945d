//! The audit trail: one structured event per login attempt, registration,
//! password change and recovery request, saying who, from where, what came
//! of it and why. Events go to the log under the `kisee::audit` target, so
//! a pipeline can route them apart; they never carry a secret.

use std::net::SocketAddr;
use std::time::Instant;

/// What an audited action came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Success,
    /// Refused for the client's reasons: credentials, policy, existing name.
    Refused,
    /// Refused by the throttle before anything else.
    Throttled,
    /// The backend could not be reached.
    Unavailable,
    /// A fault of the server.
    Error,
}

impl Outcome {
    /// The value of the `outcome` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Refused => "refused",
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
            Self::Error => "error",
        }
    }
}

/// One audited action, logged when [`Event::log`] is called.
pub struct Event<'a> {
    /// `login`, `registration`, `password_change` or `recovery_request`.
    pub event: &'static str,
    /// The username the request named.
    pub user: &'a str,
    /// The client.
    pub peer: SocketAddr,
    /// The backend's name.
    pub backend: &'static str,
    /// What came of it.
    pub outcome: Outcome,
    /// Why, in a few words (`wrong credentials`, `Password is too short`).
    pub reason: &'a str,
    /// When handling started.
    pub started: Instant,
}

impl Event<'_> {
    /// Writes the event at info level.
    pub fn log(&self) {
        let elapsed_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            target: "kisee::audit",
            event = self.event,
            user = self.user,
            peer = %self.peer,
            backend = self.backend,
            outcome = self.outcome.as_str(),
            reason = self.reason,
            elapsed_ms = format_args!("{elapsed_ms:.1}"),
            "{}", self.event
        );
    }
}

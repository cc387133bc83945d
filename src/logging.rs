//! Log output: text for people, JSON lines for machines, on standard error.

use tracing_subscriber::EnvFilter;

use crate::settings::LogSettings;

/// Installs the global subscriber. `RUST_LOG`, when set, takes precedence
/// over `log.level` so an operator can raise one module's level.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,kisee={}", settings.level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests, reload) keeps the first subscriber: ignore it.
    let _ = if settings.json {
        builder.json().flatten_event(false).try_init()
    } else {
        builder.try_init()
    };
}

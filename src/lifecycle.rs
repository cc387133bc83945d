//! The process's life after start: reloading on SIGHUP, stopping on
//! SIGTERM or Ctrl-C.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::http::server::Live;
use crate::settings::{Settings, SettingsError};

/// The settings file: `--settings`, else `./settings.yaml` when there is
/// one; `None` for the built-in settings. A reload reads the same file.
pub(crate) fn settings_path(explicit: Option<&Path>) -> Option<PathBuf> {
    let default = Path::new("settings.yaml");
    explicit
        .map(Path::to_path_buf)
        .or_else(|| default.exists().then(|| default.to_path_buf()))
}

/// On SIGHUP, reads the settings file, certificate and keys again. The new
/// configuration replaces the running one only when all of it is valid;
/// otherwise the running one stays, and the log says why.
pub(crate) async fn reload_on_hangup(live: Arc<Live>, path: Option<PathBuf>) {
    use tokio::signal::unix::{SignalKind, signal};

    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot watch SIGHUP: reloading is off");
        return;
    };
    while hangups.recv().await.is_some() {
        let Some(path) = &path else {
            tracing::warn!("SIGHUP ignored: the server runs on the built-in settings, not a file");
            continue;
        };
        match reload(&live, path) {
            Ok(()) => tracing::info!(settings = %path.display(), "settings reloaded"),
            Err(problems) => {
                for problem in &problems {
                    tracing::error!(problem = %problem, "reload refused");
                }
                tracing::error!(
                    count = problems.len(),
                    "reload refused: the running settings stay"
                );
            }
        }
    }
}

fn reload(live: &Live, path: &Path) -> Result<(), Vec<String>> {
    let settings = Settings::load(path).map_err(|err| match err {
        SettingsError::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
        other => vec![other.to_string()],
    })?;
    let current = live.app();
    for (what, changed) in restart_only_changes(&current.settings, &settings) {
        if changed {
            tracing::warn!(key = what, "changed, but takes effect only at restart");
        }
    }
    let built = crate::app::rebuild(&settings, &current)?;
    if let Some(demo) = &built.demo {
        demo.announce();
    }
    live.replace(built.app, built.tls);
    Ok(())
}

/// Settings a reload cannot apply: the sockets already bound, the
/// connection bound, the log subscriber.
fn restart_only_changes(old: &Settings, new: &Settings) -> [(&'static str, bool); 6] {
    [
        ("server.listen", old.server.listen != new.server.listen),
        (
            "server.max_connections",
            old.server.max_connections != new.server.max_connections,
        ),
        ("metrics.listen", old.metrics.listen != new.metrics.listen),
        ("log.level", old.log.level != new.log.level),
        ("log.format", old.log.json != new.log.json),
        (
            "throttle.redis_url",
            old.throttle.redis_url != new.throttle.redis_url,
        ),
    ]
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
    tokio::select! {
        _ = interrupt => tracing::info!("interrupted"),
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
    }
}

//! The command line: run the server, check a settings file, hash a password.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::{EMBEDDED_DEFAULT, Settings, SettingsError};

/// Kisee: exchanges a username and password for a signed JWT, over HTTPS.
#[derive(Debug, Parser)]
#[command(name = "kisee", version)]
struct Cli {
    /// The settings file (YAML). Without it, `settings.yaml` in the working
    /// directory is used, and when that does not exist either, the built-in
    /// quick-start settings (memory backend, certificates from `certs/`).
    #[arg(long, global = true, value_name = "PATH")]
    settings: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Validate the settings, keys, certificates and backend files, then
    /// exit: 0 when the server would start, 2 with every problem listed.
    CheckSettings,
    /// Read a password on standard input and print its Argon2id PHC string,
    /// for `backend.memory.users[].password_hash`.
    HashPassword,
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings.as_deref()),
        Command::CheckSettings => check_settings(cli.settings.as_deref()),
        Command::HashPassword => hash_password(),
    }
}

/// Settings from `--settings`, else `./settings.yaml`, else the built-in ones.
fn load(explicit: Option<&Path>) -> Result<Settings, ExitCode> {
    let default = Path::new("settings.yaml");
    let loaded = match explicit {
        Some(path) => Settings::load(path),
        None if default.exists() => Settings::load(default),
        None => {
            eprintln!("kisee: no settings.yaml here, using the built-in quick-start settings");
            Settings::from_yaml(
                EMBEDDED_DEFAULT,
                Path::new("<built-in>"),
                Path::new("."),
                std::env::vars(),
            )
        }
    };
    loaded.map_err(|err| {
        report_settings_error(&err);
        ExitCode::from(2)
    })
}

fn report_settings_error(err: &SettingsError) {
    match err {
        SettingsError::Invalid(problems) => {
            eprintln!("kisee: the settings have {} problem(s):", problems.len());
            for problem in problems {
                eprintln!("  {problem}");
            }
        }
        other => eprintln!("kisee: {other}"),
    }
}

fn report_problems(problems: &[String]) -> ExitCode {
    eprintln!("kisee: cannot start, {} problem(s):", problems.len());
    for problem in problems {
        eprintln!("  {problem}");
    }
    ExitCode::from(2)
}

fn check_settings(explicit: Option<&Path>) -> ExitCode {
    let settings = match load(explicit) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let built = match crate::app::build(&settings) {
        Ok(built) => built,
        Err(problems) => return report_problems(&problems),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let Ok(runtime) = runtime else {
        eprintln!("kisee: cannot start the async runtime");
        return ExitCode::FAILURE;
    };
    let steps = runtime.block_on(built.app.backend.diagnose());
    let mut healthy = true;
    for step in &steps {
        match &step.outcome {
            Ok(()) => println!("ok: {}", step.step),
            Err(reason) => {
                healthy = false;
                println!("FAILED: {}: {reason}", step.step);
            }
        }
    }
    if !healthy {
        eprintln!("kisee: the backend's self-check failed");
        return ExitCode::from(2);
    }
    println!("settings OK");
    ExitCode::SUCCESS
}

fn hash_password() -> ExitCode {
    let mut input = String::new();
    if let Err(err) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("kisee: cannot read standard input: {err}");
        return ExitCode::FAILURE;
    }
    let password = crate::secret::Secret::new(
        input
            .strip_suffix('\n')
            .unwrap_or(&input)
            .trim_end_matches('\r'),
    );
    if password.is_empty() {
        eprintln!("kisee: the password is empty");
        return ExitCode::FAILURE;
    }
    match crate::backend::hasher::hash_now(&password) {
        Ok(phc) => {
            println!("{phc}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("kisee: {err}");
            ExitCode::FAILURE
        }
    }
}

fn serve(explicit: Option<&Path>) -> ExitCode {
    let settings = match load(explicit) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    crate::logging::init(&settings.log);
    let built = match crate::app::build(&settings) {
        Ok(built) => built,
        Err(problems) => return report_problems(&problems),
    };
    announce_start(&settings, &built);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listeners = match crate::http::server::bind(&settings.server.listen).await {
            Ok(listeners) => listeners,
            Err(err) => {
                tracing::error!(error = %err, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        if let Some(addr) = settings.metrics.listen {
            match crate::http::server::bind(&[addr]).await {
                Ok(mut bound) => {
                    let app = std::sync::Arc::clone(&built.app);
                    if let Some(listener) = bound.pop() {
                        tokio::spawn(crate::http::server::run_metrics(app, listener));
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for metrics");
                    return ExitCode::FAILURE;
                }
            }
        }
        let live = crate::http::server::Live::new(built.app, built.tls);
        tokio::spawn(reload_on_hangup(
            std::sync::Arc::clone(&live),
            settings_path(explicit),
        ));
        crate::http::server::run(live, listeners, shutdown_signal()).await;
        ExitCode::SUCCESS
    })
}

fn announce_start(settings: &Settings, built: &crate::app::Built) {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        backend = built.app.backend.name(),
        public_url = %settings.server.public_url,
        algorithm = built.app.tokens.public_key().algorithm.name(),
        kid = %built.app.tokens.public_key().kid,
        "starting"
    );
    if built.tls.is_none() {
        tracing::warn!("server.tls is not set: serving plain HTTP; put a TLS proxy in front");
    }
    if built.ephemeral_key {
        tracing::warn!(
            "jwt.private_key is not set: signing with a fresh key; tokens die with this process"
        );
    }
    if let Some(demo) = &built.demo {
        // The demo account exists to be tried by hand: its password is shown
        // once, on the terminal, and never written to the log.
        eprintln!(
            "demo account: username {} password {}",
            demo.username,
            demo.password.expose()
        );
    }
}

/// The file a reload reads: the one the server started from, when it
/// started from a file.
fn settings_path(explicit: Option<&Path>) -> Option<PathBuf> {
    let default = Path::new("settings.yaml");
    explicit
        .map(Path::to_path_buf)
        .or_else(|| default.exists().then(|| default.to_path_buf()))
}

/// On SIGHUP, reads the settings file, certificate and keys again. The new
/// configuration replaces the running one only when all of it is valid;
/// otherwise the running one stays, and the log says why.
async fn reload_on_hangup(live: std::sync::Arc<crate::http::server::Live>, path: Option<PathBuf>) {
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

fn reload(live: &crate::http::server::Live, path: &Path) -> Result<(), Vec<String>> {
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
        eprintln!(
            "demo account: username {} password {}",
            demo.username,
            demo.password.expose()
        );
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
async fn shutdown_signal() {
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

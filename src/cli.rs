//! The command line: run the server, check a settings file, hash a password.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::Built;
use crate::http::server;
use crate::lifecycle;

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
    /// Print the settings.yaml equivalent to the original Python Kisee's
    /// settings.toml, with comments for what needs the operator's hand.
    MigrateSettings {
        /// The original's settings.toml.
        original: PathBuf,
    },
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings.as_deref()),
        Command::CheckSettings => check_settings(cli.settings.as_deref()),
        Command::HashPassword => hash_password(),
        Command::MigrateSettings { original } => migrate_settings(&original),
    }
}

/// Settings from the file [`lifecycle::settings_path`] found, else the
/// built-in ones.
fn load(path: Option<&Path>) -> Result<Settings, ExitCode> {
    let loaded = match path {
        Some(path) => Settings::load(path),
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
    let settings = match load(lifecycle::settings_path(explicit).as_deref()) {
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

fn migrate_settings(original: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(original) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("kisee: cannot read {}: {err}", original.display());
            return ExitCode::FAILURE;
        }
    };
    match crate::migrate::migrate_settings(&text) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("kisee: {}: {problems}", original.display());
            ExitCode::from(2)
        }
    }
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
    let path = lifecycle::settings_path(explicit);
    let settings = match load(path.as_deref()) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    crate::logging::init(&settings.log);
    let built = match crate::app::build(&settings) {
        Ok(built) => built,
        Err(problems) => return report_problems(&problems),
    };
    announce_start(&settings, &built);

    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => {
            let code = runtime.block_on(listen_and_serve(&settings, built, path));
            // A PAM call stuck in a module must not keep the process alive.
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            code
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            ExitCode::FAILURE
        }
    }
}

/// Binds every listener, then serves until SIGTERM or Ctrl-C, reloading on
/// SIGHUP.
async fn listen_and_serve(settings: &Settings, built: Built, path: Option<PathBuf>) -> ExitCode {
    let listeners = match server::bind(&settings.server.listen).await {
        Ok(listeners) => listeners,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    if let Some(addr) = settings.metrics.listen {
        match server::bind(&[addr]).await {
            Ok(bound) => {
                for listener in bound {
                    tokio::spawn(server::run_metrics(Arc::clone(&built.app), listener));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for metrics");
                return ExitCode::FAILURE;
            }
        }
    }
    let live = server::Live::new(built.app, built.tls);
    tokio::spawn(lifecycle::reload_on_hangup(Arc::clone(&live), path));
    server::run(live, listeners, lifecycle::shutdown_signal()).await;
    ExitCode::SUCCESS
}

fn announce_start(settings: &Settings, built: &Built) {
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
        demo.announce();
    }
}

//! Load helpers for `scripts/bench`, built as a bench target so that they
//! share the crate's dependencies and its optimised profile:
//!
//! - `cheap-hash`: an Argon2id PHC string with chosen (cheap) costs, so that a
//!   throughput run measures the server rather than the password hash;
//! - `hold`: opens many keep-alive TLS connections and holds them, for
//!   resident-memory sampling;
//! - `handshakes`: one new TLS connection per request, with or without
//!   session resumption;
//! - `ldap-binds`: the raw simple-bind rate a plain ldap3 client gets.
//!
//! Each prints one JSON line on standard output. Run by `cargo bench` with
//! no subcommand, it prints its usage and succeeds.

mod hash;
mod ldap;
mod tls;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Load helpers for the Kisee benchmarks.
#[derive(Debug, Parser)]
#[command(name = "tools")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print an Argon2id PHC string for a password read on standard input.
    CheapHash(hash::Args),
    /// Open keep-alive TLS connections, send one request on each, hold them.
    Hold(tls::HoldArgs),
    /// POST on a new TLS connection per request for a while.
    Handshakes(tls::HandshakeArgs),
    /// Simple binds in a loop on several LDAP connections for a while.
    LdapBinds(ldap::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        println!("tools: load helpers for scripts/bench; see `tools --help`");
        return ExitCode::SUCCESS;
    };
    let outcome = match command {
        Command::CheapHash(args) => hash::run(&args),
        Command::Hold(args) => runtime().and_then(|rt| rt.block_on(tls::hold(args))),
        Command::Handshakes(args) => runtime().and_then(|rt| rt.block_on(tls::handshakes(args))),
        Command::LdapBinds(args) => runtime().and_then(|rt| rt.block_on(ldap::run(args))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tools: {err}");
            ExitCode::FAILURE
        }
    }
}

/// What every helper returns: a message for the operator when it fails.
type Outcome = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn runtime() -> Result<tokio::runtime::Runtime, Box<dyn std::error::Error + Send + Sync>> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

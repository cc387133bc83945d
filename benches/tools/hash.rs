//! `cheap-hash`: a PHC string whose verify costs microseconds, not the
//! default parameters' tens of milliseconds.

use std::io::Read;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::Outcome;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Memory cost in KiB.
    #[arg(long, default_value_t = 8)]
    memory_kib: u32,
    /// Passes over the memory.
    #[arg(long, default_value_t = 1)]
    passes: u32,
    /// Lanes.
    #[arg(long, default_value_t = 1)]
    lanes: u32,
}

pub(crate) fn run(args: &Args) -> Outcome {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);

    let params = Params::new(args.memory_kib, args.passes, args.lanes, None)
        .map_err(|e| format!("Argon2 parameters: {e}"))?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::generate(&mut OsRng);
    let phc = hasher
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| format!("hashing: {e}"))?;
    println!("{phc}");
    Ok(())
}

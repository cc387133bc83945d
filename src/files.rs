//! Files that hold secrets (the users file, reset-token messages).

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates `path`, which must not exist yet, readable and writable by its
/// owner alone whatever the umask, writes `bytes` and syncs them to disk:
/// the first half of a write-then-rename.
pub(crate) fn create_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

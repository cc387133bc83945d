//! The recovery spool: `*.eml` files the server writes for password resets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the server may take to write a recovery message.
const MAIL_BOUND: Duration = Duration::from_secs(10);

/// One recovery message.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    /// The value of the `To:` header.
    pub(crate) to: String,
    /// The JWT on the `Reset token:` line.
    pub(crate) token: String,
}

/// The `*.eml` files in the folder now.
pub(crate) fn spooled(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    paths.sort();
    paths
}

/// Waits (bounded) until the folder holds `count` complete messages; a file
/// counts once two successive reads see the same text with a token in it.
pub(crate) async fn wait_for_mails(folder: &Path, count: usize) -> Vec<Mail> {
    let deadline = Instant::now() + MAIL_BOUND;
    let mut previous: HashMap<PathBuf, String> = HashMap::new();
    loop {
        let mut complete = Vec::new();
        for path in spooled(folder) {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if previous.get(&path) == Some(&text) {
                if let Some(mail) = parse(&path, &text) {
                    complete.push(mail);
                }
            }
            previous.insert(path, text);
        }
        if complete.len() >= count {
            return complete;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} recovery messages in {} after 10 s",
            complete.len(),
            folder.display()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn parse(path: &Path, text: &str) -> Option<Mail> {
    let header_value = |name: &str| {
        text.lines()
            .take_while(|line| !line.trim().is_empty())
            .find_map(|line| line.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    let token = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Reset token:"))
        .map(|v| v.trim().to_owned())?;
    Some(Mail {
        path: path.to_owned(),
        text: text.to_owned(),
        to: header_value("To:").unwrap_or_default(),
        token,
    })
}

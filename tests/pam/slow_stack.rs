//! A slow PAM stack: pam_exec runs a script that sleeps before pam_matrix
//! checks the password, and the script counts the calls in flight so a test
//! can read how many PAM ran at once.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::eventually;
use crate::wrapper::Stack;

const PAM_EXEC: &str = "/usr/lib/x86_64-linux-gnu/security/pam_exec.so";

/// The script: under a lock, count the call in and keep the highest count
/// seen; sleep; count it out. Every call is also counted in total.
const SCRIPT: &str = r#"#!/bin/sh
state='STATE'
count() { echo $(( $(cat "$state/$1") + $2 )) > "$state/$1"; }
(
  flock 9
  count current 1
  count calls 1
  if [ "$(cat "$state/current")" -gt "$(cat "$state/max")" ]; then
    cp "$state/current" "$state/max"
  fi
) 9>"$state/lock"
sleep SECONDS
( flock 9; count current -1 ) 9>"$state/lock"
exit 0
"#;

/// The counters one slow stack's script keeps.
pub(crate) struct Recorder {
    state: PathBuf,
}

impl Recorder {
    /// PAM calls running now.
    pub(crate) fn current(&self) -> Option<u32> {
        self.read("current")
    }

    /// The most PAM calls ever seen running at once.
    pub(crate) fn max(&self) -> Option<u32> {
        self.read("max")
    }

    /// PAM calls started in all.
    pub(crate) fn calls(&self) -> Option<u32> {
        self.read("calls")
    }

    /// Waits until at least `n` PAM calls are running.
    pub(crate) async fn wait_for_in_flight(&self, n: u32) {
        let what = format!("{n} PAM calls in flight");
        eventually(Duration::from_secs(10), &what, || async move {
            self.current().filter(|&c| c >= n)
        })
        .await;
    }

    /// Waits until no PAM call is running, and returns the counters.
    pub(crate) async fn wait_for_idle(&self) -> (u32, u32) {
        eventually(Duration::from_secs(15), "no PAM call in flight", || async {
            match (self.current(), self.max(), self.calls()) {
                (Some(0), Some(max), Some(calls)) => Some((max, calls)),
                _ => None,
            }
        })
        .await
    }

    /// A counter; `None` while the script is rewriting it.
    fn read(&self, counter: &str) -> Option<u32> {
        let text = std::fs::read_to_string(self.state.join(counter)).ok()?;
        text.trim().parse().ok()
    }
}

/// Puts a script that takes `seconds` in front of the stack's pam_matrix.
pub(crate) fn slow(stack: Stack, seconds: u32) -> (Stack, Recorder) {
    let state = stack.dir().join("state");
    std::fs::create_dir(&state).expect("state folder");
    for counter in ["current", "max", "calls"] {
        std::fs::write(state.join(counter), "0\n").expect("counter");
    }
    let script = write_script(stack.dir(), &state, seconds);
    let line = format!("auth required {PAM_EXEC} {}", script.display());
    (stack.auth_first(&line), Recorder { state })
}

fn write_script(dir: &Path, state: &Path, seconds: u32) -> PathBuf {
    let text = SCRIPT
        .replace("STATE", &state.display().to_string())
        .replace("SECONDS", &seconds.to_string());
    let path = dir.join("slow.sh");
    std::fs::write(&path, text).expect("write the script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

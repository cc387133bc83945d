//! Throw-away accounts, groups and PAM service files on the host itself,
//! each removed when its guard is dropped, whether the test passed or not.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The tools that edit /etc/passwd and /etc/group lock those files and give
/// up when another holds them: the tests of this binary take turns.
static ACCOUNT_DATABASE: Mutex<()> = Mutex::new(());

/// Fails the test unless it runs as root: these tests change the host's
/// accounts and /etc/pam.d, and skipping them would hide a broken backend.
pub(crate) fn assert_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates system accounts and PAM service files, so it must run as root \
         (CI runs it as root); it refuses to pass without having run"
    );
}

/// A name no account or group on the host has.
fn fresh_name() -> String {
    format!("kt{:08x}", rand::random::<u32>())
}

/// Runs an account tool to success, feeding it `stdin`.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let _turn = ACCOUNT_DATABASE.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin.unwrap_or_default().as_bytes())
        .map_err(|e| format!("{program} stdin: {e}"))?;
    drop(pipe);

    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(format!("{program} {args:?}: {}: {stderr}", out.status))
}

/// A Unix group, deleted on drop.
pub(crate) struct SystemGroup {
    pub(crate) name: String,
}

impl SystemGroup {
    fn create() -> Self {
        let name = fresh_name();
        run("groupadd", &["--system", &name], None).unwrap_or_else(|e| panic!("{e}"));
        SystemGroup { name }
    }
}

impl Drop for SystemGroup {
    fn drop(&mut self) {
        if let Err(err) = run("groupdel", &[&self.name], None) {
            eprintln!("cleaning up: {err}");
        }
    }
}

/// A system account with no home and no shell, in groups of its own
/// (the first is its primary group). Deleted on drop, then its groups.
pub(crate) struct SystemUser {
    pub(crate) name: String,
    pub(crate) groups: Vec<SystemGroup>,
}

impl SystemUser {
    pub(crate) fn create(group_count: usize) -> Self {
        assert!(group_count >= 1, "an account needs a primary group");
        let groups: Vec<SystemGroup> = (0..group_count).map(|_| SystemGroup::create()).collect();
        let name = fresh_name();
        let supplementary: Vec<&str> = groups[1..].iter().map(|g| g.name.as_str()).collect();
        let mut args = vec![
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
        ];
        args.extend(["--gid", &groups[0].name]);
        let list = supplementary.join(",");
        if !list.is_empty() {
            args.extend(["--groups", &list]);
        }
        args.push(&name);
        run("useradd", &args, None).unwrap_or_else(|e| panic!("{e}"));
        SystemUser { name, groups }
    }

    /// Sets the account's password in /etc/shadow.
    pub(crate) fn set_password(&self, password: &str) {
        let line = format!("{}:{password}\n", self.name);
        run("chpasswd", &[], Some(&line)).unwrap_or_else(|e| panic!("{e}"));
    }

    /// The names of its groups, sorted.
    pub(crate) fn group_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.groups.iter().map(|g| g.name.clone()).collect();
        names.sort();
        names
    }
}

impl Drop for SystemUser {
    fn drop(&mut self) {
        if let Err(err) = run("userdel", &[&self.name], None) {
            eprintln!("cleaning up: {err}");
        }
    }
}

/// A service file in /etc/pam.d, removed on drop.
pub(crate) struct PamService {
    pub(crate) name: String,
    path: PathBuf,
}

impl PamService {
    pub(crate) fn create(text: &str) -> Self {
        let name = format!("kisee-test-{:08x}", rand::random::<u32>());
        let path = PathBuf::from("/etc/pam.d").join(&name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        PamService { name, path }
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_file(&self.path) {
            eprintln!("cleaning up {}: {err}", self.path.display());
        }
    }
}

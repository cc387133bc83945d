//! Settings migrated from the original's format: a settings.toml the
//! original really ran with becomes one ours starts from in its place, and
//! the file the original's own quick-start writes becomes one ours
//! accepts, once the step its comments ask for is done.

use std::process::{Command, Stdio};

use kisee::migrate::migrate_settings;
use serde_json::json;

use super::original::OriginalKisee;
use super::peers::installed;
use super::plain::{Req, send_plain};
use crate::common::Fixture;
use crate::common::tokens::verify_with_pem;

/// The `ACTION:` steps of a migrated file, for failure messages.
fn actions(yaml: &str) -> String {
    yaml.lines()
        .filter(|l| l.contains("ACTION:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn ours_takes_the_originals_place_with_its_migrated_settings() {
    let original = OriginalKisee::start("").await;
    let home_before = send_plain(original.addr(), &Req::get("/")).await.json();
    let toml = std::fs::read_to_string(original.settings_path()).expect("settings.toml");
    let original_public_pem = original.public_pem.clone();
    let original_private_pem = original.private_pem.clone();
    let addr = original.addr();
    drop(original);

    let yaml = migrate_settings(&toml).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        yaml.contains("is a P-256 key and can keep"),
        "{}",
        actions(&yaml)
    );
    // The step the comment asks for: the original's key, in a file.
    let fixture = Fixture::new()
        .raw_settings(&yaml)
        .env("KISEE_LOG__FORMAT", "json");
    std::fs::write(fixture.dir().join("jwt-signing.pem"), &original_private_pem)
        .expect("write the kept key");
    let server = fixture.start();
    assert_eq!(server.addr(), addr, "ours listens where the original did");

    // The same links, and tokens the original's public key verifies.
    let home = send_plain(addr, &Req::get("/")).await.json();
    for resource in ["jwt", "users", "password_recoveries"] {
        let href = &home["resources"][resource]["href"];
        assert_eq!(
            href, &home_before["resources"][resource]["href"],
            "{resource}"
        );
    }
    let password = server
        .output()
        .lines()
        .find_map(|l| l.split_once("demo account: username root password "))
        .map(|(_, p)| p.trim().to_owned())
        .expect("the demo account is printed");
    let body = json!({"login": "root", "password": password});
    let reply = send_plain(addr, &Req::post("/jwt/").json(&body)).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let token = reply.json()["tokens"][0]
        .as_str()
        .expect("a token")
        .to_owned();
    let claims = verify_with_pem(&original_public_pem, &token).claims;
    assert_eq!(claims["sub"], "root");
}

/// A PATH whose `openssl` reads standard input for `-in -`: the
/// original's quick-start pipes its key into `openssl ec -in -`, which
/// OpenSSL 3 takes for a file named `-`, so the quick-start no longer runs
/// as it is. Returns the new PATH.
fn openssl_shim(dir: &std::path::Path) -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let real = std::env::split_paths(&path)
        .map(|folder| folder.join("openssl"))
        .find(|candidate| candidate.is_file())
        .expect("openssl on PATH");
    let script = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = ec ] && [ \"$2\" = -in ] && [ \"$3\" = - ]; then\n  \
           shift 3\n  \
           exec {real} ec \"$@\"\n\
         fi\n\
         exec {real} \"$@\"\n",
        real = real.display()
    );
    let bin = dir.join("shim-bin");
    std::fs::create_dir_all(&bin).expect("shim folder");
    let shim = bin.join("openssl");
    std::fs::write(&shim, script).expect("write the shim");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!("{}:{path}", bin.display())
}

#[tokio::test]
async fn the_quickstart_settings_migrate_once_the_p256_key_is_made() {
    let quickstart = installed("INTEROP_ORIGINAL_KISEE").with_file_name("kisee-quickstart");
    let dir = tempfile::tempdir().expect("temporary folder");
    let run = Command::new(&quickstart)
        .current_dir(dir.path())
        .env("PATH", openssl_shim(dir.path()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            // Accept every default: listen address, port, URL, debug.
            child.stdin.take().expect("stdin").write_all(b"\n\n\n\n")?;
            child.wait_with_output()
        })
        .expect("kisee-quickstart runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let toml = std::fs::read_to_string(dir.path().join("settings.toml")).expect("its output");

    let yaml = migrate_settings(&toml).unwrap_or_else(|e| panic!("{e}"));

    assert!(yaml.contains("secp256k1"), "{}", actions(&yaml));
    let fixture = Fixture::new().raw_settings(&yaml);
    std::fs::remove_file(fixture.dir().join("jwt-signing.pem")).expect("no key yet");
    let before = fixture.check_settings();
    assert!(
        !before.status.success(),
        "no key yet:\n{}",
        before.describe()
    );

    // Run the command the comment gives, where the settings are.
    let command = yaml
        .lines()
        .find_map(|l| {
            l.trim_start_matches(['#', ' '])
                .strip_prefix("openssl genpkey")
        })
        .map(|rest| format!("openssl genpkey{rest}"))
        .expect("an openssl command in the comments");
    let made = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .current_dir(fixture.dir())
        .status()
        .expect("openssl runs");
    assert!(made.success(), "{command}");

    let after = fixture.check_settings();
    assert!(
        after.status.success(),
        "{}\n--- migrated ---\n{yaml}",
        after.describe()
    );
}

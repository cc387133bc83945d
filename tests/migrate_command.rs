//! `kisee migrate-settings OLD.toml`: the original's settings in, the
//! equivalent settings.yaml out, through the real binary.

#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "a test reports failure by panicking"
)]

use std::process::Command;

fn kisee(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kisee"))
        .args(args)
        .output()
        .expect("kisee runs")
}

fn secp256k1_key() -> String {
    let output = Command::new("openssl")
        .args(["ecparam", "-name", "secp256k1", "-genkey", "-noout"])
        .output()
        .expect("openssl runs");
    String::from_utf8(output.stdout).expect("a PEM")
}

#[test]
fn the_original_demo_settings_become_a_memory_backend_on_the_same_url() {
    let dir = tempfile::tempdir().expect("a folder");
    let original = dir.path().join("settings.toml");
    let toml = format!(
        "[server]\nhost = \"0.0.0.0\"\nport = 8140\nhostname = \"https://sso.example.org\"\n\n\
         [identity_backend]\nclass = \"kisee.providers.demo.DemoBackend\"\n\n\
         [jwt]\niss = \"example.org\"\nprivate_key = '''\n{}'''\n",
        secp256k1_key()
    );
    std::fs::write(&original, toml).expect("written");

    let output = kisee(&["migrate-settings", original.to_str().expect("a path")]);
    let yaml = String::from_utf8_lossy(&output.stdout);

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("the output is YAML");
    assert_eq!(parsed["backend"]["kind"], "memory");
    assert_eq!(parsed["server"]["public_url"], "https://sso.example.org");
    assert_eq!(parsed["server"]["listen"], "0.0.0.0:8140");
    assert_eq!(parsed["jwt"]["issuer"], "example.org");
    assert!(
        yaml.contains("ec_paramgen_curve:P-256"),
        "no instruction for a P-256 key:\n{yaml}"
    );
    assert!(
        !yaml.contains("BEGIN EC PRIVATE KEY"),
        "the old private key was copied:\n{yaml}"
    );
}

#[test]
fn a_missing_original_file_is_an_error_naming_it() {
    let output = kisee(&["migrate-settings", "/nonexistent/settings.toml"]);

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/settings.toml"), "{stderr}");
}

//! The users file: what was acknowledged survives a SIGKILL, and a file the
//! server cannot read stops it from starting without being touched.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use common::{Fixture, alice, login_status, password_patch, register};
use serde_json::json;

fn persistent() -> Fixture {
    Fixture::new()
        .user(&alice())
        .set("backend.memory.registration", json!(true))
        .set("backend.memory.users_file", json!("users.db"))
}

#[tokio::test]
async fn a_registration_survives_a_sigkill_right_after_its_201() {
    let fixture = persistent();
    let mut server = fixture.start();

    let res = register(&server, "dave", "dave-password-1").await;
    server.kill();

    assert_eq!(res.code(), 201, "{}", res.text());
    let server = fixture.start();
    assert_eq!(login_status(&server, "dave", "dave-password-1").await, 201);
}

#[tokio::test]
async fn several_registrations_all_survive_a_sigkill() {
    let fixture = persistent();
    let mut server = fixture.start();

    for name in ["dave", "erin", "frank"] {
        let res = register(&server, name, &format!("{name}-password-1")).await;
        assert_eq!(res.code(), 201, "{name}: {}", res.text());
    }
    server.kill();

    let server = fixture.start();
    for name in ["dave", "erin", "frank"] {
        let status = login_status(&server, name, &format!("{name}-password-1")).await;
        assert_eq!(status, 201, "{name}");
    }
}

#[tokio::test]
async fn a_password_change_survives_a_sigkill_right_after_its_204() {
    let fixture = persistent();
    let mut server = fixture.start();
    assert_eq!(
        register(&server, "dave", "dave-password-1").await.code(),
        201
    );

    let res = server
        .patch("/users/dave/")
        .basic("dave", "dave-password-1")
        .json(&password_patch("dave-password-2"))
        .send()
        .await;
    server.kill();

    assert_eq!(res.code(), 204, "{}", res.text());
    let server = fixture.start();
    assert_eq!(login_status(&server, "dave", "dave-password-2").await, 201);
    assert_eq!(login_status(&server, "dave", "dave-password-1").await, 403);
}

#[tokio::test]
async fn a_taken_name_stays_taken_after_a_restart() {
    let fixture = persistent();
    let mut server = fixture.start();
    assert_eq!(
        register(&server, "dave", "dave-password-1").await.code(),
        201
    );
    server.kill();

    let server = fixture.start();
    let again = register(&server, "dave", "other-password-2").await;

    common::assert_problem(&again, 409, "User already exist");
    assert_eq!(login_status(&server, "dave", "dave-password-1").await, 201);
}

#[test]
fn a_corrupt_users_file_refuses_start_and_is_left_unchanged() {
    let fixture = persistent();
    let garbage: &[u8] = b"\xff\xfe{not: [a users file\x00\n";
    let path = fixture.dir().join("users.db");
    std::fs::write(&path, garbage).unwrap();

    let exit = fixture.fail_to_start();

    assert!(!exit.stderr_text().trim().is_empty(), "{}", exit.describe());
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

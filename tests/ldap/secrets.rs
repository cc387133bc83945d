//! Passwords stay out of Kisee's logs: users' right and wrong ones, and
//! the service account's, at debug level, on success and failure paths.

use serde_json::json;

use crate::common::{Server, password_patch};
use crate::seed::{ALICE, READER_PASSWORD, people};
use crate::slapd::{Mode, Slapd};
use crate::{assert_logs_in, kisee, try_login, with_backend};

const WRONG_PASSWORDS: [&str; 2] = ["wrong-Guess-Pw-71", "another-Wrong-Pw-72"];

/// Right and wrong logins for everyone, and the Basic-auth paths.
async fn exercise(server: &Server) {
    for person in people() {
        for password in [person.password, WRONG_PASSWORDS[0]] {
            try_login(server, person.uid, password).await;
        }
    }
    for password in [ALICE.password, WRONG_PASSWORDS[1]] {
        server
            .get("/password_recoveries/")
            .basic(ALICE.uid, password)
            .send()
            .await;
        let patch = password_patch(WRONG_PASSWORDS[1]);
        server
            .patch("/users/alice/")
            .basic(ALICE.uid, password)
            .json(&patch)
            .send()
            .await;
    }
}

fn assert_no_secret_in(text: &str) {
    let mut secrets: Vec<&str> = people().iter().map(|p| p.password).collect();
    secrets.extend(WRONG_PASSWORDS);
    secrets.push(READER_PASSWORD);
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} is in the logs:\n{text}");
    }
}

#[tokio::test]
async fn no_password_reaches_the_logs_while_the_directory_is_up_or_down() {
    let mut slapd = Slapd::start_new();
    let fixture = kisee(&slapd, Mode::Search);
    let server = fixture.start();

    exercise(&server).await;
    slapd.stop();
    exercise(&server).await;

    // The logs did record these logins, so their silence on secrets counts.
    let logs = server.logs();
    assert!(logs.iter().any(|line| line.contains("alice")), "{logs:?}");
    assert_no_secret_in(&server.output());
    assert_no_secret_in(&fixture.check_settings().describe());
}

#[tokio::test]
async fn the_service_password_can_come_from_a_file() {
    let slapd = Slapd::start_new();
    let secret_file = slapd.dir().join("reader-password");
    std::fs::write(&secret_file, format!("{READER_PASSWORD}\n")).unwrap();
    let mut backend = slapd.backend(Mode::Search);
    let search = backend["ldap"]["search"].as_object_mut().unwrap();
    search.remove("bind_password");
    search.insert("bind_password_file".into(), json!(secret_file));
    let server = with_backend(backend).start();

    assert_logs_in(&server, &ALICE).await;
    assert_no_secret_in(&server.output());
}

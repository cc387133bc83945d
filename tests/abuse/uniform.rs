//! An unknown user and a wrong password must not be told apart, by the
//! answer or by its time.

use std::time::Instant;

use bytes::Bytes;
use serde_json::json;

use super::net::{Answer, Connection, FIRST_CLIENT, Peer};
use super::stats::{compare, median};
use super::{REFUSED, backend_checks};
use crate::common::Fixture;
use crate::common::server::Exit;

/// Timed attempts of each kind.
const TRIALS: usize = 60;
/// Significance below which the samples are taken to differ...
const ALPHA: f64 = 0.001;
/// ...provided their medians are also this far apart.
const MEDIAN_RATIO: f64 = 1.25;

/// A PHC string of `password` at the server's default Argon2 cost, made
/// by the binary itself.
fn hash_with_kisee(fixture: &Fixture, password: &str) -> String {
    let mut command = fixture.command();
    command.arg("hash-password");
    let exit = Exit::run(command, Some(password));
    assert!(exit.status.success(), "{}", exit.describe());
    let phc = exit.stdout_text().trim().to_owned();
    assert!(phc.starts_with("$argon2id$"), "{}", exit.describe());
    phc
}

/// One refused login on `connection`, and how long its answer took.
async fn timed_refusal(connection: &mut Connection, username: &str) -> (Answer, f64) {
    let body = json!({"username": username, "password": "not-the-Password-0"});
    let body = serde_json::to_vec(&body).expect("JSON");
    let started = Instant::now();
    let answer = connection.send("POST", "/jwt/", &body).await;
    let seconds = started.elapsed().as_secs_f64();
    (answer.unwrap_or_else(|e| panic!("{e}")), seconds)
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_bytes_in_indistinguishable_time() {
    let fixture = Fixture::new()
        .set("throttle.per_user.failures", json!(0))
        .set("throttle.per_client.failures", json!(0));
    let phc = hash_with_kisee(&fixture, "the-real-Passw0rd");
    let users = json!([{"username": "timed", "password_hash": phc}]);
    let fixture = fixture.set("backend.memory.users", users);
    let server = fixture.start();
    // One kept-alive connection: handshakes would only add noise.
    let peer = Peer::new(fixture.dir(), server.addr(), FIRST_CLIENT);
    let mut connection = peer.open().await.expect("a connection");
    for username in ["warm-up", "timed"] {
        timed_refusal(&mut connection, username).await;
    }

    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    let mut answers: Vec<(&str, Answer)> = Vec::new();
    for trial in 0..TRIALS {
        // Alternate which goes first, so neither always follows the other.
        let order = if trial % 2 == 0 {
            ["nobody", "timed"]
        } else {
            ["timed", "nobody"]
        };
        for username in order {
            let (answer, seconds) = timed_refusal(&mut connection, username).await;
            let sample = if username == "timed" {
                &mut wrong
            } else {
                &mut unknown
            };
            sample.push(seconds);
            answers.push((username, answer));
        }
    }

    assert_same_answers(&answers);
    let checks = backend_checks(&server).await;
    assert_eq!(
        checks,
        2 + 2 * TRIALS as u64,
        "every attempt reached the backend"
    );
    let found = compare(&unknown, &wrong);
    let describe = format!(
        "unknown user median {:.1} ms, wrong password median {:.1} ms: {found:?}",
        median(&unknown) * 1e3,
        median(&wrong) * 1e3
    );
    assert!(!found.differs(ALPHA, MEDIAN_RATIO), "{describe}");

    // The test can fail: a server that skipped the hash for unknown users
    // would answer them ten times faster or more, which it flags.
    let skipped: Vec<f64> = wrong.iter().map(|s| s / 10.0).collect();
    let against = compare(&skipped, &wrong);
    assert!(against.differs(ALPHA, MEDIAN_RATIO), "{against:?}");
}

/// Every answer is the same refusal: status, type and body bytes.
fn assert_same_answers(answers: &[(&str, Answer)]) {
    let (_, first) = &answers[0];
    assert_eq!(first.code(), 403, "{}", first.text());
    let body: serde_json::Value = serde_json::from_slice(&first.body).expect("a JSON body");
    assert_eq!(body["title"], REFUSED, "{body}");
    let expected: (u16, Option<&str>, &Bytes) =
        (first.code(), first.header("content-type"), &first.body);
    for (n, (username, answer)) in answers.iter().enumerate() {
        let got = (answer.code(), answer.header("content-type"), &answer.body);
        assert_eq!(got, expected, "answer {n}, for {username}");
    }
}

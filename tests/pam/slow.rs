//! A PAM stack that takes about two seconds a call: the bound on PAM calls
//! in flight, the rest of the server answering meanwhile, and the timeout.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinHandle;

use crate::common::{Fixture, Response, Server};
use crate::slow_stack::{Recorder, slow};
use crate::wrapper::Stack;
use crate::{password, try_login};

/// How long each PAM call of the slow stack takes.
const PAM_SECONDS: u32 = 2;

/// How long a route that does not touch PAM may take while PAM is busy.
const PROMPT: Duration = Duration::from_millis(500);

/// A fixture on the slow stack, with one account, its password and the
/// stack's counters.
fn slow_fixture(max_concurrent: usize, timeout: &str) -> (Fixture, String, Recorder, Stack) {
    let secret = password("slow");
    let (stack, recorder) = slow(Stack::new().account("sloane", &secret), PAM_SECONDS);
    let fixture = stack
        .fixture()
        .set("backend.pam.max_concurrent", json!(max_concurrent))
        .set("backend.pam.timeout", json!(timeout))
        // Logins in flight count against the user until answered: these
        // tests hold many at once on purpose.
        .set("throttle.per_user.failures", json!(0));
    (fixture, secret, recorder, stack)
}

/// Starts `n` logins at once.
fn spawn_logins(server: &Server, secret: &str, n: usize) -> Vec<JoinHandle<Response>> {
    (0..n)
        .map(|_| {
            let client = server.client();
            let body = json!({"username": "sloane", "password": secret});
            tokio::spawn(async move { client.post("/jwt/").json(&body).send().await })
        })
        .collect()
}

async fn statuses(tasks: Vec<JoinHandle<Response>>) -> Vec<u16> {
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.expect("login task").code());
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_more_pam_calls_run_at_once_than_max_concurrent() {
    let (fixture, secret, recorder, _stack) = slow_fixture(4, "10s");
    let server = fixture.start();

    let codes = statuses(spawn_logins(&server, &secret, 12)).await;

    assert_eq!(codes, vec![201; 12], "twelve slow logins");
    let (max, calls) = recorder.wait_for_idle().await;
    assert_eq!(calls, 12, "PAM calls made");
    assert!(
        (1..=4).contains(&max),
        "{max} PAM calls ran at once, above max_concurrent 4"
    );
}

/// Times one GET, which must answer 200.
async fn timed_get(server: &Server, path: &str) -> Duration {
    let started = Instant::now();
    let res = server.get(path).send().await;
    let elapsed = started.elapsed();
    assert_eq!(res.code(), 200, "GET {path}: {}", res.text());
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_and_keys_answer_promptly_while_every_pam_slot_is_busy() {
    let (fixture, secret, recorder, _stack) = slow_fixture(4, "10s");
    let server = fixture.start();
    let logins = spawn_logins(&server, &secret, 12);
    recorder.wait_for_in_flight(4).await;

    let health = timed_get(&server, "/health").await;
    let keys = timed_get(&server, "/.well-known/jwks.json").await;

    let still_busy = recorder.current().unwrap_or_default();
    assert!(
        health < PROMPT,
        "GET /health took {health:?} while PAM was busy"
    );
    assert!(
        keys < PROMPT,
        "GET /.well-known/jwks.json took {keys:?} while PAM was busy"
    );
    assert!(still_busy > 0, "PAM finished before the GETs were measured");
    assert_eq!(statuses(logins).await, vec![201; 12], "the slow logins");
}

#[tokio::test]
async fn a_login_pam_cannot_answer_within_the_timeout_gets_503_with_retry_after() {
    let (fixture, secret, recorder, _stack) = slow_fixture(4, "1s");
    let server = fixture.start();

    let res = try_login(&server, "sloane", &secret).await;

    assert_eq!(
        res.code(),
        503,
        "a login slower than the timeout: {}",
        res.text()
    );
    let retry_after = res.header("retry-after").unwrap_or_default();
    assert!(
        retry_after.parse::<u64>().is_ok_and(|s| s > 0),
        "Retry-After: {retry_after:?}"
    );
    recorder.wait_for_idle().await;
}

#[tokio::test]
async fn waiting_for_a_pam_slot_counts_against_the_timeout() {
    // The first login holds the only slot for two seconds; the second then
    // needs two more, which its three seconds cannot cover.
    let (fixture, secret, recorder, _stack) = slow_fixture(1, "3s");
    let server = fixture.start();

    let mut codes = statuses(spawn_logins(&server, &secret, 2)).await;

    codes.sort_unstable();
    assert_eq!(codes, [201, 503], "two logins behind one slot");
    recorder.wait_for_idle().await;
}

#[tokio::test]
async fn a_pam_call_that_outlives_the_timeout_keeps_its_slot() {
    let (fixture, secret, recorder, _stack) = slow_fixture(1, "1s");
    let server = fixture.start();

    // The first call is still in PAM when the second login asks for the slot.
    let first = try_login(&server, "sloane", &secret).await;
    let second = try_login(&server, "sloane", &secret).await;

    assert_eq!((first.code(), second.code()), (503, 503));
    let (max, calls) = recorder.wait_for_idle().await;
    assert!(calls >= 1, "the slow stack never ran");
    assert_eq!(max, 1, "PAM calls at once with max_concurrent 1");
}

//! The login and registration throttles, seen from clients: who is locked
//! out, for how long, by which route, and that the backend is spared.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::net::{FIRST_CLIENT, Peer, SECOND_CLIENT};
use super::{REFUSED, assert_throttled, backend_checks, try_login};
use crate::common::{
    Fixture, alice, assert_problem, bob, eventually, login, login_status, password_patch, register,
};

const WRONG: &str = "not-the-Password-0";

fn per_user(failures: u64, window: &str) -> Value {
    json!({"failures": failures, "window": window})
}

#[tokio::test]
async fn a_locked_out_user_is_refused_before_the_backend_even_with_the_right_password() {
    let (alice, bob) = (alice(), bob());
    let server = Fixture::new()
        .user(&alice)
        .user(&bob)
        .set("throttle.per_user", per_user(3, "5m"))
        .start();
    for _ in 0..3 {
        assert_problem(&try_login(&server, "alice", WRONG).await, 403, REFUSED);
    }
    let checks = backend_checks(&server).await;
    assert_eq!(checks, 3, "each refusal is one backend check");

    assert_throttled(&try_login(&server, "alice", WRONG).await, 300);
    assert_throttled(&try_login(&server, "alice", &alice.password).await, 300);
    for variant in ["ALICE", "Alice", "aLiCe"] {
        assert_throttled(&try_login(&server, variant, &alice.password).await, 300);
    }
    assert_eq!(
        backend_checks(&server).await,
        checks,
        "a throttled attempt reached the backend"
    );

    login(&server, "bob", &bob.password).await;
    assert_eq!(backend_checks(&server).await, checks + 1);
}

#[tokio::test]
async fn failures_under_a_case_variant_count_for_the_same_user() {
    let alice = alice();
    let server = Fixture::new()
        .user(&alice)
        .set("throttle.per_user", per_user(3, "5m"))
        .start();

    for variant in ["ALICE", "Alice", "alicE"] {
        assert_problem(&try_login(&server, variant, WRONG).await, 403, REFUSED);
    }

    assert_throttled(&try_login(&server, "alice", &alice.password).await, 300);
}

#[tokio::test]
async fn one_client_failing_across_usernames_is_throttled_and_another_client_is_not() {
    let alice = alice();
    let fixture = Fixture::new()
        .user(&alice)
        .set("throttle.per_user", per_user(100, "5m"))
        .set(
            "throttle.per_client",
            json!({"failures": 5, "window": "5m"}),
        );
    let server = fixture.start();
    for n in 0..5 {
        let res = try_login(&server, &format!("guess{n}"), WRONG).await;
        assert_problem(&res, 403, REFUSED);
    }

    assert_throttled(&try_login(&server, "never-seen", WRONG).await, 300);
    assert_throttled(&try_login(&server, "alice", &alice.password).await, 300);

    let second = Peer::new(fixture.dir(), server.addr(), SECOND_CLIENT);
    let credentials = json!({"username": "alice", "password": alice.password});
    let res = second.post_json("/jwt/", &credentials).await;
    assert_eq!(res.code(), 201, "from {SECOND_CLIENT}: {}", res.text());
    let first = Peer::new(fixture.dir(), server.addr(), FIRST_CLIENT);
    let res = first.post_json("/jwt/", &credentials).await;
    assert_eq!(res.code(), 429, "from {FIRST_CLIENT}: {}", res.text());
}

#[tokio::test]
async fn a_success_clears_the_users_failures() {
    let alice = alice();
    let server = Fixture::new()
        .user(&alice)
        .set("throttle.per_user", per_user(3, "5m"))
        .start();

    for round in ["before", "after"] {
        for n in 1..=2 {
            let res = try_login(&server, "alice", WRONG).await;
            assert_eq!(res.code(), 403, "failure {n} {round} the success");
        }
        // Without the reset, this is the fourth failure in the window.
        login(&server, "alice", &alice.password).await;
    }
}

#[tokio::test]
async fn a_lockout_ends_one_window_after_the_oldest_failure() {
    let alice = alice();
    let server = Fixture::new()
        .user(&alice)
        .set("throttle.per_user", per_user(2, "2s"))
        .start();
    let first_failure = Instant::now();
    for _ in 0..2 {
        assert_problem(&try_login(&server, "alice", WRONG).await, 403, REFUSED);
    }
    assert_throttled(&try_login(&server, "alice", &alice.password).await, 2);

    let server = &server;
    let password = alice.password.as_str();
    let unlocked = eventually(Duration::from_secs(10), "the lockout ends", || async move {
        let res = try_login(server, "alice", password).await;
        if res.code() == 201 {
            return Some(first_failure.elapsed());
        }
        assert_throttled(&res, 2);
        None
    })
    .await;

    // The throttle counts whole seconds: a failure at 0.99 s of a second
    // leaves the window when the clock reads two seconds later, so the
    // lockout lasts more than one second and at most two.
    assert!(
        unlocked > Duration::from_secs(1),
        "unlocked after only {unlocked:?}"
    );
}

#[tokio::test]
async fn wrong_basic_credentials_on_a_password_change_count_towards_the_lockout() {
    let alice = alice();
    let server = Fixture::new()
        .user(&alice)
        .set("backend.memory.registration", json!(true))
        .set("throttle.per_user", per_user(2, "5m"))
        .start();
    let change = |password: &str| {
        server
            .patch("/users/alice/")
            .basic("alice", password)
            .json(&password_patch("a-brand-new-Passw0rd"))
    };
    for _ in 0..2 {
        assert_problem(&change(WRONG).send().await, 401, "Bad authorization");
    }
    let checks = backend_checks(&server).await;

    assert_throttled(&change(&alice.password).send().await, 300);
    assert_throttled(&try_login(&server, "alice", &alice.password).await, 300);
    assert_eq!(backend_checks(&server).await, checks);
}

#[tokio::test]
async fn registrations_past_the_per_client_limit_are_429_and_create_nothing() {
    let fixture = Fixture::new()
        .set("backend.memory.registration", json!(true))
        .set(
            "throttle.registrations_per_client",
            json!({"count": 3, "window": "1h"}),
        );
    let server = fixture.start();
    let password = "long-enough-Passw0rd";

    // A request the policy refuses is not a registration attempt.
    let invalid = json!({"username": "dave", "password": password, "email": "nowhere"});
    let res = server.post("/users/").json(&invalid).send().await;
    assert_problem(&res, 400, "Email is not valid");
    assert_eq!(register(&server, "dave", password).await.code(), 201);
    assert_eq!(register(&server, "erin", password).await.code(), 201);
    // A taken name is one.
    assert_problem(
        &register(&server, "dave", password).await,
        409,
        "User already exist",
    );

    let fourth = register(&server, "frank", password).await;
    assert_throttled(&fourth, 3600);
    assert_eq!(login_status(&server, "frank", password).await, 403);

    let second = Peer::new(fixture.dir(), server.addr(), SECOND_CLIENT);
    let body = json!({"username": "frank", "password": password, "email": "frank@example.org"});
    let res = second.post_json("/users/", &body).await;
    assert_eq!(res.code(), 201, "from {SECOND_CLIENT}: {}", res.text());
    login(&server, "frank", password).await;
}

//! Many logins at once through pam_matrix: each gets its own right answer.

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::common::{Response, Server, tokens};
use crate::wrapper::Stack;
use crate::{REFUSED, assert_logs_hold_none_of, password, try_login};

const LOGINS: usize = 300;
const USERS: usize = 6;

/// Whether a login got what it should: a token for `Some(user)`, the
/// refusal for `None`, and nothing else.
fn verdict(res: &Response, expected: Option<&str>) -> Result<(), String> {
    let refusal =
        json!({"_type": "error", "_meta": {"title": REFUSED}, "title": REFUSED, "status": 403});
    let got = match res.code() {
        201 => {
            let token = res.json()["tokens"][0]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let claims = tokens::decode_unverified(&token).claims;
            Some(
                claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
        403 if res.json() == refusal => None,
        _ => return Err(format!("{} {}", res.status, res.text())),
    };
    if got.as_deref() == expected {
        Ok(())
    } else {
        Err(format!("expected {expected:?}, got {got:?}"))
    }
}

/// Starts one login; it resolves to why its answer was wrong, if it was.
fn spawn_login(
    server: &Server,
    i: usize,
    username: &str,
    secret: &str,
    expected: Option<String>,
) -> JoinHandle<Result<(), String>> {
    let client = server.client();
    let body = json!({"username": username, "password": secret});
    let what = format!("login {i} as {username}");
    tokio::spawn(async move {
        let res = client.post("/jwt/").json(&body).send().await;
        verdict(&res, expected.as_deref()).map_err(|e| format!("{what}: {e}"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_concurrent_logins_each_get_their_own_answer() {
    let users: Vec<(String, String)> = (0..USERS)
        .map(|i| (format!("user{i}"), password("load")))
        .collect();
    let stack = users
        .iter()
        .fold(Stack::new(), |s, (name, secret)| s.account(name, secret));
    // Failures are on purpose here: keep the failure throttle out of it.
    let unlimited = json!({"failures": 1_000_000, "window": "1s"});
    let fixture = stack.fixture().set("throttle.per_user", unlimited.clone());
    let server = fixture.set("throttle.per_client", unlimited).start();
    let wrong = password("wrong");

    let tasks: Vec<_> = (0..LOGINS)
        .map(|i| {
            let (name, right) = &users[i % USERS];
            // Each user gets both kinds: one login in three is wrong.
            match (i / USERS) % 3 {
                0 => spawn_login(&server, i, name, &wrong, None),
                _ => spawn_login(&server, i, name, right, Some(name.clone())),
            }
        })
        .collect();
    let mut wrong_answers = Vec::new();
    for task in tasks {
        wrong_answers.extend(task.await.expect("login task").err());
    }

    assert!(
        wrong_answers.is_empty(),
        "{} wrong answers:\n{}",
        wrong_answers.len(),
        wrong_answers.join("\n")
    );
    let after = try_login(&server, "user0", &users[0].1).await;
    assert_eq!(after.code(), 201, "after the load: {}", after.text());
    let secrets: Vec<&str> = users
        .iter()
        .map(|(_, s)| s.as_str())
        .chain([wrong.as_str()])
        .collect();
    assert_logs_hold_none_of(&server, &secrets);
}

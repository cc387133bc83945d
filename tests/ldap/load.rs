//! Hundreds of logins at once, right and wrong passwords mixed across
//! several users: every one answered for what it is.

use tokio::task::JoinSet;

use crate::common::client::Client;
use crate::common::tokens::decode_unverified;
use crate::seed::{ALICE, AWKWARD, BOB, CAROL, Person};
use crate::slapd::{Mode, Slapd};
use crate::{REFUSED, kisee};

const LOGINS: usize = 300;

/// What one login got: status, the token's `sub` or the error title.
async fn attempt(client: Client, username: String, password: String) -> (u16, String) {
    let body = serde_json::json!({"username": username, "password": password});
    let res = client.post("/jwt/").json(&body).send().await;
    let json = res.json();
    let answer = match res.code() {
        201 => decode_unverified(json["tokens"][0].as_str().unwrap()).claims["sub"].clone(),
        _ => json["title"].clone(),
    };
    (res.code(), answer.as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_concurrent_logins_are_each_answered_for_what_they_are() {
    let slapd = Slapd::start_new();
    let server = kisee(&slapd, Mode::Search).start();
    let users: [Person; 5] = [ALICE, BOB, CAROL, AWKWARD[0], AWKWARD[3]];

    let mut tasks = JoinSet::new();
    for i in 0..LOGINS {
        let person = users[i % users.len()];
        // Every third attempt uses the next person's password.
        let right = i % 3 != 0;
        let password = if right {
            person.password
        } else {
            users[(i + 1) % users.len()].password
        };
        let login = attempt(server.client(), person.uid.to_owned(), password.to_owned());
        tasks.spawn(async move { (person.uid, right, login.await) });
    }

    let mut answered = 0;
    while let Some(joined) = tasks.join_next().await {
        let (uid, right, (code, answer)) = joined.unwrap();
        let expected = if right { (201, uid) } else { (403, REFUSED) };
        assert_eq!(
            (code, answer.as_str()),
            expected,
            "{uid:?}, right password: {right}"
        );
        answered += 1;
    }
    assert_eq!(answered, LOGINS);
}

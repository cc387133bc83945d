//! The directory stops under a running Kisee and comes back on the same
//! ports: 503s and a red health meanwhile, logins again afterwards, with
//! no restart of Kisee.

use std::time::Duration;

use serde_json::json;

use crate::common::eventually;
use crate::seed::{ALICE, BOB};
use crate::slapd::{Mode, Slapd};
use crate::{assert_logs_in, assert_unavailable, health, kisee, try_login};

/// Long enough for `retry_dead_after` (1 s in these settings) to pass.
const RECOVERY_BOUND: Duration = Duration::from_secs(20);

async fn assert_outage_and_recovery(mode: Mode) {
    let mut slapd = Slapd::start_new();
    let server = kisee(&slapd, mode).start();
    assert_logs_in(&server, &ALICE).await;

    slapd.stop();
    for (username, password) in [(ALICE.uid, ALICE.password), (BOB.uid, "wrong-Password-9")] {
        assert_unavailable(&try_login(&server, username, password).await);
    }
    assert_eq!(health(&server).await, (503, json!("red")));

    slapd.start();
    eventually(RECOVERY_BOUND, "a login after the restart", || async {
        (try_login(&server, ALICE.uid, ALICE.password).await.code() == 201).then_some(())
    })
    .await;
    assert_logs_in(&server, &BOB).await;
    eventually(RECOVERY_BOUND, "a green health", || async {
        (health(&server).await == (200, json!("green"))).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_stopped_directory_gives_503s_until_it_returns_by_direct_bind() {
    assert_outage_and_recovery(Mode::DirectBind).await;
}

#[tokio::test]
async fn a_stopped_directory_gives_503s_until_it_returns_by_search() {
    assert_outage_and_recovery(Mode::Search).await;
}

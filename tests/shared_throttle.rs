//! Two Kisee processes sharing a real Redis enforce one lockout together,
//! and a Kisee whose Redis goes away keeps serving with its own counts.

#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "a test reports failure by panicking"
)]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fixture, Server, alice};
use serde_json::json;

/// A private redis-server on a free loopback port, stopped on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/install-test-deps installs it)");
        let redis = Self { child, port };
        redis.wait_ready();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let ping = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output();
            if ping.is_ok_and(|out| out.stdout.starts_with(b"PONG")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not answer on port {}", self.port);
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn kisee_on(redis: &Redis, failures: u32) -> Server {
    Fixture::new()
        .user(&alice())
        .set("throttle.store", json!("redis"))
        .set("throttle.redis_url", json!(redis.url()))
        .set(
            "throttle.per_user",
            json!({"failures": failures, "window": "5m"}),
        )
        .set("throttle.per_client", json!({"failures": 0}))
        .start()
}

async fn login_status(server: &Server, password: &str) -> u16 {
    let body = json!({"username": "alice", "password": password});
    server.post("/jwt/").json(&body).send().await.code()
}

async fn metric(server: &Server, name: &str) -> Option<f64> {
    let text = server.get("/metrics").send().await.text();
    let line = text.lines().find(|line| line.starts_with(name))?;
    line.rsplit(' ').next()?.parse().ok()
}

#[tokio::test]
async fn two_replicas_sharing_redis_enforce_one_lockout() {
    let redis = Redis::start();
    let (first, second) = (kisee_on(&redis, 4), kisee_on(&redis, 4));

    for server in [&first, &second, &first, &second] {
        assert_eq!(login_status(server, "wrong").await, 403);
    }

    // Each replica saw two failures only: the lockout comes from the sum.
    let right = alice().password;
    assert_eq!(login_status(&first, &right).await, 429);
    assert_eq!(login_status(&second, &right).await, 429);
}

#[tokio::test]
async fn a_success_on_one_replica_clears_the_count_on_the_other() {
    let redis = Redis::start();
    let (first, second) = (kisee_on(&redis, 3), kisee_on(&redis, 3));
    let right = alice().password;

    assert_eq!(login_status(&first, "wrong").await, 403);
    assert_eq!(login_status(&second, "wrong").await, 403);
    assert_eq!(login_status(&first, &right).await, 201);
    assert_eq!(login_status(&second, "wrong").await, 403);
    assert_eq!(login_status(&first, "wrong").await, 403);

    assert_eq!(
        login_status(&second, &right).await,
        201,
        "two failures since the success"
    );
}

#[tokio::test]
async fn without_redis_kisee_keeps_serving_with_local_counts_and_says_so() {
    let mut redis = Redis::start();
    let server = kisee_on(&redis, 2);
    assert_eq!(login_status(&server, &alice().password).await, 201);
    assert_eq!(metric(&server, "kisee_throttle_store_up").await, Some(1.0));

    redis.stop();
    assert_eq!(
        login_status(&server, &alice().password).await,
        201,
        "logins go on"
    );
    assert_eq!(metric(&server, "kisee_throttle_store_up").await, Some(0.0));
    // The log line may reach the harness a moment after the answers.
    common::eventually(Duration::from_secs(5), "the warning in the log", || {
        let warned = server
            .logs()
            .iter()
            .any(|line| line.contains("throttle store unreachable"));
        async move { warned.then_some(()) }
    })
    .await;

    // The local counts still enforce the limit.
    assert_eq!(login_status(&server, "wrong").await, 403);
    assert_eq!(login_status(&server, "wrong").await, 403);
    assert_eq!(login_status(&server, &alice().password).await, 429);
}

//! Running Kisee in production: the metrics an operator watches, a SIGTERM
//! that loses no request, SIGHUP reloads (a new certificate, a refused
//! mistake, a signing key rotated under live tokens, and what a reload
//! means for connections already open), and the throttle counts that a
//! reload must keep.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;
#[path = "operations/process.rs"]
mod process;
#[path = "operations/scrape.rs"]
mod scrape;
#[path = "operations/verifier.rs"]
mod verifier;
#[path = "operations/wire.rs"]
mod wire;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use common::client::Client;
use common::mail::wait_for_mails;
use common::pki::p256_key_pair;
use common::pki::{Ca, Leaf};
use common::server::Exit;
use common::tokens::public_pem_thumbprint;
use common::{Fixture, TestUser, alice, bob, eventually, login_status, password_patch};
use process::{Kisee, Reload};
use scrape::Scrape;
use verifier::{Verifier, kid_of};
use wire::{KeptConnection, leaf_seen_by_new_connection, plain_get, try_send};

const LOGINS: &str = "kisee_logins_total";
const CHECKS: &str = "kisee_backend_checks_total";
const THROTTLED: &str = "kisee_throttled_total";
const MEMORY: (&str, &str) = ("backend", "memory");

/// The common name of the CAs these tests keep.
const OPERATIONS_CA: &str = "Kisee operations test CA";

/// A leaf of `ca` with this serial number, named after it.
fn leaf(ca: &Ca, serial: u64, extra_names: &[&str]) -> Leaf {
    ca.leaf(&format!("kisee leaf {serial}"), Some(serial), extra_names)
}

/// A fixture whose server certificate is `leaf`, from a CA the test keeps.
fn fixture_with_certificate(leaf: &Leaf) -> Fixture {
    let fixture = Fixture::new();
    leaf.write(&cert_path(&fixture), &key_path(&fixture));
    fixture
}

fn cert_path(fixture: &Fixture) -> std::path::PathBuf {
    fixture.dir().join("tls/cert.pem")
}

fn key_path(fixture: &Fixture) -> std::path::PathBuf {
    fixture.dir().join("tls/key.pem")
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

async fn scrape(client: &Client) -> Scrape {
    let res = client.get("/metrics").send().await;
    assert_eq!(res.code(), 200, "/metrics: {}", res.text());
    Scrape::parse(&res.text())
}

/// How much a sample grew between two scrapes.
fn growth(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.value(name, labels) - before.value(name, labels)
}

/// Which of the named certificates this DER is.
fn which<'a>(der: &[u8], known: &[(&'a str, &Leaf)]) -> &'a str {
    known
        .iter()
        .find(|(_, leaf)| leaf.der == der)
        .map_or("an unknown certificate", |(name, _)| name)
}

/// An address nobody listens on now: bound to port 0, then released.
fn free_local_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn metrics_count_logins_backend_checks_and_throttled_attempts() {
    let server = Fixture::new()
        .user(&alice())
        .user(&bob())
        .set("throttle.per_user", json!({"failures": 2}))
        .start();
    let client = server.client();
    let before = scrape(&client).await;

    assert_eq!(login_status(&server, "alice", &alice().password).await, 201);
    assert_eq!(login_status(&server, "bob", "not-bobs-password").await, 403);
    let after = scrape(&client).await;

    let success = [MEMORY, ("outcome", "success")];
    let refused = [MEMORY, ("outcome", "refused")];
    assert_eq!(
        growth(&before, &after, LOGINS, &success),
        1.0,
        "{}",
        after.text()
    );
    assert_eq!(
        growth(&before, &after, LOGINS, &refused),
        1.0,
        "{}",
        after.text()
    );
    assert_eq!(
        growth(&before, &after, CHECKS, &[MEMORY]),
        2.0,
        "{}",
        after.text()
    );

    // Bob's second failure reaches the limit of 2: from then on the backend
    // is not asked, not even for the right password.
    assert_eq!(login_status(&server, "bob", "not-bobs-password").await, 403);
    let at_limit = scrape(&client).await;
    assert_eq!(login_status(&server, "bob", "still-not-it").await, 429);
    assert_eq!(login_status(&server, "bob", &bob().password).await, 429);
    let throttled = scrape(&client).await;

    let login_kind = [("kind", "login")];
    assert_eq!(growth(&at_limit, &throttled, THROTTLED, &login_kind), 2.0);
    assert_eq!(
        growth(&at_limit, &throttled, CHECKS, &[MEMORY]),
        0.0,
        "the backend was asked while the user was throttled\n{}",
        throttled.text()
    );
    let throttled_outcome = [MEMORY, ("outcome", "throttled")];
    assert_eq!(
        growth(&at_limit, &throttled, LOGINS, &throttled_outcome),
        2.0
    );
}

#[tokio::test]
async fn metrics_are_openmetrics_with_build_info_and_an_open_connections_gauge() {
    let server = Fixture::new().start();

    let res = server.get("/metrics").send().await;

    assert_eq!(res.code(), 200);
    let content_type = res.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = res.text();
    assert!(
        text.trim_end().ends_with("# EOF"),
        "no `# EOF` at the end:\n{text}"
    );
    let scrape = Scrape::parse(&text);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        scrape.value("kisee_build_info", &[("version", version)]),
        1.0,
        "{text}"
    );
    assert_eq!(
        scrape.kind("kisee_open_connections"),
        Some("gauge"),
        "{text}"
    );
    // The scrape's own connection is open while the answer is written.
    let open = scrape.value("kisee_open_connections", &[]);
    assert!(
        open >= 1.0,
        "kisee_open_connections is {open} during a request\n{text}"
    );
    assert_eq!(scrape.kind("kisee_logins"), Some("counter"), "{text}");
    assert_eq!(
        scrape.kind("kisee_backend_checks"),
        Some("counter"),
        "{text}"
    );
}

#[tokio::test]
async fn a_separate_metrics_address_serves_plain_http_and_the_main_listener_hides_metrics() {
    let metrics_addr = free_local_addr();
    let server = Fixture::new()
        .set("metrics.listen", json!(metrics_addr.to_string()))
        .start();

    let scraped = plain_get(metrics_addr, "/metrics").await.unwrap();
    assert_eq!(scraped.status, 200, "{}", scraped.text());
    let content_type = scraped.content_type.clone().unwrap_or_default();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let version = env!("CARGO_PKG_VERSION");
    let scrape = Scrape::parse(&scraped.text());
    assert_eq!(
        scrape.value("kisee_build_info", &[("version", version)]),
        1.0
    );

    let on_main = server.get("/metrics").send().await;
    assert_eq!(on_main.code(), 404, "{}", on_main.text());
    let other = plain_get(metrics_addr, "/health").await.unwrap();
    assert_eq!(
        other.status, 404,
        "the metrics address serves only /metrics"
    );
}

/// `kisee hash-password`: the PHC string an operator would paste.
fn hash_with_the_binary(fixture: &Fixture, password: &str) -> String {
    let mut command = fixture.command();
    command.arg("hash-password");
    let exit = Exit::run(command, Some(&format!("{password}\n")));
    assert!(exit.status.success(), "{}", exit.describe());
    exit.stdout_text().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_every_login_in_flight_finish_then_exits_with_status_zero() {
    const LOGINS_IN_FLIGHT: usize = 20;
    let ca = Ca::new(OPERATIONS_CA);
    let fixture = fixture_with_certificate(&leaf(&ca, 1, &[]));
    let password = "dora-Explorer-Map-4";
    let hash = hash_with_the_binary(&fixture, password);
    assert!(
        hash.contains("m=19456,t=2,p=1"),
        "not the default cost: {hash}"
    );
    let fixture = fixture
        .set(
            "backend.memory.users",
            json!([{"username": "dora", "password_hash": hash}]),
        )
        .set("backend.memory.hash_concurrency", json!(1))
        // Logins in flight count against the user until answered.
        .set("throttle.per_user.failures", json!(LOGINS_IN_FLIGHT));
    let mut kisee = Kisee::start(&fixture, &ca.der()).await;

    let body = json!({"username": "dora", "password": password});
    let logins: Vec<_> = (0..LOGINS_IN_FLIGHT)
        .map(|_| {
            let (addr, ca_der, body) = (kisee.addr(), ca.der(), body.clone());
            tokio::spawn(async move { try_send(addr, &ca_der, "POST", "/jwt/", Some(&body)).await })
        })
        .collect();
    // Every login has reached the backend (and queues for the one hash
    // slot): the requests are in the server, not in the client.
    let client = kisee.client();
    let inside = eventually(
        Duration::from_secs(20),
        "every login in the backend",
        || async {
            let scrape = scrape(&client).await;
            let checks = scrape.value(CHECKS, &[MEMORY]);
            (checks >= LOGINS_IN_FLIGHT as f64).then_some(scrape)
        },
    )
    .await;
    let done = inside.value(LOGINS, &[MEMORY, ("outcome", "success")]);
    let mark = kisee.mark();
    kisee.signal(Signal::SIGTERM);

    kisee
        .wait_for_message(mark, "shutting down: no new connections")
        .await;
    let refused = new_connections_are_refused(kisee.addr()).await;
    assert!(refused, "a new connection was still accepted after SIGTERM");
    assert!(
        kisee.exited().is_none(),
        "kisee exited before the connection was refused ({done} of {LOGINS_IN_FLIGHT} logins \
         had finished at the signal): nothing was in flight to test"
    );

    let mut answers = Vec::new();
    for login in logins {
        answers.push(match login.await.unwrap() {
            Ok(answer) if answer.status == 201 => "201".to_owned(),
            Ok(answer) => format!("{}: {}", answer.status, answer.text()),
            Err(lost) => format!("lost: {lost}"),
        });
    }
    let created = answers.iter().filter(|a| *a == "201").count();
    assert_eq!(
        created,
        LOGINS_IN_FLIGHT,
        "answers: {answers:?}\n{}",
        kisee.log_text()
    );
    let drained = kisee.messages_since(mark, "login").len();
    assert!(
        drained >= 1,
        "no login finished after SIGTERM: nothing was in flight"
    );

    let status = kisee.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", kisee.log_text());
    assert_eq!(
        kisee.messages_since(mark, "all connections closed").len(),
        1
    );
}

/// Connects until the connection is refused (the listener is closed), at
/// most two seconds; a connection accepted meanwhile is dropped at once.
async fn new_connections_are_refused(addr: SocketAddr) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        match tokio::net::TcpStream::connect(addr).await {
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    false
}

#[tokio::test]
async fn sighup_gives_new_connections_the_new_certificate_and_keeps_open_ones_working() {
    let ca = Ca::new(OPERATIONS_CA);
    let (a, b) = (leaf(&ca, 1, &[]), leaf(&ca, 2, &["kisee.test"]));
    let known = [("certificate A", &a), ("certificate B", &b)];
    let fixture = fixture_with_certificate(&a);
    let kisee = Kisee::start(&fixture, &ca.der()).await;
    let mut old = KeptConnection::open(kisee.addr(), &ca.der()).await.unwrap();
    assert_eq!(which(&old.leaf_der, &known), "certificate A");
    assert_eq!(old.send("GET", "/health", None).await.unwrap().status, 200);

    b.write(&cert_path(&fixture), &key_path(&fixture));
    kisee.reload_applied().await;

    let seen = leaf_seen_by_new_connection(kisee.addr(), &ca.der()).await;
    assert_eq!(
        which(&seen, &known),
        "certificate B",
        "a connection made after the reload"
    );
    let again = old.send("GET", "/health", None).await;
    let again = again.unwrap_or_else(|e| panic!("the connection open before the reload: {e}"));
    assert_eq!(again.status, 200, "{}", again.text());
}

/// What an operator sees of the running configuration.
struct Observed {
    certificate: String,
    login_kid: String,
    jwks: Value,
}

async fn observe(kisee: &Kisee, ca: &Ca, known: &[(&str, &Leaf)]) -> Observed {
    let seen = leaf_seen_by_new_connection(kisee.addr(), &ca.der()).await;
    let client = kisee.client();
    let res = client
        .post("/jwt/")
        .json(&json!({"username": "alice", "password": alice().password}))
        .send()
        .await;
    assert_eq!(res.code(), 201, "login: {}", res.text());
    let token = res.json()["tokens"][0].as_str().unwrap().to_owned();
    Observed {
        certificate: which(&seen, known).to_owned(),
        login_kid: kid_of(&token),
        jwks: Verifier::fetch(&client).await.jwks().clone(),
    }
}

/// Starts with certificate A and the fixture's signing key, rewrites the
/// settings with `mistake` (which also switches to certificate B and key
/// K2, so that a partial reload would show), sends SIGHUP, and checks the
/// refusal names the problem (one record holds every fragment of
/// `problem`) and that nothing changed.
async fn assert_refused_reload_changes_nothing(mistake: fn(Fixture) -> Fixture, problem: &[&str]) {
    let ca = Ca::new(OPERATIONS_CA);
    let (a, b) = (leaf(&ca, 1, &[]), leaf(&ca, 2, &["kisee.test"]));
    let known = [("certificate A", &a), ("certificate B", &b)];
    let fixture = fixture_with_certificate(&a).user(&alice());
    b.write(
        &fixture.dir().join("tls/b.pem"),
        &fixture.dir().join("tls/b-key.pem"),
    );
    write(fixture.dir(), "k2.pem", &p256_key_pair().0);
    let kisee = Kisee::start(&fixture, &ca.der()).await;
    let before = observe(&kisee, &ca, &known).await;
    assert_eq!(before.certificate, "certificate A");

    let fixture = mistake(
        fixture
            .set("server.tls.certificate", json!("tls/b.pem"))
            .set("server.tls.private_key", json!("tls/b-key.pem"))
            .set("jwt.private_key", json!("k2.pem")),
    );
    fixture.write_settings();
    let Reload::Refused(problems) = kisee.reload().await else {
        panic!("a reload with a mistake was applied\n{}", kisee.log_text());
    };

    let named = problems
        .iter()
        .filter_map(|record| record["fields"]["problem"].as_str())
        .any(|text| problem.iter().all(|fragment| text.contains(fragment)));
    assert!(
        named,
        "no `reload refused` record names {problem:?}: {problems:?}"
    );
    let after = observe(&kisee, &ca, &known).await;
    assert_eq!(
        after.certificate, "certificate A",
        "new connections after the refused reload"
    );
    assert_eq!(
        after.login_kid, before.login_kid,
        "tokens are signed by another key"
    );
    assert_eq!(after.jwks, before.jwks, "the JWKS changed");
}

#[tokio::test]
async fn a_reload_with_an_unknown_key_is_refused_and_changes_nothing() {
    let unknown_key = |fixture: Fixture| fixture.set("server.tls.chain", json!("tls/b.pem"));
    assert_refused_reload_changes_nothing(unknown_key, &["server.tls.chain: unknown key"]).await;
}

#[tokio::test]
async fn a_reload_naming_a_missing_certificate_is_refused_and_changes_nothing() {
    let missing = |fixture: Fixture| fixture.set("server.tls.certificate", json!("tls/gone.pem"));
    assert_refused_reload_changes_nothing(
        missing,
        &["server.tls.certificate: cannot read", "gone.pem"],
    )
    .await;
}

/// The signing keys of a rotation, written beside the settings.
struct Keys {
    k1: String,
    k2: String,
}

impl Keys {
    fn write(dir: &Path) -> Keys {
        let ((k1, k1_public), (k2, k2_public)) = (p256_key_pair(), p256_key_pair());
        write(dir, "k1.pem", &k1);
        write(dir, "k1.pub.pem", &k1_public);
        write(dir, "k2.pem", &k2);
        write(dir, "k2.pub.pem", &k2_public);
        Keys {
            k1: public_pem_thumbprint(&k1_public),
            k2: public_pem_thumbprint(&k2_public),
        }
    }
}

async fn token_signed_now(kisee: &Kisee, password: &str) -> String {
    let res = kisee
        .client()
        .post("/jwt/")
        .json(&json!({"username": "alice", "password": password}))
        .send()
        .await;
    assert_eq!(res.code(), 201, "login: {}", res.text());
    res.json()["tokens"][0].as_str().unwrap().to_owned()
}

/// Every token verifies with these keys.
fn assert_verifies(verifier: &Verifier, tokens: &[(&str, &str)], when: &str) {
    for (name, token) in tokens {
        if let Err(why) = verifier.verify(token) {
            panic!("{when}: {name} is refused: {why}");
        }
    }
}

#[tokio::test]
async fn signing_keys_rotate_under_sighup_without_refusing_a_live_token() {
    let ca = Ca::new(OPERATIONS_CA);
    let mut fixture = fixture_with_certificate(&leaf(&ca, 1, &[]))
        .user(&alice())
        .set("backend.memory.registration", json!(true))
        .set("recovery", json!({"delivery": "file", "folder": "spool"}))
        .set("jwt.private_key", json!("k1.pem"));
    std::fs::create_dir(fixture.dir().join("spool")).unwrap();
    let keys = Keys::write(fixture.dir());
    let kisee = Kisee::start(&fixture, &ca.der()).await;
    let client = kisee.client();

    // (a) K1 alone signs: a login token and a reset token under it.
    let t1 = token_signed_now(&kisee, &alice().password).await;
    assert_eq!(kid_of(&t1), keys.k1);
    let res = client
        .post("/password_recoveries/")
        .json(&json!({"username": "alice"}))
        .send()
        .await;
    assert_eq!(res.code(), 201, "{}", res.text());
    let reset = wait_for_mails(&fixture.dir().join("spool"), 1)
        .await
        .remove(0)
        .token;
    assert_eq!(kid_of(&reset), keys.k1, "the reset token's key");
    let verifier = Verifier::fetch(&client).await;
    assert_eq!(verifier.kids(), [keys.k1.as_str()]);
    assert_verifies(&verifier, &[("T1", &t1)], "(a)");

    // (b) K2 is published before it signs.
    fixture = fixture.set("jwt.additional_public_keys", json!(["k2.pub.pem"]));
    fixture.write_settings();
    kisee.reload_applied().await;
    let published_early = Verifier::fetch(&client).await;
    assert_eq!(published_early.kids(), [keys.k1.as_str(), keys.k2.as_str()]);
    let t1b = token_signed_now(&kisee, &alice().password).await;
    assert_eq!(
        kid_of(&t1b),
        keys.k1,
        "K1 still signs while K2 is only published"
    );
    assert_verifies(&published_early, &[("T1", &t1), ("T1b", &t1b)], "(b)");

    // (c) K2 signs, K1 stays published for the tokens it signed.
    fixture = fixture
        .set("jwt.private_key", json!("k2.pem"))
        .set("jwt.additional_public_keys", json!(["k1.pub.pem"]));
    fixture.write_settings();
    kisee.reload_applied().await;
    let t2 = token_signed_now(&kisee, &alice().password).await;
    assert_eq!(kid_of(&t2), keys.k2, "K2 signs after the switch");
    let live = [("T1", t1.as_str()), ("T1b", &t1b), ("T2", &t2)];
    assert_verifies(&published_early, &live, "(c) with the keys fetched at (b)");
    let refreshed = Verifier::fetch(&client).await;
    assert_eq!(refreshed.kids(), [keys.k2.as_str(), keys.k1.as_str()]);
    assert_verifies(&refreshed, &live, "(c) with the keys fetched at (c)");
    let new_password = "a-rotated-Passw0rd-5";
    let res = client
        .patch("/users/alice/")
        .bearer(&reset)
        .json(&password_patch(new_password))
        .send()
        .await;
    assert_eq!(
        res.code(),
        204,
        "the reset token signed by K1: {}",
        res.text()
    );

    // (d) K1 is retired: only K2 is published, and it still signs.
    fixture = fixture.set("jwt.additional_public_keys", json!([]));
    fixture.write_settings();
    kisee.reload_applied().await;
    let retired = Verifier::fetch(&client).await;
    assert_eq!(retired.kids(), [keys.k2.as_str()]);
    let t3 = token_signed_now(&kisee, new_password).await;
    assert_eq!(kid_of(&t3), keys.k2);
    assert_verifies(&retired, &[("T2", &t2), ("T3", &t3)], "(d)");
    assert!(
        retired.verify(&t1).is_err(),
        "a token of the retired K1 still verifies"
    );
}

#[tokio::test]
async fn throttle_counts_survive_a_reload() {
    let ca = Ca::new(OPERATIONS_CA);
    let fixture = fixture_with_certificate(&leaf(&ca, 1, &[]))
        .user(&alice())
        .set("throttle.per_user", json!({"failures": 3}));
    let kisee = Kisee::start(&fixture, &ca.der()).await;
    let client = kisee.client();
    let attempt = |password: &'static str| {
        let client = client.clone();
        async move {
            let body = json!({"username": "alice", "password": password});
            client.post("/jwt/").json(&body).send().await.code()
        }
    };
    assert_eq!(attempt("wrong-1").await, 403);
    assert_eq!(attempt("wrong-2").await, 403);

    kisee.reload_applied().await;

    // The third failure is the last the limit allows; had the reload reset
    // the count, the attempt after it would reach the backend again.
    assert_eq!(attempt("wrong-3").await, 403);
    assert_eq!(
        attempt("wrong-4").await,
        429,
        "the count was lost in the reload"
    );
}

/// A token from `POST /jwt/` on a connection kept open.
async fn token_over(connection: &mut KeptConnection, user: &TestUser) -> Result<String, String> {
    let body = json!({"username": user.username, "password": user.password});
    let answer = connection.send("POST", "/jwt/", Some(&body)).await?;
    if answer.status != 201 {
        return Err(format!("{}: {}", answer.status, answer.text()));
    }
    let document: Value = serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
    let token = document["tokens"][0].as_str().ok_or("no token")?;
    Ok(token.to_owned())
}

#[tokio::test]
async fn a_connection_kept_open_across_a_key_rotation_signs_with_the_key_in_force() {
    let ca = Ca::new(OPERATIONS_CA);
    let mut fixture = fixture_with_certificate(&leaf(&ca, 1, &[]))
        .user(&alice())
        .set("jwt.private_key", json!("k1.pem"));
    let keys = Keys::write(fixture.dir());
    let kisee = Kisee::start(&fixture, &ca.der()).await;
    // A reverse proxy's pooled upstream connection, busy enough never to
    // reach the idle timeout.
    let mut pooled = KeptConnection::open(kisee.addr(), &ca.der()).await.unwrap();
    let before = token_over(&mut pooled, &alice()).await.unwrap();
    assert_eq!(kid_of(&before), keys.k1);

    let steps = [
        json!({"private_key": "k1.pem", "additional_public_keys": ["k2.pub.pem"]}),
        json!({"private_key": "k2.pem", "additional_public_keys": ["k1.pub.pem"]}),
        json!({"private_key": "k2.pem", "additional_public_keys": []}),
    ];
    for jwt in steps {
        fixture = fixture
            .set("jwt.private_key", jwt["private_key"].clone())
            .set(
                "jwt.additional_public_keys",
                jwt["additional_public_keys"].clone(),
            );
        fixture.write_settings();
        kisee.reload_applied().await;
    }

    let refreshed = Verifier::fetch(&kisee.client()).await;
    assert_eq!(refreshed.kids(), [keys.k2.as_str()]);
    let after = token_over(&mut pooled, &alice()).await.unwrap();
    if let Err(why) = refreshed.verify(&after) {
        let key = if kid_of(&after) == keys.k1 {
            "the retired K1"
        } else {
            "an unknown key"
        };
        panic!("a token issued after K1 was retired is signed by {key}: {why}");
    }
    let jwks = pooled
        .send("GET", "/.well-known/jwks.json", None)
        .await
        .unwrap();
    let jwks: Value = serde_json::from_slice(&jwks.body).unwrap();
    assert_eq!(&jwks, refreshed.jwks(), "the JWKS on the pooled connection");
}

#[tokio::test]
async fn an_account_removed_by_a_reload_is_refused_on_connections_opened_before_it() {
    let ca = Ca::new(OPERATIONS_CA);
    let fixture = fixture_with_certificate(&leaf(&ca, 1, &[]))
        .user(&alice())
        .user(&bob());
    let kisee = Kisee::start(&fixture, &ca.der()).await;
    let mut pooled = KeptConnection::open(kisee.addr(), &ca.der()).await.unwrap();
    token_over(&mut pooled, &bob()).await.unwrap();

    // Bob's account is compromised: the operator removes it and reloads.
    let fixture = fixture.set("backend.memory.users", json!([alice().settings_entry()]));
    fixture.write_settings();
    kisee.reload_applied().await;

    assert_eq!(
        login_status_on(&kisee, &bob()).await,
        403,
        "on a new connection"
    );
    let on_pooled = token_over(&mut pooled, &bob()).await;
    assert!(
        on_pooled.is_err(),
        "the removed account still gets a token on a connection opened before the reload"
    );
}

async fn login_status_on(kisee: &Kisee, user: &TestUser) -> u16 {
    let body = json!({"username": user.username, "password": user.password});
    kisee.client().post("/jwt/").json(&body).send().await.code()
}

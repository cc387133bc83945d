//! The routes around the API proper: JSON-home, health, routing errors,
//! security headers, HEAD, HTTP/2, public URLs and CORS.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use common::{Fixture, PUBLIC_URL, abs, alice, assert_problem};
use http::Version;
use serde_json::{Value, json};

#[tokio::test]
async fn json_home_links_are_absolute_and_reachable() {
    let server = Fixture::new().start();

    let res = server.get("/").send().await;
    assert_eq!(res.code(), 200);
    assert_eq!(res.header("content-type"), Some("application/json-home"));
    let home = res.json();
    assert_eq!(home["api"]["title"], "Identification Provider");

    for resource in ["jwt", "users", "password_recoveries"] {
        let href = home["resources"][resource]["href"].as_str().unwrap();
        let path = href
            .strip_prefix(PUBLIC_URL)
            .unwrap_or_else(|| panic!("{href}"));
        assert_eq!(path, format!("/{resource}/"));
        assert_eq!(server.get(path).send().await.code(), 200, "{href}");
    }
}

#[tokio::test]
async fn json_home_advertises_coreapi_and_get_post_on_jwt() {
    let server = Fixture::new().start();

    let home = server.get("/").send().await.json();

    let jwt = &home["resources"]["jwt"];
    assert_eq!(jwt["hints"]["allow"], json!(["GET", "POST"]));
    assert!(jwt["hints"]["formats"]["application/coreapi+json"].is_object());
    assert!(home["resources"]["password_recoveries"]["hints"].is_object());
}

#[tokio::test]
async fn json_home_is_never_negotiated() {
    let server = Fixture::new().start();

    let plain = server.get("/").accept("application/json").send().await;
    let default = server.get("/").send().await;

    assert_eq!(plain.header("content-type"), Some("application/json-home"));
    assert_eq!(plain.json(), default.json());
}

#[tokio::test]
async fn json_home_offers_no_registration_when_it_is_off() {
    let server = Fixture::new().start();

    let home = server.get("/").send().await.json();

    let allow = users_allow(&home);
    assert!(allow.contains(&"GET".to_owned()), "{allow:?}");
    assert!(!allow.contains(&"POST".to_owned()), "{allow:?}");
    assert!(!allow.contains(&"PATCH".to_owned()), "{allow:?}");
}

#[tokio::test]
async fn json_home_offers_registration_and_password_change_when_writable() {
    let server = Fixture::new()
        .set("backend.memory.registration", json!(true))
        .start();

    let home = server.get("/").send().await.json();

    let allow = users_allow(&home);
    assert!(allow.contains(&"POST".to_owned()), "{allow:?}");
    assert!(allow.contains(&"PATCH".to_owned()), "{allow:?}");
}

fn users_allow(home: &Value) -> Vec<String> {
    let allow = home["resources"]["users"]["hints"]["allow"].as_array();
    let allow = allow.unwrap_or_else(|| panic!("no users allow hint in {home}"));
    allow
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn health_is_green_with_a_200_on_both_paths() {
    let server = Fixture::new().start();

    for path in ["/health", "/health/"] {
        let res = server.get(path).send().await;
        assert_eq!(res.code(), 200, "{path}");
        let health = res.json();
        assert_eq!(health["status"], "green", "{path}");
        assert_eq!(health["database"], "OK", "{path}");
        assert!(health["version"].as_str().is_some_and(|v| !v.is_empty()));
    }
}

#[tokio::test]
async fn unknown_paths_are_404_problems() {
    let server = Fixture::new().user(&alice()).start();
    let paths = [
        "/nope",
        "/jwt",
        "/users",
        "/users/alice",
        "/users/alice/extra/",
        "/health/extra",
        "/JWT/",
        "/password_recoveries",
    ];

    for path in paths {
        let res = server.get(path).send().await;
        assert_problem(&res, 404, "Not Found");
    }
}

#[tokio::test]
async fn wrong_methods_are_405_problems_with_allow() {
    let server = Fixture::new().user(&alice()).start();
    let cases: [(&str, &str, &[&str]); 7] = [
        ("DELETE", "/jwt/", &["GET", "POST"]),
        ("PUT", "/users/", &["GET", "POST"]),
        ("GET", "/users/alice/", &["PATCH"]),
        ("DELETE", "/password_recoveries/", &["GET", "POST"]),
        ("POST", "/health", &["GET"]),
        ("POST", "/", &["GET"]),
        ("DELETE", "/.well-known/jwks.json", &["GET"]),
    ];

    for (method, path, allowed) in cases {
        let res = server.request(method, path).send().await;
        assert_problem(&res, 405, "Method Not Allowed");
        let allow = res.header_list("allow");
        for expected in allowed {
            assert!(
                allow.contains(&(*expected).to_owned()),
                "{method} {path}: {allow:?}"
            );
        }
        assert!(
            !allow.contains(&method.to_owned()),
            "{method} {path}: {allow:?}"
        );
    }
}

#[tokio::test]
async fn every_response_carries_nosniff_and_hsts() {
    let server = Fixture::new().start();
    let requests = [
        server.get("/health"),
        server.get("/"),
        server.get("/nope"),
        server.request("DELETE", "/jwt/"),
        server.post("/jwt/").body("{"),
    ];

    for request in requests {
        let res = request.send().await;
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{res:?}"
        );
        let hsts = res.header("strict-transport-security").unwrap_or_default();
        assert!(hsts.contains("max-age="), "{res:?}");
    }
}

#[tokio::test]
async fn head_is_accepted_wherever_get_is() {
    let server = Fixture::new().start();
    let paths = [
        "/",
        "/health",
        "/health/",
        "/forgotten_passwords/",
        "/jwt/",
        "/users/",
        "/password_recoveries/",
        "/.well-known/jwks.json",
        "/public-key/",
    ];

    for path in paths {
        let head = server.request("HEAD", path).send().await;
        let get = server.get(path).send().await;
        assert_eq!(head.code(), 200, "HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path} has a body");
        let content_type = head.header("content-type");
        assert_eq!(content_type, get.header("content-type"), "HEAD {path}");
    }
}

#[tokio::test]
async fn http2_negotiated_with_alpn_serves_health_and_logins() {
    let user = alice();
    let server = Fixture::new().user(&user).start();

    let health = server.get("/health").http2().send().await;
    let login = server
        .post("/jwt/")
        .http2()
        .json(&json!({"username": user.username, "password": user.password}))
        .send()
        .await;

    assert_eq!(health.version, Version::HTTP_2);
    assert_eq!(health.json()["status"], "green");
    assert_eq!(login.version, Version::HTTP_2);
    assert_eq!(login.code(), 201);
}

#[tokio::test]
async fn http2_errors_are_problems_too() {
    let server = Fixture::new().start();

    let res = server.get("/nope").http2().send().await;

    assert_eq!(res.version, Version::HTTP_2);
    assert_problem(&res, 404, "Not Found");
}

#[tokio::test]
async fn a_public_url_with_a_path_prefix_is_kept_in_every_link() {
    let base = "https://sso.example.com/kisee";
    let server = Fixture::new()
        .set("server.public_url", json!(base))
        .set("backend.memory.registration", json!(true))
        .start();

    let home = server.get("/").send().await.json();
    let jwt = server.get("/jwt/").send().await.json();
    let users = server.get("/users/").send().await.json();
    let recoveries = server.get("/password_recoveries/").send().await.json();

    assert_eq!(home["resources"]["jwt"]["href"], format!("{base}/jwt/"));
    assert_eq!(home["resources"]["users"]["href"], format!("{base}/users/"));
    let recoveries_href = &home["resources"]["password_recoveries"]["href"];
    assert_eq!(
        recoveries_href,
        &json!(format!("{base}/password_recoveries/"))
    );
    assert_eq!(jwt["_meta"]["url"], format!("{base}/jwt/"));
    assert_eq!(jwt["add_token"]["url"], format!("{base}/jwt/"));
    assert_eq!(users["_meta"]["url"], format!("{base}/users/"));
    assert_eq!(users["patch"]["url"], format!("{base}/users/{{username}}/"));
    assert_eq!(users["register_user"]["url"], format!("{base}/users/"));
    let reset = &recoveries["reset_password"]["url"];
    assert_eq!(reset, &json!(format!("{base}/password_recoveries/")));
}

#[tokio::test]
async fn a_public_url_prefix_is_kept_in_plain_links() {
    let base = "https://sso.example.com/kisee";
    let server = Fixture::new().set("server.public_url", json!(base)).start();

    let jwt = server.get("/jwt/").accept("application/json").send().await;

    assert_eq!(jwt.json()["add_token"], format!("{base}/jwt/"));
}

#[tokio::test]
async fn cors_is_off_unless_origins_are_configured() {
    let server = Fixture::new().start();

    let res = server
        .get("/health")
        .header("origin", "https://app.example")
        .send()
        .await;

    assert_eq!(res.code(), 200);
    assert_eq!(res.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn only_configured_cors_origins_are_echoed() {
    let server = Fixture::new()
        .set("server.cors_origins", json!(["https://app.example"]))
        .start();

    let allowed = server.get("/jwt/").header("origin", "https://app.example");
    let allowed = allowed.send().await;
    let other = server.get("/jwt/").header("origin", "https://evil.example");
    let other = other.send().await;

    let echoed = allowed.header("access-control-allow-origin");
    assert_eq!(echoed, Some("https://app.example"));
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn the_status_line_carries_the_title_as_reason_phrase() {
    let server = Fixture::new().user(&alice()).start();
    let body = r#"{"username": "alice", "password": "not-hers"}"#;
    let request = format!(
        "POST /jwt/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );

    let head = server.client().raw_exchange(request.as_bytes()).await;

    let status_line = head.lines().next().unwrap_or_default();
    assert_eq!(status_line, "HTTP/1.1 403 Failed identification for kisee.");
}

#[tokio::test]
async fn documents_use_the_configured_public_url() {
    let server = Fixture::new().start();

    let doc = server.get("/password_recoveries/").send().await.json();

    assert_eq!(doc["_meta"]["url"], abs("/password_recoveries/"));
}

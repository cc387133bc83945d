//! CORS beyond what tests/api_misc.rs shows (the origin echoed or not):
//! `Vary`, preflights, and errors a browser page must be able to read.

use serde_json::json;

use super::{REFUSED, try_login};
use crate::common::{Fixture, Response, Server, assert_problem};

const ALLOWED: &str = "https://app.example";
const OTHER: &str = "https://evil.example";

fn cors_server() -> Server {
    Fixture::new()
        .set("server.cors_origins", json!([ALLOWED]))
        .start()
}

async fn preflight(server: &Server, path: &str, origin: &str, method: Option<&str>) -> Response {
    let mut request = server
        .request("OPTIONS", path)
        .header("origin", origin)
        .header("access-control-request-headers", "content-type");
    if let Some(method) = method {
        request = request.header("access-control-request-method", method);
    }
    request.send().await
}

#[tokio::test]
async fn an_allowed_origin_is_echoed_with_vary_origin() {
    let server = cors_server();

    let res = server.get("/jwt/").header("origin", ALLOWED).send().await;

    assert_eq!(res.code(), 200);
    assert_eq!(res.header("access-control-allow-origin"), Some(ALLOWED));
    let vary = res.header_list("vary");
    assert!(
        vary.iter().any(|v| v.eq_ignore_ascii_case("origin")),
        "{vary:?}"
    );
}

#[tokio::test]
async fn a_refused_login_is_readable_by_an_allowed_origin_only() {
    let server = cors_server();
    let credentials = json!({"username": "nobody", "password": "a-password"});

    let allowed = server
        .post("/jwt/")
        .header("origin", ALLOWED)
        .json(&credentials)
        .send()
        .await;
    let other = server
        .post("/jwt/")
        .header("origin", OTHER)
        .json(&credentials)
        .send()
        .await;

    assert_problem(&allowed, 403, REFUSED);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(ALLOWED));
    assert_problem(&other, 403, REFUSED);
    assert_eq!(other.header("access-control-allow-origin"), None);
    assert_eq!(
        try_login(&server, "nobody", "x")
            .await
            .header("access-control-allow-origin"),
        None
    );
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_204_with_the_routes_methods() {
    let server = cors_server();

    let jwt = preflight(&server, "/jwt/", ALLOWED, Some("POST")).await;
    let user = preflight(&server, "/users/alice/", ALLOWED, Some("PATCH")).await;

    for (res, method) in [(&jwt, "POST"), (&user, "PATCH")] {
        assert_eq!(res.code(), 204, "{}", res.text());
        assert!(res.body.is_empty(), "{}", res.text());
        assert_eq!(res.header("access-control-allow-origin"), Some(ALLOWED));
        let methods = res.header_list("access-control-allow-methods");
        assert!(methods.iter().any(|m| m == method), "{methods:?}");
        let headers = res.header_list("access-control-allow-headers");
        for needed in ["authorization", "content-type"] {
            assert!(
                headers.iter().any(|h| h.eq_ignore_ascii_case(needed)),
                "{needed} not in {headers:?}"
            );
        }
    }
    let methods = jwt.header_list("access-control-allow-methods");
    assert!(!methods.iter().any(|m| m == "PATCH"), "{methods:?}");
}

#[tokio::test]
async fn a_preflight_from_another_origin_or_without_a_method_is_405() {
    let server = cors_server();

    let other = preflight(&server, "/jwt/", OTHER, Some("POST")).await;
    let no_method = preflight(&server, "/jwt/", ALLOWED, None).await;

    for res in [&other, &no_method] {
        assert_problem(res, 405, "Method Not Allowed");
        assert!(res.header("allow").is_some(), "no Allow: {res:?}");
        assert_eq!(res.header("access-control-allow-methods"), None);
    }
    assert_eq!(other.header("access-control-allow-origin"), None);
}

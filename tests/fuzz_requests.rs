//! Property test over the whole request path, run in-process: arbitrary
//! methods, paths, headers and bodies go through the real router, handlers
//! and memory backend. None may panic or get a 5xx, and every error is a
//! well-formed problem+json document.

#![allow(clippy::panic, reason = "a test reports failure by panicking")]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use kisee::app::App;
use kisee::settings::Settings;
use proptest::prelude::*;

const SETTINGS: &str = r#"
server: {public_url: "https://kisee.test/prefix"}
backend:
  kind: memory
  memory:
    registration: true
    users:
      - username: alice
        password_hash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$1Qfb+4YNo4bBMYoqaQn3ItCgLPHTR8KNEQC3g6yfxJg"
throttle: {per_user: {failures: 0}, per_client: {failures: 0}, registrations_per_client: {count: 0}}
"#;

fn app() -> Arc<App> {
    let settings = Settings::from_yaml(SETTINGS, Path::new("fuzz"), Path::new("."), Vec::new())
        .unwrap_or_else(|e| panic!("settings: {e}"));
    kisee::app::build(&settings)
        .unwrap_or_else(|e| panic!("app: {e:?}"))
        .app
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS",
    ])
}

fn path() -> impl Strategy<Value = String> {
    let known = prop::sample::select(vec![
        "/",
        "/jwt/",
        "/jwt/abc",
        "/users/",
        "/users/alice/",
        "/users/%ff/",
        "/password_recoveries/",
        "/forgotten_passwords/",
        "/health",
        "/.well-known/jwks.json",
        "/public-key/",
    ]);
    prop_oneof![known.prop_map(String::from), "/[a-z%0-9/._-]{0,40}"]
}

/// JSON shaped like what clients send, with wrong types mixed in.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "username", "login", "password", "email", "op", "path", "value"
                ])
                .prop_map(String::from),
                inner,
                0..5,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    value.prop_map(|v| serde_json::to_vec(&v).unwrap_or_default())
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![json_body(), prop::collection::vec(any::<u8>(), 0..200)]
}

fn authorization() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        "(Basic|basic|BASIC|Bearer|bearer|Digest) [ -~]{0,60}",
        "[ -~]{0,40}",
        Just("Basic YWxpY2U6".to_string()),
        Just("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.".to_string()),
    ])
}

fn request(
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Vec<u8>,
) -> Option<hyper::Request<Full<Bytes>>> {
    let mut builder = hyper::Request::builder().method(method).uri(path);
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    builder.body(Full::new(Bytes::from(body))).ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn no_request_gets_a_server_error(
        method in method(),
        path in path(),
        authorization in authorization(),
        body in body(),
    ) {
        let Some(request) = request(method, &path, authorization.as_deref(), body) else {
            return Ok(()); // not a request hyper would ever hand the router
        };
        let (status, content_type, bytes) = runtime().block_on(async {
            let peer: SocketAddr = ([127, 0, 0, 1], 4000).into();
            let response = kisee::http::router::handle(app_once(), peer, true, request).await;
            let response = response.unwrap_or_else(|never| match never {});
            let status = response.status();
            let content_type = response.headers().get("content-type").cloned();
            let bytes = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            (status, content_type, bytes)
        });
        prop_assert!(status.as_u16() < 500, "{method} {path}: {status}");
        if status.is_client_error() && method != "HEAD" {
            prop_assert_eq!(content_type.as_ref().and_then(|v| v.to_str().ok()),
                Some("application/problem+json; charset=utf-8"));
            let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            prop_assert_eq!(problem["status"].as_u64(), Some(u64::from(status.as_u16())));
            prop_assert_eq!(&problem["_type"], "error");
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

fn app_once() -> Arc<App> {
    static APP: std::sync::OnceLock<Arc<App>> = std::sync::OnceLock::new();
    Arc::clone(APP.get_or_init(app))
}

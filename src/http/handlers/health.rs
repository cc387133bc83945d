//! `GET /health`: green with 200 when the backend answers, red with 503
//! when it does not, so that load balancers can act on it; and `GET
//! /metrics`, the Prometheus exposition.

use http::StatusCode;
use serde_json::json;

use crate::app::App;
use crate::http::response::{Resp, json_response};

const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(crate) async fn get(app: &App) -> Resp {
    match app.backend.health().await {
        Ok(()) => {
            app.metrics.backend_up.set(1);
            let body = json!({"status": "green", "database": "OK", "version": VERSION});
            json_response(StatusCode::OK, "application/json", &body)
        }
        Err(err) => {
            app.metrics.backend_up.set(0);
            tracing::warn!(backend = app.backend.name(), error = %err, "health check failed");
            let error = json!({"title": "Authentication backend unavailable", "backend": app.backend.name()});
            let body =
                json!({"status": "red", "database": "KO", "version": VERSION, "error": error});
            json_response(StatusCode::SERVICE_UNAVAILABLE, "application/json", &body)
        }
    }
}

pub(crate) fn metrics(app: &App) -> Resp {
    let mut response = Resp::new(app.metrics.render().into());
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

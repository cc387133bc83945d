//! `GET /jwt/` and `POST /jwt/`: a username and password in, a signed JWT out.

use std::net::SocketAddr;
use std::time::Instant;

use http::StatusCode;
use serde_json::{Value, json};

use super::audit_event;
use super::string_member;
use crate::app::App;
use crate::audit::Outcome;
use crate::backend::{BackendError, Identity};
use crate::http::documents::{Document, Field, Link, string_schema};
use crate::http::error::{ApiError, ApiResult};
use crate::http::request::Request;
use crate::http::response::{Resp, json_response, ok_json, with_location};
use crate::secret::Secret;
use crate::settings::{MAX_PASSWORD_BYTES, MAX_USERNAME_BYTES};

fn document(app: &App, tokens: Vec<String>) -> Document {
    let url = app.urls.absolute("/jwt/");
    let password_schema = json!({"type": "string", "format": "password"});
    let add_token = Link {
        url: url.clone(),
        action: "post",
        title: "Create a new JWT",
        description: "POST a username and a password to get a signed JWT.",
        fields: vec![
            Field::required("username", string_schema()),
            Field::required("password", password_schema),
        ],
    };
    Document::new(url, "JSON Web Tokens")
        .value("tokens", json!(tokens))
        .link("add_token", add_token)
}

pub(crate) fn get(app: &App, request: &Request) -> Resp {
    ok_json(&document(app, Vec::new()).render(request.form()))
}

pub(crate) async fn post(app: &App, request: &Request) -> ApiResult {
    let started = Instant::now();
    let body = request.json()?;
    let (username, password) = credentials(&body).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Missing username or password.",
        )
    })?;

    let outcome = authenticate(app, &username, &password, request.peer).await;
    log_attempt(app, request, &username, &outcome, started);
    let identity = outcome.map_err(LoginFailure::into_api_error)?;

    let signing = Instant::now();
    let issued = app.tokens.issue_login(&identity).map_err(|err| {
        tracing::error!(error = %err, "cannot sign a token");
        ApiError::internal()
    })?;
    app.metrics
        .signing_seconds
        .observe(signing.elapsed().as_secs_f64());
    let body = document(app, vec![issued.token]).render(request.form());
    let response = json_response(StatusCode::CREATED, "application/json", &body);
    Ok(with_location(
        response,
        &app.urls.path(&format!("/jwt/{}", issued.jti)),
    ))
}

/// The username (or its legacy name `login`) and password, each a
/// non-empty string. `username` wins when both names are given.
fn credentials(body: &Value) -> Option<(String, Secret)> {
    let username = string_member(body, "username").or_else(|| string_member(body, "login"))?;
    let password = string_member(body, "password")?;
    if username.is_empty() || password.is_empty() {
        return None;
    }
    Some((username.to_string(), Secret::new(password)))
}

/// Why a login did not produce an identity.
#[derive(Debug)]
pub(crate) enum LoginFailure {
    /// Too many recent failures for this user or client: the backend was
    /// not asked.
    Throttled(u64),
    /// The backend's answer.
    Backend(BackendError),
}

impl LoginFailure {
    /// The general answer; callers match the variants they word otherwise.
    pub(crate) fn into_api_error(self) -> ApiError {
        match self {
            Self::Throttled(retry_after) => ApiError::throttled(retry_after),
            Self::Backend(err) => ApiError::from_backend(err),
        }
    }
}

/// Checks credentials through the throttle: each attempt is counted
/// against the user and the client before the backend is asked (a
/// throttled one never reaches it), a refusal stays counted, a success
/// clears the user's count. Input no account can match (an
/// oversized username or password) is refused before any hash or
/// directory sees it.
pub(crate) async fn authenticate(
    app: &App,
    username: &str,
    password: &Secret,
    peer: SocketAddr,
) -> Result<Identity, LoginFailure> {
    let attempt = app
        .throttle
        .begin_login(username, peer.ip())
        .await
        .map_err(|t| {
            app.metrics.throttled("login");
            LoginFailure::Throttled(t.retry_after)
        })?;
    let outcome = if username.len() > MAX_USERNAME_BYTES || password.len() > MAX_PASSWORD_BYTES {
        Err(BackendError::Refused)
    } else {
        ask_backend(app, username, password).await
    };
    match &outcome {
        Ok(identity) => app.throttle.succeeded(attempt, &identity.username).await,
        // The attempt stays counted: that is the failure.
        Err(BackendError::Refused) => {}
        Err(_) => app.throttle.abandoned(attempt).await,
    }
    outcome.map_err(LoginFailure::Backend)
}

async fn ask_backend(
    app: &App,
    username: &str,
    password: &Secret,
) -> Result<Identity, BackendError> {
    app.metrics.backend_check(app.backend.name());
    let started = Instant::now();
    let outcome = app.backend.authenticate(username, password).await;
    app.metrics
        .backend_seconds
        .observe(started.elapsed().as_secs_f64());
    outcome
}

fn log_attempt(
    app: &App,
    request: &Request,
    username: &str,
    outcome: &Result<Identity, LoginFailure>,
    started: Instant,
) {
    let (outcome, reason) = match outcome {
        Ok(_) => (Outcome::Success, ""),
        Err(LoginFailure::Throttled(_)) => (Outcome::Throttled, "too many failures"),
        Err(LoginFailure::Backend(BackendError::Refused)) => {
            (Outcome::Refused, "credentials refused")
        }
        Err(LoginFailure::Backend(BackendError::Unavailable(_))) => {
            (Outcome::Unavailable, "backend unavailable")
        }
        Err(LoginFailure::Backend(_)) => (Outcome::Error, "backend fault"),
    };
    app.metrics.login(app.backend.name(), outcome.as_str());
    audit_event(
        app,
        request.peer,
        "login",
        username,
        (outcome, reason),
        started,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_wins_over_login_and_empty_values_are_missing() {
        let both = json!({"username": "a", "login": "b", "password": "p"});
        assert_eq!(credentials(&both).map(|c| c.0), Some("a".to_string()));
        let legacy = json!({"login": "b", "password": "p"});
        assert_eq!(credentials(&legacy).map(|c| c.0), Some("b".to_string()));
        for missing in [
            json!({"username": "a"}),
            json!({"username": "", "password": "p"}),
            json!(null),
            json!([1]),
        ] {
            assert!(credentials(&missing).is_none(), "{missing}");
        }
        let null_username = json!({"username": null, "login": "b", "password": "p"});
        assert_eq!(
            credentials(&null_username).map(|c| c.0),
            Some("b".to_string())
        );
    }
}

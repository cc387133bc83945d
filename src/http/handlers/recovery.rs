//! `GET /password_recoveries/` and `POST /password_recoveries/`: ask for a
//! password-reset token, delivered to the user and never in the answer.

use std::sync::Arc;

use std::time::Instant;

use super::{audit_event, string_member};
use crate::app::App;
use crate::audit::Outcome;
use crate::http::documents::{Document, Field, Link, Urls, string_schema};
use crate::http::error::{ApiError, ApiResult};
use crate::http::request::Request;
use crate::http::response::{Resp, empty, ok_json};
use http::StatusCode;
use serde_json::json;

/// Without credentials, how to ask for a reset token; with valid Basic
/// credentials or a live reset token, where to change the password.
pub(crate) async fn get(app: &App, request: &Request) -> Resp {
    let urls = &app.urls;
    let doc = Document::new(
        urls.absolute("/password_recoveries/"),
        "Forgotten password management",
    );
    let doc = match known_user(app, request).await {
        Some(username) => doc.link("recover", recover_link(app, &username)),
        None => doc.link("reset_password", reset_link(app)),
    };
    ok_json(&doc.render(request.form()))
}

fn reset_link(app: &App) -> Link {
    Link {
        url: app.urls.absolute("/password_recoveries/"),
        action: "post",
        title: "",
        description: "POST a username or an email address to receive a password-reset token.",
        fields: vec![
            Field::optional("username", string_schema()),
            Field::optional("email", json!({"type": "string", "format": "email"})),
        ],
    }
}

fn recover_link(app: &App, username: &str) -> Link {
    let min_length = app.registration.password_min_length;
    let password = json!({"type": "string", "minLength": min_length, "format": "password"});
    Link {
        url: app.urls.absolute(&Urls::user_path(username)),
        action: "patch",
        title: "Change password",
        description: "PATCH with a JSON Patch replacing /password.",
        fields: vec![Field::optional("password", password)],
    }
}

/// The user proven by valid Basic credentials or a live reset token: the
/// same check a password change makes.
async fn known_user(app: &App, request: &Request) -> Option<String> {
    super::users::authorize(app, request)
        .await
        .ok()
        .map(|(username, _)| username)
}

/// Always 201 once the request names a user or an address: whether the
/// account exists is never told. The lookup and the delivery run after the
/// answer, so that its timing does not tell either.
pub(crate) fn post(app: &Arc<App>, request: &Request) -> ApiResult {
    let body = request.json()?;
    let username = string_member(&body, "username").or_else(|| string_member(&body, "login"));
    let email = string_member(&body, "email");
    if username.is_none() && email.is_none() {
        return Err(ApiError::bad_request(
            "Missing required fields email or username",
        ));
    }
    let (username, email) = (username.map(str::to_string), email.map(str::to_string));
    let app = Arc::clone(app);
    let peer = request.peer;
    tokio::spawn(async move { send_reset(&app, username, email, peer).await });
    Ok(empty(StatusCode::CREATED))
}

async fn send_reset(
    app: &App,
    username: Option<String>,
    email: Option<String>,
    peer: std::net::SocketAddr,
) {
    let started = Instant::now();
    let found = app
        .backend
        .find_contact(username.as_deref(), email.as_deref())
        .await;
    let contact = match found {
        Ok(Some(contact)) => contact,
        Ok(None) => {
            let user = username.as_deref().or(email.as_deref()).unwrap_or_default();
            audit_event(
                app,
                peer,
                "recovery_request",
                user,
                (Outcome::Refused, "no such account"),
                started,
            );
            return;
        }
        Err(err) => {
            tracing::warn!(error = %err, "password recovery lookup failed");
            return;
        }
    };
    let stamp = app.recovery.stamp(&contact.username);
    match app.tokens.issue_reset(&contact.username, &stamp) {
        Ok(issued) => {
            audit_event(
                app,
                peer,
                "recovery_request",
                &contact.username,
                (Outcome::Success, "token sent"),
                started,
            );
            app.recovery.deliver(&contact, &issued.token).await;
        }
        Err(err) => tracing::error!(error = %err, "cannot sign a reset token"),
    }
}

//! `GET /users/`, `POST /users/` (registration) and `PATCH /users/{username}/`
//! (password change with Basic credentials or a password-reset token).

use http::StatusCode;
use serde_json::{Value, json};

use std::time::Instant;

use super::tokens::{LoginFailure, authenticate};
use super::{audit, string_member};
use crate::app::App;
use crate::backend::{BackendError, NewUser};
use crate::http::documents::{Document, Field, Link, Urls, string_schema};
use crate::http::error::{ApiError, ApiResult};
use crate::http::request::{Authorization, Request};
use crate::http::response::{Resp, empty, ok_json, with_location};
use crate::policy::{check_password, check_username, is_valid_email};
use crate::secret::Secret;
use crate::token::Verified;

pub(crate) fn get(app: &App, request: &Request) -> Resp {
    let urls = &app.urls;
    let patch = Link {
        url: urls.absolute("/users/{username}/"),
        action: "patch",
        title: "Patch a user",
        description: "PATCH a user with a JSON Patch replacing /password.",
        fields: Vec::new(),
    };
    let mut doc = Document::new(urls.absolute("/users/"), "Users")
        .value("users", json!([]))
        .link("patch", patch);
    if app.backend.capabilities().register {
        doc = doc.link("register_user", register_link(app));
    }
    ok_json(&doc.render(request.form()))
}

fn register_link(app: &App) -> Link {
    let min_length = app.registration.password_min_length;
    Link {
        url: app.urls.absolute("/users/"),
        action: "post",
        title: "Register a new user",
        description: "POST a username, a password and an email address to create an account.",
        fields: vec![
            Field::required("username", string_schema()),
            Field::required(
                "password",
                json!({"type": "string", "minLength": min_length, "format": "password"}),
            ),
            Field::required("email", json!({"type": "string", "format": "email"})),
        ],
    }
}

pub(crate) async fn register(app: &App, request: &Request) -> ApiResult {
    let started = Instant::now();
    let body = request.json();
    let name = body
        .as_ref()
        .ok()
        .and_then(|b| string_member(b, "username"));
    let user = name.unwrap_or_default().to_string();
    let result = register_user(app, request, body).await;
    audit(app, request, "registration", &user, started, &result);
    result
}

async fn register_user(app: &App, request: &Request, body: Result<Value, ApiError>) -> ApiResult {
    if !app.backend.capabilities().register {
        return Err(ApiError::forbidden("Registration is not available"));
    }
    let body = body?;
    let user = new_user(app, &body)?;
    let username = user.username.clone();
    app.throttle
        .register(request.peer.ip())
        .await
        .map_err(|t| {
            app.metrics.throttled("registration");
            ApiError::throttled(t.retry_after)
        })?;

    match app.backend.register(user).await {
        Ok(()) => {}
        Err(BackendError::NotSupported) => {
            return Err(ApiError::forbidden("Registration is not available"));
        }
        Err(err) => return Err(ApiError::from_backend(err)),
    }
    let location = app.urls.path(&Urls::user_path(&username));
    Ok(with_location(empty(StatusCode::CREATED), &location))
}

/// The new account the body describes, checked against the policy.
fn new_user(app: &App, body: &Value) -> Result<NewUser, ApiError> {
    let fields = (
        string_member(body, "username"),
        string_member(body, "password"),
        string_member(body, "email"),
    );
    let (Some(username), Some(password), Some(email)) = fields else {
        return Err(ApiError::bad_request("Missing required input fields"));
    };
    if !is_valid_email(email) {
        return Err(ApiError::bad_request("Email is not valid"));
    }
    let policy =
        |violation: crate::policy::PolicyViolation| ApiError::bad_request(violation.to_string());
    check_username(&app.registration, username).map_err(policy)?;
    check_password(&app.registration, password).map_err(policy)?;
    Ok(NewUser {
        username: username.into(),
        password: Secret::new(password),
        email: email.into(),
    })
}

pub(crate) async fn change_password(app: &App, request: &Request, username: &str) -> ApiResult {
    let started = Instant::now();
    let result = patch_password(app, request, username).await;
    audit(app, request, "password_change", username, started, &result);
    result
}

async fn patch_password(app: &App, request: &Request, username: &str) -> ApiResult {
    if !app.backend.capabilities().change_password {
        return Err(ApiError::forbidden("Password change is not available"));
    }
    let (authorized, stamp) = authorize(app, request).await?;
    if authorized != username {
        return Err(ApiError::forbidden(
            "Token does not apply to user resource.",
        ));
    }
    let new_password = patched_password(&request.json()?)?;
    check_password(&app.registration, new_password.expose())
        .map_err(|violation| ApiError::bad_request(violation.to_string()))?;

    // A reset token is used up here, once the request is known to be valid,
    // and in one step: two requests racing with one token cannot both pass.
    if stamp.is_some_and(|stamp| !app.recovery.consume(username, &stamp)) {
        return Err(ApiError::unauthorized("Bad authorization"));
    }
    app.backend
        .change_password(username, &new_password)
        .await
        .map_err(ApiError::from_backend)?;
    app.recovery.rotate(username);
    Ok(empty(StatusCode::NO_CONTENT))
}

/// The user the request's credentials prove to be, and the reset stamp to
/// use up when they are a reset token.
pub(super) async fn authorize(
    app: &App,
    request: &Request,
) -> Result<(String, Option<String>), ApiError> {
    match request.authorization()? {
        Authorization::Basic { username, password } => {
            match authenticate(app, &username, &password, request.peer).await {
                Ok(identity) => Ok((identity.username, None)),
                Err(LoginFailure::Backend(BackendError::Refused)) => {
                    Err(ApiError::unauthorized("Bad authorization"))
                }
                Err(failure) => Err(failure.into_api_error()),
            }
        }
        Authorization::Bearer(token) => match app.tokens.verify(&token) {
            Ok(Verified::Reset { sub, stamp }) if app.recovery.is_current(&sub, &stamp) => {
                Ok((sub, Some(stamp)))
            }
            Ok(Verified::Login { .. }) => Err(ApiError::forbidden(
                "Use a password lost token or basic auth.",
            )),
            Ok(Verified::Reset { .. }) | Err(_) => Err(ApiError::unauthorized("Bad authorization")),
        },
    }
}

/// The new password from an RFC 6902 patch of exactly one `replace` (or
/// `add`) of `/password` with a string value.
fn patched_password(patch: &Value) -> Result<Secret, ApiError> {
    let invalid = || ApiError::bad_request("Invalid json patch.");
    let [operation] = patch.as_array().map(Vec::as_slice).ok_or_else(invalid)? else {
        return Err(invalid());
    };
    let op = string_member(operation, "op").ok_or_else(invalid)?;
    let path = string_member(operation, "path").ok_or_else(invalid)?;
    if !matches!(op, "replace" | "add" | "remove" | "copy" | "move" | "test") {
        return Err(invalid());
    }
    if path != "/password" || !matches!(op, "replace" | "add") {
        return Err(ApiError::bad_request("Only password can be patched."));
    }
    let value = string_member(operation, "value").ok_or_else(invalid)?;
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title(result: Result<Secret, ApiError>) -> Option<String> {
        result.err().map(|e| format!("{e:?}"))
    }

    #[test]
    fn only_one_replace_of_the_password_is_accepted() {
        let good = json!([{"op": "replace", "path": "/password", "value": "new secret"}]);
        assert_eq!(
            patched_password(&good).ok().map(|s| s.expose().to_string()),
            Some("new secret".into())
        );
        let cases = [
            (json!([]), "Invalid json patch."),
            (json!({"op": "replace"}), "Invalid json patch."),
            (
                json!([{"op": "replace", "path": "/password"}]),
                "Invalid json patch.",
            ),
            (
                json!([{"op": "replace", "path": "/password", "value": 3}]),
                "Invalid json patch.",
            ),
            (
                json!([{"op": "replace", "path": "/email", "value": "x"}]),
                "Only password can be patched.",
            ),
            (
                json!([{"op": "remove", "path": "/password"}]),
                "Only password can be patched.",
            ),
            (
                json!([{"op": "frob", "path": "/password", "value": "x"}]),
                "Invalid json patch.",
            ),
        ];
        for (patch, expected) in cases {
            let got = title(patched_password(&patch)).unwrap_or_default();
            assert!(got.contains(expected), "{patch}: {got}");
        }
    }
}

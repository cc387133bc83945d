//! `GET /`: the JSON-home document clients such as Pasee start from.

use http::StatusCode;
use serde_json::json;

use crate::app::App;
use crate::http::response::{Resp, json_response};

pub(crate) fn get(app: &App) -> Resp {
    let urls = &app.urls;
    let can = app.backend.capabilities();
    let mut users_allow = vec!["GET"];
    if can.register {
        users_allow.push("POST");
    }
    if can.change_password {
        users_allow.push("PATCH");
    }
    let formats = json!({"application/coreapi+json": {}});
    let body = json!({
        "api": {
            "title": "Identification Provider",
            "links": {"describedBy": urls.absolute("/")},
        },
        "resources": {
            "jwt": {
                "href": urls.absolute("/jwt/"),
                "hints": {"allow": ["GET", "POST"], "formats": formats},
            },
            "users": {
                "href": urls.absolute("/users/"),
                "hints": {"allow": users_allow, "formats": formats},
            },
            "password_recoveries": {
                "href": urls.absolute("/password_recoveries/"),
                "hints": {"allow": ["GET", "POST"], "formats": formats},
            },
        },
    });
    json_response(StatusCode::OK, "application/json-home", &body)
}

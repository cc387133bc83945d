//! The public keys verifiers need: the JWKS, and the PEM form Pasee's
//! settings take.

use serde_json::json;

use crate::app::App;
use crate::http::response::{Resp, ok_json};

pub(crate) fn jwks(app: &App) -> Resp {
    ok_json(app.tokens.jwks())
}

pub(crate) fn public_key(app: &App) -> Resp {
    let key = app.tokens.public_key();
    ok_json(&json!({"public_key": key.pem, "algorithm": key.algorithm.name()}))
}

//! `GET /jwks`: the public signing keys (RFC 7517).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::App;

pub async fn get(State(app): State<App>) -> Response {
    Json(app.ctx.keys.get().jwks().clone()).into_response()
}

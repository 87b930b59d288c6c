//! `GET /.well-known/openid-federation` (OpenID Federation 1.0 §9): the
//! server's Entity Configuration, signed with its federation key, when
//! `[federation]` is configured; 404 otherwise.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ephemera_proto::federation::ENTITY_STATEMENT_MEDIA_TYPE;

use super::App;

pub async fn get(State(app): State<App>) -> Response {
    let Some(federation) = &app.ctx.federation else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let as_metadata = serde_json::to_value(app.metadata.as_ref()).unwrap_or_default();
    let op_metadata = serde_json::from_slice(&app.openid_json).unwrap_or_default();
    match federation.entity_configuration(&as_metadata, &op_metadata, app.ctx.clock.now()) {
        Some(jwt) => ([(header::CONTENT_TYPE, ENTITY_STATEMENT_MEDIA_TYPE)], jwt).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

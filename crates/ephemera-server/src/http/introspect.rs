//! `POST /introspect` (RFC 7662).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::extract::{credentials, BackChannelForm};
use super::{error, App};
use crate::service::introspect;

pub async fn post(
    State(app): State<App>,
    headers: HeaderMap,
    BackChannelForm(params): BackChannelForm,
) -> Response {
    let (creds, basic) = match credentials(&headers, &params) {
        Ok(c) => c,
        Err(e) => return error::introspection(e, true),
    };
    match introspect::introspect(&app.ctx, &params, creds, app.ctx.clock.now()).await {
        Ok(body) => error::no_store_json(StatusCode::OK, body),
        Err(e) => error::introspection(e, basic),
    }
}

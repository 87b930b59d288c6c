//! `POST /introspect` (RFC 7662).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::extract::BackChannel;
use super::{error, respond, App};
use crate::service::introspect;

pub async fn post(State(app): State<App>, call: BackChannel) -> Response {
    match introspect::introspect(
        &app.ctx,
        &call.params,
        call.credentials,
        app.ctx.clock.now(),
    )
    .await
    {
        Ok(body) => respond::no_store_json(StatusCode::OK, body),
        Err(e) => error::introspection(e, call.basic),
    }
}

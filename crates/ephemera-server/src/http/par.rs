//! `POST /par` (RFC 9126).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::extract::BackChannel;
use super::{error, respond, App};
use crate::service::par;

pub async fn post(State(app): State<App>, call: BackChannel) -> Response {
    match par::push(
        &app.ctx,
        &call.params,
        call.credentials,
        call.dpop.as_deref(),
        app.ctx.clock.now(),
    )
    .await
    {
        Ok(body) => respond::no_store_json(StatusCode::CREATED, body),
        Err(e) => error::back_channel(e, call.basic),
    }
}

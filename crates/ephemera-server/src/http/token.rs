//! `POST /token` (RFC 6749 §3.2).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::extract::BackChannel;
use super::{error, respond, App};
use crate::service::token;

pub async fn post(State(app): State<App>, call: BackChannel) -> Response {
    match token::token(
        &app.ctx,
        &call.params,
        call.credentials,
        call.dpop.as_deref(),
        app.ctx.clock.now(),
    )
    .await
    {
        Ok(body) => respond::no_store_json(StatusCode::OK, body),
        Err(e) => error::back_channel(e, call.basic),
    }
}

//! `POST /revoke` (RFC 7009).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::extract::BackChannel;
use super::{error, App};
use crate::service::revoke;

pub async fn post(State(app): State<App>, call: BackChannel) -> Response {
    match revoke::revoke(
        &app.ctx,
        &call.params,
        call.credentials,
        call.dpop.as_deref(),
        app.ctx.clock.now(),
    )
    .await
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error::back_channel(e, call.basic),
    }
}

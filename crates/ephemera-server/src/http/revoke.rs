//! `POST /revoke` (RFC 7009).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::extract::{credentials, BackChannelForm};
use super::{error, App};
use crate::service::revoke;

pub async fn post(
    State(app): State<App>,
    headers: HeaderMap,
    BackChannelForm(params): BackChannelForm,
) -> Response {
    let (creds, basic) = match credentials(&headers, &params) {
        Ok(c) => c,
        Err(e) => return error::back_channel(e, true),
    };
    match revoke::revoke(&app.ctx, &params, creds, app.ctx.clock.now()).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error::back_channel(e, basic),
    }
}

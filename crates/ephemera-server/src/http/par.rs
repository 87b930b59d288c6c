//! `POST /par` (RFC 9126).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::extract::{credentials, BackChannelForm};
use super::{error, App};
use crate::service::par;

pub async fn post(
    State(app): State<App>,
    headers: HeaderMap,
    BackChannelForm(params): BackChannelForm,
) -> Response {
    let (creds, basic) = match credentials(&headers, &params) {
        Ok(c) => c,
        Err(e) => return error::back_channel(e, true),
    };
    match par::push(&app.ctx, &params, creds, app.ctx.clock.now()).await {
        Ok(body) => error::no_store_json(StatusCode::CREATED, body),
        Err(e) => error::back_channel(e, basic),
    }
}

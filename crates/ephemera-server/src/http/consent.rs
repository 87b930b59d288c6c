//! `POST /authorize/consent`: the user's decision.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::extract::{cookie, PageForm};
use super::{error, respond, App};
use crate::service::consent;

pub async fn post(
    State(app): State<App>,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Response {
    let cookie_value = cookie(&headers, app.cookie_name());
    let now = app.ctx.clock.now();
    match consent::decide(&app.ctx, &form, cookie_value.as_deref(), now).await {
        Ok(location) => respond::redirect(&location, true, None),
        Err(e) => error::authorization(e, &app.ctx.issuer, true),
    }
}

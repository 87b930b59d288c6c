//! Signing in through an upstream identity provider:
//! `POST /login/upstream/{name}` (from the login or account page) sends the
//! browser to the provider; `GET /login/upstream/{name}/callback` brings it
//! back signed in.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::extract::{cookie, PageForm, QueryParams};
use super::{error, respond, session_cookie, App};
use crate::service::upstream;

/// `POST /login/upstream/{name}`.
pub async fn start(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Response {
    let cookie_value = cookie(&headers, app.cookie_name());
    let now = app.ctx.clock.now();
    match upstream::start(&app.ctx, &name, &form, cookie_value.as_deref(), now).await {
        Ok(location) => respond::redirect(&location, true, None),
        Err(e) => error::error_page(e),
    }
}

/// `GET /login/upstream/{name}/callback`.
pub async fn callback(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    QueryParams(params): QueryParams,
) -> Response {
    let cookie_value = cookie(&headers, app.cookie_name());
    let now = app.ctx.clock.now();
    match upstream::callback(&app.ctx, &name, &params, cookie_value.as_deref(), now).await {
        Ok(signed_in) => respond::redirect(
            &signed_in.next,
            false,
            Some(session_cookie(&app, signed_in.session.expose())),
        ),
        Err(e) => error::authorization(e, &app.ctx.issuer, false),
    }
}

//! `POST /authorize/login`: the login form.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::authorize::login_page;
use super::extract::{cookie, PageForm};
use super::{error, session_cookie, App};
use crate::service::login::{self, LoginOutcome};

pub async fn post(
    State(app): State<App>,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Response {
    let cookie_value = cookie(&headers, app.cookie_name());
    let now = app.ctx.clock.now();
    match login::login(&app.ctx, &form, cookie_value.as_deref(), now).await {
        Ok(LoginOutcome::LoggedIn { session, next }) => {
            error::redirect(&next, true, Some(session_cookie(&app, session.expose())))
        }
        Ok(LoginOutcome::Retry(pending)) => login_page(
            &app,
            &pending,
            cookie_value,
            Some("Wrong username or password."),
        ),
        Err(e) => error::error_page(e),
    }
}

//! `POST /authorize/login`: the login form.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::authorize::login_page;
use super::extract::{cookie, PageForm};
use super::{error, respond, session_cookie, App};
use crate::service::login::{self, LoginOutcome};

pub async fn post(
    State(app): State<App>,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Response {
    let cookie_value = cookie(&headers, app.cookie_name());
    let now = app.ctx.clock.now();
    // Per-username throttling: once a username has spent its failures, every
    // attempt with it gets the same 429 page, without a password check,
    // whether or not the user exists and whatever the password.
    let username = form.get("username").unwrap_or_default().to_owned();
    let failures = app.limits.login_failures.as_ref();
    if let Some(Err(retry)) = failures.map(|l| l.check(&username, now)) {
        tracing::info!("login throttled for a username");
        return error::rate_limited_page(retry, "failed logins for this username");
    }
    match login::login(&app.ctx, &form, cookie_value.as_deref(), now).await {
        Ok(LoginOutcome::LoggedIn { session, next }) => {
            respond::redirect(&next, true, Some(session_cookie(&app, session.expose())))
        }
        Ok(LoginOutcome::Retry(pending)) => {
            if let Some(l) = failures {
                // Counted for unknown usernames too: both look the same.
                let _ = l.hit(&username, now);
            }
            login_page(
                &app,
                &pending,
                cookie_value,
                Some("Wrong username or password."),
            )
        }
        Err(e) => error::error_page(e),
    }
}

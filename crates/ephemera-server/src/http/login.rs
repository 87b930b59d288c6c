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
    let username = form.get("username").unwrap_or_default();
    if let Some(page) = throttled(&app, username, now) {
        return page;
    }
    match login::login(&app.ctx, &form, cookie_value.as_deref(), now).await {
        Ok(LoginOutcome::LoggedIn { session, next }) => {
            respond::redirect(&next, true, Some(session_cookie(&app, session.expose())))
        }
        Ok(LoginOutcome::Retry(pending)) => {
            count_failure(&app, username, now);
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

/// Per-username throttling of password forms (the login page's and the
/// account page's): once a username has spent its failures, every attempt
/// with it gets the same 429 page, without a password check, whether or not
/// the user exists and whatever the password.
pub(super) fn throttled(app: &App, username: &str, now: i64) -> Option<Response> {
    let failures = app.limits.login_failures.as_ref()?;
    let retry = failures.check(username, now).err()?;
    tracing::info!("login throttled for a username");
    Some(error::rate_limited_page(
        retry,
        "failed logins for this username",
    ))
}

/// A wrong password for `username`, counted for unknown usernames too: both
/// look the same.
pub(super) fn count_failure(app: &App, username: &str, now: i64) {
    if let Some(failures) = &app.limits.login_failures {
        let _ = failures.hit(username, now);
    }
}

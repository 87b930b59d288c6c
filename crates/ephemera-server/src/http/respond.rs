//! Successful answers: JSON that must not be cached, pages with their
//! security headers, and redirects. Errors are mapped in [`super::error`].

use askama::Template;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error;
use crate::service::OAuthError;

pub(super) const NO_STORE: [(HeaderName, HeaderValue); 2] = [
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    (header::PRAGMA, HeaderValue::from_static("no-cache")),
];

/// A JSON success answer that must not be cached (RFC 6749 §5.1).
pub fn no_store_json<T: serde::Serialize>(status: StatusCode, body: T) -> Response {
    (status, NO_STORE, Json(body)).into_response()
}

/// The headers every HTML page carries: nothing may frame it, load from
/// elsewhere, or learn where the user came from.
const PAGE_HEADERS: [(HeaderName, HeaderValue); 6] = [
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    (header::PRAGMA, HeaderValue::from_static("no-cache")),
];

/// Renders a page with the security headers.
pub fn page(status: StatusCode, template: &impl Template, cookie: Option<String>) -> Response {
    match template.render() {
        Ok(html) => {
            let set_cookie = cookie
                .and_then(|c| HeaderValue::from_str(&c).ok())
                .map(|c| [(header::SET_COOKIE, c)]);
            (status, PAGE_HEADERS, set_cookie, axum::response::Html(html)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                PAGE_HEADERS,
                "internal error",
            )
                .into_response()
        }
    }
}

/// A redirect: 303 See Other after a form POST, 302 Found after a GET.
pub fn redirect(location: &str, after_post: bool, cookie: Option<String>) -> Response {
    let status = if after_post {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let Ok(location) = HeaderValue::from_str(location) else {
        return error::error_page(OAuthError::server_error());
    };
    let set_cookie = cookie
        .and_then(|c| HeaderValue::from_str(&c).ok())
        .map(|c| [(header::SET_COOKIE, c)]);
    (
        status,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        set_cookie,
        (),
    )
        .into_response()
}

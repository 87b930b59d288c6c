//! ALL mapping of outcomes to HTTP: status codes, headers and bodies for the
//! back channel (RFC 6749 §5.2 JSON), the front channel (redirects and error
//! pages) and the pages themselves.

use askama::Template;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ephemera_proto::error::{ErrorCode, ErrorResponse};

use crate::service::OAuthError;
use crate::throttle::RetryAfter;

const NO_STORE: [(HeaderName, HeaderValue); 2] = [
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    (header::PRAGMA, HeaderValue::from_static("no-cache")),
];

fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A back-channel error (PAR, token, revocation). RFC 6749 §5.2: when the
/// client tried HTTP Basic, `invalid_client` carries a Basic challenge.
pub fn back_channel(err: OAuthError, basic_used: bool) -> Response {
    let status = status_for(err.code);
    json_error(status, err, basic_used)
}

/// An introspection error: RFC 7662 §2.3 answers 401 to a caller that may
/// not introspect, whatever the reason.
pub fn introspection(err: OAuthError, basic_used: bool) -> Response {
    let status = match err.code {
        ErrorCode::UnauthorizedClient => StatusCode::UNAUTHORIZED,
        code => status_for(code),
    };
    json_error(status, err, basic_used)
}

fn json_error(status: StatusCode, err: OAuthError, basic_used: bool) -> Response {
    let challenge = (status == StatusCode::UNAUTHORIZED && basic_used).then(|| {
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ephemera\""),
        )]
    });
    // RFC 9449 §8: a `use_dpop_nonce` error carries the nonce to use.
    let nonce = err
        .dpop_nonce
        .as_deref()
        .and_then(|n| HeaderValue::from_str(n).ok())
        .map(|n| [(HeaderName::from_static("dpop-nonce"), n)]);
    let retry = err
        .retry_after
        .map(|s| [(header::RETRY_AFTER, HeaderValue::from(s.max(1)))]);
    let body = ErrorResponse {
        error: err.code,
        error_description: Some(err.description.into_owned()),
    };
    (status, NO_STORE, challenge, nonce, retry, Json(body)).into_response()
}

/// The registration endpoint's refusals (RFC 7591 §3.2.2, RFC 7592 §2).
pub fn registration(err: crate::service::register::RegisterError) -> Response {
    use crate::service::register::RegisterError;
    match err {
        RegisterError::Invalid(e) => back_channel(e, false),
        RegisterError::Unauthorized(description) => {
            let challenge =
                format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
            let header_value =
                HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer"));
            let body = ErrorResponse {
                error: ErrorCode::InvalidToken,
                error_description: Some(description.to_owned()),
            };
            (
                StatusCode::UNAUTHORIZED,
                NO_STORE,
                [(header::WWW_AUTHENTICATE, header_value)],
                Json(body),
            )
                .into_response()
        }
        RegisterError::TooMany(retry_after) => {
            let body = ErrorResponse {
                error: ErrorCode::TemporarilyUnavailable,
                error_description: Some(
                    "too many registrations from this address; retry later".to_owned(),
                ),
            };
            let retry = HeaderValue::from_str(&retry_after.max(1).to_string())
                .unwrap_or(HeaderValue::from_static("60"));
            (
                StatusCode::TOO_MANY_REQUESTS,
                NO_STORE,
                [(header::RETRY_AFTER, retry)],
                Json(body),
            )
                .into_response()
        }
        RegisterError::Disabled => StatusCode::NOT_FOUND.into_response(),
    }
}

fn retry_after(retry: RetryAfter) -> [(HeaderName, HeaderValue); 1] {
    [(header::RETRY_AFTER, HeaderValue::from(retry.0.max(1)))]
}

/// A back-channel request refused by a per-address rate limit: 429 with
/// `Retry-After` (RFC 6585 §4) and an RFC 6749 §5.2 body.
pub fn rate_limited(retry: RetryAfter, description: &'static str) -> Response {
    let body = ErrorResponse {
        error: ErrorCode::TemporarilyUnavailable,
        error_description: Some(description.to_owned()),
    };
    (
        StatusCode::TOO_MANY_REQUESTS,
        NO_STORE,
        retry_after(retry),
        Json(body),
    )
        .into_response()
}

/// The login form refused by a rate limit (per address, before its body
/// was read, or per username after too many failures): an error page, 429
/// with `Retry-After`. `what` says which, e.g. "login attempts from this address".
pub fn rate_limited_page(retry: RetryAfter, what: &str) -> Response {
    let description = format!(
        "Too many {what}. Wait {} seconds, then go back and try again.",
        retry.0.max(1)
    );
    let mut res = page(
        StatusCode::TOO_MANY_REQUESTS,
        &ErrorPage {
            error: ErrorCode::TemporarilyUnavailable.as_str(),
            description: &description,
        },
        None,
    );
    res.headers_mut().extend(retry_after(retry));
    res
}

/// A body that was refused before it could be parsed.
pub fn body_too_large(limit: usize) -> Response {
    let err = OAuthError::invalid_request(format!("the request body is larger than {limit} bytes"));
    json_error(StatusCode::PAYLOAD_TOO_LARGE, err, false)
}

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

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    error: &'a str,
    description: &'a str,
}

/// A front-channel error shown to the user: the redirect URI is not trusted,
/// so nothing goes back to the client.
pub fn error_page(err: OAuthError) -> Response {
    let status = match err.code {
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        // Too many pending requests: the page says when to try again.
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut res = page(
        status,
        &ErrorPage {
            error: err.code.as_str(),
            description: &err.description,
        },
        None,
    );
    if let Some(seconds) = err.retry_after {
        res.headers_mut().extend(retry_after(RetryAfter(
            i64::try_from(seconds).unwrap_or(i64::MAX),
        )));
    }
    res
}

/// A redirect: 303 See Other after a form POST, 302 Found after a GET.
pub fn redirect(location: &str, after_post: bool, cookie: Option<String>) -> Response {
    let status = if after_post {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let Ok(location) = HeaderValue::from_str(location) else {
        return error_page(OAuthError::server_error());
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

//! ALL mapping of errors to HTTP: status codes, headers and bodies for the
//! back channel (RFC 6749 §5.2 JSON) and the front channel (error responses
//! at the client's redirect URI, and error pages). Successful answers are
//! in [`super::respond`].

use askama::Template;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ephemera_proto::error::{ErrorCode, ErrorResponse};

use ephemera_proto::redirect::RedirectUri;

use super::respond::{self, NO_STORE};
use crate::service::request::AuthorizeError;
use crate::service::OAuthError;
use crate::throttle::RetryAfter;

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
    let mut res = respond::page(
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

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    error: &'a str,
    description: &'a str,
}

/// A front-channel error shown to the user: the redirect URI is not trusted,
/// so nothing goes back to the client.
/// A front-channel refusal: the authorization error response (RFC 6749
/// §4.1.2.1) at the client's redirect URI, with `state` and `iss` (RFC
/// 9207), once that URI is trusted; an error page otherwise. 303 after a
/// form POST, 302 after a GET.
pub fn authorization(err: AuthorizeError, issuer: &str, after_post: bool) -> Response {
    let (error, redirect_uri, state) = match err {
        AuthorizeError::Page(e) => return error_page(e),
        AuthorizeError::Redirect {
            error,
            redirect_uri,
            state,
        } => (error, redirect_uri, state),
    };
    let Ok(uri) = RedirectUri::parse(&redirect_uri) else {
        tracing::error!("a trusted redirect URI no longer parses");
        return error_page(OAuthError::server_error());
    };
    let mut params = vec![
        ("error", error.code.as_str()),
        ("error_description", error.description.as_ref()),
    ];
    if let Some(s) = state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    respond::redirect(&uri.with_params(params), after_post, None)
}

pub fn error_page(err: OAuthError) -> Response {
    let status = match err.code {
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        // Too many pending requests: the page says when to try again.
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut res = respond::page(
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

/// A refusal of the UserInfo endpoint: `WWW-Authenticate` with the scheme
/// the token needs (RFC 6750 §3, RFC 9449 §7.1), 401 for a missing or bad
/// token or proof, 403 for `insufficient_scope` (naming `openid`), and the
/// RFC 6749 §5.2 body beside it. Without credentials the challenge carries
/// no error (RFC 6750 §3.1).
pub fn userinfo(refusal: crate::service::userinfo::Refusal) -> Response {
    use crate::service::userinfo::Scheme;
    let mut challenge = match refusal.scheme {
        Scheme::Bearer => "Bearer".to_owned(),
        Scheme::DPoP => format!(
            "DPoP algs=\"{}\"",
            ephemera_proto::jose::ALLOWED_ALGS.join(" ")
        ),
    };
    let Some(err) = refusal.error else {
        return (
            StatusCode::UNAUTHORIZED,
            NO_STORE,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer")),
            )],
        )
            .into_response();
    };
    let status = match err.code {
        ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce => StatusCode::UNAUTHORIZED,
        code => status_for(code),
    };
    // A header value is visible ASCII: the description is cut to it.
    let quoted: String = err
        .description
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| *c != '"' && *c != '\\')
        .collect();
    let separator = if challenge.contains(' ') { ", " } else { " " };
    challenge.push_str(&format!(
        "{separator}error=\"{}\", error_description=\"{quoted}\"",
        err.code.as_str()
    ));
    if err.code == ErrorCode::InsufficientScope {
        challenge.push_str(", scope=\"openid\"");
    }
    let header_value =
        HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer"));
    let mut res = json_error(status, err, false);
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, header_value);
    res
}

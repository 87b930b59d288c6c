//! [`Rejection`]: why a request was turned away, and ALL of its mapping to
//! HTTP (status and `WWW-Authenticate` challenge, RFC 6750 §3).

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

/// Why the layer refused a request. Each variant's doc says what the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No bearer token: 401 with `Bearer realm="…"` and no error code
    /// (RFC 6750 §3.1: a request without credentials gets none).
    MissingToken,
    /// A malformed `Authorization` header: 400 `error="invalid_request"`.
    InvalidRequest(&'static str),
    /// Inactive, foreign, misaddressed or key-bound token: 401
    /// `error="invalid_token"`.
    InvalidToken(&'static str),
    /// The token lacks these scopes: 403 `error="insufficient_scope"` with
    /// `scope="…"` naming what is required.
    InsufficientScope(String),
    /// The introspection endpoint could not give an answer: 503, no challenge.
    Unavailable,
}

impl Rejection {
    /// The response for this rejection, with `realm` in the challenge.
    pub fn into_response(self, realm: &str) -> Response {
        let realm = quoted(realm);
        let (status, challenge) = match self {
            Self::MissingToken => (
                StatusCode::UNAUTHORIZED,
                Some(format!("Bearer realm=\"{realm}\"")),
            ),
            Self::InvalidRequest(description) => (
                StatusCode::BAD_REQUEST,
                Some(format!(
                    "Bearer realm=\"{realm}\", error=\"invalid_request\", error_description=\"{}\"",
                    quoted(description)
                )),
            ),
            Self::InvalidToken(description) => (
                StatusCode::UNAUTHORIZED,
                Some(format!(
                    "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                    quoted(description)
                )),
            ),
            Self::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                Some(format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"",
                    quoted(&scope)
                )),
            ),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, None),
        };
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Makes `s` safe inside a quoted-string: RFC 6750 §3 limits these values
/// to %x20-21 / %x23-5B / %x5D-7E, so `"`, `\` and anything outside
/// printable ASCII are dropped.
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|&c| matches!(c, ' '..='~') && c != '"' && c != '\\')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(response: &Response) -> Option<&str> {
        response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
    }

    #[test]
    fn a_missing_token_gets_a_challenge_without_error_code() {
        let response = Rejection::MissingToken.into_response("api");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenge(&response), Some("Bearer realm=\"api\""));
    }

    #[test]
    fn insufficient_scope_names_the_required_scope() {
        let response = Rejection::InsufficientScope("read write".into()).into_response("api");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            challenge(&response),
            Some("Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"read write\"")
        );
    }

    #[test]
    fn quotes_and_backslashes_cannot_break_out_of_the_realm() {
        let response = Rejection::MissingToken.into_response("a\"b\\c\u{e9}");
        assert_eq!(challenge(&response), Some("Bearer realm=\"abc\""));
    }

    #[test]
    fn an_unreachable_introspection_endpoint_is_a_503() {
        let response = Rejection::Unavailable.into_response("api");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(challenge(&response), None);
    }
}

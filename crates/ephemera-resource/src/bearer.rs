//! Reading the bearer token from the `Authorization` header (RFC 6750 §2.1).
//! Tokens in the query or the body (§2.2, §2.3) are not accepted.

use axum::http::{header, HeaderMap};

use crate::rejection::Rejection;

/// The token of `Authorization: Bearer <token>`.
///
/// No `Authorization` header, or one with another scheme, is
/// [`Rejection::MissingToken`]: the request carries no bearer credentials.
/// A `Bearer` header whose token is not a b64token, or several
/// `Authorization` headers, is [`Rejection::InvalidRequest`].
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Rejection::MissingToken);
    };
    if values.next().is_some() {
        return Err(Rejection::InvalidRequest(
            "more than one Authorization header",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| Rejection::InvalidRequest("the Authorization header is not ASCII"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    // The scheme is case-insensitive (RFC 7235 §2.1).
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(Rejection::MissingToken);
    }
    let token = rest.trim_start_matches(' ');
    if !is_b64token(token) {
        return Err(Rejection::InvalidRequest(
            "the bearer token is malformed (RFC 6750 §2.1)",
        ));
    }
    Ok(token)
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.DEF-_~+/=="])),
            Ok("abc.DEF-_~+/==")
        );
        assert_eq!(bearer_token(&headers(&["bearer abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&["BEARER  abc"])), Ok("abc"));
    }

    #[test]
    fn no_header_or_another_scheme_means_no_token() {
        assert_eq!(bearer_token(&headers(&[])), Err(Rejection::MissingToken));
        assert_eq!(
            bearer_token(&headers(&["Basic YTpi"])),
            Err(Rejection::MissingToken)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearerabc"])),
            Err(Rejection::MissingToken)
        );
    }

    #[test]
    fn malformed_bearer_headers_are_invalid_requests() {
        for value in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer ==",
            "Bearer a=b",
        ] {
            assert!(
                matches!(
                    bearer_token(&headers(&[value])),
                    Err(Rejection::InvalidRequest(_))
                ),
                "{value}"
            );
        }
        assert!(matches!(
            bearer_token(&headers(&["Bearer a", "Bearer b"])),
            Err(Rejection::InvalidRequest(_))
        ));
    }
}

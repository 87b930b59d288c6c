//! Reading the access token from the `Authorization` header: the `Bearer`
//! scheme (RFC 6750 §2.1) and the `DPoP` scheme (RFC 9449 §7.1). Tokens in
//! the query or the body (RFC 6750 §2.2, §2.3) are not accepted.

use axum::http::{header, HeaderMap};

use crate::rejection::Rejection;

/// The authentication scheme an access token came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer <token>` (RFC 6750 §2.1).
    Bearer,
    /// `Authorization: DPoP <token>`, with a `DPoP` proof header (RFC 9449 §7.1).
    Dpop,
}

/// The scheme and token of the `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub scheme: Scheme,
    pub token: &'a str,
}

/// The access token of `Authorization: Bearer <token>` or, when `dpop` is
/// true, of `Authorization: DPoP <token>`.
///
/// No `Authorization` header, or one with another scheme, is
/// [`Rejection::MissingToken`]: the request carries no credentials we take.
/// A token that is not a b64token (RFC 6750 §2.1; RFC 9449 §7.1 calls it
/// token68, the same characters), or several `Authorization` headers, is
/// [`Rejection::InvalidRequest`].
pub fn credentials(headers: &HeaderMap, dpop: bool) -> Result<Credentials<'_>, Rejection> {
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
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let scheme = if scheme.eq_ignore_ascii_case("Bearer") {
        Scheme::Bearer
    } else if dpop && scheme.eq_ignore_ascii_case("DPoP") {
        Scheme::Dpop
    } else {
        return Err(Rejection::MissingToken);
    };
    let token = rest.trim_start_matches(' ');
    if !is_b64token(token) {
        return Err(Rejection::InvalidRequest(match scheme {
            Scheme::Bearer => "the bearer token is malformed (RFC 6750 §2.1)",
            Scheme::Dpop => "the DPoP access token is malformed (RFC 9449 §7.1)",
        }));
    }
    Ok(Credentials { scheme, token })
}

/// Whether the `Authorization` header names the `DPoP` scheme, well-formed
/// or not: the scheme the answer's error challenge uses.
pub fn uses_dpop_scheme(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(' ').next())
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("DPoP"))
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

    fn bearer(token: &str) -> Result<Credentials<'_>, Rejection> {
        Ok(Credentials {
            scheme: Scheme::Bearer,
            token,
        })
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        assert_eq!(
            credentials(&headers(&["Bearer abc.DEF-_~+/=="]), false),
            bearer("abc.DEF-_~+/==")
        );
        assert_eq!(credentials(&headers(&["bearer abc"]), false), bearer("abc"));
        assert_eq!(
            credentials(&headers(&["BEARER  abc"]), false),
            bearer("abc")
        );
        for value in ["DPoP abc", "dpop abc", "DPOP abc"] {
            assert_eq!(
                credentials(&headers(&[value]), true),
                Ok(Credentials {
                    scheme: Scheme::Dpop,
                    token: "abc"
                }),
                "{value}"
            );
        }
    }

    #[test]
    fn no_header_or_another_scheme_means_no_token() {
        assert_eq!(
            credentials(&headers(&[]), true),
            Err(Rejection::MissingToken)
        );
        assert_eq!(
            credentials(&headers(&["Basic YTpi"]), true),
            Err(Rejection::MissingToken)
        );
        assert_eq!(
            credentials(&headers(&["Bearerabc"]), true),
            Err(Rejection::MissingToken)
        );
    }

    #[test]
    fn the_dpop_scheme_is_no_credentials_when_dpop_is_off() {
        assert_eq!(
            credentials(&headers(&["DPoP abc"]), false),
            Err(Rejection::MissingToken)
        );
    }

    #[test]
    fn malformed_headers_are_invalid_requests() {
        for value in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer ==",
            "Bearer a=b",
            "DPoP",
            "DPoP a b",
        ] {
            assert!(
                matches!(
                    credentials(&headers(&[value]), true),
                    Err(Rejection::InvalidRequest(_))
                ),
                "{value}"
            );
        }
        assert!(matches!(
            credentials(&headers(&["Bearer a", "Bearer b"]), true),
            Err(Rejection::InvalidRequest(_))
        ));
    }
}

//! [`Rejection`]: why a request was turned away, and ALL of its mapping to
//! HTTP: status, `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9449
//! §7.1, RFC 9728 §5.1) and `DPoP-Nonce` (RFC 9449 §9).

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use ephemera_proto::jose::ALLOWED_ALGS;

/// The `DPoP-Nonce` response header (RFC 9449 §8.1, §9).
pub static DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// Why the layer refused a request. Each variant's doc says what the client
/// sees; the challenge carrying the error uses the scheme the request used
/// (`DPoP` for a DPoP request and for the two DPoP errors, else `Bearer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No access token: 401 with `Bearer realm="…"` and no error code
    /// (RFC 6750 §3.1: a request without credentials gets none), plus
    /// `DPoP algs="…"` where DPoP is accepted.
    MissingToken,
    /// A malformed `Authorization` header: 400 `error="invalid_request"`.
    InvalidRequest(&'static str),
    /// Inactive, foreign or misaddressed token, a refresh token, a
    /// DPoP-bound token sent as a bearer token, a certificate-bound token
    /// without its certificate: 401 `error="invalid_token"`.
    InvalidToken(&'static str),
    /// A missing, malformed, replayed or mismatched DPoP proof: 401
    /// `DPoP error="invalid_dpop_proof"` with the accepted `algs`
    /// (RFC 9449 §7.1).
    InvalidDpopProof(String),
    /// The proof lacks the current server nonce: 401
    /// `DPoP error="use_dpop_nonce"` and `DPoP-Nonce: <this nonce>`
    /// (RFC 9449 §9).
    UseDpopNonce(String),
    /// The token lacks these scopes: 403 `error="insufficient_scope"` with
    /// `scope="…"` naming what is required.
    InsufficientScope(String),
    /// No answer could be had (the introspection endpoint failed, or the
    /// DPoP replay cache is full): 503, no challenge.
    Unavailable,
}

/// What the challenges of a response carry besides the error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Challenges<'a> {
    /// The `realm` of every challenge (RFC 6750 §3).
    pub realm: &'a str,
    /// Whether this resource accepts the `DPoP` scheme: then a 401 also
    /// carries a `DPoP algs="…"` challenge (RFC 9449 §7.1, §7.2).
    pub dpop: bool,
    /// Whether the request used the `DPoP` scheme: then the error goes in
    /// the `DPoP` challenge.
    pub dpop_request: bool,
    /// The RFC 9728 metadata URL, sent as `resource_metadata="…"` (§5.1).
    pub resource_metadata: Option<&'a str>,
    /// The scopes the resource requires: a 401's challenges name them
    /// (`scope="…"`, RFC 6750 §3), so a client knows what to ask for
    /// before it has a token (the MCP authorization specification's scope
    /// selection); a 403 names what is missing.
    pub scope: Option<&'a str>,
}

impl Rejection {
    /// The response for this rejection to a `Bearer` request at a
    /// resource that takes only bearer tokens, with `realm` in the challenge.
    pub fn into_response(self, realm: &str) -> Response {
        self.into_response_with(&Challenges {
            realm,
            ..Challenges::default()
        })
    }

    /// The response for this rejection.
    pub fn into_response_with(self, challenges: &Challenges<'_>) -> Response {
        let dpop_error = matches!(self, Self::InvalidDpopProof(_) | Self::UseDpopNonce(_));
        let mut nonce = None;
        let (status, error) = match self {
            Self::MissingToken => (StatusCode::UNAUTHORIZED, Vec::new()),
            Self::InvalidRequest(description) => (
                StatusCode::BAD_REQUEST,
                error("invalid_request", description.into()),
            ),
            Self::InvalidToken(description) => (
                StatusCode::UNAUTHORIZED,
                error("invalid_token", description.into()),
            ),
            Self::InvalidDpopProof(description) => (
                StatusCode::UNAUTHORIZED,
                error("invalid_dpop_proof", description),
            ),
            Self::UseDpopNonce(current) => {
                nonce = Some(current);
                (
                    StatusCode::UNAUTHORIZED,
                    error(
                        "use_dpop_nonce",
                        "the resource server requires a nonce in the DPoP proof".into(),
                    ),
                )
            }
            Self::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                vec![("error", "insufficient_scope".into()), ("scope", scope)],
            ),
            Self::Unavailable => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                return response;
            }
        };
        let dpop_first = dpop_error || (challenges.dpop && challenges.dpop_request);
        let mut error = error;
        if status == StatusCode::UNAUTHORIZED {
            if let Some(scope) = challenges.scope {
                error.push(("scope", scope.to_owned()));
            }
        }
        let mut values = vec![challenge(dpop_first, error, challenges)];
        // A 401 names every scheme the resource takes (RFC 9110 §11.6.1),
        // so a client holding a DPoP-bound token learns it must use DPoP.
        if status == StatusCode::UNAUTHORIZED && challenges.dpop {
            values.push(challenge(!dpop_first, Vec::new(), challenges));
        }
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        let headers = response.headers_mut();
        for value in values {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Some(value) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            headers.insert(DPOP_NONCE.clone(), value);
        }
        response
    }
}

fn error(code: &'static str, description: String) -> Vec<(&'static str, String)> {
    vec![("error", code.into()), ("error_description", description)]
}

/// One challenge: `Bearer` or `DPoP`, then realm, the error's parameters,
/// `algs` for DPoP, and `resource_metadata`.
fn challenge(
    dpop: bool,
    error: Vec<(&'static str, String)>,
    challenges: &Challenges<'_>,
) -> String {
    let mut params = vec![("realm", challenges.realm.to_owned())];
    params.extend(error);
    if dpop {
        params.push(("algs", ALLOWED_ALGS.join(" ")));
    }
    if let Some(url) = challenges.resource_metadata {
        params.push(("resource_metadata", url.to_owned()));
    }
    let params: Vec<String> = params
        .into_iter()
        .map(|(name, value)| format!("{name}=\"{}\"", quoted(&value)))
        .collect();
    format!(
        "{} {}",
        if dpop { "DPoP" } else { "Bearer" },
        params.join(", ")
    )
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

    fn challenges(response: &Response) -> Vec<&str> {
        response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    const ALGS: &str = "algs=\"ES256 ES384 EdDSA RS256 RS384 RS512 PS256 PS384 PS512\"";

    #[test]
    fn a_missing_token_gets_a_challenge_without_error_code() {
        let response = Rejection::MissingToken.into_response("api");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenges(&response), ["Bearer realm=\"api\""]);
    }

    #[test]
    fn a_401_names_the_scopes_the_resource_requires_and_its_metadata() {
        let response = Rejection::MissingToken.into_response_with(&Challenges {
            realm: "api",
            resource_metadata: Some("https://rs.example/.well-known/oauth-protected-resource"),
            scope: Some("read write"),
            ..Challenges::default()
        });
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenges(&response),
            ["Bearer realm=\"api\", scope=\"read write\", resource_metadata=\"https://rs.example/.well-known/oauth-protected-resource\""]
        );
        let response =
            Rejection::InsufficientScope("write".into()).into_response_with(&Challenges {
                realm: "api",
                resource_metadata: Some("https://rs.example/.well-known/oauth-protected-resource"),
                scope: Some("read write"),
                ..Challenges::default()
            });
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            challenges(&response),
            ["Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"write\", resource_metadata=\"https://rs.example/.well-known/oauth-protected-resource\""]
        );
    }

    #[test]
    fn insufficient_scope_names_the_required_scope() {
        let response = Rejection::InsufficientScope("read write".into()).into_response("api");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            challenges(&response),
            ["Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"read write\""]
        );
    }

    #[test]
    fn quotes_and_backslashes_cannot_break_out_of_the_realm() {
        let response = Rejection::MissingToken.into_response("a\"b\\c\u{e9}");
        assert_eq!(challenges(&response), ["Bearer realm=\"abc\""]);
    }

    #[test]
    fn an_unreachable_introspection_endpoint_is_a_503() {
        let response = Rejection::Unavailable.into_response("api");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(challenges(&response).is_empty());
    }

    #[test]
    fn a_dpop_resource_offers_both_schemes_with_the_metadata_url() {
        let params = Challenges {
            realm: "api",
            dpop: true,
            dpop_request: false,
            resource_metadata: Some("https://api.example/.well-known/oauth-protected-resource"),
            scope: None,
        };
        let response = Rejection::MissingToken.into_response_with(&params);
        assert_eq!(
            challenges(&response),
            [
                "Bearer realm=\"api\", resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\"".to_owned(),
                format!("DPoP realm=\"api\", {ALGS}, resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\""),
            ]
        );
    }

    #[test]
    fn a_dpop_request_gets_its_error_in_the_dpop_challenge() {
        let params = Challenges {
            realm: "api",
            dpop: true,
            dpop_request: true,
            resource_metadata: None,
            scope: None,
        };
        let response =
            Rejection::InvalidToken("the token is not active").into_response_with(&params);
        assert_eq!(
            challenges(&response),
            [
                format!("DPoP realm=\"api\", error=\"invalid_token\", error_description=\"the token is not active\", {ALGS}"),
                "Bearer realm=\"api\"".to_owned(),
            ]
        );
    }

    #[test]
    fn use_dpop_nonce_hands_out_the_nonce() {
        let params = Challenges {
            realm: "api",
            dpop: true,
            dpop_request: true,
            resource_metadata: None,
            scope: None,
        };
        let response = Rejection::UseDpopNonce("n-1".into()).into_response_with(&params);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            challenges(&response)[0].starts_with("DPoP realm=\"api\", error=\"use_dpop_nonce\"")
        );
        assert_eq!(response.headers()[&DPOP_NONCE], "n-1");
    }
}

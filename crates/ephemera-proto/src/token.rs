//! The token request (RFC 6749 §3.2): its grant type, and the parameters
//! each grant type needs, typed. Who may use which grant is the server's
//! business; this is only what was asked.

use crate::form::Params;

/// The grant types Ephemera serves, but the JWT bearer grant (RFC 7523
/// §2.1): who its client is depends on its assertion, so its request is
/// [`crate::assertion_grant::GrantRequest`], read before any client
/// authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// RFC 6749 §4.1.3, with PKCE (RFC 7636 §4.5).
    AuthorizationCode,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 8693 §2.1: a token for another resource, from one the caller holds.
    TokenExchange,
}

/// RFC 8693 §2.1 `grant_type`.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// RFC 8693 §3: an OAuth 2.0 access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// RFC 8693 §3: a JWT; what a JWT access token (RFC 9068) may also be called.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => TOKEN_EXCHANGE,
        }
    }
}

/// Why a token request was refused before anything was looked up; each
/// message is the `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRequestError {
    /// A parameter the grant type needs is missing (`invalid_request`).
    #[error("{0} is required")]
    Missing(&'static str),
    /// A parameter sent without the one it goes with (`invalid_request`).
    #[error("{0} must not be sent without {1}")]
    Stray(&'static str, &'static str),
    /// `unsupported_grant_type` (RFC 6749 §5.2).
    #[error("grant_type `{0}` is not supported")]
    Unsupported(String),
}

/// The grant type a token request asks for.
pub fn grant_type(params: &Params) -> Result<GrantType, TokenRequestError> {
    match params.get("grant_type") {
        None => Err(TokenRequestError::Missing("grant_type")),
        Some("authorization_code") => Ok(GrantType::AuthorizationCode),
        Some("refresh_token") => Ok(GrantType::RefreshToken),
        Some("client_credentials") => Ok(GrantType::ClientCredentials),
        Some(TOKEN_EXCHANGE) => Ok(GrantType::TokenExchange),
        Some(other) => Err(TokenRequestError::Unsupported(other.to_owned())),
    }
}

/// A token request's parameters, by grant type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRequest<'a> {
    AuthorizationCode {
        code: &'a str,
        /// Required when the authorization request carried one (§4.1.3).
        redirect_uri: Option<&'a str>,
        code_verifier: Option<&'a str>,
        /// RFC 8707 §2.2: narrows the access token's audience.
        resources: &'a [String],
    },
    RefreshToken {
        refresh_token: &'a str,
        /// The same scope or less (§6).
        scope: Option<&'a str>,
        resources: &'a [String],
    },
    ClientCredentials {
        scope: Option<&'a str>,
        resources: &'a [String],
    },
    TokenExchange(Exchange<'a>),
}

/// A token exchange request's parameters (RFC 8693 §2.1), their types not
/// yet judged: which token types are served is the server's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange<'a> {
    pub subject_token: &'a str,
    pub subject_token_type: &'a str,
    /// With `actor_token_type`, or neither (§2.1).
    pub actor: Option<(&'a str, &'a str)>,
    pub requested_token_type: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub resources: &'a [String],
    /// `audience`: logical names of the target services (§2.1).
    pub audiences: &'a [String],
}

impl<'a> TokenRequest<'a> {
    /// The parameters `grant_type` needs, from `params`.
    pub fn parse(grant_type: GrantType, params: &'a Params) -> Result<Self, TokenRequestError> {
        let resources = params.get_all("resource");
        Ok(match grant_type {
            GrantType::AuthorizationCode => Self::AuthorizationCode {
                code: params
                    .get("code")
                    .ok_or(TokenRequestError::Missing("code"))?,
                redirect_uri: params.get("redirect_uri"),
                code_verifier: params.get("code_verifier"),
                resources,
            },
            GrantType::RefreshToken => Self::RefreshToken {
                refresh_token: params
                    .get("refresh_token")
                    .ok_or(TokenRequestError::Missing("refresh_token"))?,
                scope: params.get("scope"),
                resources,
            },
            GrantType::ClientCredentials => Self::ClientCredentials {
                scope: params.get("scope"),
                resources,
            },
            GrantType::TokenExchange => {
                let actor = match (params.get("actor_token"), params.get("actor_token_type")) {
                    (Some(token), Some(kind)) => Some((token, kind)),
                    (None, None) => None,
                    (Some(_), None) => return Err(TokenRequestError::Missing("actor_token_type")),
                    (None, Some(_)) => {
                        return Err(TokenRequestError::Stray("actor_token_type", "actor_token"))
                    }
                };
                Self::TokenExchange(Exchange {
                    subject_token: params
                        .get("subject_token")
                        .ok_or(TokenRequestError::Missing("subject_token"))?,
                    subject_token_type: params
                        .get("subject_token_type")
                        .ok_or(TokenRequestError::Missing("subject_token_type"))?,
                    actor,
                    requested_token_type: params.get("requested_token_type"),
                    scope: params.get("scope"),
                    resources,
                    audiences: params.get_all("audience"),
                })
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(body: &str) -> Params {
        Params::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn each_grant_type_gets_its_parameters() {
        let p =
            params("grant_type=authorization_code&code=c&code_verifier=v&resource=https%3A%2F%2Fa");
        let g = grant_type(&p).unwrap();
        assert_eq!(g, GrantType::AuthorizationCode);
        assert!(matches!(
            TokenRequest::parse(g, &p),
            Ok(TokenRequest::AuthorizationCode { code: "c", redirect_uri: None, code_verifier: Some("v"), resources })
                if resources == ["https://a"]
        ));
        let p = params("grant_type=refresh_token&refresh_token=r&scope=read");
        assert!(matches!(
            TokenRequest::parse(grant_type(&p).unwrap(), &p),
            Ok(TokenRequest::RefreshToken {
                refresh_token: "r",
                scope: Some("read"),
                ..
            })
        ));
        let p = params(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=s\
             &subject_token_type=st&actor_token=a&actor_token_type=at&audience=x&audience=y&resource=https%3A%2F%2Fr",
        );
        assert!(matches!(
            TokenRequest::parse(grant_type(&p).unwrap(), &p),
            Ok(TokenRequest::TokenExchange(Exchange {
                subject_token: "s",
                subject_token_type: "st",
                actor: Some(("a", "at")),
                requested_token_type: None,
                scope: None,
                resources,
                audiences,
            })) if resources == ["https://r"] && audiences == ["x", "y"]
        ));
        let p = params("grant_type=client_credentials");
        assert!(matches!(
            TokenRequest::parse(grant_type(&p).unwrap(), &p),
            Ok(TokenRequest::ClientCredentials { scope: None, .. })
        ));
    }

    #[test]
    fn a_missing_or_unknown_grant_type_and_missing_parameters_are_named() {
        assert_eq!(
            grant_type(&params("code=c")),
            Err(TokenRequestError::Missing("grant_type"))
        );
        assert_eq!(
            grant_type(&params("grant_type=password")),
            Err(TokenRequestError::Unsupported("password".into()))
        );
        let p = params("grant_type=authorization_code");
        assert_eq!(
            TokenRequest::parse(GrantType::AuthorizationCode, &p).map(|_| ()),
            Err(TokenRequestError::Missing("code"))
        );
        let p = params(&format!(
            "grant_type={TOKEN_EXCHANGE}&subject_token=t&subject_token_type=x&actor_token=a"
        ));
        assert_eq!(
            TokenRequest::parse(GrantType::TokenExchange, &p).map(|_| ()),
            Err(TokenRequestError::Missing("actor_token_type"))
        );
        let p = params("subject_token=t&subject_token_type=x&actor_token_type=y");
        assert_eq!(
            TokenRequest::parse(GrantType::TokenExchange, &p).map(|_| ()),
            Err(TokenRequestError::Stray("actor_token_type", "actor_token"))
        );
        assert_eq!(
            TokenRequestError::Missing("refresh_token").to_string(),
            "refresh_token is required"
        );
    }
}

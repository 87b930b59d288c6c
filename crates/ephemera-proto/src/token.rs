//! The token request (RFC 6749 §3.2): its grant type, and the parameters
//! each grant type needs, typed. Who may use which grant is the server's
//! business; this is only what was asked.

use crate::form::Params;

/// The grant types Ephemera serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// RFC 6749 §4.1.3, with PKCE (RFC 7636 §4.5).
    AuthorizationCode,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 6749 §4.4.
    ClientCredentials,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
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
        assert_eq!(
            TokenRequestError::Missing("refresh_token").to_string(),
            "refresh_token is required"
        );
    }
}

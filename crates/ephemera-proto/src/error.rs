//! OAuth error codes (a closed set) and the RFC 6749 §5.2 error body.

use serde::{Deserialize, Serialize};

/// Every `error` value Ephemera sends or understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// RFC 6749 §4.1.2.1, §5.2
    InvalidRequest,
    /// RFC 6749 §5.2
    InvalidClient,
    /// RFC 6749 §5.2
    InvalidGrant,
    /// RFC 6749 §4.1.2.1, §5.2
    UnauthorizedClient,
    /// RFC 6749 §5.2
    UnsupportedGrantType,
    /// RFC 6749 §4.1.2.1
    UnsupportedResponseType,
    /// RFC 6749 §4.1.2.1, §5.2
    InvalidScope,
    /// RFC 6749 §4.1.2.1
    AccessDenied,
    /// RFC 6749 §4.1.2.1
    ServerError,
    /// RFC 6749 §4.1.2.1
    TemporarilyUnavailable,
    /// RFC 7591 §3.2.2
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2
    InvalidClientMetadata,
    /// RFC 7591 §3.2.2
    InvalidSoftwareStatement,
    /// RFC 7591 §3.2.2
    UnapprovedSoftwareStatement,
    /// RFC 7009 §2.2.1
    UnsupportedTokenType,
    /// RFC 8707 §2
    InvalidTarget,
    /// RFC 9449 §5
    InvalidDpopProof,
    /// RFC 9449 §8
    UseDpopNonce,
    /// RFC 6750 §3.1
    InvalidToken,
    /// RFC 6750 §3.1
    InsufficientScope,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` and no one is signed in
    /// (or the sign-in is older than `max_age`).
    LoginRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` and consent would be asked.
    ConsentRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` and some page would be shown.
    InteractionRequired,
}

impl ErrorCode {
    /// The registered string for this code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidSoftwareStatement => "invalid_software_statement",
            Self::UnapprovedSoftwareStatement => "unapproved_software_statement",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON error body of RFC 6749 §5.2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_serialize_as_their_registered_strings() {
        let body = ErrorResponse {
            error: ErrorCode::InvalidClientMetadata,
            error_description: Some("x".into()),
        };
        let json = serde_json::to_string(&body).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"error":"invalid_client_metadata","error_description":"x"}"#
        );
        assert_eq!(ErrorCode::InvalidDpopProof.as_str(), "invalid_dpop_proof");
    }
}

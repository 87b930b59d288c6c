//! The one error type of the client library.

use ephemera_proto::error::{ErrorCode, ErrorResponse};

/// Everything that can go wrong talking to an authorization server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A back-channel endpoint (PAR, token, revocation, introspection)
    /// answered with an RFC 6749 §5.2 error body.
    #[error("{} (HTTP {status}){}", body.error, describe(body))]
    OAuth { status: u16, body: ErrorResponse },
    /// The authorization endpoint redirected back with `error`
    /// (RFC 6749 §4.1.2.1), after `state` and `iss` were checked.
    #[error("authorization failed: {}{}", .0.error, describe(.0))]
    Authorization(ErrorResponse),
    /// The request could not be sent or its answer not read.
    #[error("HTTP error: {0}")]
    Http(#[from] reqwest::Error),
    /// The loopback redirect listener failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A key could not be loaded, encoded or used to sign a DPoP proof or
    /// client assertion.
    #[error("key error: {0}")]
    Key(String),
    /// An MCP server answered a JSON-RPC request with an error
    /// (JSON-RPC 2.0 §5.1), which [`McpSession`](crate::McpSession) hands on.
    #[error("MCP error {code}: {message}")]
    Mcp { code: i64, message: String },
    /// The server broke the protocol: an unexpected status or body, a
    /// `state` or `iss` mismatch, missing metadata, an unusable URL.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl Error {
    /// The OAuth error body, whether it came from a back-channel endpoint or
    /// from the authorization response.
    pub fn oauth_error(&self) -> Option<&ErrorResponse> {
        match self {
            Self::OAuth { body, .. } | Self::Authorization(body) => Some(body),
            _ => None,
        }
    }

    /// The OAuth error code, if this is an OAuth error.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.oauth_error().map(|body| body.error)
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::Protocol(message.into())
    }
}

fn describe(body: &ErrorResponse) -> String {
    match &body.error_description {
        Some(description) => format!(": {description}"),
        None => String::new(),
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_display_their_code_status_and_description() {
        let error = Error::OAuth {
            status: 400,
            body: ErrorResponse {
                error: ErrorCode::InvalidGrant,
                error_description: Some("code was already used".into()),
            },
        };
        assert_eq!(
            error.to_string(),
            "invalid_grant (HTTP 400): code was already used"
        );
        assert_eq!(error.error_code(), Some(ErrorCode::InvalidGrant));
    }

    #[test]
    fn authorization_errors_expose_their_code() {
        let error = Error::Authorization(ErrorResponse {
            error: ErrorCode::AccessDenied,
            error_description: None,
        });
        assert_eq!(error.to_string(), "authorization failed: access_denied");
        assert_eq!(error.error_code(), Some(ErrorCode::AccessDenied));
        assert_eq!(Error::protocol("x").error_code(), None);
    }
}

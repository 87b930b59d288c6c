//! Who the client is and how it authenticates at the back channel.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ephemera_proto::DYNAMIC_CLIENT_ID;
use serde_json::Value;

/// A form body: name-value pairs in order, names may repeat.
pub(crate) type Form = Vec<(String, String)>;

/// How a confidential client sends its secret (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMethod {
    /// `client_secret_basic`: HTTP Basic, both parts form-urlencoded first.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

/// The client, as the authorization server will know it.
#[derive(Clone)]
pub enum ClientIdentity {
    /// A client with no prior registration: its `client_id` is
    /// [`DYNAMIC_CLIENT_ID`] and its RFC 7591 metadata travels in the PAR as
    /// `client_registration` (draft-richer-oauth-pushed-client-registration).
    /// It has no secret (`token_endpoint_auth_method` `none`).
    Pushed { registration: Value },
    /// A pre-registered public client (`token_endpoint_auth_method` `none`).
    Public { client_id: String },
    /// A pre-registered confidential client with a shared secret.
    Confidential {
        client_id: String,
        secret: String,
        method: SecretMethod,
    },
}

impl ClientIdentity {
    /// A pushed client with this RFC 7591 metadata.
    pub fn pushed(registration: Value) -> Self {
        Self::Pushed { registration }
    }

    /// A pre-registered public client.
    pub fn public(client_id: impl Into<String>) -> Self {
        Self::Public {
            client_id: client_id.into(),
        }
    }

    /// A pre-registered confidential client.
    pub fn confidential(
        client_id: impl Into<String>,
        secret: impl Into<String>,
        method: SecretMethod,
    ) -> Self {
        Self::Confidential {
            client_id: client_id.into(),
            secret: secret.into(),
            method,
        }
    }

    /// The `client_id` this client sends.
    pub fn client_id(&self) -> &str {
        match self {
            Self::Pushed { .. } => DYNAMIC_CLIENT_ID,
            Self::Public { client_id } | Self::Confidential { client_id, .. } => client_id,
        }
    }

    /// Adds this client's authentication to a back-channel form and returns
    /// the `Authorization` header value to send, if any.
    ///
    /// Clients without a secret identify themselves with `client_id`
    /// (RFC 6749 §3.2.1); `client_secret_post` puts both values in the body.
    pub(crate) fn authenticate(&self, form: &mut Form) -> Option<String> {
        match self {
            Self::Pushed { .. } | Self::Public { .. } => {
                form.push(("client_id".into(), self.client_id().into()));
                None
            }
            Self::Confidential {
                client_id,
                secret,
                method: SecretMethod::Basic,
            } => Some(basic_authorization(client_id, secret)),
            Self::Confidential {
                client_id,
                secret,
                method: SecretMethod::Post,
            } => {
                form.push(("client_id".into(), client_id.clone()));
                form.push(("client_secret".into(), secret.clone()));
                None
            }
        }
    }
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pushed { registration } => f
                .debug_struct("Pushed")
                .field("registration", registration)
                .finish(),
            Self::Public { client_id } => f
                .debug_struct("Public")
                .field("client_id", client_id)
                .finish(),
            Self::Confidential {
                client_id, method, ..
            } => f
                .debug_struct("Confidential")
                .field("client_id", client_id)
                .field("secret", &"[redacted]")
                .field("method", method)
                .finish(),
        }
    }
}

/// The `Authorization` header value for `client_secret_basic`: RFC 6749
/// §2.3.1 requires both parts to be form-urlencoded before they are joined
/// and base64-encoded, so a `:` in the `client_id` cannot be misread.
pub fn basic_authorization(client_id: &str, secret: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_authorization_form_urlencodes_both_parts() {
        // "a:b c" -> "a%3Ab+c", "p@ss/w" -> "p%40ss%2Fw"
        let header = basic_authorization("a:b c", "p@ss/w");
        assert_eq!(
            header,
            format!("Basic {}", STANDARD.encode("a%3Ab+c:p%40ss%2Fw"))
        );
    }

    #[test]
    fn public_and_pushed_clients_send_their_client_id_in_the_body() {
        let mut form = Vec::new();
        let header = ClientIdentity::pushed(serde_json::json!({})).authenticate(&mut form);
        assert_eq!(header, None);
        assert_eq!(
            form,
            vec![("client_id".to_owned(), DYNAMIC_CLIENT_ID.to_owned())]
        );

        let mut form = Vec::new();
        assert_eq!(ClientIdentity::public("cli").authenticate(&mut form), None);
        assert_eq!(form, vec![("client_id".to_owned(), "cli".to_owned())]);
    }

    #[test]
    fn confidential_clients_use_their_chosen_method() {
        let mut form = Vec::new();
        let basic = ClientIdentity::confidential("svc", "s3cret", SecretMethod::Basic);
        assert_eq!(
            basic.authenticate(&mut form),
            Some(basic_authorization("svc", "s3cret"))
        );
        assert!(form.is_empty());

        let post = ClientIdentity::confidential("svc", "s3cret", SecretMethod::Post);
        assert_eq!(post.authenticate(&mut form), None);
        assert_eq!(
            form,
            vec![
                ("client_id".to_owned(), "svc".to_owned()),
                ("client_secret".to_owned(), "s3cret".to_owned())
            ]
        );
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let identity = ClientIdentity::confidential("svc", "s3cret", SecretMethod::Basic);
        let printed = format!("{identity:?}");
        assert!(printed.contains("svc") && !printed.contains("s3cret"));
    }
}

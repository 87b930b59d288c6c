//! Who is calling a back-channel endpoint (RFC 6749 §2.3): a registered
//! client (public with its `client_id`, or confidential with its secret by
//! `client_secret_basic` or `client_secret_post`) or a pushed client (the URN).

use ephemera_proto::is_dynamic_client_id;

use super::{Context, OAuthError};
use crate::model::RegisteredClient;

/// The credentials a request carried, as the HTTP layer found them.
#[derive(Default)]
pub struct Credentials {
    /// From `Authorization: Basic`, each part already form-decoded (RFC 6749 §2.3.1).
    pub basic: Option<(String, String)>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("basic", &self.basic.as_ref().map(|(id, _)| id))
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The authenticated (or, for public clients, identified) caller.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A pre-registered client; `authenticated` is true when it proved a secret.
    Registered {
        client: RegisteredClient,
        authenticated: bool,
    },
    /// A pushed client, identified only by the URN: what it may do is decided
    /// by the grant it presents.
    Pushed,
}

impl Caller {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Registered { client, .. } => &client.client_id,
            Self::Pushed => ephemera_proto::DYNAMIC_CLIENT_ID,
        }
    }

    /// Whether this caller is the client the grant was issued to.
    pub fn owns(&self, grant_client_id: &str) -> bool {
        self.client_id() == grant_client_id
    }
}

pub async fn authenticate(ctx: &Context, creds: Credentials) -> Result<Caller, OAuthError> {
    if creds.basic.is_some() && creds.client_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "more than one client authentication method was used (RFC 6749 §2.3)",
        ));
    }
    let (client_id, secret) =
        match (creds.basic, creds.client_id) {
            (Some((id, _)), Some(param)) if id != param => {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the client authenticated by the Authorization header",
                ))
            }
            (Some((id, secret)), _) => (id, Some(secret)),
            (None, Some(id)) => (id, creds.client_secret),
            (None, None) => return Err(OAuthError::invalid_client(
                "client authentication is required: send client_id (public clients) or credentials",
            )),
        };
    if is_dynamic_client_id(&client_id) {
        if secret.is_some() {
            return Err(OAuthError::invalid_client(
                "a pushed client has no client secret",
            ));
        }
        return Ok(Caller::Pushed);
    }
    let Some(client) = ctx.store.find_client(&client_id).await? else {
        return Err(OAuthError::invalid_client("unknown client"));
    };
    match (&client.secret_hash, secret) {
        (Some(hash), Some(secret)) if hash.verify(&secret) => Ok(Caller::Registered {
            client,
            authenticated: true,
        }),
        (Some(_), Some(_)) => Err(OAuthError::invalid_client("client authentication failed")),
        (Some(_), None) => Err(OAuthError::invalid_client(
            "this client is confidential: authenticate with client_secret_basic or client_secret_post",
        )),
        (None, Some(_)) => Err(OAuthError::invalid_client(
            "this client is public and has no secret; send client_id only",
        )),
        (None, None) => Ok(Caller::Registered {
            client,
            authenticated: false,
        }),
    }
}

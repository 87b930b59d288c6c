//! [`ClientRegistration`]: who the client is at an authorization server
//! it may never have met, chosen in the order MCP gives (2025-11-25,
//! "Client Registration Approaches"): a pre-registered client, else a
//! Client ID Metadata Document where the server takes them, else Pushed
//! Client Registration where the server advertises it, else Dynamic Client
//! Registration (RFC 7591).

use serde_json::Value;

use crate::dpop::DpopKey;
use crate::error::{Error, Result};
use crate::identity::{ClientIdentity, SecretMethod};
use crate::server::AuthorizationServer;
use crate::AuthorizationServerMetadata;

/// The metadata member by which a server says it fetches URL `client_id`s
/// (draft-ietf-oauth-client-id-metadata-document §4).
pub const CLIENT_ID_METADATA_DOCUMENT_SUPPORTED: &str = "client_id_metadata_document_supported";

/// How the client came to be known to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationMethod {
    /// A `client_id` the caller had: registered beforehand.
    PreRegistered,
    /// The `client_id` is the URL of a document describing the client.
    MetadataDocument,
    /// The metadata travels in every PAR (draft-richer-oauth-pushed-client-registration).
    Pushed,
    /// Registered now at the `registration_endpoint` (RFC 7591).
    Dynamic,
}

/// What the caller knows about its client, and which ways it allows.
///
/// ```no_run
/// # async fn run(server: ephemera_client::AuthorizationServer) -> ephemera_client::Result<()> {
/// use ephemera_client::ClientRegistration;
/// let client = ClientRegistration::new(serde_json::json!({
///     "client_name": "My agent",
///     "redirect_uris": ["http://127.0.0.1:8910/callback"],
///     "grant_types": ["authorization_code", "refresh_token"],
///     "token_endpoint_auth_method": "none",
/// }))
/// .metadata_document("https://agent.example/client.json")
/// .register(&server)
/// .await?;
/// println!("{:?} as {}", client.method, client.identity.client_id());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ClientRegistration {
    metadata: Value,
    pre_registered: Option<ClientIdentity>,
    metadata_document: Option<String>,
    pushed: bool,
    dpop: Option<DpopKey>,
}

/// The client, known to the server.
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    pub identity: ClientIdentity,
    pub method: RegistrationMethod,
    /// The client information response of Dynamic Client Registration
    /// (RFC 7591 §3.2.1), with any `registration_access_token`.
    pub registration_response: Option<Value>,
}

impl ClientRegistration {
    /// A client described by this RFC 7591 metadata, which is what it
    /// pushes or registers (`redirect_uris` above all).
    pub fn new(metadata: Value) -> Self {
        Self {
            metadata,
            pre_registered: None,
            metadata_document: None,
            pushed: true,
            dpop: None,
        }
    }

    /// A client registered beforehand: used whatever the server advertises.
    pub fn pre_registered(mut self, identity: ClientIdentity) -> Self {
        self.pre_registered = Some(identity);
        self
    }

    /// The URL of the client's metadata document, used as its `client_id`
    /// where the server advertises `client_id_metadata_document_supported`.
    /// The document is the caller's to publish.
    pub fn metadata_document(mut self, url: impl Into<String>) -> Self {
        self.metadata_document = Some(url.into());
        self
    }

    /// Never use Pushed Client Registration, even where it is advertised.
    pub fn without_pushed_registration(mut self) -> Self {
        self.pushed = false;
        self
    }

    /// The DPoP key (RFC 9449) the chosen identity proves.
    pub fn with_dpop(mut self, key: DpopKey) -> Self {
        self.dpop = Some(key);
        self
    }

    /// The way this client will be known to a server with `metadata`, in
    /// the MCP order, or an error naming what is missing.
    pub fn method_for(&self, metadata: &AuthorizationServerMetadata) -> Result<RegistrationMethod> {
        let documents = metadata
            .extra
            .get(CLIENT_ID_METADATA_DOCUMENT_SUPPORTED)
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if self.pre_registered.is_some() {
            Ok(RegistrationMethod::PreRegistered)
        } else if self.metadata_document.is_some() && documents {
            Ok(RegistrationMethod::MetadataDocument)
        } else if self.pushed
            && metadata.pushed_client_registration_supported
            && metadata.pushed_authorization_request_endpoint.is_some()
        {
            Ok(RegistrationMethod::Pushed)
        } else if metadata.registration_endpoint.is_some() {
            Ok(RegistrationMethod::Dynamic)
        } else {
            Err(Error::protocol(format!(
                "no way to be a client of {}: no client_id was given, it takes no metadata \
                 document{}, advertises no pushed client registration and no registration_endpoint",
                metadata.issuer,
                if self.metadata_document.is_some() {
                    ""
                } else {
                    " (and none was given)"
                }
            )))
        }
    }

    /// Becomes a client of `server` the [`method_for`](Self::method_for)
    /// way: only Dynamic Client Registration sends anything now.
    pub async fn register(&self, server: &AuthorizationServer) -> Result<RegisteredClient> {
        let method = self.method_for(server.metadata())?;
        let mut registration_response = None;
        let identity = match method {
            RegistrationMethod::PreRegistered => self.pre_registered.clone(),
            RegistrationMethod::MetadataDocument => {
                self.metadata_document.clone().map(ClientIdentity::public)
            }
            RegistrationMethod::Pushed => Some(ClientIdentity::pushed(self.metadata.clone())),
            RegistrationMethod::Dynamic => {
                let information = server.register(&self.metadata).await?;
                let identity = identity_of(&information, server.metadata())?;
                registration_response = Some(information);
                Some(identity)
            }
        }
        .ok_or_else(|| Error::protocol("the chosen registration method has no identity"))?;
        let identity = match &self.dpop {
            Some(key) => identity.with_dpop(key.clone()),
            None => identity,
        };
        Ok(RegisteredClient {
            identity,
            method,
            registration_response,
        })
    }
}

/// The identity a client information response (RFC 7591 §3.2.1) gives: a
/// public client, or one with the `client_secret` it was issued, sent the
/// way its `token_endpoint_auth_method` says. A response that does not say
/// gets HTTP Basic (RFC 7591 §2's default), unless the server's
/// `token_endpoint_auth_methods_supported` lists `client_secret_post` and
/// not `client_secret_basic` (RFC 8414 §2): a secret sent a way the server
/// does not take is no use.
fn identity_of(
    information: &Value,
    server: &AuthorizationServerMetadata,
) -> Result<ClientIdentity> {
    let client_id = information["client_id"]
        .as_str()
        .ok_or_else(|| Error::protocol("the registration response has no client_id"))?;
    let supports = |method: &str| {
        server
            .token_endpoint_auth_methods_supported
            .iter()
            .any(|m| m == method)
    };
    Ok(match information["client_secret"].as_str() {
        Some(secret) => {
            let method = match information["token_endpoint_auth_method"].as_str() {
                Some("client_secret_post") => SecretMethod::Post,
                Some(_) => SecretMethod::Basic,
                None if supports("client_secret_post") && !supports("client_secret_basic") => {
                    SecretMethod::Post
                }
                None => SecretMethod::Basic,
            };
            ClientIdentity::confidential(client_id, secret, method)
        }
        None => ClientIdentity::public(client_id),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn server(members: Value) -> AuthorizationServerMetadata {
        let mut metadata = json!({
            "issuer": "https://as.example",
            "authorization_endpoint": "https://as.example/authorize",
            "token_endpoint": "https://as.example/token",
        });
        for (k, v) in members.as_object().unwrap() {
            metadata[k] = v.clone();
        }
        serde_json::from_value(metadata).unwrap()
    }

    const PAR: &str = "https://as.example/par";

    #[test]
    fn the_mcp_order_is_pre_registered_document_pushed_then_dynamic() {
        let everything = server(json!({
            "client_id_metadata_document_supported": true,
            "pushed_client_registration_supported": true,
            "pushed_authorization_request_endpoint": PAR,
            "registration_endpoint": "https://as.example/register",
        }));
        let client = ClientRegistration::new(json!({}));
        let with_document = client
            .clone()
            .metadata_document("https://agent.example/c.json");
        let method =
            |c: &ClientRegistration, m: &AuthorizationServerMetadata| c.method_for(m).unwrap();

        assert_eq!(
            method(
                &with_document
                    .clone()
                    .pre_registered(ClientIdentity::public("app")),
                &everything
            ),
            RegistrationMethod::PreRegistered
        );
        assert_eq!(
            method(&with_document, &everything),
            RegistrationMethod::MetadataDocument
        );
        assert_eq!(method(&client, &everything), RegistrationMethod::Pushed);
        assert_eq!(
            method(&client.clone().without_pushed_registration(), &everything),
            RegistrationMethod::Dynamic
        );
    }

    #[test]
    fn each_way_needs_the_server_to_advertise_it() {
        let client = ClientRegistration::new(json!({})).metadata_document("https://a.example/c");
        let no_documents = server(json!({
            "client_id_metadata_document_supported": false,
            "pushed_client_registration_supported": true,
            "pushed_authorization_request_endpoint": PAR,
        }));
        assert_eq!(
            client.method_for(&no_documents).unwrap(),
            RegistrationMethod::Pushed
        );
        let pushed_without_par = server(json!({
            "pushed_client_registration_supported": true,
            "registration_endpoint": "https://as.example/register",
        }));
        assert_eq!(
            client.method_for(&pushed_without_par).unwrap(),
            RegistrationMethod::Dynamic
        );
        let nothing = server(json!({"pushed_authorization_request_endpoint": PAR}));
        let error = client.method_for(&nothing).unwrap_err();
        assert!(
            matches!(&error, Error::Protocol(m) if m.contains("no registration_endpoint")),
            "{error}"
        );
    }

    #[test]
    fn a_registration_response_with_a_secret_makes_a_confidential_client() {
        let identity_of = |information: &Value| identity_of(information, &server(json!({})));
        let public = identity_of(&json!({"client_id": "c1"})).unwrap();
        assert_eq!(public.client_id(), "c1");
        assert_eq!(public.token_endpoint_auth_method(), "none");
        let basic = identity_of(&json!({"client_id": "c2", "client_secret": "s"})).unwrap();
        assert_eq!(basic.token_endpoint_auth_method(), "client_secret_basic");
        let post = identity_of(&json!({
            "client_id": "c3", "client_secret": "s", "token_endpoint_auth_method": "client_secret_post",
        }))
        .unwrap();
        assert_eq!(post.token_endpoint_auth_method(), "client_secret_post");
        assert!(identity_of(&json!({"client_secret": "s"})).is_err());
    }

    #[test]
    fn a_response_without_a_method_sends_the_secret_a_way_the_server_takes() {
        let information = json!({"client_id": "c", "client_secret": "s"});
        let method = |supported: Value| {
            identity_of(
                &information,
                &server(json!({"token_endpoint_auth_methods_supported": supported})),
            )
            .unwrap()
            .token_endpoint_auth_method()
        };
        assert_eq!(method(json!(["client_secret_post"])), "client_secret_post");
        assert_eq!(
            method(json!(["none", "client_secret_post"])),
            "client_secret_post"
        );
        assert_eq!(
            method(json!(["client_secret_post", "client_secret_basic"])),
            "client_secret_basic"
        );
        assert_eq!(method(json!([])), "client_secret_basic");
        let said = json!({"client_id": "c", "client_secret": "s", "token_endpoint_auth_method": "client_secret_basic"});
        let only_post =
            server(json!({"token_endpoint_auth_methods_supported": ["client_secret_post"]}));
        assert_eq!(
            identity_of(&said, &only_post)
                .unwrap()
                .token_endpoint_auth_method(),
            "client_secret_basic"
        );
    }
}

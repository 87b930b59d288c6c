//! Who is calling a back-channel endpoint (RFC 6749 §2.3): a registered
//! client (public with its `client_id`; confidential with its secret by
//! `client_secret_basic` / `client_secret_post`, or with a JWT signed by its
//! key, `private_key_jwt`), or a pushed client (the URN), whose keys come
//! from its own registration and are checked against its grant; or a
//! SPIFFE workload, whose JWT-SVID or X.509-SVID `spiffe` checks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ephemera_proto::assertion::JWT_BEARER_ASSERTION;
use ephemera_proto::spiffe::JWT_SPIFFE_ASSERTION;
use ephemera_proto::{ClientRef, PUSHED_CLIENT_URN};
use serde_json::Value;

use super::{proof, resolve, spiffe, Context, OAuthError};
use crate::model::{AuthMethod, ClientSnapshot, Grant, StoredClient, Timestamp};

/// The credentials a request carried, as the HTTP layer found them.
#[derive(Default)]
pub struct Credentials {
    /// From `Authorization: Basic`, each part already form-decoded (RFC 6749 §2.3.1).
    pub basic: Option<(String, String)>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion: Option<String>,
    pub client_assertion_type: Option<String>,
    /// The DER of the client certificate (mutual TLS, RFC 8705).
    pub certificate: Option<Vec<u8>>,
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
    /// A pre-registered client; `authenticated` is true when it proved a
    /// secret or a key.
    Registered {
        client: Box<StoredClient>,
        authenticated: bool,
    },
    /// A pushed client, identified only by the URN. Its assertion (if any)
    /// is checked by [`verify_pushed`] against the keys of the registration
    /// it pushed.
    Pushed { assertion: Option<String> },
    /// A SPIFFE workload that proved its SPIFFE ID with a JWT-SVID
    /// (draft-ietf-oauth-spiffe-client-auth): resolved, with the
    /// capabilities of its trust domain's rule.
    Workload { client: Box<ClientSnapshot> },
}

impl Caller {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Registered { client, .. } => &client.client_id,
            Self::Pushed { .. } => PUSHED_CLIENT_URN,
            Self::Workload { client } => &client.client_id,
        }
    }

    /// Whether this caller is the client the grant was issued to.
    pub fn owns(&self, grant_client_id: &str) -> bool {
        self.client_id() == grant_client_id
    }
}

/// Identifies and authenticates the caller of a back-channel endpoint.
pub async fn authenticate(
    ctx: &Context,
    creds: Credentials,
    now: Timestamp,
) -> Result<Caller, OAuthError> {
    let has_secret = creds.basic.is_some() || creds.client_secret.is_some();
    if (creds.basic.is_some() && creds.client_secret.is_some())
        || (has_secret && creds.client_assertion.is_some())
    {
        return Err(OAuthError::invalid_request(
            "more than one client authentication method was used (RFC 6749 §2.3)",
        ));
    }
    if creds.client_assertion_type.as_deref() == Some(JWT_SPIFFE_ASSERTION) {
        let Some(assertion) = creds.client_assertion else {
            return Err(OAuthError::invalid_request(
                "client_assertion is required with client_assertion_type",
            ));
        };
        let client_id = creds.basic.map(|(id, _)| id).or(creds.client_id);
        return spiffe::authenticate(ctx, &assertion, client_id.as_deref(), now).await;
    }
    // The draft's X.509-SVID method: no secret, no assertion, a SPIFFE ID
    // of a configured trust domain as `client_id`, the certificate.
    if !has_secret && creds.client_assertion.is_none() {
        if let Some(id) = creds
            .client_id
            .as_deref()
            .filter(|id| spiffe::names_workload(ctx, id))
        {
            return spiffe::authenticate_x509(ctx, id, creds.certificate.as_deref(), now).await;
        }
    }
    let assertion = match (
        creds.client_assertion,
        creds.client_assertion_type.as_deref(),
    ) {
        (None, None) => None,
        (Some(a), Some(JWT_BEARER_ASSERTION)) => Some(a),
        (Some(_), Some(other)) => {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion_type `{other}` is not supported; use {JWT_BEARER_ASSERTION}"
            )))
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_request(
                "client_assertion_type is required with client_assertion",
            ))
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "client_assertion is required with client_assertion_type",
            ))
        }
    };
    let (client_id, secret) = match (creds.basic, creds.client_id) {
        (Some((id, _)), Some(param)) if id != param => {
            return Err(OAuthError::invalid_request(
                "client_id does not match the client authenticated by the Authorization header",
            ))
        }
        (Some((id, secret)), _) => (id, Some(secret)),
        (None, Some(id)) => (id, creds.client_secret),
        // RFC 7523 §3: with an assertion, client_id may be left out.
        (None, None) => match assertion.as_deref().and_then(unverified_issuer) {
            Some(id) => (id, None),
            None => return Err(OAuthError::invalid_client(
                "client authentication is required: send client_id (public clients) or credentials",
            )),
        },
    };
    let client_ref = ClientRef::parse(&client_id);
    if client_ref == ClientRef::PushedUrn {
        if secret.is_some() {
            return Err(OAuthError::invalid_client(
                "a pushed client has no client secret",
            ));
        }
        return Ok(Caller::Pushed { assertion });
    }
    let Some(client) = resolve::lookup(ctx, client_ref, now).await? else {
        return Err(OAuthError::invalid_client("unknown client"));
    };
    if let Some(jwks) = &client.jwks {
        let Some(assertion) = assertion else {
            return Err(OAuthError::invalid_client(
                "this client authenticates with private_key_jwt: send client_assertion",
            ));
        };
        proof::client_assertion(ctx, &assertion, &client.client_id, jwks, now).await?;
        return Ok(Caller::Registered {
            client: Box::new(client),
            authenticated: true,
        });
    }
    if assertion.is_some() {
        return Err(OAuthError::invalid_client(
            "this client has no keys registered for private_key_jwt",
        ));
    }
    match (&client.secret_hash, secret) {
        (Some(hash), Some(secret)) if hash.verify(&secret) => Ok(Caller::Registered {
            client: Box::new(client),
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
            client: Box::new(client),
            authenticated: false,
        }),
    }
}

/// Checks a pushed caller against the client it pushed: a client that
/// registered keys for `private_key_jwt` must sign every request with one of
/// them; a client that registered none cannot start signing later.
pub async fn verify_pushed(
    ctx: &Context,
    caller: &Caller,
    client: &ClientSnapshot,
    certificate: Option<&[u8]>,
    now: Timestamp,
) -> Result<(), OAuthError> {
    let Caller::Pushed { assertion } = caller else {
        return Ok(());
    };
    if client.auth_method == AuthMethod::SelfSignedTlsClientAuth {
        let registered = client
            .jwks
            .as_ref()
            .map(resolve::certificates)
            .unwrap_or_default();
        return match certificate {
            Some(der) if registered.iter().any(|c| c.as_slice() == der) => Ok(()),
            Some(_) => Err(OAuthError::invalid_client(
                "the client certificate is not one of the certificates this pushed client registered",
            )),
            None => Err(OAuthError::invalid_client(
                "this pushed client authenticates with its certificate (self_signed_tls_client_auth): use mutual TLS",
            )),
        };
    }
    match (client.auth_method, assertion, &client.jwks) {
        (AuthMethod::PrivateKeyJwt, Some(a), Some(jwks)) => {
            proof::client_assertion(ctx, a, PUSHED_CLIENT_URN, jwks, now).await?;
            Ok(())
        }
        (AuthMethod::PrivateKeyJwt, _, _) => Err(OAuthError::invalid_client(
            "this pushed client registered keys (private_key_jwt): send a client_assertion signed by one of them",
        )),
        (_, Some(_), _) => Err(OAuthError::invalid_client(
            "this pushed client registered no keys at PAR; authentication cannot be added later",
        )),
        (_, None, _) => Ok(()),
    }
}

/// A grant of a client whose keys someone else publishes (a metadata
/// document) ends when the keys it was issued under are all gone from what
/// is published now: the draft lets a server revoke what old keys obtained,
/// and a rotation that keeps one key published through the change keeps the
/// grants made meanwhile. Checked wherever the client uses a grant (code
/// redemption, refresh); the grant is deleted with its tokens.
pub async fn keys_still_published(
    ctx: &Context,
    caller: &Caller,
    grant: &Grant,
) -> Result<(), OAuthError> {
    let Caller::Registered { client, .. } = caller else {
        return Ok(());
    };
    if !resolve::caps(&ctx.policy, &grant.client).grants_end_with_keys {
        return Ok(());
    }
    let Some(issued_under) = grant.client.jwks.as_ref().map(thumbprints) else {
        return Ok(());
    };
    let published = client.jwks.as_ref().map(thumbprints).unwrap_or_default();
    if issued_under.iter().any(|t| published.contains(t)) {
        return Ok(());
    }
    ctx.store.delete_grant(&grant.id).await?;
    tracing::info!(
        grant_id = %grant.id,
        client_id = %client.client_id,
        "the client's metadata document no longer publishes the keys this grant was issued under; grant ended"
    );
    Err(OAuthError::invalid_grant(
        "the client's metadata document no longer publishes any key this grant was issued under: the grant has ended; authorize again",
    ))
}

/// The RFC 7638 thumbprints of a JWK Set's keys.
fn thumbprints(jwks: &Value) -> Vec<String> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter_map(ephemera_proto::jose::thumbprint)
        .collect()
}

/// The `iss` of an assertion, read before its signature is checked, only to
/// know which client's keys to check it with.
fn unverified_issuer(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

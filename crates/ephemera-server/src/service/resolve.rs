//! `client_id` -> [`ClientSnapshot`]: the one place where client models differ.
//! Everything after resolution reads only the snapshot and its
//! [`Capabilities`] ([`capabilities`] is where each model gets its rules).

use ephemera_proto::assertion::parse_jwks;
use ephemera_proto::error::ErrorCode;
use ephemera_proto::federation::chain::ResolvedChain;
use ephemera_proto::metadata::{ClientMetadata, MetadataError, MetadataLimits};
use ephemera_proto::{ClientRef, PUSHED_CLIENT_URN};

use super::metadata_document::FetchedDocument;
use super::{Context, OAuthError};
use crate::config::spiffe::{Rule, TrustDomain};
use crate::config::trusted_issuers::TrustedIssuer;
use crate::model::{
    AuthMethod, BindingRule, Capabilities, ClientKind, ClientSnapshot, RedirectRule,
    SelfDescription, StoredClient, Timestamp, Trust,
};
use crate::policy::Policy;

/// Resolves the client a `client_id` names into its snapshot: the one way
/// in for every client model. A pushed client is built from the
/// `registration` it pushed (RFC 7591 metadata, or none); a stored one (the
/// operator's or self-registered) is read, and a metadata document fetched.
/// `None`: no client has that id.
pub async fn resolve(
    ctx: &Context,
    client: ClientRef<'_>,
    registration: Option<&str>,
    now: Timestamp,
) -> Result<Option<ClientSnapshot>, OAuthError> {
    match client {
        ClientRef::PushedUrn => pushed(&ctx.policy, registration).map(Some),
        stored => Ok(lookup(ctx, stored, now)
            .await?
            .map(|c| snapshot(&ctx.policy, &c))),
    }
}

/// A stored client (the operator's, self-registered, or a fetched metadata
/// document) as resolved: its snapshot with its capabilities.
pub fn snapshot(policy: &Policy, client: &StoredClient) -> ClientSnapshot {
    with_capabilities(policy, client.snapshot())
}

fn with_capabilities(policy: &Policy, mut client: ClientSnapshot) -> ClientSnapshot {
    client.caps = Some(capabilities(policy, &client));
    client
}

/// What `client` may and must do under `policy`: the rules of its client
/// model, decided here once. A new client model adds its arm here.
pub fn capabilities(policy: &Policy, client: &ClientSnapshot) -> Capabilities {
    let kind = client.kind;
    let pushed = kind == ClientKind::Pushed;
    let asks = |field: &str| client.metadata.get(field) == Some(&serde_json::Value::Bool(true));
    let grantable = policy.grantable_scopes(kind);
    let grantable_scope = match &client.allowed_scope {
        None => grantable.clone(),
        Some(own) => ephemera_proto::scope::Scope::from_tokens(
            grantable
                .iter()
                .filter(|t| own.contains(t))
                .map(str::to_owned),
        )
        .unwrap_or_default(),
    };
    Capabilities {
        trust: match kind {
            ClientKind::Registered => Trust::Operator,
            ClientKind::MetadataDocument => Trust::VerifiedOrigin,
            ClientKind::Federation => Trust::TrustAnchor,
            ClientKind::Pushed | ClientKind::SelfRegistered => Trust::SelfAsserted,
            ClientKind::Workload => Trust::Issuer,
        },
        // A pushed client has no stable identity to remember consent for;
        // self-registered ones are strangers too.
        remember_consent: kind == ClientKind::Registered,
        redirect: if pushed {
            RedirectRule::SentWithRequest
        } else {
            RedirectRule::Registered
        },
        binding: BindingRule {
            // Pushed Client Registration: the binding is the client's
            // identity, fixed at PAR (RFC 9449 §10, RFC 8705 §3).
            fixed_at_par: pushed,
            certificate: pushed
                && (asks("tls_client_certificate_bound_access_tokens")
                    || client.auth_method == AuthMethod::SelfSignedTlsClientAuth),
            dpop: asks("dpop_bound_access_tokens"),
            required: pushed && policy.pushed.require_sender_constraint,
        },
        // OAuth 2.1 §4.1.1: PKCE for every client, unless policy exempts
        // the operator's confidential clients.
        pkce_required: !(policy.clients.pkce_optional_for_registered_confidential
            && kind == ClientKind::Registered
            && !client.is_public()),
        state_required: pushed,
        grantable_scope,
        // A SPIFFE workload has client_credentials when its rule gives it.
        client_credentials: policy.clients.client_credentials.contains(&kind)
            || (kind == ClientKind::Workload && client.may_use_grant("client_credentials")),
        refresh_lifetime: policy.refresh_lifetime(kind),
        renew_on_use: kind == ClientKind::SelfRegistered,
        grants_end_with_keys: matches!(kind, ClientKind::MetadataDocument | ClientKind::Federation),
        // Every pushed client is `client_id=urn:ietf:oauth:parameters:dynamic`.
        shared_client_id: pushed,
        // Automatic registration proves the entity's keys with the request.
        par_required: kind == ClientKind::Federation,
    }
}

/// `client`'s capabilities: as decided when it was resolved, or, for a
/// snapshot stored before capabilities existed, decided now.
pub fn caps<'a>(policy: &Policy, client: &'a ClientSnapshot) -> std::borrow::Cow<'a, Capabilities> {
    match &client.caps {
        Some(caps) => std::borrow::Cow::Borrowed(caps),
        None => std::borrow::Cow::Owned(capabilities(policy, client)),
    }
}

/// The stored client a `client_id` names, with what authenticates it: one
/// registered here (by the operator or by itself), or the one a metadata
/// document or a federation entity's trust chain describes. `None` for an
/// unknown id, and for the pushed URN, whose client is in its request or
/// its grant.
///
/// A URL is a federation entity when federation is configured and the URL
/// serves an Entity Configuration (`/.well-known/openid-federation`
/// appended); otherwise it is a metadata document's URL.
pub async fn lookup(
    ctx: &Context,
    client: ClientRef<'_>,
    now: Timestamp,
) -> Result<Option<StoredClient>, OAuthError> {
    match client {
        ClientRef::PushedUrn => Ok(None),
        ClientRef::Id(id) => Ok(ctx.store.find_client(id).await?),
        ClientRef::Url(url) => {
            if let Some(federation) = &ctx.federation {
                let leeway = ctx.policy.proofs.leeway;
                if let Some(chain) = federation.resolve_client(url, now, leeway).await? {
                    return federation_client(&ctx.policy, url, &chain, now).map(Some);
                }
            }
            let doc = ctx
                .documents
                .fetch(url, now)
                .await
                .map_err(|e| OAuthError::invalid_client(e.to_string()))?;
            document_client(&ctx.policy, url, doc, now).map(Some)
        }
    }
}

/// A fetched metadata document as a client: public (or `private_key_jwt`
/// with the document's keys), its redirect URIs under the open-world policy.
fn document_client(
    policy: &Policy,
    client_id: &str,
    doc: FetchedDocument,
    now: Timestamp,
) -> Result<StoredClient, OAuthError> {
    // Keys named by `jwks_uri` were fetched with the document: from here on
    // they are the client's keys as if the document had held them.
    let mut md = doc.metadata;
    if let Some(keys) = doc.keys {
        md.jwks = Some(keys);
        md.jwks_uri = None;
    }
    let described = describe(policy, &md, ClientKind::MetadataDocument).map_err(|e| match e {
        Refusal::Metadata(m) => OAuthError::invalid_client(format!("the metadata document: {m}")),
        Refusal::RedirectUri(m) => OAuthError::invalid_client(m),
    })?;
    Ok(self_described(
        client_id,
        &md,
        described,
        ClientKind::MetadataDocument,
        Some(doc.host),
        (now, now),
    ))
}

/// A federation entity as a client (automatic registration, OpenID
/// Federation 1.0 §12.1): its resolved `openid_relying_party` (or
/// `oauth_client`) metadata, which must offer automatic registration and
/// authenticate with `private_key_jwt` by the keys in its `jwks`: the proof
/// that the client holds the keys its superior vouched for. Never stored.
fn federation_client(
    policy: &Policy,
    client_id: &str,
    chain: &ResolvedChain,
    now: Timestamp,
) -> Result<StoredClient, OAuthError> {
    let refuse =
        |m: String| OAuthError::invalid_client(format!("the client's federation metadata: {m}"));
    let Some(serde_json::Value::Object(md)) = chain
        .metadata
        .get("openid_relying_party")
        .or_else(|| chain.metadata.get("oauth_client"))
    else {
        return Err(OAuthError::invalid_client(
            "the client's trust chain resolves to no openid_relying_party or oauth_client metadata",
        ));
    };
    let automatic = md
        .get("client_registration_types")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|t| t.iter().any(|t| t == "automatic"));
    if !automatic {
        return Err(refuse(
            "client_registration_types must include `automatic` (OpenID Federation 1.0 §12.1)"
                .into(),
        ));
    }
    let mut md = md.clone();
    md.entry("token_endpoint_auth_method")
        .or_insert_with(|| "private_key_jwt".into());
    let parsed = ClientMetadata::parse_json(
        &serde_json::Value::Object(md).to_string(),
        &MetadataLimits::default(),
    )
    .map_err(|e| refuse(e.to_string()))?;
    let described = describe(policy, &parsed, ClientKind::Federation).map_err(|e| match e {
        Refusal::Metadata(m) | Refusal::RedirectUri(m) => refuse(m),
    })?;
    let host = url::Url::parse(client_id).ok().and_then(|u| {
        let host = u.host_str()?.to_owned();
        Some(match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        })
    });
    Ok(self_described(
        client_id,
        &parsed,
        described,
        ClientKind::Federation,
        host,
        (now, now),
    ))
}

/// Why a client's description of itself was refused: its redirect URIs
/// (RFC 7591 `invalid_redirect_uri`), or the rest of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    RedirectUri(String),
    Metadata(String),
}

/// A client's description of itself, checked for its model.
#[derive(Debug, Clone)]
pub struct Described {
    pub auth_method: AuthMethod,
    pub grant_types: Vec<String>,
    /// The scopes it may be granted at most, as registered.
    pub scope: Option<ephemera_proto::scope::Scope>,
    /// The metadata as kept: what the client sent, with the method and the
    /// grant types in force written out for a self-registered client.
    pub metadata: serde_json::Value,
}

/// The one check from RFC 7591 metadata to a client, for every model that
/// describes itself (pushed, self-registered, metadata document): which
/// authentication methods it may use, which grant types, which redirect URI
/// forms and which scopes. Each model's rules are here.
pub fn describe(
    policy: &Policy,
    md: &ClientMetadata,
    model: ClientKind,
) -> Result<Described, Refusal> {
    let (default_method, methods): (&str, &[(&str, AuthMethod)]) = match model {
        ClientKind::Pushed => ("none", PUSHED_METHODS),
        // A workload never describes itself: it has nothing to register.
        ClientKind::MetadataDocument | ClientKind::Workload => ("none", &PUSHED_METHODS[..2]),
        // Automatic registration proves the entity's keys (§12.1).
        ClientKind::Federation => ("private_key_jwt", &PUSHED_METHODS[1..2]),
        // RFC 7591 §2: the default method is client_secret_basic.
        ClientKind::SelfRegistered | ClientKind::Registered => {
            ("client_secret_basic", SELF_REGISTERED_METHODS)
        }
    };
    let auth_method = client_auth_method(md, default_method, methods).map_err(Refusal::Metadata)?;
    let mut grant_types = md.effective_grant_types();
    // A client that does not authenticate cannot use client_credentials:
    // it is registered with the grant types it can use, and refused only
    // when none is left.
    // A pushed client, which exists only inside a user's grant, never can.
    let never_machine = auth_method == AuthMethod::None || model == ClientKind::Pushed;
    if never_machine && grant_types.iter().any(|g| g != "client_credentials") {
        grant_types.retain(|g| g != "client_credentials");
    }
    let grants = |g: &str| grant_types.iter().any(|x| x == g);
    match model {
        ClientKind::Pushed => {
            if !grants("authorization_code") {
                return Err(Refusal::Metadata(
                    "a pushed client's grant_types must include authorization_code".into(),
                ));
            }
            if grants("client_credentials") {
                return Err(Refusal::Metadata(
                    "client_credentials is not available to pushed clients".into(),
                ));
            }
        }
        ClientKind::SelfRegistered | ClientKind::Registered => {
            if grants("client_credentials") && auth_method == AuthMethod::None {
                return Err(Refusal::Metadata(
                    "client_credentials needs a client that authenticates".into(),
                ));
            }
            if grants("authorization_code") && md.redirect_uris.is_empty() {
                return Err(Refusal::RedirectUri(
                    "redirect_uris is required for the authorization_code grant".into(),
                ));
            }
        }
        ClientKind::MetadataDocument | ClientKind::Workload | ClientKind::Federation => {}
    }
    if let Some(uri) = md
        .redirect_uris
        .iter()
        .find(|u| !policy.pushed.redirect_forms.contains(&u.form()))
    {
        let uri = uri.as_str();
        return Err(Refusal::RedirectUri(match model {
            ClientKind::Pushed => format!(
                "redirect_uri `{uri}` is not allowed for pushed clients (https, http on loopback, or a private-use scheme)"
            ),
            ClientKind::MetadataDocument | ClientKind::Workload => {
                format!("the metadata document's redirect_uri `{uri}` is not allowed here")
            }
            ClientKind::Federation => {
                format!("the resolved redirect_uri `{uri}` is not allowed here")
            }
            ClientKind::SelfRegistered | ClientKind::Registered => format!(
                "redirect_uri `{uri}` is not allowed: use https, http on a loopback address, or a private-use scheme"
            ),
        }));
    }
    // Open-world clients may ask for the scopes policy gives strangers; a
    // metadata document's scope only narrows what it is granted. A pushed
    // client's registration is part of its one request: a scope it may not
    // have is refused. A self-registered client gets the scopes it asked for
    // that it may have (RFC 7591 §3.2.1 lets the server replace a value; the
    // answer shows the scope registered); none of them is a refusal.
    let mut scope = md.scope.clone();
    let withheld = md
        .scope
        .as_ref()
        .and_then(|s| s.difference(&policy.pushed_scopes).next());
    match (model, withheld) {
        (_, None)
        | (ClientKind::MetadataDocument | ClientKind::Workload | ClientKind::Federation, _) => {}
        (ClientKind::Pushed, Some(t)) => {
            return Err(Refusal::Metadata(format!(
                "scope `{t}` is not available to pushed clients"
            )))
        }
        (ClientKind::SelfRegistered | ClientKind::Registered, Some(t)) => {
            let kept = md.scope.as_ref().map(|s| {
                ephemera_proto::scope::Scope::from_tokens(
                    s.iter()
                        .filter(|t| policy.pushed_scopes.contains(t))
                        .map(str::to_owned),
                )
                .unwrap_or_default()
            });
            if kept.as_ref().is_none_or(|k| k.is_empty()) {
                return Err(Refusal::Metadata(format!(
                    "scope `{t}` is not available to self-registered clients"
                )));
            }
            scope = kept;
        }
    }
    let mut metadata = md.to_json();
    if let serde_json::Value::Object(m) = &mut metadata {
        if let Some(s) = scope.as_ref().filter(|_| m.contains_key("scope")) {
            m.insert("scope".into(), s.to_string().into());
        }
        // The grant types in force, when the client listed some.
        if m.contains_key("grant_types") {
            m.insert(
                "grant_types".into(),
                grant_types
                    .iter()
                    .map(|g| serde_json::Value::from(g.as_str()))
                    .collect(),
            );
        }
    }
    if matches!(model, ClientKind::SelfRegistered | ClientKind::Registered) {
        if let serde_json::Value::Object(m) = &mut metadata {
            let method = md
                .token_endpoint_auth_method
                .as_deref()
                .unwrap_or(default_method);
            m.insert("token_endpoint_auth_method".into(), method.into());
            m.insert(
                "grant_types".into(),
                grant_types
                    .iter()
                    .map(|g| serde_json::Value::from(g.as_str()))
                    .collect(),
            );
        }
    }
    Ok(Described {
        auth_method,
        grant_types,
        scope,
        metadata,
    })
}

/// A stored client built from its own description at `now`: self-registered
/// (kept until `expires_at` unless used) or a fetched metadata document
/// (from `origin`, never stored).
pub fn self_described(
    client_id: &str,
    md: &ClientMetadata,
    described: Described,
    model: ClientKind,
    origin: Option<String>,
    (now, expires_at): (Timestamp, Timestamp),
) -> StoredClient {
    StoredClient {
        client_id: client_id.to_owned(),
        name: md.client_name.clone(),
        redirect_uris: md
            .redirect_uris
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect(),
        allowed_scope: described.scope.clone(),
        confidential: described.auth_method != AuthMethod::None,
        can_introspect: false,
        created_at: now,
        jwks: md.jwks.clone(),
        grant_types: None,
        self_described: Some(SelfDescription {
            kind: model,
            verified_origin: origin,
            metadata: described.metadata,
            grant_types: described.grant_types,
            auth_method: described.auth_method,
            expires_at,
            registration_token_hash: None,
            fingerprint: None,
        }),
        secret_hash: None,
    }
}

/// A client registered at the registration endpoint (RFC 7591), created
/// at `now` and kept until `expires_at` unless it is used.
pub fn self_registered(
    policy: &Policy,
    client_id: &str,
    md: &ClientMetadata,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<StoredClient, Refusal> {
    let described = describe(policy, md, ClientKind::SelfRegistered)?;
    Ok(self_described(
        client_id,
        md,
        described,
        ClientKind::SelfRegistered,
        None,
        (now, expires_at),
    ))
}

/// Builds a pushed client's snapshot from its `client_registration` (which
/// may be absent: then the client is known by its redirect URI alone).
pub fn pushed(policy: &Policy, registration: Option<&str>) -> Result<ClientSnapshot, OAuthError> {
    if !policy.pushed.enabled {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "pushed client registration is disabled on this server",
        ));
    }
    let metadata = match registration {
        None => ClientMetadata::default(),
        Some(text) if text.len() > policy.pushed.max_registration_bytes => {
            return Err(metadata_error(format!(
                "client_registration is larger than {} bytes",
                policy.pushed.max_registration_bytes
            )))
        }
        Some(text) => {
            ClientMetadata::parse_json(text, &policy.pushed.limits).map_err(|e| match e {
                MetadataError::NotAnObject => OAuthError::invalid_request(
                    "client_registration must be a JSON object (RFC 7591 client metadata)",
                ),
                other => metadata_error(format!("client_registration: {other}")),
            })?
        }
    };
    let described = describe(policy, &metadata, ClientKind::Pushed).map_err(|e| match e {
        Refusal::Metadata(m) | Refusal::RedirectUri(m) => metadata_error(m),
    })?;
    let (auth_method, grant_types) = (described.auth_method, described.grant_types);
    Ok(with_capabilities(
        policy,
        ClientSnapshot {
            caps: None,
            client_id: PUSHED_CLIENT_URN.to_owned(),
            kind: ClientKind::Pushed,
            auth_method,
            name: metadata.client_name.clone(),
            redirect_uris: metadata
                .redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            response_types: crate::model::response_types_for(&grant_types),
            grant_types,
            allowed_scope: metadata.scope.clone(),
            metadata: described.metadata,
            jwks: metadata.jwks.clone(),
            verified_origin: None,
        },
    ))
}

/// A workload as a client (MCP workload identity federation): the `sub`
/// that `issuer` vouches for with a JWT bearer grant (RFC 7523 §2.1). It
/// is registered nowhere: its `client_id` is its `sub`, so its tokens'
/// `sub` and `client_id` are the workload (RFC 9068 §2.2, a token with no
/// user); its metadata names the issuer, which tells two platforms'
/// workloads apart; the issuer's `scopes` cap what it may be granted.
pub fn workload(policy: &Policy, issuer: &TrustedIssuer, subject: &str) -> ClientSnapshot {
    with_capabilities(
        policy,
        ClientSnapshot {
            caps: None,
            client_id: subject.to_owned(),
            kind: ClientKind::Workload,
            // It authenticates no client: its JWT is the grant.
            auth_method: AuthMethod::None,
            name: None,
            redirect_uris: Vec::new(),
            grant_types: vec![ephemera_proto::assertion_grant::GRANT_TYPE.to_owned()],
            response_types: Vec::new(),
            allowed_scope: issuer.scopes.clone(),
            metadata: serde_json::json!({
                "iss": issuer.issuer,
                "trusted_issuer": issuer.name,
            }),
            jwks: None,
            verified_origin: None,
        },
    )
}

/// A SPIFFE workload as a client (draft-ietf-oauth-spiffe-client-auth):
/// the SPIFFE ID its SVID proves, under the first `rule` of its trust
/// domain that admits it. Registered nowhere, like a trusted issuer's
/// workload: its `client_id` is its SPIFFE ID, its grant types and scopes
/// the rule's; its metadata names the trust domain and its table.
pub fn spiffe_workload(
    policy: &Policy,
    domain: &TrustDomain,
    rule: &Rule,
    id: &ephemera_proto::spiffe::SpiffeId,
) -> ClientSnapshot {
    with_capabilities(
        policy,
        ClientSnapshot {
            caps: None,
            client_id: id.as_str().to_owned(),
            kind: ClientKind::Workload,
            // It proves its SVID at every request, like a trusted
            // issuer's workload its JWT: nothing stored authenticates it.
            auth_method: AuthMethod::None,
            name: None,
            redirect_uris: Vec::new(),
            grant_types: rule.grants.clone(),
            response_types: Vec::new(),
            allowed_scope: rule.scopes.clone(),
            metadata: serde_json::json!({
                "trust_domain": domain.trust_domain,
                "spiffe": domain.name,
            }),
            jwks: None,
            verified_origin: None,
        },
    )
}

/// How a self-registered client may authenticate.
const SELF_REGISTERED_METHODS: &[(&str, AuthMethod)] = &[
    ("none", AuthMethod::None),
    ("client_secret_basic", AuthMethod::ClientSecret),
    ("client_secret_post", AuthMethod::ClientSecret),
    ("private_key_jwt", AuthMethod::PrivateKeyJwt),
];

/// How pushed clients may authenticate: never with a secret.
const PUSHED_METHODS: &[(&str, AuthMethod)] = &[
    ("none", AuthMethod::None),
    ("private_key_jwt", AuthMethod::PrivateKeyJwt),
    (
        "self_signed_tls_client_auth",
        AuthMethod::SelfSignedTlsClientAuth,
    ),
];

/// The authentication method a client's metadata asks for, among `allowed`
/// (`default` when it names none), with the keys that method needs: `jwks`
/// for `private_key_jwt` (keys by `jwks_uri` only for a metadata document,
/// whose fetcher has put them in `jwks` by now), and
/// with certificates (`x5c`) for `self_signed_tls_client_auth`.
pub fn client_auth_method(
    md: &ClientMetadata,
    default: &str,
    allowed: &[(&str, AuthMethod)],
) -> Result<AuthMethod, String> {
    let name = md.token_endpoint_auth_method.as_deref().unwrap_or(default);
    let Some(&(_, method)) = allowed.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "token_endpoint_auth_method `{name}` is not available to this kind of client here (use one of: {})",
            names.join(", ")
        ));
    };
    if md.jwks_uri.is_some() {
        return Err(
            "jwks_uri is refused: send the public keys in jwks (this server fetches keys only for client ID metadata documents)"
                .to_owned(),
        );
    }
    let needs_keys = matches!(
        method,
        AuthMethod::PrivateKeyJwt | AuthMethod::SelfSignedTlsClientAuth
    );
    match (&md.jwks, needs_keys) {
        (Some(jwks), true) => {
            parse_jwks(jwks).map_err(|e| format!("jwks: {e}"))?;
            if method == AuthMethod::SelfSignedTlsClientAuth && certificates(jwks).is_empty() {
                return Err(
                    "self_signed_tls_client_auth needs the client's certificate in jwks (x5c)"
                        .to_owned(),
                );
            }
        }
        (None, true) => return Err(format!("{name} needs the client's public keys in jwks")),
        (Some(_), false) => {
            return Err(
                "jwks is only used with private_key_jwt or self_signed_tls_client_auth".to_owned(),
            )
        }
        (None, false) => {}
    }
    Ok(method)
}

/// The DER certificates (the first of each key's `x5c`) of a JWK Set.
pub fn certificates(jwks: &serde_json::Value) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let keys = jwks
        .get("keys")
        .and_then(|k| k.as_array())
        .cloned()
        .unwrap_or_default();
    keys.iter()
        .filter_map(|k| k.get("x5c")?.get(0)?.as_str().map(str::to_owned))
        .filter_map(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
        .collect()
}

fn metadata_error(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

#[cfg(test)]
mod tests;

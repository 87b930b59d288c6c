//! `client_id` -> [`ClientSnapshot`]: the one place where client models differ.
//! Everything after resolution reads only the snapshot.

use ephemera_proto::assertion::parse_jwks;
use ephemera_proto::error::ErrorCode;
use ephemera_proto::metadata::{ClientMetadata, MetadataError};
use ephemera_proto::DYNAMIC_CLIENT_ID;

use super::metadata_document::{is_url_client_id, FetchedDocument};
use super::{Context, OAuthError};
use crate::model::{
    AuthMethod, ClientKind, ClientSnapshot, DynamicRegistration, RegisteredClient, Timestamp,
};
use crate::policy::Policy;

/// Resolves a `client_id` other than the URN: a client registered here (by
/// the operator or by itself), or the https URL of a metadata document.
pub async fn registered(
    ctx: &Context,
    client_id: &str,
    now: Timestamp,
) -> Result<Option<ClientSnapshot>, OAuthError> {
    Ok(lookup(ctx, client_id, now).await?.map(|c| c.snapshot()))
}

/// The client behind a `client_id` other than the URN, with what
/// authenticates it.
pub async fn lookup(
    ctx: &Context,
    client_id: &str,
    now: Timestamp,
) -> Result<Option<RegisteredClient>, OAuthError> {
    if !is_url_client_id(client_id) {
        return Ok(ctx.store.find_client(client_id).await?);
    }
    let doc = ctx
        .documents
        .fetch(client_id, now)
        .await
        .map_err(|e| OAuthError::invalid_client(e.to_string()))?;
    document_client(&ctx.policy, client_id, doc, now).map(Some)
}

/// A fetched metadata document as a client: public (or `private_key_jwt`
/// with the document's keys), its redirect URIs under the open-world policy.
fn document_client(
    policy: &Policy,
    client_id: &str,
    doc: FetchedDocument,
    now: Timestamp,
) -> Result<RegisteredClient, OAuthError> {
    let md = doc.metadata;
    let auth_method = client_auth_method(&md, "none", &PUSHED_METHODS[..2])
        .map_err(|e| OAuthError::invalid_client(format!("the metadata document: {e}")))?;
    if let Some(uri) = md
        .redirect_uris
        .iter()
        .find(|u| !policy.pushed.redirect_forms.contains(&u.form()))
    {
        return Err(OAuthError::invalid_client(format!(
            "the metadata document's redirect_uri `{}` is not allowed here",
            uri.as_str()
        )));
    }
    Ok(RegisteredClient {
        client_id: client_id.to_owned(),
        name: md.client_name.clone(),
        redirect_uris: md
            .redirect_uris
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect(),
        allowed_scope: md.scope.clone(),
        confidential: auth_method != AuthMethod::None,
        can_introspect: false,
        created_at: now,
        jwks: md.jwks.clone(),
        grant_types: None,
        dynamic: Some(DynamicRegistration {
            kind: ClientKind::MetadataDocument,
            verified_origin: Some(doc.host),
            metadata: md.to_json(),
            grant_types: md.effective_grant_types(),
            auth_method,
            expires_at: now,
            registration_token_hash: None,
        }),
        secret_hash: None,
    })
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
    let auth_method =
        client_auth_method(&metadata, "none", PUSHED_METHODS).map_err(metadata_error)?;
    let grant_types = metadata.effective_grant_types();
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(metadata_error(
            "a pushed client's grant_types must include authorization_code",
        ));
    }
    if grant_types.iter().any(|g| g == "client_credentials") {
        return Err(metadata_error(
            "client_credentials is not available to pushed clients",
        ));
    }
    for uri in &metadata.redirect_uris {
        if !policy.pushed.redirect_forms.contains(&uri.form()) {
            return Err(metadata_error(format!(
                "redirect_uri `{}` is not allowed for pushed clients (https, http on loopback, or a private-use scheme)",
                uri.as_str()
            )));
        }
    }
    if let Some(scope) = &metadata.scope {
        if let Some(unknown) = scope.difference(&policy.pushed_scopes).next() {
            return Err(metadata_error(format!(
                "scope `{unknown}` is not available to pushed clients"
            )));
        }
    }
    Ok(ClientSnapshot {
        client_id: DYNAMIC_CLIENT_ID.to_owned(),
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
        metadata: metadata.to_json(),
        jwks: metadata.jwks.clone(),
        verified_origin: None,
    })
}

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
/// (never `jwks_uri`: the server fetches no keys) for `private_key_jwt`, and
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
        return Err("jwks_uri is refused: this server fetches no keys; send jwks".to_owned());
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
mod tests {
    use super::*;

    #[test]
    fn a_pushed_client_without_registration_is_a_bare_public_client() {
        let snap = pushed(&Policy::default(), None);
        assert!(
            matches!(snap, Ok(s) if s.kind == ClientKind::Pushed && s.redirect_uris.is_empty())
        );
    }

    #[test]
    fn secrets_and_remote_keys_are_refused_for_pushed_clients() {
        let p = Policy::default();
        for reg in [
            r#"{"token_endpoint_auth_method":"client_secret_basic"}"#,
            r#"{"jwks_uri":"https://a.example/jwks"}"#,
            r#"{"grant_types":["client_credentials"],"response_types":[]}"#,
            r#"{"redirect_uris":["http://a.example/cb"]}"#,
        ] {
            let err = pushed(&p, Some(reg)).err().map(|e| e.code);
            assert_eq!(err, Some(ErrorCode::InvalidClientMetadata), "{reg}");
        }
        let err = pushed(&p, Some("[]")).err().map(|e| e.code);
        assert_eq!(err, Some(ErrorCode::InvalidRequest));
    }

    #[test]
    fn disabled_policy_refuses_pushed_clients() {
        let mut p = Policy::default();
        p.pushed.enabled = false;
        assert_eq!(
            pushed(&p, None).err().map(|e| e.code),
            Some(ErrorCode::UnauthorizedClient)
        );
    }
}

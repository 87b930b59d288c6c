//! Token introspection (RFC 7662) for resource servers holding the
//! introspect right. For a pushed client's token it tells everything the
//! pushed request said: the URN, a stable per-grant id, and the metadata.

use ephemera_proto::error::ErrorCode;
use ephemera_proto::form::Params;
use ephemera_proto::wire::IntrospectionResponse;
use serde_json::Value;

use super::client_auth::{self, Caller, Credentials};
use super::{Context, OAuthError};
use crate::model::{Timestamp, TokenKind, Trust};
use crate::secret::SecretHash;

pub async fn introspect(
    ctx: &Context,
    params: &Params,
    credentials: Credentials,
    now: Timestamp,
) -> Result<IntrospectionResponse, OAuthError> {
    let caller = client_auth::authenticate(ctx, credentials, now).await?;
    match &caller {
        Caller::Registered {
            client,
            authenticated: true,
        } if client.can_introspect => {}
        Caller::Registered {
            authenticated: true,
            ..
        } => {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client has no right to introspect tokens (ephemera client add --introspect)",
            ))
        }
        _ => {
            return Err(OAuthError::invalid_client(
                "introspection requires an authenticated client with the introspect right",
            ))
        }
    }
    let Some(raw) = params.get("token") else {
        return Err(OAuthError::invalid_request("token is required"));
    };
    let Some(stored) = ctx.store.find_token(&SecretHash::of(raw)).await? else {
        return Ok(IntrospectionResponse::inactive());
    };
    let (token, grant) = (stored.token, stored.grant);
    if token.expires_at <= now || token.used_at.is_some() {
        return Ok(IntrospectionResponse::inactive());
    }
    let aud = match token.audience.as_deref().unwrap_or(&grant.resources) {
        [] => None,
        [one] => Some(Value::from(one.as_str())),
        many => Some(many.iter().map(|r| Value::from(r.as_str())).collect()),
    };
    let mut extra = serde_json::Map::new();
    extra.insert(
        "token_use".into(),
        Value::from(match token.kind {
            TokenKind::Access => "access_token",
            TokenKind::Refresh => "refresh_token",
        }),
    );
    // RFC 8693 §4.1: who acts for the subject, for a token obtained by
    // exchange in delegation.
    if let Some(act) = grant.act() {
        extra.insert("act".into(), act.clone());
    }
    Ok(IntrospectionResponse {
        active: true,
        scope: (!token.scope.is_empty()).then(|| token.scope.to_string()),
        client_id: Some(grant.client.client_id.clone()),
        username: grant.username.clone(),
        // A refresh token is no bearer credential for a resource server.
        token_type: Some(
            match token.kind {
                TokenKind::Access if token.jkt.is_some() => "DPoP",
                TokenKind::Access => "Bearer",
                TokenKind::Refresh => "refresh_token",
            }
            .to_owned(),
        ),
        exp: Some(token.expires_at.unsigned_abs()),
        iat: Some(token.issued_at.unsigned_abs()),
        nbf: None,
        sub: Some(grant.sub().to_owned()),
        aud,
        iss: Some(ctx.issuer.to_string()),
        jti: None,
        grant_id: Some(grant.id.clone()),
        client_kind: Some(grant.client.kind.as_str().to_owned()),
        // What a client said of itself, for a resource server to show.
        client_metadata: (super::resolve::caps(&ctx.policy, &grant.client).trust
            != Trust::Operator)
            .then(|| grant.client.metadata.clone()),
        cnf: cnf(token.jkt.as_deref(), token.x5t.as_deref()),
        extra,
    })
}

/// The confirmation claim of a bound token (RFC 9449 §6.2, RFC 8705 §3.2).
fn cnf(jkt: Option<&str>, x5t: Option<&str>) -> Option<Value> {
    let mut m = serde_json::Map::new();
    if let Some(j) = jkt {
        m.insert("jkt".into(), Value::from(j));
    }
    if let Some(x) = x5t {
        m.insert("x5t#S256".into(), Value::from(x));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

//! Minting tokens: opaque 256-bit values, stored only as hashes; the
//! audience a token request narrows them to; and what getting tokens renews.

use ephemera_proto::error::ErrorCode;
use ephemera_proto::scope::Scope;
use ephemera_proto::wire::TokenResponse;

use super::{Context, OAuthError};
use crate::model::{Grant, Timestamp, Token, TokenKind};
use crate::policy::Policy;
use crate::secret::Secret;

/// New tokens: the rows to store and the response to send.
pub struct Minted {
    pub rows: Vec<Token>,
    pub response: TokenResponse,
}

/// What the new tokens carry.
#[derive(Debug, Clone, Copy)]
pub struct Shape<'a> {
    /// The access token's scope.
    pub scope: &'a Scope,
    /// The refresh token's scope, when the client may refresh.
    pub refresh_scope: Option<&'a Scope>,
    /// The DPoP key thumbprint the tokens are bound to.
    pub jkt: Option<&'a str>,
    /// The client certificate thumbprint the tokens are bound to.
    pub x5t: Option<&'a str>,
    /// The access token's audience when narrowed (RFC 8707 §2.2); `None`:
    /// all of the grant's resources.
    pub audience: Option<&'a [String]>,
}

/// An access token, and a refresh token when `shape.refresh_scope` is set.
/// A bound access token's refresh token is bound too when the client is
/// public (RFC 9449 §5, RFC 8705 §4); a confidential client's refresh token
/// is bound by its authentication.
pub fn mint(policy: &Policy, grant: &Grant, shape: Shape<'_>, now: Timestamp) -> Minted {
    let access = Secret::generate();
    let access_ttl = policy.lifetimes.access_token;
    let public = grant.client.is_public();
    let mut rows = vec![Token {
        hash: access.hash(),
        grant_id: grant.id.clone(),
        kind: TokenKind::Access,
        scope: shape.scope.clone(),
        issued_at: now,
        expires_at: now + access_ttl,
        used_at: None,
        jkt: shape.jkt.map(str::to_owned),
        x5t: shape.x5t.map(str::to_owned),
        audience: shape.audience.map(<[String]>::to_vec),
    }];
    let refresh = shape.refresh_scope.map(|refresh_scope| {
        let secret = Secret::generate();
        rows.push(Token {
            hash: secret.hash(),
            grant_id: grant.id.clone(),
            kind: TokenKind::Refresh,
            scope: refresh_scope.clone(),
            issued_at: now,
            expires_at: now + super::resolve::caps(policy, &grant.client).refresh_lifetime,
            used_at: None,
            jkt: shape.jkt.filter(|_| public).map(str::to_owned),
            x5t: shape.x5t.filter(|_| public).map(str::to_owned),
            audience: None,
        });
        secret.into_string()
    });
    Minted {
        rows,
        response: TokenResponse {
            access_token: access.into_string(),
            token_type: if shape.jkt.is_some() {
                "DPoP"
            } else {
                "Bearer"
            }
            .to_owned(),
            expires_in: access_ttl.unsigned_abs(),
            refresh_token: refresh,
            scope: (!shape.scope.is_empty()).then(|| shape.scope.to_string()),
            id_token: None,
        },
    }
}

/// The `resource`s a token request asks for (RFC 8707 §2.2): a subset of the
/// grant's, narrowing the access token's audience; `None` when none is asked.
pub fn requested_audience(
    grant: &Grant,
    asked: &[String],
) -> Result<Option<Vec<String>>, OAuthError> {
    if asked.is_empty() {
        return Ok(None);
    }
    if let Some(r) = asked.iter().find(|r| !grant.resources.contains(r)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("resource `{r}` was not part of the authorization; a token request may only narrow the resources"),
        ));
    }
    Ok(Some(asked.to_vec()))
}

/// A self-registered client that gets tokens is in use: its time-to-live
/// runs from now again (RFC 7591 abuse control deletes only idle clients).
pub async fn keep_alive(ctx: &Context, grant: &Grant, now: Timestamp) -> Result<(), OAuthError> {
    if super::resolve::caps(&ctx.policy, &grant.client).renew_on_use {
        let until = now + ctx.policy.registration.idle_ttl;
        ctx.store
            .touch_client(&grant.client.client_id, until)
            .await?;
    }
    Ok(())
}

//! The `refresh_token` grant (RFC 6749 §6) with rotation on every use: a
//! refresh token presented after it was rotated revokes the whole grant
//! (RFC 9700 §4.14.2).

use ephemera_proto::error::ErrorCode;
use ephemera_proto::scope::Scope;
use ephemera_proto::wire::TokenResponse;

use super::client_auth::{self, Caller};
use super::proof::Presented;
use super::{id_token, issue, proof, Context, OAuthError};
use crate::model::{Timestamp, TokenKind};
use crate::secret::SecretHash;

/// What a `refresh_token` token request asked.
pub struct RefreshRequest<'a> {
    pub refresh_token: &'a str,
    pub scope: Option<&'a str>,
    pub resources: &'a [String],
}

pub async fn refresh(
    ctx: &Context,
    asked: RefreshRequest<'_>,
    caller: &Caller,
    presented: &Presented<'_>,
    now: Timestamp,
) -> Result<TokenResponse, OAuthError> {
    let hash = SecretHash::of(asked.refresh_token);
    let Some(stored) = ctx.store.find_token(&hash).await? else {
        return Err(OAuthError::invalid_grant(
            "the refresh token is unknown, expired or revoked",
        ));
    };
    let (token, grant) = (stored.token, stored.grant);
    if token.kind != TokenKind::Refresh || token.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the refresh token is unknown, expired or revoked",
        ));
    }
    if !caller.owns(&grant.client.client_id) {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    client_auth::verify_pushed(ctx, caller, &grant.client, presented.certificate, now).await?;
    client_auth::keys_still_published(ctx, caller, &grant).await?;
    super::request::grant_type_allowed(ctx, &grant.client, "refresh_token")?;
    if token.used_at.is_some() {
        return Err(reused(ctx, &grant.id).await);
    }
    // The key is the refresh token's own (public clients) or the grant's.
    let required = token
        .jkt
        .as_deref()
        .or(grant.key_binding.dpop_jkt.as_deref());
    let may_add = !super::resolve::caps(&ctx.policy, &grant.client)
        .binding
        .fixed_at_par;
    let jkt = proof::dpop_binding(required, presented.dpop, may_add)?;
    let required_x5t = token
        .x5t
        .as_deref()
        .or(grant.key_binding.x5t_s256.as_deref());
    let x5t = proof::certificate_binding(required_x5t, presented.x5t().as_deref(), may_add)?;
    // RFC 6749 §6: the same rights or fewer, never more.
    let scope = match asked.scope {
        None => token.scope.clone(),
        Some(raw) => {
            let asked = Scope::parse(raw)
                .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))?;
            if let Some(extra) = asked.difference(&token.scope).next() {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope `{extra}` was not granted; a refresh may only narrow the scope"),
                ));
            }
            asked
        }
    };
    let audience = issue::requested_audience(&grant, asked.resources)?;
    let shape = issue::Shape {
        scope: &scope,
        refresh_scope: Some(&token.scope),
        jkt: jkt.as_deref(),
        x5t: x5t.as_deref(),
        audience: audience.as_deref(),
        not_after: None,
    };
    let mut minted = issue::mint(ctx, &grant, shape, now)?;
    // OpenID Connect Core §12.2: a new ID Token with the original auth_time.
    minted.response.id_token = id_token::mint(
        ctx,
        &grant,
        &scope,
        &minted.response.access_token,
        id_token::Moment::Refresh,
        now,
    )
    .await?;
    if !ctx
        .store
        .rotate_refresh_token(&hash, now, &minted.rows)
        .await?
    {
        return Err(reused(ctx, &grant.id).await);
    }
    issue::keep_alive(ctx, &grant, now).await?;
    Ok(minted.response)
}

async fn reused(ctx: &Context, grant_id: &str) -> OAuthError {
    if let Err(e) = ctx.store.delete_grant(grant_id).await {
        return e.into();
    }
    tracing::warn!(grant_id, "rotated refresh token reused; grant revoked");
    OAuthError::invalid_grant("the refresh token was already used; the grant has been revoked")
}

//! Token revocation (RFC 7009). Revoking a refresh token revokes its whole
//! grant (§2.1); revoking an access token revokes that token, and the grant
//! too once nothing live is left in it, erasing a pushed client's metadata.

use ephemera_proto::form::Params;

use super::client_auth::{self, Credentials};
use super::{Context, OAuthError};
use crate::model::{Timestamp, TokenKind};
use crate::secret::SecretHash;

const PATH: &str = "/revoke";

pub async fn revoke(
    ctx: &Context,
    params: &Params,
    credentials: Credentials,
    now: Timestamp,
) -> Result<(), OAuthError> {
    let certificate_der = credentials.certificate.clone();
    let certificate = certificate_der.as_deref();
    let caller = client_auth::authenticate(ctx, credentials, PATH, now).await?;
    let Some(raw) = params.get("token") else {
        return Err(OAuthError::invalid_request("token is required"));
    };
    // token_type_hint only speeds up a search; one lookup finds either kind,
    // and an unknown hint is ignored (§2.1).
    let hash = SecretHash::of(raw);
    let Some(stored) = ctx.store.find_token(&hash).await? else {
        // §2.2: an invalid token is not an error.
        return Ok(());
    };
    if !caller.owns(&stored.grant.client.client_id) {
        return Err(OAuthError::invalid_grant(
            "the token was issued to another client",
        ));
    }
    client_auth::verify_pushed(ctx, &caller, &stored.grant.client, certificate, PATH, now).await?;
    match stored.token.kind {
        TokenKind::Refresh => {
            ctx.store.delete_grant(&stored.grant.id).await?;
        }
        TokenKind::Access => {
            ctx.store.delete_token(&hash).await?;
            ctx.store
                .delete_grant_if_ended(&stored.grant.id, now)
                .await?;
        }
    }
    Ok(())
}

//! Token revocation (RFC 7009). Revoking a refresh token revokes its whole
//! grant (§2.1); revoking an access token revokes that token, and the grant
//! too once nothing live is left in it, erasing a pushed client's metadata.
//!
//! RFC 7009 lets a client that does not authenticate revoke its tokens by
//! naming its `client_id`. For a pushed client that name (the URN) is
//! everyone's, so a token bound to a key (DPoP or a certificate) of a client
//! that does not authenticate is revoked only with proof of that key, as
//! every other request of its grant needs; an unbound one stays revocable by
//! the token alone.

use ephemera_proto::form::Params;

use super::client_auth::{self, Caller, Credentials};
use super::proof::{self, Presented};
use super::{Context, OAuthError};
use crate::model::{Timestamp, TokenKind};
use crate::secret::SecretHash;

const PATH: &str = "/revoke";

pub async fn revoke(
    ctx: &Context,
    params: &Params,
    credentials: Credentials,
    dpop: Option<&str>,
    now: Timestamp,
) -> Result<(), OAuthError> {
    let certificate_der = credentials.certificate.clone();
    let certificate = certificate_der.as_deref();
    let caller = client_auth::authenticate(ctx, credentials, now).await?;
    let dpop = proof::dpop(ctx, dpop, PATH, None, now).await?;
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
    client_auth::verify_pushed(ctx, &caller, &stored.grant.client, certificate, now).await?;
    if !proves_client(&caller, &stored.grant.client) {
        let presented = Presented {
            dpop: dpop.as_ref(),
            certificate,
        };
        let (token, grant) = (&stored.token, &stored.grant);
        let jkt = token
            .jkt
            .as_deref()
            .or(grant.key_binding.dpop_jkt.as_deref());
        proof::dpop_binding(jkt, presented.dpop, true)?;
        let x5t = token
            .x5t
            .as_deref()
            .or(grant.key_binding.x5t_s256.as_deref());
        proof::certificate_binding(x5t, presented.x5t().as_deref(), true)?;
    }
    match stored.token.kind {
        TokenKind::Refresh => {
            ctx.store.delete_grant(&stored.grant.id).await?;
        }
        // One transaction: a crash cannot leave an emptied grant behind.
        TokenKind::Access => {
            ctx.store.revoke_token(&hash, now).await?;
        }
    }
    Ok(())
}

/// Whether the caller proved it is the client (a secret, an assertion or its
/// certificate), rather than only naming it. For a pushed caller
/// [`client_auth::verify_pushed`] has checked what its grant's client
/// authenticates with.
fn proves_client(caller: &Caller, client: &crate::model::ClientSnapshot) -> bool {
    match caller {
        Caller::Registered { authenticated, .. } => *authenticated,
        Caller::Pushed { .. } => !client.is_public(),
        Caller::Workload { .. } => true,
    }
}

//! The PAR endpoint (RFC 9126): where every pushed client starts, with its
//! registration in hand, and where registered clients may start too.

use ephemera_proto::form::Params;
use ephemera_proto::wire::PushedAuthorizationResponse;
use ephemera_proto::REQUEST_URI_PREFIX;

use super::client_auth::{self, Caller, Credentials};
use super::{request, resolve, Context, OAuthError};
use crate::model::Timestamp;
use crate::secret::{Secret, SecretHash};

pub async fn push(
    ctx: &Context,
    params: &Params,
    credentials: Credentials,
    now: Timestamp,
) -> Result<PushedAuthorizationResponse, OAuthError> {
    if params.contains("request_uri") {
        return Err(OAuthError::invalid_request(
            "request_uri must not be sent to the PAR endpoint (RFC 9126 §2.1)",
        ));
    }
    let caller = client_auth::authenticate(ctx, credentials).await?;
    let client = match caller {
        Caller::Pushed => resolve::pushed(&ctx.policy, params.get("client_registration"))?,
        Caller::Registered { client, .. } => {
            if params.contains("client_registration") {
                return Err(OAuthError::invalid_request(format!(
                    "client_registration is only accepted with client_id={}",
                    ephemera_proto::DYNAMIC_CLIENT_ID
                )));
            }
            client.snapshot()
        }
    };
    let ttl = ctx.policy.lifetimes.request_uri;
    let pending =
        request::validate(&ctx.policy, client, params, now, ttl).map_err(|e| e.into_error())?;
    let secret = Secret::generate();
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", secret.expose());
    ctx.store
        .insert_pushed_request(&SecretHash::of(&request_uri), &pending)
        .await?;
    Ok(PushedAuthorizationResponse {
        request_uri,
        expires_in: ttl.unsigned_abs(),
    })
}

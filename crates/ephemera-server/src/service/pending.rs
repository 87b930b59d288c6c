//! A pending authorization request as the pages see it: found by its
//! `request_uri` for the client that names it, with its client's
//! capabilities; and the browser's login session. Shared by the
//! authorization endpoint and the login and consent forms.

use ephemera_proto::REQUEST_URI_PREFIX;

use super::{resolve, Context, OAuthError};
use crate::model::{Capabilities, PendingRequest, Session, Timestamp};
use crate::secret::SecretHash;

/// A pending request as the pages need it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub request_uri: String,
    pub request: PendingRequest,
    /// What its client may and must do.
    pub caps: Capabilities,
}

/// Looks up an unexpired pending request and checks it belongs to `client_id`.
pub async fn find_pending(
    ctx: &Context,
    client_id: &str,
    request_uri: &str,
    now: Timestamp,
) -> Result<Pending, OAuthError> {
    if !request_uri.starts_with(REQUEST_URI_PREFIX) {
        return Err(OAuthError::invalid_request(
            "request_uri was not issued by this server",
        ));
    }
    let Some(request) = ctx
        .store
        .find_pending_request(&SecretHash::of(request_uri), now)
        .await?
    else {
        return Err(OAuthError::invalid_request(
            "request_uri is unknown, expired or already used: the client must push a new request",
        ));
    };
    if request.client.client_id != client_id {
        return Err(OAuthError::invalid_request(
            "client_id does not match the pushed request",
        ));
    }
    Ok(Pending {
        request_uri: request_uri.to_owned(),
        caps: resolve::caps(&ctx.policy, &request.client).into_owned(),
        request,
    })
}

/// The logged-in session for a cookie value, if any.
pub async fn find_session(
    ctx: &Context,
    cookie: Option<&str>,
    now: Timestamp,
) -> Result<Option<Session>, OAuthError> {
    match cookie {
        Some(c) => Ok(ctx.store.find_session(&SecretHash::of(c), now).await?),
        None => Ok(None),
    }
}

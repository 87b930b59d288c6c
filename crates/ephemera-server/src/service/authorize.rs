//! The authorization endpoint: decides which page the user sees (login or
//! consent) or, when nothing is left to ask, the authorization response.
//!
//! Every request, pushed or front-channel, becomes a stored pending request
//! first; the pages carry only its `request_uri`. The request is consumed
//! when the response is produced (consent), so reloading a page works.

use ephemera_proto::form::Params;
use ephemera_proto::redirect::RedirectUri;
use ephemera_proto::{is_pushed_client_urn, REQUEST_URI_PREFIX};

use super::request::{self, RequestError};
use super::{consent, resolve, Context, OAuthError};
use crate::model::{Capabilities, PendingRequest, Session, Timestamp};
use crate::secret::{Secret, SecretHash};

/// A pending request as the pages need it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub request_uri: String,
    pub request: PendingRequest,
    /// What its client may and must do.
    pub caps: Capabilities,
}

/// What the authorization endpoint answers.
#[derive(Debug)]
pub enum Step {
    /// Ask the user to log in.
    Login(Pending),
    /// Ask the logged-in user to approve or deny.
    Consent(Pending, Session),
    /// Send the browser on (302): to the same request stored, or to the client.
    Redirect(String),
}

pub async fn authorize(
    ctx: &Context,
    params: &Params,
    session: Option<&str>,
    now: Timestamp,
) -> Result<Step, OAuthError> {
    let Some(client_id) = params.get("client_id") else {
        return Err(OAuthError::invalid_request("client_id is required"));
    };
    let Some(request_uri) = params.get("request_uri") else {
        return front_channel(ctx, client_id, params, now).await;
    };
    let pending = find_pending(ctx, client_id, request_uri, now).await?;
    let session = find_session(ctx, session, now).await?;
    // Consent is remembered for registered clients only: a pushed client has
    // no stable identity to remember it for.
    if let Some(session) = &session {
        if pending.caps.remember_consent {
            let remembered = ctx
                .store
                .find_consent(&session.user_id, &pending.request.client.client_id)
                .await?;
            if remembered.is_some_and(|s| pending.request.scope.is_subset(&s)) {
                // `find_pending` checked the client; the consent stands.
                let location =
                    consent::approve_found(ctx, request_uri, session, false, now).await?;
                return Ok(Step::Redirect(location));
            }
        }
    }
    // A page is shown: the first time, the user gets the interaction window
    // to finish; reloads do not extend it (one deadline per request).
    ctx.store
        .open_pending_request(
            &SecretHash::of(request_uri),
            now + ctx.policy.lifetimes.interaction,
            now,
        )
        .await?;
    Ok(match session {
        None => Step::Login(pending),
        Some(session) => Step::Consent(pending, session),
    })
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

/// A registered client's request sent in the front channel: validated, stored
/// like a pushed one, and the browser sent on to it.
async fn front_channel(
    ctx: &Context,
    client_id: &str,
    params: &Params,
    now: Timestamp,
) -> Result<Step, OAuthError> {
    if is_pushed_client_urn(client_id) {
        return Err(OAuthError::invalid_request(
            "a pushed client must start with a pushed authorization request (PAR) and send only client_id and request_uri here",
        ));
    }
    let Some(client) = resolve::registered(ctx, client_id, now).await? else {
        return Err(OAuthError::invalid_request("unknown client_id"));
    };
    // The browser is sent straight on to the stored request, whose first
    // opening starts the interaction window; until then it lives as long as
    // a pushed one.
    let ttl = ctx.policy.lifetimes.request_uri;
    let mut pending = match request::validate(&ctx.policy, client, params, now, ttl) {
        Ok(p) => p,
        Err(RequestError::Untrusted(e)) => return Err(e),
        Err(RequestError::Redirectable {
            error,
            redirect_uri,
            state,
        }) => {
            return Ok(Step::Redirect(error_location(
                ctx,
                &redirect_uri,
                &error,
                state.as_deref(),
            )?))
        }
    };
    pending.front_channel = true;
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", Secret::generate().expose());
    ctx.store
        .insert_pending_request(
            &SecretHash::of(&request_uri),
            &pending,
            ctx.policy.pushed.max_front_channel_requests,
        )
        .await?;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request_uri", &request_uri)
        .finish();
    Ok(Step::Redirect(format!("{}/authorize?{query}", ctx.issuer)))
}

/// The authorization error response (RFC 6749 §4.1.2.1) with `iss` (RFC 9207).
pub fn error_location(
    ctx: &Context,
    redirect_uri: &str,
    error: &OAuthError,
    state: Option<&str>,
) -> Result<String, OAuthError> {
    let uri = RedirectUri::parse(redirect_uri).map_err(|_| OAuthError::server_error())?;
    let mut params = vec![
        ("error", error.code.as_str()),
        ("error_description", error.description.as_ref()),
    ];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", &ctx.issuer));
    Ok(uri.with_params(params))
}

//! The authorization endpoint: decides which page the user sees (login or
//! consent) or, when nothing is left to ask, the authorization response.
//!
//! Every request, pushed or front-channel, becomes a stored pending request
//! first; the pages carry only its `request_uri`. The request is consumed
//! when the response is produced (consent), so reloading a page works.

use ephemera_proto::error::ErrorCode;
use ephemera_proto::form::Params;
use ephemera_proto::{ClientRef, REQUEST_URI_PREFIX};

use super::pending::{find_pending, find_session, Pending};
use super::request::{self, AuthorizeError};
use super::{consent, resolve, Context, OAuthError};
use crate::model::{PendingRequest, Session, Timestamp};
use crate::secret::{Secret, SecretHash};

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
) -> Result<Step, AuthorizeError> {
    let Some(client_id) = params.get("client_id") else {
        return Err(OAuthError::invalid_request("client_id is required").into());
    };
    let Some(request_uri) = params.get("request_uri") else {
        return front_channel(ctx, client_id, params, now).await;
    };
    let pending = find_pending(ctx, client_id, request_uri, now).await?;
    let prompt = pending.request.oidc.prompt;
    // OpenID Connect Core §3.1.2.1: `prompt=login` and `max_age` ask for a
    // sign-in newer than the session; one made during this request counts.
    let session = find_session(ctx, session, now)
        .await?
        .filter(|s| signed_in_recently_enough(s, &pending.request, now));
    if session.is_none() && prompt.none {
        let error = OAuthError::new(
            ErrorCode::LoginRequired,
            "prompt=none, but the user is not signed in (or signed in longer ago than max_age allows)",
        );
        return Err(refuse(ctx, request_uri, error, now).await);
    }
    // Consent is remembered for registered clients only: a pushed client has
    // no stable identity to remember it for. `prompt=consent` asks again.
    if let Some(session) = &session {
        if pending.caps.remember_consent && !prompt.consent {
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
        if prompt.none {
            let error = OAuthError::new(
                ErrorCode::ConsentRequired,
                "prompt=none, but the user has not approved this request for this client",
            );
            return Err(refuse(ctx, request_uri, error, now).await);
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

/// A registered client's request sent in the front channel: validated, stored
/// like a pushed one, and the browser sent on to it.
async fn front_channel(
    ctx: &Context,
    client_id: &str,
    params: &Params,
    now: Timestamp,
) -> Result<Step, AuthorizeError> {
    let client_ref = ClientRef::parse(client_id);
    if client_ref == ClientRef::PushedUrn {
        return Err(OAuthError::invalid_request(
            "a pushed client must start with a pushed authorization request (PAR) and send only client_id and request_uri here",
        ).into());
    }
    let Some(client) = resolve::resolve(ctx, client_ref, None, now).await? else {
        return Err(OAuthError::invalid_request("unknown client_id").into());
    };
    if resolve::caps(&ctx.policy, &client).par_required {
        return Err(OAuthError::invalid_request(
            "this client registers automatically (OpenID Federation): it must start with a pushed authorization request (PAR) authenticated with private_key_jwt",
        )
        .into());
    }
    // The browser is sent straight on to the stored request, whose first
    // opening starts the interaction window; until then it lives as long as
    // a pushed one.
    let ttl = ctx.policy.lifetimes.request_uri;
    // A refusal goes to the redirect URI once that is trusted
    // (`AuthorizeError::Redirect`), else to an error page.
    let mut pending = request::validate(&ctx.policy, client, params, now, ttl)?;
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

/// Whether `session` is a sign-in `request` accepts (OpenID Connect Core
/// §3.1.2.1): one made since the request arrived always is; an older one
/// is not under `prompt=login`, nor when it is older than `max_age`.
pub fn signed_in_recently_enough(
    session: &Session,
    request: &PendingRequest,
    now: Timestamp,
) -> bool {
    if session.created_at >= request.created_at {
        return true;
    }
    let oidc = &request.oidc;
    !oidc.prompt.login
        && oidc
            .max_age
            .is_none_or(|max_age| now.saturating_sub(session.created_at) <= max_age)
}

/// Consumes the pending request and answers the client with `error` at its
/// redirect URI (Core §3.1.2.6), with `state` and `iss`.
async fn refuse(
    ctx: &Context,
    request_uri: &str,
    error: OAuthError,
    now: Timestamp,
) -> AuthorizeError {
    match ctx
        .store
        .take_pending_request(&SecretHash::of(request_uri), now)
        .await
    {
        Ok(Some(request)) => AuthorizeError::Redirect {
            error,
            redirect_uri: request.redirect_uri,
            state: request.state,
        },
        Ok(None) => {
            OAuthError::invalid_request("request_uri was already used or has expired").into()
        }
        Err(e) => e.into(),
    }
}

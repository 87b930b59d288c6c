//! The user's decision: approval creates the grant and its code; denial
//! sends `access_denied`. Either way the pending request is consumed.

use ephemera_proto::error::ErrorCode;
use ephemera_proto::form::Params;
use ephemera_proto::redirect::RedirectUri;

use super::login::{csrf_error, csrf_valid};
use super::pending::{find_pending, find_session};
use super::request::AuthorizeError;
use super::{new_id, Context, OAuthError};
use crate::model::{Authentication, Code, Grant, PendingRequest, Session, Timestamp};
use crate::secret::{Secret, SecretHash};

/// Handles the consent form: CSRF check, the session, then the decision.
/// Returns where to send the browser with the code; a denial is the
/// `access_denied` error response at the client's redirect URI.
pub async fn decide(
    ctx: &Context,
    form: &Params,
    cookie: Option<&str>,
    now: Timestamp,
) -> Result<String, AuthorizeError> {
    if !csrf_valid(cookie, form) {
        return Err(csrf_error().into());
    }
    let (Some(client_id), Some(request_uri)) = (form.get("client_id"), form.get("request_uri"))
    else {
        return Err(OAuthError::invalid_request(
            "the consent form lost its client_id or request_uri",
        )
        .into());
    };
    let Some(session) = find_session(ctx, cookie, now).await? else {
        return Err(OAuthError::invalid_request(
            "your login session has ended; go back to the application and start again",
        )
        .into());
    };
    match form.get("decision") {
        Some("approve") => Ok(approve(ctx, client_id, request_uri, &session, now).await?),
        Some("deny") => Err(deny(ctx, client_id, request_uri, now).await),
        _ => Err(OAuthError::invalid_request("decision must be `approve` or `deny`").into()),
    }
}

/// Consumes the pending request and answers the client with a code.
pub async fn approve(
    ctx: &Context,
    client_id: &str,
    request_uri: &str,
    session: &Session,
    now: Timestamp,
) -> Result<String, OAuthError> {
    // Check ownership before consuming, so a mismatched client_id cannot
    // burn another client's request.
    let pending = find_pending(ctx, client_id, request_uri, now).await?;
    // `prompt=login` and `max_age` hold at the form too, not only on the
    // way to the page.
    if !super::authorize::signed_in_recently_enough(session, &pending.request, now) {
        return Err(OAuthError::invalid_request(
            "this request asks for a recent sign-in: go back to the application and start again",
        ));
    }
    approve_found(ctx, request_uri, session, true, now).await
}

/// [`approve`] for a request already found for its client (ownership
/// checked); `remember`: store the consent (false when it is remembered
/// already and covers this request).
pub async fn approve_found(
    ctx: &Context,
    request_uri: &str,
    session: &Session,
    remember: bool,
    now: Timestamp,
) -> Result<String, OAuthError> {
    let request = take_found(ctx, request_uri, now).await?;
    let grant = Grant {
        id: new_id(),
        client: request.client.clone(),
        key_binding: request.key_binding.clone(),
        subject: Some(session.user_id.clone()),
        username: Some(session.username.clone()),
        scope: request.scope.clone(),
        resources: request.resources.clone(),
        created_at: now,
        redirect_uri: Some(request.redirect_uri.clone()),
        // What the grant's ID Tokens say of the sign-in (OpenID Connect
        // Core §2): the session's start is `auth_time`.
        authentication: Some(Authentication {
            auth_time: session.created_at,
            amr: session.sign_in.amr.clone(),
            acr: session.sign_in.acr.clone(),
            nonce: request.oidc.nonce.clone(),
        }),
        exchanged: None,
    };
    let code = Secret::generate();
    let stored = Code {
        hash: code.hash(),
        grant_id: grant.id.clone(),
        redirect_uri: request
            .redirect_uri_sent
            .then(|| request.redirect_uri.clone()),
        code_challenge: request.code_challenge.clone(),
        expires_at: now + ctx.policy.lifetimes.code,
    };
    ctx.store.insert_grant_with_code(&grant, &stored).await?;
    if remember && super::resolve::caps(&ctx.policy, &request.client).remember_consent {
        ctx.store
            .save_consent(
                &session.user_id,
                &request.client.client_id,
                &request.scope,
                now,
            )
            .await?;
    }
    let uri = RedirectUri::parse(&request.redirect_uri).map_err(|_| OAuthError::server_error())?;
    let mut params = vec![("code", code.expose())];
    if let Some(state) = &request.state {
        params.push(("state", state));
    }
    params.push(("iss", &ctx.issuer));
    Ok(uri.with_params(params))
}

/// Consumes the pending request; the client is answered `access_denied`.
pub async fn deny(
    ctx: &Context,
    client_id: &str,
    request_uri: &str,
    now: Timestamp,
) -> AuthorizeError {
    if let Err(e) = find_pending(ctx, client_id, request_uri, now).await {
        return e.into();
    }
    match take_found(ctx, request_uri, now).await {
        Ok(request) => AuthorizeError::Redirect {
            error: OAuthError::new(
                ErrorCode::AccessDenied,
                "the resource owner denied the request",
            ),
            redirect_uri: request.redirect_uri,
            state: request.state,
        },
        Err(e) => e.into(),
    }
}

/// Consumes a pending request whose ownership the caller checked.
async fn take_found(
    ctx: &Context,
    request_uri: &str,
    now: Timestamp,
) -> Result<PendingRequest, OAuthError> {
    ctx.store
        .take_pending_request(&SecretHash::of(request_uri), now)
        .await?
        .ok_or_else(|| OAuthError::invalid_request("request_uri was already used or has expired"))
}

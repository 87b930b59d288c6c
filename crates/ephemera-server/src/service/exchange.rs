//! Token exchange (RFC 8693): a registered client that holds an access
//! token issued here (typically an MCP server, given the user's token by its
//! client) gets a token for another resource, to call it on the subject's
//! behalf.
//!
//! What policy decides, per target resource (`resources[].exchange`,
//! `policy::ExchangePolicy`): whether it takes exchanged tokens at all,
//! which clients may ask, from tokens for which resources, and who may
//! impersonate. Whatever the policy, only a client the operator registered
//! with the grant type, authenticating, ever exchanges, or a SPIFFE
//! workload whose trust domain's rule gives it the grant.
//!
//! What the new token is:
//! - delegation by default (§1.1): its `act` names the current actor (the
//!   `actor_token`'s subject, else the calling client) with the subject
//!   token's own `act` nested in it (§4.1), so a chain of exchanges reads
//!   outermost-first; impersonation (no `act` of the caller's) only for
//!   clients policy names, and only without an `actor_token`;
//! - the subject token's scope or less, never more (§2.1 `scope`);
//! - bound to the exchanging client's key (its DPoP proof or certificate),
//!   not the subject's;
//! - no longer-lived than the subject token, and in a grant that is a child
//!   of the subject token's: ending that grant ends every token exchanged
//!   from it, down the chain (the store deletes children with parents);
//! - an access token only: no refresh token (§2.2.1 leaves it to the
//!   server; a caller exchanges again).
//!
//! Invalid or unacceptable subject and actor tokens are `invalid_request`
//! (§2.2.2); a target the server will not issue for is `invalid_target`.

use ephemera_proto::error::ErrorCode;
use ephemera_proto::scope::Scope;
use ephemera_proto::token::{Exchange, ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE};
use ephemera_proto::wire::TokenResponse;
use serde_json::{Map, Value};

use super::client_auth::Caller;
use super::proof::Presented;
use super::{issue, resolve, Context, OAuthError};
use crate::model::{Exchanged, Grant, Timestamp, TokenKind};
use crate::policy::ExchangePolicy;
use crate::secret::SecretHash;
use crate::store::StoredToken;

/// How many actors an `act` chain may hold: each exchange adds one, and a
/// longer chain is more likely a loop than a real call path.
pub const MAX_ACTORS: usize = 5;

pub async fn exchange(
    ctx: &Context,
    asked: Exchange<'_>,
    caller: &Caller,
    presented: &Presented<'_>,
    now: Timestamp,
) -> Result<TokenResponse, OAuthError> {
    let (snapshot, workload) = match caller {
        Caller::Registered {
            client,
            authenticated: true,
        } => (resolve::snapshot(&ctx.policy, client), false),
        // A SPIFFE workload whose rule gives it the grant, within its
        // rule's resources (checked below, with the targets).
        Caller::Workload { client } => ((**client).clone(), true),
        _ => return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "token exchange is only for registered clients that authenticate, and SPIFFE workloads",
        )),
    };
    let caller_id_owned = snapshot.client_id.clone();
    let caller_id = caller_id_owned.as_str();
    let issued_type = requested_type(asked.requested_token_type)?;
    let subject = active_token(
        ctx,
        asked.subject_token,
        asked.subject_token_type,
        "subject_token",
        now,
    )
    .await?;
    let actor = match asked.actor {
        None => None,
        Some((token, kind)) => {
            let actor = active_token(ctx, token, kind, "actor_token", now).await?;
            if actor.grant.client.client_id != caller_id {
                return Err(OAuthError::invalid_request(
                    "actor_token was issued to another client: the actor must be the client that asks",
                ));
            }
            Some(actor)
        }
    };
    let targets = targets(ctx, asked.resources, asked.audiences)?;
    if workload {
        let named: Vec<String> = targets.iter().map(|(r, _)| (*r).to_owned()).collect();
        super::spiffe::resources_allowed(ctx, &snapshot, &named)?;
    }
    let mut impersonation = actor.is_none();
    let subject_audience = subject
        .token
        .audience
        .as_deref()
        .unwrap_or(&subject.grant.resources);
    for (resource, policy) in &targets {
        if !policy.admits(caller_id) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("client `{caller_id}` may not exchange tokens for `{resource}` (its exchange.clients)"),
            ));
        }
        if !policy.accepts_from(subject_audience) {
            return Err(OAuthError::invalid_request(format!(
                "the subject_token was not issued for a resource `{resource}` takes exchanged tokens from (its exchange.from)"
            )));
        }
        impersonation &= policy.impersonates(caller_id);
    }
    let scope = narrowed(&subject.token.scope, asked.scope)?;
    let prior = subject.grant.act().cloned();
    let act = if impersonation {
        prior
    } else {
        let actor_sub = match &actor {
            Some(a) => a.grant.sub().to_owned(),
            None => caller_id.to_owned(),
        };
        Some(chain(&actor_sub, caller_id, prior)?)
    };
    let audience: Vec<String> = targets.into_iter().map(|(r, _)| r.to_owned()).collect();
    let parent = &subject.grant;
    let grant = Grant {
        subject: parent.subject.clone(),
        username: parent.username.clone(),
        // How the user signed in still holds; the nonce was the original
        // client's, for its ID Tokens.
        authentication: parent.authentication.clone().map(|mut a| {
            a.nonce = None;
            a
        }),
        exchanged: Some(Exchanged {
            parent: parent.id.clone(),
            // The client of the chain's first subject token: a later hop's
            // parent was issued to an exchanging client, not the subject.
            subject_client: parent.exchanged.as_ref().map_or_else(
                || parent.client.client_id.clone(),
                |e| e.subject_client.clone(),
            ),
            act,
        }),
        ..issue::new_grant(snapshot, scope, audience, presented, now)
    };
    let mut response =
        issue::access_token_only(ctx, &grant, Some(subject.token.expires_at), now).await?;
    tracing::info!(
        grant_id = %grant.id,
        parent = %parent.id,
        client_id = caller_id,
        impersonation,
        "token exchanged"
    );
    response.issued_token_type = Some(issued_type.to_owned());
    Ok(response)
}

/// §2.1 `requested_token_type`: an access token, however the caller names
/// it; the default is an access token too.
fn requested_type(requested: Option<&str>) -> Result<&'static str, OAuthError> {
    match requested {
        None | Some(ACCESS_TOKEN_TYPE) => Ok(ACCESS_TOKEN_TYPE),
        Some(JWT_TOKEN_TYPE) => Ok(JWT_TOKEN_TYPE),
        Some(other) => Err(OAuthError::invalid_request(format!(
            "requested_token_type `{other}` is not issued here: token exchange issues access tokens ({ACCESS_TOKEN_TYPE})"
        ))),
    }
}

/// A subject or actor token: an access token this server issued, live.
/// Who it was issued to and what it is bound to do not matter here: the
/// caller is not its holder, and policy decides what the caller may do.
async fn active_token(
    ctx: &Context,
    raw: &str,
    kind: &str,
    name: &str,
    now: Timestamp,
) -> Result<StoredToken, OAuthError> {
    let is_jwt = ephemera_proto::access_token::is_jwt(raw);
    match kind {
        ACCESS_TOKEN_TYPE => {}
        JWT_TOKEN_TYPE if is_jwt => {}
        JWT_TOKEN_TYPE => {
            return Err(OAuthError::invalid_request(format!(
                "{name} is not a JWT; its {name}_type is {ACCESS_TOKEN_TYPE}"
            )))
        }
        other => {
            return Err(OAuthError::invalid_request(format!(
                "{name}_type `{other}` is not accepted: only access tokens this server issued ({ACCESS_TOKEN_TYPE}) are exchanged"
            )))
        }
    }
    let found = ctx.store.find_token(&SecretHash::of(raw)).await?;
    match found {
        Some(stored)
            if stored.token.kind == TokenKind::Access
                && stored.token.used_at.is_none()
                && stored.token.expires_at > now =>
        {
            Ok(stored)
        }
        _ => Err(OAuthError::invalid_request(format!(
            "{name} is not an active access token issued by this server"
        ))),
    }
}

/// The target resources (§2.1 `resource` and `audience`; an audience is
/// taken as a resource identifier, the only names of services here), each
/// with its exchange policy.
fn targets<'a>(
    ctx: &'a Context,
    resources: &'a [String],
    audiences: &'a [String],
) -> Result<Vec<(&'a str, &'a ExchangePolicy)>, OAuthError> {
    let mut out: Vec<(&str, &ExchangePolicy)> = Vec::new();
    for target in resources.iter().chain(audiences) {
        if out.iter().any(|(r, _)| *r == target.as_str()) {
            continue;
        }
        let Some(entry) = ctx.policy.resource(target) else {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("`{target}` is not a resource this server issues tokens for"),
            ));
        };
        let Some(policy) = &entry.exchange else {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!(
                    "resource `{target}` does not take exchanged tokens (its `exchange` is off)"
                ),
            ));
        };
        out.push((target.as_str(), policy));
    }
    if out.is_empty() {
        return Err(OAuthError::invalid_request(
            "resource or audience is required: name the resource the new token is for",
        ));
    }
    Ok(out)
}

/// §2.1 `scope`: the subject token's, or fewer.
fn narrowed(granted: &Scope, asked: Option<&str>) -> Result<Scope, OAuthError> {
    let Some(raw) = asked else {
        return Ok(granted.clone());
    };
    let asked =
        Scope::parse(raw).map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))?;
    if let Some(extra) = asked.difference(granted).next() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("scope `{extra}` is not in the subject_token; an exchange may only narrow the scope"),
        ));
    }
    Ok(asked)
}

/// The new `act` (§4.1): the current actor, with the prior chain nested in
/// it. A chain longer than [`MAX_ACTORS`] is refused.
fn chain(actor_sub: &str, client_id: &str, prior: Option<Value>) -> Result<Value, OAuthError> {
    let depth = std::iter::successors(prior.as_ref(), |a| a.get("act")).count();
    if depth >= MAX_ACTORS {
        return Err(OAuthError::invalid_request(format!(
            "the subject_token already carries {depth} actors; a chain of exchanges may hold at most {MAX_ACTORS}"
        )));
    }
    let mut act = Map::new();
    act.insert("sub".into(), Value::from(actor_sub));
    act.insert("client_id".into(), Value::from(client_id));
    if let Some(prior) = prior {
        act.insert("act".into(), prior);
    }
    Ok(Value::Object(act))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_exchange_nests_the_prior_actors_inside_the_current_one() {
        let first = chain("mcp", "mcp", None).ok();
        assert_eq!(first, Some(json!({ "sub": "mcp", "client_id": "mcp" })));
        let second = chain("svc-b", "svc-b", first).ok();
        assert_eq!(
            second,
            Some(json!({
                "sub": "svc-b",
                "client_id": "svc-b",
                "act": { "sub": "mcp", "client_id": "mcp" }
            }))
        );
    }

    #[test]
    fn a_chain_stops_at_the_limit() {
        let mut act = None;
        for n in 0..MAX_ACTORS {
            act = chain(&format!("a{n}"), "c", act).ok();
            assert!(act.is_some(), "actor {n}");
        }
        let refused = chain("one-too-many", "c", act).err().map(|e| e.to_string());
        assert!(
            refused.is_some_and(|e| e.contains("at most 5")),
            "the sixth actor is refused"
        );
    }

    #[test]
    fn the_scope_only_narrows() {
        let granted = Scope::parse("read write").unwrap_or_default();
        assert_eq!(narrowed(&granted, None).ok(), Some(granted.clone()));
        assert_eq!(
            narrowed(&granted, Some("read")).ok().map(|s| s.to_string()),
            Some("read".to_owned())
        );
        let wider = narrowed(&granted, Some("read admin")).err();
        assert_eq!(wider.map(|e| e.code), Some(ErrorCode::InvalidScope));
    }

    #[test]
    fn only_access_tokens_are_requested() {
        assert_eq!(requested_type(None).ok(), Some(ACCESS_TOKEN_TYPE));
        assert_eq!(
            requested_type(Some(JWT_TOKEN_TYPE)).ok(),
            Some(JWT_TOKEN_TYPE)
        );
        let refused = requested_type(Some("urn:ietf:params:oauth:token-type:refresh_token")).err();
        assert_eq!(refused.map(|e| e.code), Some(ErrorCode::InvalidRequest));
    }
}

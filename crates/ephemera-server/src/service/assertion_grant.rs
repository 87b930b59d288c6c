//! The JWT bearer grant (RFC 7523 §2.1): a JWT from a trusted issuer
//! (`[trusted_issuers.<name>]`) traded for an access token. Two profiles,
//! told apart by the JWT's `typ`:
//!
//! - an ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant §4.4): an
//!   enterprise identity provider says the client that authenticates may act
//!   for a person. The person is the local user of the issuer's subject, as
//!   if they had signed in through it (`federated`);
//! - a workload's JWT (MCP workload identity federation): the workload its
//!   platform vouches for is the client, registered nowhere
//!   (`resolve::workload`); the issuer's `subjects` say which get tokens.
//!
//! No refresh token (the draft's §4.4.3): the client presents an assertion
//! again, a new one, since each is taken once (its `jti`, RFC 7523 §3),
//! where the draft would let an ID-JAG be presented again until it expires.
//! Dispatched by `token` before client authentication, since who
//! the client is depends on the profile. Nothing is stored until every
//! check has passed; then the assertion's `jti` (used once), the user of an
//! ID-JAG, and the grant with its access token, bound to the DPoP key or
//! certificate presented as `client_credentials` tokens are.

use ephemera_proto::assertion_grant::{
    self, AssertionGrant, AssertionGrantError, Expectations, GrantRequest, IdJag, Profile,
    GRANT_TYPE,
};
use ephemera_proto::error::ErrorCode;
use ephemera_proto::form::Params;
use ephemera_proto::scope::Scope;
use ephemera_proto::wire::TokenResponse;

use super::client_auth::{self, Caller, Credentials};
use super::federated::{self, Federation, Identity};
use super::proof::{self, Presented};
use super::{issue, request, resolve, token, Context, OAuthError};
use crate::config::trusted_issuers::{KeySource, TrustedIssuer};
use crate::model::{Authentication, ClientKind, ClientSnapshot, Grant, Timestamp};
use crate::upstream::UpstreamFailure;

/// The least clock skew allowed between this server and an issuer in
/// another domain, in seconds (as for upstream ID Tokens).
const MIN_LEEWAY: i64 = 30;

/// `POST /token` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`.
pub async fn token(
    ctx: &Context,
    params: &Params,
    credentials: Credentials,
    dpop: Option<&str>,
    now: Timestamp,
) -> Result<TokenResponse, OAuthError> {
    let issuers = &ctx.policy.trusted_issuers;
    if !issuers.any() {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type `{GRANT_TYPE}` is not supported: this server trusts no issuer's assertions"),
        ));
    }
    let asked =
        GrantRequest::parse(params).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let unverified = assertion_grant::peek(asked.assertion).map_err(refused)?;
    let Some(issuer) = issuers.find(&unverified.issuer) else {
        tracing::info!(iss = %unverified.issuer.chars().take(200).collect::<String>(), "an assertion from an untrusted issuer was refused");
        return Err(OAuthError::invalid_grant(format!(
            "the assertion's issuer `{}` is not trusted here",
            unverified.issuer.chars().take(200).collect::<String>()
        )));
    };
    let certificate = credentials.certificate.clone();
    let client = match unverified.profile {
        Profile::IdJag if !issuer.id_jag => {
            return Err(OAuthError::invalid_grant(format!(
                "`{}` is trusted for its workloads' JWTs, not for ID-JAGs",
                issuer.issuer
            )))
        }
        Profile::IdJag => Some(authenticated_client(ctx, credentials, now).await?),
        Profile::Workload if issuer.workloads.is_none() => {
            return Err(OAuthError::invalid_grant(format!(
                "`{}` is trusted for ID-JAGs only: its assertion needs typ `{}`",
                issuer.issuer,
                assertion_grant::ID_JAG_TYP
            )))
        }
        Profile::Workload => {
            no_client_authentication(&credentials)?;
            None
        }
    };
    let proof = proof::dpop(ctx, dpop, token::PATH, None, now).await?;
    let presented = Presented {
        dpop: proof.as_ref(),
        certificate: certificate.as_deref(),
    };
    let verified = verify(ctx, issuer, asked.assertion, unverified.profile, now).await?;
    let grant = match (client, &verified.id_jag) {
        (Some(client), Some(jag)) => {
            let checked = id_jag(ctx, issuer, client, &verified, jag, &asked, &presented)?;
            // A SPIFFE workload presenting an ID-JAG stays within its rule's
            // resources.
            if checked.client.kind == ClientKind::Workload {
                super::spiffe::resources_allowed(ctx, &checked.client, &checked.resources)?;
            }
            remember(ctx, issuer, &verified, now).await?;
            let user = federated::user_for(
                ctx,
                Federation {
                    issuer: &issuer.issuer,
                    name: &issuer.name,
                    link_existing: issuer.link_existing,
                },
                &checked.identity,
                now,
            )
            .await?;
            tracing::info!(issuer = %issuer.name, client_id = %checked.client.client_id, user = %user.id, "an ID-JAG was redeemed");
            Grant {
                subject: Some(user.id),
                username: Some(user.username),
                // OpenID Connect Core §2, RFC 9068 §2.2.1: how the person
                // signed in at the identity provider, when it says.
                authentication: jag.auth_time.map(|auth_time| Authentication {
                    auth_time,
                    amr: jag.amr.clone(),
                    acr: jag.acr.clone(),
                    nonce: None,
                }),
                ..issue::new_grant(
                    checked.client,
                    checked.scope,
                    checked.resources,
                    &presented,
                    now,
                )
            }
        }
        (None, None) => {
            let (client, scope, resources) = workload(ctx, issuer, &verified, &asked).await?;
            remember(ctx, issuer, &verified, now).await?;
            tracing::info!(issuer = %issuer.name, workload = %client.client_id, "a workload's JWT was redeemed");
            issue::new_grant(client, scope, resources, &presented, now)
        }
        // The profile decided both: an ID-JAG has its claims and a client.
        _ => return Err(OAuthError::server_error()),
    };
    issue::access_token_only(ctx, &grant, None, now).await
}

/// An assertion refused: `invalid_grant` (RFC 7521 §5.2), saying why.
fn refused(e: AssertionGrantError) -> OAuthError {
    OAuthError::invalid_grant(e.to_string())
}

/// The client an ID-JAG is presented by: a registered client that
/// authenticates (the draft's §8.1: confidential clients only) and may use
/// the grant (`unauthorized_client` otherwise, RFC 6749 §5.2).
async fn authenticated_client(
    ctx: &Context,
    credentials: Credentials,
    now: Timestamp,
) -> Result<ClientSnapshot, OAuthError> {
    match client_auth::authenticate(ctx, credentials, now).await? {
        Caller::Registered {
            client,
            authenticated: true,
        } => {
            let snapshot = resolve::snapshot(&ctx.policy, &client);
            request::grant_type_allowed(ctx, &snapshot, GRANT_TYPE)?;
            Ok(snapshot)
        }
        Caller::Registered { .. } => Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "ID-JAGs are taken only from clients that authenticate; a public client uses the authorization code flow",
        )),
        Caller::Pushed { .. } => Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "a pushed client exists only inside a user's authorization: it cannot present ID-JAGs",
        )),
        // A SPIFFE workload whose rule gives it the grant.
        Caller::Workload { client } => {
            request::grant_type_allowed(ctx, &client, GRANT_TYPE)?;
            Ok(*client)
        }
    }
}

/// A workload is the client its JWT names: a request that authenticates a
/// client as well mixes two identities. A bare `client_id`, which MCP
/// clients send with `token_endpoint_auth_method` `none`, proves nothing and
/// is not read.
fn no_client_authentication(credentials: &Credentials) -> Result<(), OAuthError> {
    if credentials.basic.is_some()
        || credentials.client_secret.is_some()
        || credentials.client_assertion.is_some()
    {
        return Err(OAuthError::invalid_request(
            "a workload's JWT bearer grant comes without client authentication: the workload its JWT names is the client",
        ));
    }
    Ok(())
}

/// The signature with the issuer's keys (fetched again once for a `kid`
/// they lack: the issuer rotated them), then the claims.
async fn verify(
    ctx: &Context,
    issuer: &TrustedIssuer,
    assertion: &str,
    profile: Profile,
    now: Timestamp,
) -> Result<AssertionGrant, OAuthError> {
    // RFC 7523 §3 item 3: a workload's platform may name the token
    // endpoint, or an audience configured for this server; an ID-JAG only
    // the issuer identifier.
    let mut others = Vec::new();
    if let (Profile::Workload, Some(w)) = (profile, &issuer.workloads) {
        others.push(format!("{}{}", ctx.issuer, token::PATH));
        others.extend(w.audiences.iter().cloned());
    }
    let expect = Expectations {
        issuer: &issuer.issuer,
        profile,
        server: &ctx.issuer,
        other_audiences: &others,
        now,
        max_lifetime: issuer.max_lifetime,
        leeway: ctx.policy.proofs.leeway.max(MIN_LEEWAY),
    };
    let mut refresh = false;
    loop {
        let keys = match &issuer.keys {
            KeySource::Fixed(keys) => keys.clone(),
            KeySource::Fetched(uri) => ctx
                .upstream
                .jwks(&format!("trusted:{}", issuer.name), uri, refresh)
                .await
                .map_err(|f| unavailable(issuer, f))?,
        };
        let fetched = matches!(issuer.keys, KeySource::Fetched(_));
        match assertion_grant::verify(assertion, &keys, &expect) {
            Err(AssertionGrantError::NoKey | AssertionGrantError::Signature)
                if fetched && !refresh =>
            {
                refresh = true;
            }
            Err(e) => {
                tracing::info!(issuer = %issuer.name, error = %e, "an assertion was refused");
                return Err(refused(e));
            }
            Ok(verified) => return Ok(verified),
        }
    }
}

/// What an issuer whose keys cannot be had means for the client.
fn unavailable(issuer: &TrustedIssuer, f: UpstreamFailure) -> OAuthError {
    tracing::warn!(issuer = %issuer.name, failure = ?f, "a trusted issuer's keys could not be fetched");
    match f {
        UpstreamFailure::Unreachable(_) => OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            format!(
                "the keys of `{}` cannot be fetched right now; try again in a little while",
                issuer.issuer
            ),
        ),
        UpstreamFailure::Invalid(_) | UpstreamFailure::TokenError { .. } => OAuthError::new(
            ErrorCode::ServerError,
            format!(
                "the keys of `{}` are not a usable JWK Set; the operator has the details in the log",
                issuer.issuer
            ),
        ),
    }
}

/// An ID-JAG's checks beyond its signature and claims.
struct CheckedIdJag {
    client: ClientSnapshot,
    identity: Identity,
    scope: Scope,
    resources: Vec<String>,
}

/// The draft's §4.4.1: the ID-JAG was issued for the client that
/// authenticated, its key binding is honoured (§8.6.1.2), and its resources
/// and scope bound what is granted.
fn id_jag(
    ctx: &Context,
    issuer: &TrustedIssuer,
    client: ClientSnapshot,
    verified: &AssertionGrant,
    jag: &IdJag,
    asked: &GrantRequest<'_>,
    presented: &Presented<'_>,
) -> Result<CheckedIdJag, OAuthError> {
    if jag.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(format!(
            "the ID-JAG was issued for client `{}`, not for the client that authenticated",
            jag.client_id
        )));
    }
    match (&jag.jkt, presented.dpop) {
        (Some(jkt), Some(p)) if &p.jkt == jkt => {}
        (Some(_), Some(_)) => return Err(OAuthError::invalid_grant(
            "the DPoP proof is signed by another key than the one the ID-JAG is bound to (cnf.jkt)",
        )),
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant(
                "the ID-JAG is bound to a DPoP key (cnf.jkt): present a DPoP proof signed by it",
            ))
        }
        (None, _) => {}
    }
    let Some(identity) = Identity::from_claims(&verified.claims, &issuer.claims) else {
        return Err(OAuthError::invalid_grant(format!(
            "the ID-JAG has no `{}` claim to say who it is for",
            issuer.claims.subject
        )));
    };
    let resources = resources(ctx, &jag.resources, asked.resources)?;
    let scope = scope(ctx, issuer, &client, jag.scope.as_deref(), asked.scope)?;
    Ok(CheckedIdJag {
        client,
        identity,
        scope,
        resources,
    })
}

/// A workload's client, scope and resources: its `sub` admitted by the
/// issuer's `subjects`, and no user's or registered client's identifier.
async fn workload(
    ctx: &Context,
    issuer: &TrustedIssuer,
    verified: &AssertionGrant,
    asked: &GrantRequest<'_>,
) -> Result<(ClientSnapshot, Scope, Vec<String>), OAuthError> {
    let subject = verified.subject.as_str();
    if !issuer.workloads.as_ref().is_some_and(|w| w.admits(subject)) {
        tracing::info!(issuer = %issuer.name, workload = %subject, "a workload not among the issuer's subjects was refused");
        return Err(OAuthError::invalid_grant(format!(
            "the workload `{subject}` is not one that [trusted_issuers.{}] admits (`subjects`)",
            issuer.name
        )));
    }
    // RFC 9068 §5: a token's `sub` is never one a person or another client
    // has here, or resource servers could take the workload for them.
    if ctx.store.find_user(subject).await?.is_some()
        || ctx.store.find_client(subject).await?.is_some()
    {
        tracing::warn!(issuer = %issuer.name, workload = %subject, "a workload named like a local user or client was refused");
        return Err(OAuthError::invalid_grant(format!(
            "the workload `{subject}` has the identifier of a user or client of this server: its tokens could be taken for theirs"
        )));
    }
    let client = resolve::workload(&ctx.policy, issuer, subject);
    let resources = resources(ctx, &[], asked.resources)?;
    let scope = scope(ctx, issuer, &client, None, asked.scope)?;
    Ok((client, scope, resources))
}

/// RFC 8707 §2 and the draft's §4.4.1: the resources the assertion names
/// (each one served here, `invalid_target` otherwise), narrowed by those
/// the request names; when it names none, the request's. Resources that
/// one token cannot serve are refused here, before anything is stored.
fn resources(
    ctx: &Context,
    carried: &[String],
    asked: &[String],
) -> Result<Vec<String>, OAuthError> {
    let asked = request::resources(&ctx.policy, asked)?;
    let granted = if carried.is_empty() {
        asked
    } else {
        let carried = request::resources(&ctx.policy, carried)?;
        if let Some(r) = asked.iter().find(|r| !carried.contains(r)) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("resource `{r}` is not among those the assertion names"),
            ));
        }
        if asked.is_empty() {
            carried
        } else {
            asked
        }
    };
    issue::Target::of(&ctx.policy, &granted)?;
    Ok(granted)
}

/// RFC 6749 §3.3 and the draft's §4.4.1: the request's scope, else the
/// assertion's, else the default; never beyond what the assertion carries,
/// what the issuer may bring (`scopes`) and what the client may be granted.
fn scope(
    ctx: &Context,
    issuer: &TrustedIssuer,
    client: &ClientSnapshot,
    carried: Option<&str>,
    asked: Option<&str>,
) -> Result<Scope, OAuthError> {
    let invalid_scope = |m: String| OAuthError::new(ErrorCode::InvalidScope, m);
    let carried_scope = carried
        .map(Scope::parse)
        .transpose()
        .map_err(|e| OAuthError::invalid_grant(format!("the assertion's scope: {e}")))?;
    if let (Some(within), Some(raw)) = (&carried_scope, asked) {
        let asked = Scope::parse(raw).map_err(|e| invalid_scope(e.to_string()))?;
        let beyond = asked.difference(within).next().map(str::to_owned);
        if let Some(t) = beyond {
            return Err(invalid_scope(format!(
                "scope `{t}` is beyond what the assertion allows"
            )));
        }
    }
    let mut caps = resolve::caps(&ctx.policy, client).into_owned();
    for cap in [carried_scope.as_ref(), issuer.scopes.as_ref()]
        .into_iter()
        .flatten()
    {
        caps.grantable_scope = Scope::from_tokens(
            caps.grantable_scope
                .iter()
                .filter(|t| cap.contains(t))
                .map(str::to_owned),
        )
        .unwrap_or_default();
    }
    request::requested_scope(&ctx.policy, &caps, asked.or(carried))
}

/// RFC 7521 §5.2, RFC 7523 §3 item 7: an assertion is used once; its `jti`
/// is remembered until it expires, in the store, so on every node.
async fn remember(
    ctx: &Context,
    issuer: &TrustedIssuer,
    verified: &AssertionGrant,
    now: Timestamp,
) -> Result<(), OAuthError> {
    let key = format!("jwt-grant:{}:{}", issuer.name, verified.jti);
    let until = verified.exp + ctx.policy.proofs.leeway.max(MIN_LEEWAY);
    if !ctx.store.remember_jti(&key, until, now).await? {
        tracing::info!(issuer = %issuer.name, "a used assertion was presented again");
        return Err(OAuthError::invalid_grant(
            "the assertion was already used (its jti was seen before): ask its issuer for a new one",
        ));
    }
    Ok(())
}

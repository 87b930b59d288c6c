//! The token endpoint (RFC 6749 §3.2): dispatch by `grant_type`, the
//! `authorization_code` grant with PKCE (RFC 7636) and code replay
//! detection (§10.5), and `client_credentials` (§4.4). Token exchange
//! (RFC 8693) is `exchange`'s, the JWT bearer grant (RFC 7523 §2.1)
//! `assertion_grant`'s.

use ephemera_proto::error::ErrorCode;
use ephemera_proto::form::Params;
use ephemera_proto::pkce::{CodeChallenge, CodeVerifier};
use ephemera_proto::token::{self as token_request, TokenRequest, TokenRequestError};
use ephemera_proto::wire::TokenResponse;

use super::client_auth::{self, Caller, Credentials};

use super::proof::Presented;
use super::{
    assertion_grant, exchange, id_token, issue, proof, refresh, request, resolve, spiffe, Context,
    OAuthError,
};
use crate::model::Timestamp;
use crate::secret::SecretHash;

/// The token endpoint's path: the `htu` of its DPoP proofs and an `aud` of
/// client assertions.
pub const PATH: &str = "/token";

pub async fn token(
    ctx: &Context,
    params: &Params,
    credentials: Credentials,
    dpop: Option<&str>,
    now: Timestamp,
) -> Result<TokenResponse, OAuthError> {
    // Who the client of a JWT bearer grant is depends on its assertion (a
    // workload is its own), so it authenticates it there.
    if params.get("grant_type") == Some(ephemera_proto::assertion_grant::GRANT_TYPE) {
        return assertion_grant::token(ctx, params, credentials, dpop, now).await;
    }
    let grant_type = token_request::grant_type(params).map_err(refused)?;
    let certificate = credentials.certificate.clone();
    let caller = client_auth::authenticate(ctx, credentials, now).await?;
    // A registered caller's registration is known now; a pushed caller's is
    // the one in its grant, checked once the code or token is found.
    match &caller {
        Caller::Registered { client, .. } => {
            let snapshot = resolve::snapshot(&ctx.policy, client);
            request::grant_type_allowed(ctx, &snapshot, grant_type.as_str())?;
        }
        Caller::Workload { client } => {
            request::grant_type_allowed(ctx, client, grant_type.as_str())?;
        }
        Caller::Pushed { .. } => {}
    }
    let proof = proof::dpop(ctx, dpop, PATH, None, now).await?;
    let presented = Presented {
        dpop: proof.as_ref(),
        certificate: certificate.as_deref(),
    };
    match TokenRequest::parse(grant_type, params).map_err(refused)? {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
            resources,
        } => {
            let asked = CodeRequest {
                code,
                redirect_uri,
                code_verifier,
                resources,
            };
            authorization_code(ctx, asked, &caller, &presented, now).await
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
            resources,
        } => {
            let asked = refresh::RefreshRequest {
                refresh_token,
                scope,
                resources,
            };
            refresh::refresh(ctx, asked, &caller, &presented, now).await
        }
        TokenRequest::ClientCredentials { scope, resources } => {
            client_credentials(ctx, scope, resources, &caller, &presented, now).await
        }
        TokenRequest::TokenExchange(asked) => {
            exchange::exchange(ctx, asked, &caller, &presented, now).await
        }
    }
}

/// A token request refused before anything was looked up.
fn refused(e: TokenRequestError) -> OAuthError {
    match e {
        TokenRequestError::Missing(_) | TokenRequestError::Stray(..) => {
            OAuthError::invalid_request(e.to_string())
        }
        TokenRequestError::Unsupported(_) => {
            OAuthError::new(ErrorCode::UnsupportedGrantType, e.to_string())
        }
    }
}

/// What an `authorization_code` token request asked.
struct CodeRequest<'a> {
    code: &'a str,
    redirect_uri: Option<&'a str>,
    code_verifier: Option<&'a str>,
    resources: &'a [String],
}

async fn authorization_code(
    ctx: &Context,
    asked: CodeRequest<'_>,
    caller: &Caller,
    presented: &Presented<'_>,
    now: Timestamp,
) -> Result<TokenResponse, OAuthError> {
    let hash = SecretHash::of(asked.code);
    let Some(stored) = ctx.store.find_code(&hash).await? else {
        return Err(OAuthError::invalid_grant(
            "the code is unknown or has expired",
        ));
    };
    let grant = stored.grant;
    if stored.used {
        return Err(replayed(ctx, &grant.id).await);
    }
    if stored.code.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if !caller.owns(&grant.client.client_id) {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    client_auth::verify_pushed(ctx, caller, &grant.client, presented.certificate, now).await?;
    client_auth::keys_still_published(ctx, caller, &grant).await?;
    request::grant_type_allowed(ctx, &grant.client, "authorization_code")?;
    let caps = resolve::caps(&ctx.policy, &grant.client);
    let may_add = !caps.binding.fixed_at_par;
    let jkt = proof::dpop_binding(
        grant.key_binding.dpop_jkt.as_deref(),
        presented.dpop,
        may_add,
    )?;
    let x5t = proof::certificate_binding(
        grant.key_binding.x5t_s256.as_deref(),
        presented.x5t().as_deref(),
        may_add,
    )?;
    if let Some(expected) = &stored.code.redirect_uri {
        match asked.redirect_uri {
            None => return Err(OAuthError::invalid_request(
                "redirect_uri is required: the authorization request carried one (RFC 6749 §4.1.3)",
            )),
            Some(sent) if sent != expected => {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri does not match the one of the authorization request",
                ))
            }
            Some(_) => {}
        }
    }
    match (&stored.code.code_challenge, asked.code_verifier) {
        (Some(challenge), Some(verifier)) => {
            let verifier = CodeVerifier::parse(verifier)
                .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
            if !CodeChallenge::from_stored(challenge.clone()).is_satisfied_by(&verifier) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_request(
                "code_verifier is required (PKCE)",
            ))
        }
        (None, Some(_)) => {
            // RFC 9700 §4.8.2: a verifier without a challenge is a downgrade attempt.
            return Err(OAuthError::invalid_grant(
                "code_verifier was sent but the authorization request had no code_challenge",
            ));
        }
        // Only a client exempt from PKCE can hold a code without a challenge.
        (None, None) if caps.pkce_required => {
            return Err(OAuthError::invalid_grant(
                "the code was issued without PKCE, which this client must use",
            ))
        }
        (None, None) => {}
    }
    let refresh_scope = grant
        .client
        .may_use_grant("refresh_token")
        .then_some(&grant.scope);
    let audience = issue::requested_audience(&grant, asked.resources)?;
    let shape = issue::Shape {
        scope: &grant.scope,
        refresh_scope,
        jkt: jkt.as_deref(),
        x5t: x5t.as_deref(),
        audience: audience.as_deref(),
        not_after: None,
    };
    let mut minted = issue::mint(ctx, &grant, shape, now)?;
    // OpenID Connect Core §3.1.3.3: the ID Token beside the access token.
    minted.response.id_token = id_token::mint(
        ctx,
        &grant,
        &grant.scope,
        &minted.response.access_token,
        id_token::Moment::CodeRedemption,
        now,
    )
    .await?;
    if !ctx.store.redeem_code(&hash, now, &minted.rows).await? {
        return Err(replayed(ctx, &grant.id).await);
    }
    issue::keep_alive(ctx, &grant, now).await?;
    Ok(minted.response)
}

/// RFC 6749 §10.5: a code used twice revokes what it produced.
async fn replayed(ctx: &Context, grant_id: &str) -> OAuthError {
    if let Err(e) = ctx.store.delete_grant(grant_id).await {
        return e.into();
    }
    tracing::warn!(grant_id, "authorization code replayed; grant revoked");
    OAuthError::invalid_grant(
        "the code was already used; the tokens issued from it have been revoked",
    )
}

async fn client_credentials(
    ctx: &Context,
    scope: Option<&str>,
    resources: &[String],
    caller: &Caller,
    presented: &Presented<'_>,
    now: Timestamp,
) -> Result<TokenResponse, OAuthError> {
    let snapshot = match caller {
        Caller::Registered {
            client,
            authenticated: true,
        } => resolve::snapshot(&ctx.policy, client),
        // A SPIFFE workload, within its rule's resources.
        Caller::Workload { client } => {
            spiffe::resources_allowed(ctx, client, resources)?;
            (**client).clone()
        }
        _ => return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client_credentials is only for confidential registered clients and SPIFFE workloads",
        )),
    };
    let scope =
        request::requested_scope(&ctx.policy, &resolve::caps(&ctx.policy, &snapshot), scope)?;
    let resources = request::resources(&ctx.policy, resources)?;
    let grant = issue::new_grant(snapshot, scope, resources, presented, now);
    issue::access_token_only(ctx, &grant, None, now).await
}

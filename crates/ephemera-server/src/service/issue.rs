//! Minting tokens: opaque 256-bit values, or JWT access tokens (RFC 9068)
//! for resources that take them, either way stored only as hashes; the
//! audience a token request narrows them to, and what the resource registry
//! says of it (the scopes it accepts, the lifetime, the format); and what
//! getting tokens renews.

use ephemera_proto::access_token::{self, AccessTokenClaims, Audience};
use ephemera_proto::error::ErrorCode;
use ephemera_proto::scope::Scope;
use ephemera_proto::wire::TokenResponse;

use super::proof::Presented;
use super::{new_id, Context, OAuthError};
use crate::model::{ClientSnapshot, Grant, KeyBinding, Timestamp, Token, TokenKind};
use crate::policy::{Policy, ResourcePolicy, TokenFormat};
use crate::secret::{Secret, SecretHash};
use crate::store::StoreError;

/// New tokens: the rows to store and the response to send.
pub struct Minted {
    pub rows: Vec<Token>,
    pub response: TokenResponse,
}

/// What the new tokens carry.
#[derive(Debug, Clone, Copy)]
pub struct Shape<'a> {
    /// The access token's scope.
    pub scope: &'a Scope,
    /// The refresh token's scope, when the client may refresh.
    pub refresh_scope: Option<&'a Scope>,
    /// The DPoP key thumbprint the tokens are bound to.
    pub jkt: Option<&'a str>,
    /// The client certificate thumbprint the tokens are bound to.
    pub x5t: Option<&'a str>,
    /// The access token's audience when narrowed (RFC 8707 §2.2); `None`:
    /// all of the grant's resources.
    pub audience: Option<&'a [String]>,
    /// The access token expires by then at the latest: an exchanged token
    /// does not outlive its subject token (RFC 8693).
    pub not_after: Option<Timestamp>,
}

/// An access token, and a refresh token when `shape.refresh_scope` is set.
/// A bound access token's refresh token is bound too when the client is
/// public (RFC 9449 §5, RFC 8705 §4); a confidential client's refresh token
/// is bound by its authentication.
pub fn mint(
    ctx: &Context,
    grant: &Grant,
    shape: Shape<'_>,
    now: Timestamp,
) -> Result<Minted, OAuthError> {
    let policy = &ctx.policy;
    let audience = shape.audience.unwrap_or(&grant.resources);
    let target = Target::of(policy, audience)?;
    let access_scope = target.narrow(shape.scope);
    let access_ttl = match shape.not_after {
        Some(end) => target.lifetime.min(end - now).max(0),
        None => target.lifetime,
    };
    let access = match target.format {
        TokenFormat::Opaque => Secret::generate().into_string(),
        TokenFormat::Jwt => {
            let claims = jwt_claims(ctx, grant, &shape, audience, &access_scope, now, access_ttl);
            jwt(ctx, &claims)?
        }
    };
    let public = grant.client.is_public();
    let mut rows = vec![Token {
        hash: SecretHash::of(&access),
        grant_id: grant.id.clone(),
        kind: TokenKind::Access,
        scope: access_scope.clone(),
        issued_at: now,
        expires_at: now + access_ttl,
        used_at: None,
        jkt: shape.jkt.map(str::to_owned),
        x5t: shape.x5t.map(str::to_owned),
        audience: shape.audience.map(<[String]>::to_vec),
    }];
    let refresh = shape.refresh_scope.map(|refresh_scope| {
        let secret = Secret::generate();
        rows.push(Token {
            hash: secret.hash(),
            grant_id: grant.id.clone(),
            kind: TokenKind::Refresh,
            scope: refresh_scope.clone(),
            issued_at: now,
            expires_at: now + super::resolve::caps(policy, &grant.client).refresh_lifetime,
            used_at: None,
            jkt: shape.jkt.filter(|_| public).map(str::to_owned),
            x5t: shape.x5t.filter(|_| public).map(str::to_owned),
            audience: None,
        });
        secret.into_string()
    });
    Ok(Minted {
        rows,
        response: TokenResponse {
            access_token: access,
            token_type: if shape.jkt.is_some() {
                "DPoP"
            } else {
                "Bearer"
            }
            .to_owned(),
            expires_in: access_ttl.unsigned_abs(),
            refresh_token: refresh,
            scope: (!access_scope.is_empty()).then(|| access_scope.to_string()),
            id_token: None,
            issued_token_type: None,
        },
    })
}

/// The claims of a JWT access token (RFC 9068 §2.2): `sub` is the user, or
/// the client of a token without one (§2.2, `client_credentials`);
/// `auth_time` and `acr` when the grant knows how the user signed in
/// (§2.2.1); `cnf` for a bound token (RFC 9449 §6.1, RFC 8705 §3.1).
fn jwt_claims(
    ctx: &Context,
    grant: &Grant,
    shape: &Shape<'_>,
    audience: &[String],
    scope: &Scope,
    now: Timestamp,
    ttl: i64,
) -> AccessTokenClaims {
    let authentication = grant.authentication.as_ref();
    AccessTokenClaims {
        iss: ctx.issuer.to_string(),
        exp: now + ttl,
        aud: Audience::of(audience),
        sub: grant.sub().to_owned(),
        client_id: grant.client.client_id.clone(),
        iat: now,
        jti: new_id(),
        nbf: None,
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        cnf: access_token::confirmation(shape.jkt, shape.x5t),
        auth_time: authentication.map(|a| a.auth_time),
        acr: authentication.and_then(|a| a.acr.clone()),
        grant_id: Some(grant.id.clone()),
        act: grant.act().cloned(),
    }
}

/// `claims` signed with the newest signing key, `typ: at+jwt` (RFC 9068 §2.1).
fn jwt(ctx: &Context, claims: &AccessTokenClaims) -> Result<String, OAuthError> {
    let signed = serde_json::to_value(claims)
        .ok()
        .and_then(|value| ctx.keys.get().sign(access_token::TYP, &value));
    signed.ok_or_else(|| {
        tracing::error!("no signing key to sign a JWT access token with");
        OAuthError::server_error()
    })
}

/// What the resource registry says of an access token's audience.
#[derive(Debug)]
pub struct Target<'a> {
    /// The registry's entries for the audience; empty when the token names
    /// no resource or the registry is empty.
    entries: Vec<&'a ResourcePolicy>,
    /// The shortest lifetime among them, or `lifetimes.access_token`.
    pub lifetime: i64,
    pub format: TokenFormat,
}

impl<'a> Target<'a> {
    /// The entries of `audience`. Resources that take different token
    /// formats cannot share one token: the request is refused with
    /// `invalid_target` (RFC 8707 §2.2), and the client asks for a token
    /// per resource with `resource` at the token endpoint.
    pub fn of(policy: &'a Policy, audience: &[String]) -> Result<Self, OAuthError> {
        let entries: Vec<&ResourcePolicy> =
            audience.iter().filter_map(|r| policy.resource(r)).collect();
        let mut format = None;
        for entry in &entries {
            match format {
                None => format = Some((entry.format, entry.identifier.as_str())),
                Some((f, first)) if f != entry.format => {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidTarget,
                        format!(
                            "resources `{first}` ({}) and `{}` ({}) take different token formats; ask for a token for each with `resource`",
                            f.as_str(),
                            entry.identifier,
                            entry.format.as_str()
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        let lifetime = entries
            .iter()
            .map(|e| e.access_token_lifetime)
            .min()
            .unwrap_or(policy.lifetimes.access_token);
        Ok(Self {
            format: format.map(|(f, _)| f).unwrap_or_default(),
            entries,
            lifetime,
        })
    }

    /// The granted scopes the audience accepts: those some resource of it
    /// lists, every one when a resource lists none, and always the OpenID
    /// identity scopes, which are `/userinfo`'s rather than a resource's.
    pub fn narrow(&self, granted: &Scope) -> Scope {
        if self.entries.is_empty() || self.entries.iter().any(|e| e.scopes.is_none()) {
            return granted.clone();
        }
        let accepted = |t: &str| {
            ephemera_proto::oidc::IDENTITY_SCOPES.contains(&t)
                || self
                    .entries
                    .iter()
                    .any(|e| e.scopes.as_ref().is_some_and(|s| s.contains(t)))
        };
        Scope::from_tokens(granted.iter().filter(|t| accepted(t)).map(str::to_owned))
            .unwrap_or_else(|_| granted.clone())
    }
}

/// The `resource`s a token request asks for (RFC 8707 §2.2): a subset of the
/// grant's, narrowing the access token's audience; `None` when none is asked.
pub fn requested_audience(
    grant: &Grant,
    asked: &[String],
) -> Result<Option<Vec<String>>, OAuthError> {
    if asked.is_empty() {
        return Ok(None);
    }
    if let Some(r) = asked.iter().find(|r| !grant.resources.contains(r)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("resource `{r}` was not part of the authorization; a token request may only narrow the resources"),
        ));
    }
    Ok(Some(asked.to_vec()))
}

/// A self-registered client that gets tokens is in use: its time-to-live
/// runs from now again (RFC 7591 abuse control deletes only idle clients).
pub async fn keep_alive(ctx: &Context, grant: &Grant, now: Timestamp) -> Result<(), OAuthError> {
    if super::resolve::caps(&ctx.policy, &grant.client).renew_on_use {
        let until = now + ctx.policy.registration.idle_ttl;
        ctx.store
            .touch_client(&grant.client.client_id, until)
            .await?;
    }
    Ok(())
}

/// A new grant of no user (yet) for a grant type that gets one access token
/// and no refresh token (`client_credentials`, token exchange, the JWT
/// bearer grant), bound to the key the request proved, as a
/// `client_credentials` token is (RFC 9449 §5, RFC 8705 §3). No user signed
/// in: never an ID Token.
pub fn new_grant(
    client: ClientSnapshot,
    scope: Scope,
    resources: Vec<String>,
    presented: &Presented<'_>,
    now: Timestamp,
) -> Grant {
    Grant {
        id: new_id(),
        client,
        key_binding: KeyBinding {
            dpop_jkt: presented.dpop.map(|p| p.jkt.clone()),
            x5t_s256: presented.x5t(),
        },
        subject: None,
        username: None,
        scope,
        resources,
        created_at: now,
        redirect_uri: None,
        authentication: None,
        exchanged: None,
    }
}

/// `grant` stored with its one access token (bound as the grant is, for
/// its resources, expiring by `not_after` at the latest) in one
/// transaction, and its client kept alive: the token response.
pub async fn access_token_only(
    ctx: &Context,
    grant: &Grant,
    not_after: Option<Timestamp>,
    now: Timestamp,
) -> Result<TokenResponse, OAuthError> {
    let shape = Shape {
        scope: &grant.scope,
        refresh_scope: None,
        jkt: grant.key_binding.dpop_jkt.as_deref(),
        x5t: grant.key_binding.x5t_s256.as_deref(),
        audience: None,
        not_after,
    };
    let minted = mint(ctx, grant, shape, now)?;
    match ctx
        .store
        .insert_grant_with_tokens(grant, &minted.rows)
        .await
    {
        Ok(()) => {}
        // Only an exchanged grant refers to another: the grant of its
        // subject token ended between the lookup and now.
        Err(StoreError::Gone) => {
            return Err(OAuthError::invalid_request(
                "the subject_token was revoked while it was being exchanged",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    keep_alive(ctx, grant, now).await?;
    Ok(minted.response)
}

//! Proof of possession: DPoP proofs (RFC 9449) and client assertions
//! (RFC 7523), with server nonces and a replay cache that holds across
//! nodes (the store's unique key), and the rule that a grant's binding never
//! changes after PAR.

use ephemera_proto::assertion::{self, ClientAssertion};
use ephemera_proto::dpop::{self, DpopProof};
use ephemera_proto::error::ErrorCode;
use serde_json::Value;

use super::{Context, OAuthError};
use crate::model::Timestamp;

/// The proofs of possession a token request carried, verified.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presented<'a> {
    pub dpop: Option<&'a DpopProof>,
    /// The DER of the mutual-TLS client certificate.
    pub certificate: Option<&'a [u8]>,
}

impl Presented<'_> {
    /// The certificate's SHA-256 thumbprint (RFC 8705 §3.1 `x5t#S256`).
    pub fn x5t(&self) -> Option<String> {
        self.certificate.map(ephemera_proto::jose::sha256_b64)
    }
}

/// The certificate a new token is bound to, by the same rules as
/// [`dpop_binding`].
pub fn certificate_binding(
    required: Option<&str>,
    presented: Option<&str>,
    may_add: bool,
) -> Result<Option<String>, OAuthError> {
    match (required, presented) {
        (Some(r), Some(p)) if r == p => Ok(Some(p.to_owned())),
        (Some(_), Some(_)) => Err(OAuthError::invalid_grant(
            "the client certificate is not the one this grant is bound to",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant(
            "this grant is bound to a client certificate: connect with it (mutual TLS)",
        )),
        (None, Some(p)) if may_add => Ok(Some(p.to_owned())),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "this grant was not bound to a client certificate at PAR; a binding cannot be added later",
        )),
        (None, None) => Ok(None),
    }
}

/// How long one DPoP nonce is served, in seconds; the previous one is
/// still accepted, so a nonce lives between one and two windows.
const NONCE_WINDOW: i64 = 300;

fn dpop_error(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, description)
}

/// The nonce clients should put in their next proof.
pub fn current_nonce(ctx: &Context, now: Timestamp) -> String {
    ctx.keys.get().dpop_nonce(now.div_euclid(NONCE_WINDOW))
}

/// Verifies the DPoP proof sent to `path` (if any): signature and claims,
/// the server nonce when policy requires one, and single use of its `jti`.
pub async fn dpop(
    ctx: &Context,
    proof: Option<&str>,
    path: &str,
    access_token: Option<&str>,
    now: Timestamp,
) -> Result<Option<DpopProof>, OAuthError> {
    dpop_for(ctx, proof, "POST", path, access_token, now).await
}

/// [`dpop`] for a request of `method` (`htm`): the UserInfo endpoint takes
/// GET too.
pub async fn dpop_for(
    ctx: &Context,
    proof: Option<&str>,
    method: &str,
    path: &str,
    access_token: Option<&str>,
    now: Timestamp,
) -> Result<Option<DpopProof>, OAuthError> {
    let Some(proof) = proof else { return Ok(None) };
    let policy = &ctx.policy.proofs;
    let url = format!("{}{path}", ctx.issuer);
    let expect = dpop::Expectations {
        method,
        url: &url,
        now,
        max_age: policy.dpop_max_age,
        leeway: policy.leeway,
        access_token,
    };
    let verified = dpop::verify(proof, &expect).map_err(|e| dpop_error(e.to_string()))?;
    if policy.dpop_require_nonce {
        let window = now.div_euclid(NONCE_WINDOW);
        let keys = ctx.keys.get();
        let fresh = [keys.dpop_nonce(window), keys.dpop_nonce(window - 1)];
        if !verified.nonce.as_ref().is_some_and(|n| fresh.contains(n)) {
            let mut err = OAuthError::new(
                ErrorCode::UseDpopNonce,
                "this server requires a nonce in DPoP proofs: use the DPoP-Nonce header's value",
            );
            err.dpop_nonce = Some(fresh[0].clone());
            return Err(err);
        }
    }
    let key = format!("dpop:{}:{}", verified.jkt, verified.jti);
    let until = verified.iat + policy.dpop_max_age + policy.leeway;
    if !ctx.store.remember_jti(&key, until, now).await? {
        return Err(dpop_error("the DPoP proof's jti was already used"));
    }
    Ok(Some(verified))
}

/// The DPoP key a new token is bound to. `required` is the grant's (or the
/// refresh token's) binding; `may_add` says whether a grant without one may
/// be bound now (registered clients at the token endpoint, RFC 9449 §5) —
/// never for pushed clients, whose binding is fixed at PAR.
pub fn dpop_binding(
    required: Option<&str>,
    proof: Option<&DpopProof>,
    may_add: bool,
) -> Result<Option<String>, OAuthError> {
    match (required, proof) {
        (Some(jkt), Some(p)) if p.jkt == jkt => Ok(Some(p.jkt.clone())),
        (Some(_), Some(_)) => Err(dpop_error(
            "the DPoP proof is signed by another key than the one bound to this grant",
        )),
        (Some(_), None) => Err(dpop_error(
            "this grant is bound to a DPoP key: send a DPoP proof signed by it",
        )),
        (None, Some(p)) if may_add => Ok(Some(p.jkt.clone())),
        (None, Some(_)) => Err(dpop_error(
            "this grant was not bound to a DPoP key at PAR; a binding cannot be added later",
        )),
        (None, None) => Ok(None),
    }
}

/// Verifies a client assertion signed by one of `jwks`, made for this
/// server (its issuer identifier as the audience).
pub async fn client_assertion(
    ctx: &Context,
    assertion_jwt: &str,
    client_id: &str,
    jwks: &Value,
    now: Timestamp,
) -> Result<ClientAssertion, OAuthError> {
    let keys = assertion::parse_jwks(jwks)
        .map_err(|e| OAuthError::invalid_client(format!("the client's keys: {e}")))?;
    let expect = assertion::Expectations {
        client_id,
        issuer: &ctx.issuer,
        now,
        max_lifetime: ctx.policy.proofs.assertion_max_lifetime,
        leeway: ctx.policy.proofs.leeway,
    };
    let verified = assertion::verify(assertion_jwt, &keys, &expect)
        .map_err(|e| OAuthError::invalid_client(e.to_string()))?;
    let key = format!("assertion:{client_id}:{}", verified.jti);
    if !ctx
        .store
        .remember_jti(&key, verified.exp + ctx.policy.proofs.leeway, now)
        .await?
    {
        return Err(OAuthError::invalid_client(
            "client_assertion's jti was already used",
        ));
    }
    Ok(verified)
}

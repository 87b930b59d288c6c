//! The PAR endpoint (RFC 9126): where every pushed client starts, with its
//! registration in hand, and where registered clients may start too. This is
//! where a transaction's keys are bound: a DPoP proof or `dpop_jkt`
//! (RFC 9449 §10), and a pushed client's own keys for `private_key_jwt`,
//! proven by the request's client assertion.

use ephemera_proto::error::ErrorCode;
use ephemera_proto::form::Params;
use ephemera_proto::wire::PushedAuthorizationResponse;
use ephemera_proto::{ClientRef, REQUEST_URI_PREFIX};

use super::client_auth::{self, Caller, Credentials};
use super::{proof, request, resolve, Context, OAuthError};
use crate::model::{KeyBinding, Timestamp};
use crate::secret::{Secret, SecretHash};

const PATH: &str = "/par";

pub async fn push(
    ctx: &Context,
    params: &Params,
    credentials: Credentials,
    dpop: Option<&str>,
    now: Timestamp,
) -> Result<PushedAuthorizationResponse, OAuthError> {
    if params.contains("request_uri") {
        return Err(OAuthError::invalid_request(
            "request_uri must not be sent to the PAR endpoint (RFC 9126 §2.1)",
        ));
    }
    let certificate_der = credentials.certificate.clone();
    let certificate = certificate_der.as_deref();
    let caller = client_auth::authenticate(ctx, credentials, now).await?;
    let client = match &caller {
        Caller::Pushed { .. } => {
            let registration = params.get("client_registration");
            let Some(client) =
                resolve::resolve(ctx, ClientRef::PushedUrn, registration, now).await?
            else {
                return Err(OAuthError::server_error());
            };
            // Possession of the pushed keys is proven here, once, before
            // anything is stored.
            client_auth::verify_pushed(ctx, &caller, &client, certificate, now).await?;
            client
        }
        Caller::Registered { client, .. } => {
            if params.contains("client_registration") {
                return Err(OAuthError::invalid_request(format!(
                    "client_registration is only accepted with client_id={}",
                    ephemera_proto::PUSHED_CLIENT_URN
                )));
            }
            resolve::snapshot(&ctx.policy, client)
        }
        Caller::Workload { .. } => return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "a SPIFFE workload has no authorization requests: it gets tokens at the token endpoint",
        )),
    };
    let ttl = ctx.policy.lifetimes.request_uri;
    let mut pending =
        request::validate(&ctx.policy, client, params, now, ttl).map_err(|e| e.into_error())?;
    pending.key_binding = binding(ctx, params, dpop, certificate, &pending.client, now).await?;

    let secret = Secret::generate();
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", secret.expose());
    ctx.store
        .insert_pending_request(
            &SecretHash::of(&request_uri),
            &pending,
            ctx.policy.pushed.max_pending_requests,
        )
        .await?;
    Ok(PushedAuthorizationResponse {
        request_uri,
        expires_in: ttl.unsigned_abs(),
    })
}

/// The keys the transaction is bound to from here on.
async fn binding(
    ctx: &Context,
    params: &Params,
    dpop: Option<&str>,
    certificate: Option<&[u8]>,
    client: &crate::model::ClientSnapshot,
    now: Timestamp,
) -> Result<KeyBinding, OAuthError> {
    let proof = proof::dpop(ctx, dpop, PATH, None, now).await?;
    let dpop_jkt = match (params.get("dpop_jkt"), proof) {
        (Some(jkt), Some(p)) if jkt != p.jkt => {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "dpop_jkt does not match the key of the DPoP proof (RFC 9449 §10.1)",
            ))
        }
        (Some(jkt), _)
            if jkt.len() != 43
                || !jkt
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            return Err(OAuthError::invalid_request(
                "dpop_jkt must be a base64url SHA-256 JWK thumbprint",
            ))
        }
        (Some(jkt), _) => Some(jkt.to_owned()),
        (None, Some(p)) => Some(p.jkt),
        (None, None) => None,
    };
    let rule = resolve::caps(&ctx.policy, client).binding;
    // RFC 8705 §3: a pushed client that asks for certificate-bound tokens,
    // or authenticates with its certificate, binds that certificate now.
    let x5t_s256 = match (rule.certificate, certificate) {
        (true, Some(der)) => Some(ephemera_proto::jose::sha256_b64(der)),
        (true, None) => {
            return Err(OAuthError::invalid_request(
                "this registration binds tokens to a client certificate: send the request over mutual TLS",
            ))
        }
        (false, _) => None,
    };
    let binding = KeyBinding { dpop_jkt, x5t_s256 };
    if binding.dpop_jkt.is_none() && rule.dpop {
        return Err(OAuthError::invalid_request(
            "the registration says dpop_bound_access_tokens: send a DPoP proof with this request",
        ));
    }
    if binding.is_none() && rule.required {
        return Err(OAuthError::invalid_request(
            "this server requires pushed clients to bind a key at PAR: send a DPoP proof (or dpop_jkt) or use mutual TLS",
        ));
    }
    Ok(binding)
}

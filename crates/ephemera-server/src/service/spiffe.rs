//! SPIFFE workloads as clients (draft-ietf-oauth-spiffe-client-auth): a
//! workload of a trust domain in `[spiffe.<name>]` authenticates at the
//! back channel with its JWT-SVID as the client assertion
//! (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-spiffe`).
//! Its SPIFFE ID is its `client_id`; it is registered nowhere: it resolves
//! to a `workload` client (`resolve::spiffe_workload`) with the grants,
//! scopes and resources of the first rule that admits its ID.
//!
//! The trust bundle comes from the operator (a file, or the trust domain's
//! bundle endpoint), never from the client. It is read again when a
//! JWT-SVID names a key it lacks (a rotation), at most every
//! [`REREAD_GAP`] seconds so made-up `kid`s cannot make us hammer the
//! endpoint, and an endpoint's after its `spiffe_refresh_hint`.
//!
//! A workload may instead present its X.509-SVID as the client certificate
//! in mutual TLS, with its SPIFFE ID as `client_id`: the certificate chains
//! to the bundle's `x509-svid` roots and names that ID alone in its URI SAN
//! ([`authenticate_x509`]); its tokens are bound to it (RFC 8705 §3) as any
//! certificate presented.
//!
//! Every refusal is `invalid_client` (RFC 6749 §5.2) with the reason.

use ephemera_proto::error::ErrorCode;
use ephemera_proto::spiffe::{self, Bundle, SpiffeId, SvidError, SvidExpectations};
use std::sync::Arc;

use super::client_auth::Caller;
use super::{resolve, token, Context, OAuthError};
use crate::config::spiffe::{read_bundle_file, BundleSource, Rule, TrustDomain};
use crate::model::{ClientSnapshot, Timestamp};

/// The least time between two reads of a bundle prompted by an unknown
/// `kid`, in seconds.
pub const REREAD_GAP: i64 = 30;
/// How long a fetched bundle is used when it has no `spiffe_refresh_hint`.
const DEFAULT_REFRESH: i64 = 300;
/// The bounds put on a bundle's `spiffe_refresh_hint`.
const REFRESH_BOUNDS: (i64, i64) = (30, 86_400);
/// The least clock skew allowed with a workload's platform, as for other
/// JWTs from another domain.
const MIN_LEEWAY: i64 = 30;

/// The caller a JWT-SVID client assertion authenticates; `client_id`, when
/// sent, must be its SPIFFE ID.
pub async fn authenticate(
    ctx: &Context,
    assertion: &str,
    client_id: Option<&str>,
    now: Timestamp,
) -> Result<Caller, OAuthError> {
    let domains = &ctx.policy.spiffe;
    if !domains.any() {
        return Err(OAuthError::invalid_client(
            "this server trusts no SPIFFE trust domain: jwt-spiffe client assertions are not accepted",
        ));
    }
    let id = spiffe::peek_subject(assertion).map_err(refused)?;
    if client_id.is_some_and(|c| c != id.as_str()) {
        return Err(OAuthError::invalid_client(
            "client_id must be the SPIFFE ID the JWT-SVID's sub names",
        ));
    }
    let Some(domain) = domains.find(id.trust_domain()) else {
        tracing::info!(trust_domain = %id.trust_domain(), "a JWT-SVID of an untrusted trust domain was refused");
        return Err(OAuthError::invalid_client(format!(
            "trust domain `{}` is not trusted here",
            id.trust_domain()
        )));
    };
    let svid = verify(ctx, domain, assertion, now).await?;
    let rule = admitted(ctx, domain, &svid.spiffe_id).await?;
    // The draft makes `jti` optional (SPIFFE implementations reuse a
    // JWT-SVID until it expires); when there is one, it is used once.
    if let Some(jti) = &svid.jti {
        let key = format!("spiffe:{}:{jti}", domain.name);
        let until = svid.exp + ctx.policy.proofs.leeway.max(MIN_LEEWAY);
        if !ctx.store.remember_jti(&key, until, now).await? {
            return Err(OAuthError::invalid_client(
                "the JWT-SVID was already used (its jti was seen before): fetch a new one",
            ));
        }
    }
    Ok(Caller::Workload {
        client: Box::new(resolve::spiffe_workload(
            &ctx.policy,
            domain,
            rule,
            &svid.spiffe_id,
        )),
    })
}

/// The rule that admits `id`, a SPIFFE ID no local user or registered
/// client has.
async fn admitted<'a>(
    ctx: &Context,
    domain: &'a TrustDomain,
    id: &SpiffeId,
) -> Result<&'a Rule, OAuthError> {
    let Some(rule) = domain.rule_for(id) else {
        tracing::info!(spiffe = %domain.name, workload = %id, "a SPIFFE ID outside every rule was refused");
        return Err(OAuthError::invalid_client(format!(
            "the SPIFFE ID `{id}` is outside every rule of [spiffe.{}]",
            domain.name
        )));
    };
    // RFC 9068 §5: a workload's tokens must not be taken for a person's or
    // another client's.
    let workload = id.as_str();
    if ctx.store.find_user(workload).await?.is_some()
        || ctx.store.find_client(workload).await?.is_some()
    {
        tracing::warn!(spiffe = %domain.name, %workload, "a SPIFFE ID named like a local user or client was refused");
        return Err(OAuthError::invalid_client(format!(
            "the SPIFFE ID `{workload}` is the identifier of a user or client of this server: its tokens could be taken for theirs"
        )));
    }
    Ok(rule)
}

/// Whether `client_id` is a SPIFFE ID of a trust domain configured here:
/// a caller that sends no credentials but it authenticates with its
/// X.509-SVID.
pub fn names_workload(ctx: &Context, client_id: &str) -> bool {
    SpiffeId::parse(client_id).is_ok_and(|id| ctx.policy.spiffe.find(id.trust_domain()).is_some())
}

/// The caller an X.509-SVID authenticates over mutual TLS (the draft's
/// X.509-SVID method, RFC 8705 §2.1 PKI client authentication): the client
/// certificate chains to a root of the trust domain's bundle (`x509-svid`
/// keys; the bundle read again once if it does not: a rotation), is no CA,
/// is valid now, and has exactly one URI SAN, the SPIFFE ID `client_id`
/// names.
pub async fn authenticate_x509(
    ctx: &Context,
    client_id: &str,
    certificate: Option<&[u8]>,
    now: Timestamp,
) -> Result<Caller, OAuthError> {
    let id = SpiffeId::parse(client_id)
        .map_err(|e| OAuthError::invalid_client(format!("client_id is not a SPIFFE ID: {e}")))?;
    let Some(domain) = ctx.policy.spiffe.find(id.trust_domain()) else {
        return Err(OAuthError::invalid_client(format!(
            "trust domain `{}` is not trusted here",
            id.trust_domain()
        )));
    };
    let Some(der) = certificate else {
        return Err(OAuthError::invalid_client(
            "a SPIFFE workload authenticates with a JWT-SVID (client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-spiffe) or with its X.509-SVID over mutual TLS",
        ));
    };
    let mut reread = false;
    let names = loop {
        let bundle = bundle(ctx, domain, reread, now).await?;
        match x509_svid(&bundle.x509_roots, der, now) {
            Err(X509Refusal::Chain(_)) if !reread => reread = true,
            Err(e) => {
                tracing::info!(spiffe = %domain.name, error = %e, "an X.509-SVID was refused");
                return Err(OAuthError::invalid_client(e.to_string()));
            }
            Ok(names) => break names,
        }
    };
    match names.as_slice() {
        [one] if one == id.as_str() => {}
        _ => {
            return Err(OAuthError::invalid_client(
                "the client certificate's URI SAN must be exactly one SPIFFE ID, the client_id (an X.509-SVID)",
            ))
        }
    }
    let rule = admitted(ctx, domain, &id).await?;
    Ok(Caller::Workload {
        client: Box::new(resolve::spiffe_workload(&ctx.policy, domain, rule, &id)),
    })
}

/// Why a client certificate is no X.509-SVID of the trust domain.
#[derive(Debug, thiserror::Error)]
enum X509Refusal {
    #[error("the trust domain's bundle has no x509-svid root")]
    NoRoots,
    #[error("the client certificate is not an X.509 certificate webpki reads: {0}")]
    Unreadable(webpki::Error),
    #[error("the client certificate does not chain to a root of the trust domain's bundle, is a CA or is not valid now: {0}")]
    Chain(webpki::Error),
}

/// Verifies `leaf` against `roots` at `now`; its URI SANs.
fn x509_svid(roots: &[Vec<u8>], leaf: &[u8], now: Timestamp) -> Result<Vec<String>, X509Refusal> {
    use rustls::pki_types::{CertificateDer, UnixTime};
    let anchors: Vec<_> = roots
        .iter()
        .filter_map(|root| {
            let der = CertificateDer::from(root.as_slice());
            webpki::anchor_from_trusted_cert(&der)
                .ok()
                .map(|a| a.to_owned())
        })
        .collect();
    if anchors.is_empty() {
        return Err(X509Refusal::NoRoots);
    }
    let der = CertificateDer::from(leaf);
    let cert = webpki::EndEntityCert::try_from(&der).map_err(X509Refusal::Unreadable)?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now).unwrap_or_default(),
    ));
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        time,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map_err(X509Refusal::Chain)?;
    Ok(cert.valid_uri_names().map(str::to_owned).collect())
}

/// The signature with the trust domain's bundle (read again once for a
/// `kid` it lacks), then the claims: `aud` this server's issuer identifier
/// or token endpoint, `exp` ahead and no further than `max_lifetime`.
async fn verify(
    ctx: &Context,
    domain: &TrustDomain,
    assertion: &str,
    now: Timestamp,
) -> Result<spiffe::JwtSvid, OAuthError> {
    let audiences = [
        ctx.issuer.to_string(),
        format!("{}{}", ctx.issuer, token::PATH),
    ];
    let expect = SvidExpectations {
        trust_domain: &domain.trust_domain,
        issuer: &ctx.issuer,
        audiences: &audiences,
        now,
        max_lifetime: domain.max_lifetime,
        leeway: ctx.policy.proofs.leeway.max(MIN_LEEWAY),
    };
    let mut reread = false;
    loop {
        let bundle = bundle(ctx, domain, reread, now).await?;
        match spiffe::verify_jwt_svid(assertion, &bundle.jwt_keys, &expect) {
            Err(SvidError::NoKey | SvidError::Signature) if !reread => reread = true,
            Err(e) => {
                tracing::info!(spiffe = %domain.name, error = %e, "a JWT-SVID was refused");
                return Err(refused(e));
            }
            Ok(svid) => return Ok(svid),
        }
    }
}

/// A JWT-SVID refused.
fn refused(e: SvidError) -> OAuthError {
    OAuthError::invalid_client(e.to_string())
}

/// The trust domain's bundle: as last read, unless it is stale (an
/// endpoint's, after its refresh hint) or `reread` asks for a new read and
/// the last is [`REREAD_GAP`] old. A failed read keeps the bundle in hand.
pub async fn bundle(
    ctx: &Context,
    domain: &TrustDomain,
    reread: bool,
    now: Timestamp,
) -> Result<Arc<Bundle>, OAuthError> {
    let current = domain.bundle.current();
    if let Some(loaded) = &current {
        let age = now - loaded.at;
        let stale = match domain.source {
            BundleSource::File(_) => false,
            BundleSource::Endpoint(_) => age >= refresh_after(&loaded.bundle),
        };
        if !stale && (!reread || age < REREAD_GAP) {
            return Ok(loaded.bundle.clone());
        }
    }
    let read = match &domain.source {
        BundleSource::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || read_bundle_file(&path))
                .await
                .unwrap_or_else(|e| Err(format!("reading the bundle file: {e}")))
        }
        BundleSource::Endpoint(url) => match ctx.upstream.fetch_json(url).await {
            Ok(value) => spiffe::parse_bundle(&value).map_err(|e| e.to_string()),
            Err(failure) => Err(format!("{failure:?}")),
        },
    };
    match (read, current) {
        (Ok(bundle), _) => Ok(domain.bundle.store(bundle, now)),
        (Err(e), Some(loaded)) => {
            tracing::warn!(spiffe = %domain.name, error = %e, "the trust bundle could not be read again; the one in hand is kept");
            Ok(domain.bundle.store((*loaded.bundle).clone(), now))
        }
        (Err(e), None) => {
            tracing::warn!(spiffe = %domain.name, error = %e, "the trust bundle could not be read");
            Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                format!(
                    "the trust bundle of `{}` cannot be had right now; try again in a little while",
                    domain.trust_domain
                ),
            ))
        }
    }
}

/// How long a fetched bundle is used: its `spiffe_refresh_hint`, bounded.
fn refresh_after(bundle: &Bundle) -> i64 {
    bundle
        .refresh_hint
        .map_or(DEFAULT_REFRESH, |h| i64::try_from(h).unwrap_or(i64::MAX))
        .clamp(REFRESH_BOUNDS.0, REFRESH_BOUNDS.1)
}

/// The rule a SPIFFE workload's snapshot was resolved under, as the policy
/// says now.
fn rule<'a>(ctx: &'a Context, client: &ClientSnapshot) -> Option<&'a Rule> {
    let domain = client.metadata.get("trust_domain")?.as_str()?;
    let id = SpiffeId::parse(&client.client_id).ok()?;
    ctx.policy.spiffe.find(domain)?.rule_for(&id)
}

/// RFC 8707: the resources a SPIFFE workload asks a token for are among
/// those its rule names; with a rule that names some, the request must
/// name one (a token for no resource would be good at any).
pub fn resources_allowed(
    ctx: &Context,
    client: &ClientSnapshot,
    asked: &[String],
) -> Result<(), OAuthError> {
    let Some(rule) = rule(ctx, client) else {
        return Err(OAuthError::invalid_client(
            "the SPIFFE ID is outside every rule of its trust domain now",
        ));
    };
    let Some(allowed) = &rule.resources else {
        return Ok(());
    };
    let invalid_target = |m: String| OAuthError::new(ErrorCode::InvalidTarget, m);
    if asked.is_empty() {
        return Err(invalid_target(format!(
            "this workload may get tokens only for some resources: name one with `resource` ({})",
            allowed.join(", ")
        )));
    }
    match asked.iter().find(|r| !allowed.contains(r)) {
        Some(r) => Err(invalid_target(format!(
            "this workload may not get tokens for `{r}` (its rule's resources)"
        ))),
        None => Ok(()),
    }
}

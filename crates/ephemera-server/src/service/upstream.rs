//! Signing in through an upstream identity provider: the browser is sent to
//! the provider with `state`, PKCE (S256) and, for OpenID Connect, a
//! `nonce`; its callback (one per provider, so a response cannot be
//! mistaken for another provider's: RFC 9207 §2 and `iss`) is checked,
//! the code exchanged, the ID Token (or the userinfo answer) read into the
//! user it signs in as (`federated`), and a session started as a password
//! would.
//!
//! What is stored between the two: an [`UpstreamLogin`] keyed by the hash
//! of `state` and bound to the browser by the hash of a value derived from
//! its cookie. The PKCE verifier and the nonce are derived from the cookie
//! and `state`, never stored; where the browser returns (a pending
//! authorization request's `request_uri`, or the account page) is sealed
//! with a key derived from both. The callback takes the record once, so a
//! replayed callback finds nothing. Nothing else is written until every
//! check has passed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use ephemera_proto::error::ErrorCode;
use ephemera_proto::form::Params;
use ephemera_proto::id_token::{self, Expected, IdTokenError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::consent;
use super::federated::{self, Federation, Identity};
use super::login::{csrf_error, csrf_valid, start_session};
use super::pending::find_pending;
use super::request::AuthorizeError;
use super::{Context, OAuthError};
use crate::config::upstream::{Provider, ProviderKind};
use crate::model::{SignIn, Timestamp, UpstreamLogin};
use crate::secret::{self, Secret, SecretHash};
use crate::upstream::{ProviderMetadata, UpstreamFailure};

/// Where the browser goes after signing in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum ReturnTo {
    /// The pending authorization request (pushed ones included).
    Authorize {
        client_id: String,
        request_uri: String,
    },
    /// The account page.
    Account,
}

/// A provider as the sign-in pages offer it.
#[derive(Debug, Clone)]
pub struct Offer {
    pub name: String,
    pub label: String,
}

/// The providers the sign-in pages offer, and whether they show the
/// password form.
pub fn offers(ctx: &Context) -> (Vec<Offer>, bool) {
    let config = &ctx.upstream.config;
    let offers = config
        .providers
        .iter()
        .map(|p| Offer {
            name: p.name.clone(),
            label: p.label.clone(),
        })
        .collect();
    (offers, config.passwords)
}

/// The callback URL of a provider: one per provider.
pub fn callback_url(ctx: &Context, provider: &str) -> String {
    format!("{}/login/upstream/{provider}/callback", ctx.issuer)
}

/// `POST /login/upstream/<name>`: stores the sign-in and returns the
/// provider's authorization URL. The form comes from the login page
/// (`client_id`, `request_uri`) or the account page (`return=account`).
pub async fn start(
    ctx: &Context,
    name: &str,
    form: &Params,
    cookie: Option<&str>,
    now: Timestamp,
) -> Result<String, OAuthError> {
    if !csrf_valid(cookie, form) {
        return Err(csrf_error());
    }
    // A valid CSRF token means there is a cookie.
    let cookie = cookie.unwrap_or_default();
    let provider = find_provider(ctx, name)?;
    let return_to = match (form.get("client_id"), form.get("request_uri")) {
        (Some(client_id), Some(request_uri)) => {
            // The request must exist and be this client's now; it is looked
            // up again when the browser comes back.
            find_pending(ctx, client_id, request_uri, now).await?;
            ReturnTo::Authorize {
                client_id: client_id.to_owned(),
                request_uri: request_uri.to_owned(),
            }
        }
        _ if form.get("return") == Some("account") => ReturnTo::Account,
        _ => {
            return Err(OAuthError::invalid_request(
                "the sign-in form lost its client_id or request_uri",
            ))
        }
    };
    let metadata = ctx
        .upstream
        .metadata(provider)
        .await
        .map_err(|f| failure(provider, f))?;
    let state = Secret::generate();
    let derived = Derived::new(cookie, state.expose());
    ctx.store
        .insert_upstream_login(&UpstreamLogin {
            state_hash: state.hash(),
            browser_hash: browser_hash(cookie),
            provider: provider.name.clone(),
            return_to: derived.seal(&return_to)?,
            created_at: now,
            expires_at: now + ctx.policy.lifetimes.interaction,
        })
        .await?;
    let mut url = metadata.authorization_endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", &callback_url(ctx, &provider.name))
            .append_pair("state", state.expose())
            .append_pair("code_challenge", &derived.challenge())
            .append_pair("code_challenge_method", "S256");
        if !provider.scopes.is_empty() {
            query.append_pair("scope", &provider.scopes.join(" "));
        }
        if matches!(provider.kind, ProviderKind::Oidc { .. }) {
            query.append_pair("nonce", &derived.nonce);
        }
    }
    tracing::info!(provider = %provider.name, "sign-in sent to an upstream provider");
    Ok(url.into())
}

/// A signed-in browser and where it goes.
#[derive(Debug)]
pub struct SignedIn {
    pub session: Secret,
    pub next: String,
}

/// `GET /login/upstream/<name>/callback`: every check, then the user and
/// a session. A refusal is an error page, except the provider's
/// `access_denied` for a pending authorization request, which the client
/// is told (RFC 6749 §4.1.2.1) as if the user had denied consent.
pub async fn callback(
    ctx: &Context,
    name: &str,
    params: &Params,
    cookie: Option<&str>,
    now: Timestamp,
) -> Result<SignedIn, AuthorizeError> {
    let provider = find_provider(ctx, name)?;
    let Some(state) = params.get("state") else {
        return Err(refused(provider, "the answer has no `state`").into());
    };
    // Taken at once, whatever follows: a callback is answered once.
    let Some(login) = ctx
        .store
        .take_upstream_login(&SecretHash::of(state), now)
        .await
        .map_err(OAuthError::from)?
    else {
        return Err(refused(
            provider,
            "this sign-in is unknown, has expired, or was completed already (the `state` matches no sign-in in progress)",
        )
        .into());
    };
    let cookie = match cookie {
        Some(c)
            if secret::ct_eq_bytes(browser_hash(c).as_bytes(), login.browser_hash.as_bytes()) =>
        {
            c
        }
        _ => {
            return Err(refused(
                provider,
                "this sign-in was started in another browser (or its cookie is gone)",
            )
            .into())
        }
    };
    // RFC 9207 §2 (mix-up): the answer arrived at another provider's callback.
    if login.provider != provider.name {
        return Err(refused(
            provider,
            "the answer came back to another provider's callback than the one the sign-in went to",
        )
        .into());
    }
    let derived = Derived::new(cookie, state);
    let return_to = derived.open(&login.return_to)?;
    let metadata = ctx
        .upstream
        .metadata(provider)
        .await
        .map_err(|f| failure(provider, f))?;
    // RFC 9207 §2.4: `iss` must be the provider's, when it says it sends it
    // or sends it anyway.
    match params.get("iss") {
        Some(iss) if iss != metadata.issuer => {
            return Err(refused(provider, "the answer's `iss` is not the provider's issuer").into())
        }
        None if metadata.iss_parameter_supported => {
            return Err(refused(
                provider,
                "the answer has no `iss`, which the provider says it always sends",
            )
            .into())
        }
        _ => {}
    }
    if let Some(error) = params.get("error") {
        let description = params
            .get("error_description")
            .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        tracing::info!(provider = %provider.name, error, "the upstream provider refused the sign-in");
        if let (
            Some("access_denied"),
            ReturnTo::Authorize {
                client_id,
                request_uri,
            },
        ) = (params.get("error"), &return_to)
        {
            return Err(consent::deny(ctx, client_id, request_uri, now).await);
        }
        return Err(OAuthError::new(
            ErrorCode::AccessDenied,
            format!(
                "{} did not sign you in: {}{description}",
                provider.label,
                error.chars().take(64).collect::<String>()
            ),
        )
        .into());
    }
    let Some(code) = params.get("code") else {
        return Err(refused(provider, "the answer has neither a code nor an error").into());
    };
    let (identity, sign_in) = identify(ctx, provider, &metadata, code, &derived, now).await?;
    let from = Federation {
        issuer: provider.issuer(),
        name: &provider.name,
        link_existing: provider.link_existing,
    };
    let user = federated::user_for(ctx, from, &identity, now).await?;
    let session = start_session(ctx, &user, sign_in, now).await?;
    tracing::info!(provider = %provider.name, user = %user.id, "signed in through an upstream provider");
    let next = match return_to {
        ReturnTo::Authorize {
            client_id,
            request_uri,
        } => {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("client_id", &client_id)
                .append_pair("request_uri", &request_uri)
                .finish();
            format!("{}/authorize?{query}", ctx.issuer)
        }
        ReturnTo::Account => format!("{}/account", ctx.issuer),
    };
    Ok(SignedIn { session, next })
}

/// The code exchanged, the ID Token checked (OpenID Connect) and the
/// userinfo read, into who the provider says signed in, and how.
async fn identify(
    ctx: &Context,
    provider: &Provider,
    metadata: &ProviderMetadata,
    code: &str,
    derived: &Derived,
    now: Timestamp,
) -> Result<(Identity, SignIn), OAuthError> {
    let answer = ctx
        .upstream
        .exchange_code(
            provider,
            metadata,
            code,
            &derived.verifier,
            &callback_url(ctx, &provider.name),
        )
        .await
        .map_err(|f| failure(provider, f))?;
    let oidc = matches!(provider.kind, ProviderKind::Oidc { .. });
    let mut claims = Map::new();
    let mut sign_in = SignIn {
        amr: vec!["fed".to_owned()],
        acr: None,
        provider: Some(provider.name.clone()),
    };
    if oidc {
        let Some(token) = &answer.id_token else {
            return Err(refused(provider, "the token response has no ID Token"));
        };
        claims = verify_id_token(ctx, provider, metadata, token, &derived.nonce, now).await?;
        let amr: Vec<String> = claims
            .get("amr")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .take(10)
                    .collect()
            })
            .unwrap_or_default();
        if !amr.is_empty() {
            sign_in.amr = amr;
        }
        sign_in.acr = claims.get("acr").and_then(Value::as_str).map(str::to_owned);
    }
    // The userinfo answer: the whole identity of a plain OAuth 2 provider;
    // for OpenID Connect, the claims the ID Token leaves out, for the same
    // `sub` only (Core §5.3.2).
    if let (Some(endpoint), Some(access_token)) =
        (&metadata.userinfo_endpoint, &answer.access_token)
    {
        let info = ctx
            .upstream
            .userinfo(endpoint, access_token)
            .await
            .map_err(|f| failure(provider, f))?;
        if oidc {
            if info.get("sub") != claims.get("sub") {
                return Err(refused(
                    provider,
                    "userinfo is about another `sub` than the ID Token",
                ));
            }
            for (k, v) in info {
                claims.entry(k).or_insert(v);
            }
        } else {
            claims = info;
        }
    } else if !oidc {
        return Err(refused(
            provider,
            "the token response has no access token for userinfo",
        ));
    }
    let Some(identity) = Identity::from_claims(&claims, &provider.claims) else {
        return Err(refused(
            provider,
            &format!(
                "the provider did not say who signed in (no `{}` claim)",
                provider.claims.subject
            ),
        ));
    };
    Ok((identity, sign_in))
}

/// The ID Token checked against the provider's keys; the keys are fetched
/// again once when none fits (the provider rotated them).
async fn verify_id_token(
    ctx: &Context,
    provider: &Provider,
    metadata: &ProviderMetadata,
    token: &str,
    nonce: &str,
    now: Timestamp,
) -> Result<Map<String, Value>, OAuthError> {
    let expected = Expected {
        issuer: &metadata.issuer,
        client_id: &provider.client_id,
        nonce,
        now,
        leeway: ctx.policy.proofs.leeway.max(30),
    };
    let mut refresh = false;
    loop {
        let keys = ctx
            .upstream
            .keys(provider, metadata, refresh)
            .await
            .map_err(|f| failure(provider, f))?;
        match id_token::verify(token, &keys, &expected) {
            Err(IdTokenError::NoKey | IdTokenError::Signature) if !refresh => refresh = true,
            Err(e) => {
                tracing::info!(provider = %provider.name, error = %e, "an upstream ID Token was refused");
                return Err(refused(provider, &e.to_string()));
            }
            Ok(claims) => return Ok(claims),
        }
    }
}

fn find_provider<'a>(ctx: &'a Context, name: &str) -> Result<&'a Provider, OAuthError> {
    ctx.upstream.config.find(name).ok_or_else(|| {
        OAuthError::invalid_request("there is no sign-in provider of that name on this server")
    })
}

/// A sign-in refused for what the provider (or the browser) sent.
fn refused(provider: &Provider, why: &str) -> OAuthError {
    tracing::info!(provider = %provider.name, why, "an upstream sign-in was refused");
    OAuthError::new(
        ErrorCode::AccessDenied,
        format!("signing in through {} failed: {why}", provider.label),
    )
}

/// What the user is told when the provider could not be used.
fn failure(provider: &Provider, f: UpstreamFailure) -> OAuthError {
    match f {
        UpstreamFailure::Unreachable(detail) => {
            tracing::warn!(provider = %provider.name, %detail, "an upstream provider is not answering");
            OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                format!(
                    "{} is not answering right now, so signing in through it is not possible; try again in a little while",
                    provider.label
                ),
            )
        }
        UpstreamFailure::Invalid(detail) => {
            tracing::warn!(provider = %provider.name, %detail, "an upstream provider answered wrongly");
            OAuthError::new(
                ErrorCode::ServerError,
                format!(
                    "{} answered in a way this server does not accept; the operator has the details in the log",
                    provider.label
                ),
            )
        }
        UpstreamFailure::TokenError { error, description } => {
            tracing::info!(provider = %provider.name, %error, ?description, "the upstream token endpoint refused the code");
            refused(
                provider,
                &format!("its token endpoint refused the code ({error})"),
            )
        }
    }
}

/// The hash stored to bind a sign-in to the browser: of a value derived
/// from its cookie (never the cookie's own hash, which keys sessions).
fn browser_hash(cookie: &str) -> SecretHash {
    SecretHash::of(&secret::derive("ephemera upstream browser", cookie))
}

/// What one sign-in derives from the browser's cookie and its `state`:
/// secrets the server need not store.
struct Derived {
    /// RFC 7636 `code_verifier`: 43 base64url characters.
    verifier: String,
    nonce: String,
    seal_key: [u8; 32],
}

impl Derived {
    fn new(cookie: &str, state: &str) -> Self {
        let input = format!("{cookie}.{state}");
        let mut h = Sha256::new();
        h.update(b"ephemera upstream seal\0");
        h.update(input.as_bytes());
        Self {
            verifier: secret::derive("ephemera upstream pkce", &input),
            nonce: secret::derive("ephemera upstream nonce", &input),
            seal_key: h.finalize().into(),
        }
    }

    fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }

    /// The key is this sign-in's alone, so a fixed nonce is never reused
    /// with it.
    fn seal(&self, to: &ReturnTo) -> Result<String, OAuthError> {
        let json = serde_json::to_vec(to).map_err(|_| OAuthError::server_error())?;
        ChaCha20Poly1305::new((&self.seal_key).into())
            .encrypt(&Default::default(), json.as_slice())
            .map(|sealed| URL_SAFE_NO_PAD.encode(sealed))
            .map_err(|_| OAuthError::server_error())
    }

    fn open(&self, sealed: &str) -> Result<ReturnTo, OAuthError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| OAuthError::server_error())?;
        let json = ChaCha20Poly1305::new((&self.seal_key).into())
            .decrypt(&Default::default(), bytes.as_slice())
            .map_err(|_| {
                tracing::error!("a stored upstream sign-in does not open with its browser's key");
                OAuthError::server_error()
            })?;
        serde_json::from_slice(&json).map_err(|_| OAuthError::server_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_return_target_opens_only_with_the_same_cookie_and_state() {
        let to = ReturnTo::Authorize {
            client_id: "c".into(),
            request_uri: "urn:ietf:params:oauth:request_uri:x".into(),
        };
        let sealed = Derived::new("cookie", "state").seal(&to).ok();
        let sealed = sealed.unwrap_or_default();
        assert!(!sealed.contains("request_uri"));
        assert_eq!(Derived::new("cookie", "state").open(&sealed).ok(), Some(to));
        assert!(Derived::new("other", "state").open(&sealed).is_err());
        assert!(Derived::new("cookie", "other").open(&sealed).is_err());
    }

    #[test]
    fn the_verifier_is_a_valid_pkce_verifier_and_differs_per_sign_in() {
        let a = Derived::new("cookie", "s1");
        let b = Derived::new("cookie", "s2");
        assert_eq!(a.verifier.len(), 43);
        assert!(ephemera_proto::pkce::CodeVerifier::parse(&a.verifier).is_ok());
        assert_ne!(a.verifier, b.verifier);
        assert_ne!(a.nonce, b.nonce);
    }
}

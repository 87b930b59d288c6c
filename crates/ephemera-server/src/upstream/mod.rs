//! The HTTP side of upstream identity providers, for `service::upstream`:
//! OpenID Connect discovery and the provider's JWKS (fetched when first
//! needed, cached, a failure remembered briefly so a provider that is down
//! is asked again at most every [`RETRY_AFTER_FAILURE`]), the token request
//! and the userinfo request; and the JWKS of the trusted issuers whose
//! JWTs are authorization grants, for `service::assertion_grant`; SPIFFE
//! bundle endpoints (`fetch_json`) for `service::spiffe`.
//!
//! Providers are configured by the operator, so they are trusted to be
//! reached (unlike metadata documents, no address guard); every request
//! still has connect and total timeouts, follows no redirect and stops
//! reading at [`MAX_BODY`]. Secrets (codes, tokens, the client secret) are
//! never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ephemera_proto::jose::PublicJwk;
use serde_json::{Map, Value};
use url::Url;

use crate::config::upstream::{AuthMethod, Provider, ProviderKind, Upstreams};

/// The largest answer read from a provider.
pub const MAX_BODY: usize = 256 * 1024;
/// How long discovery and keys are kept before they are fetched again.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// How long a failed discovery is remembered: sign-ins in that time fail at
/// once instead of each waiting for the timeout.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// The least time between two fetches of a provider's keys prompted by an
/// unknown `kid` (key rotation), so bad tokens cannot make us hammer it.
const JWKS_REFETCH_GAP: Duration = Duration::from_secs(30);

/// Why a provider could not be used; what the user is told is decided by
/// the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// No answer: connection refused, timeout, or a 5xx. The detail is
    /// for the log.
    Unreachable(String),
    /// An answer that is not what the protocol says (bad JSON, a wrong
    /// issuer in discovery, a missing field).
    Invalid(String),
    /// The token endpoint's error response (RFC 6749 §5.2).
    TokenError {
        error: String,
        description: Option<String>,
    },
}

/// What sign-in needs to know of a provider: its discovery document, or the
/// configured endpoints of a plain OAuth 2 one.
#[derive(Debug, Clone)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub userinfo_endpoint: Option<Url>,
    pub jwks_uri: Option<Url>,
    /// `token_endpoint_auth_methods_supported` (its default when absent:
    /// `client_secret_basic`).
    pub auth_methods: Vec<String>,
    /// RFC 9207 §3: the provider sends `iss` with every authorization response.
    pub iss_parameter_supported: bool,
}

/// A token response's parts that sign-in uses.
#[derive(Debug)]
pub struct TokenAnswer {
    pub access_token: Option<String>,
    pub id_token: Option<String>,
}

#[derive(Debug, Clone)]
enum Cached<T> {
    Ok(Arc<T>, Instant),
    Failed(UpstreamFailure, Instant),
}

/// A provider's signing keys and when they were fetched.
type CachedKeys = (Arc<Vec<PublicJwk>>, Instant);

/// The providers and their caches, shared by every request.
pub struct UpstreamClient {
    pub config: Upstreams,
    http: reqwest::Client,
    discovery: Mutex<HashMap<String, Cached<ProviderMetadata>>>,
    keys: Mutex<HashMap<String, CachedKeys>>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl UpstreamClient {
    pub fn new(config: Upstreams) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .referer(false)
            .user_agent(concat!("Ephemera/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the upstream providers' HTTP client: {e}"))?;
        Ok(Self {
            config,
            http,
            discovery: Mutex::default(),
            keys: Mutex::default(),
        })
    }

    /// The provider's metadata: configured (`oauth2`), or its discovery
    /// document, cached (`oidc`).
    pub async fn metadata(
        &self,
        provider: &Provider,
    ) -> Result<Arc<ProviderMetadata>, UpstreamFailure> {
        let issuer = match &provider.kind {
            ProviderKind::OAuth2(e) => {
                return Ok(Arc::new(ProviderMetadata {
                    issuer: e.issuer.clone(),
                    authorization_endpoint: e.authorization_endpoint.clone(),
                    token_endpoint: e.token_endpoint.clone(),
                    userinfo_endpoint: Some(e.userinfo_url.clone()),
                    jwks_uri: None,
                    auth_methods: vec!["client_secret_basic".into(), "client_secret_post".into()],
                    iss_parameter_supported: false,
                }))
            }
            ProviderKind::Oidc { issuer } => issuer,
        };
        let cached = self
            .discovery
            .lock()
            .ok()
            .and_then(|c| c.get(&provider.name).cloned());
        match cached {
            Some(Cached::Ok(m, at)) if at.elapsed() < CACHE_FOR => return Ok(m),
            Some(Cached::Failed(f, at)) if at.elapsed() < RETRY_AFTER_FAILURE => return Err(f),
            _ => {}
        }
        let result = self.discover(issuer).await.map(Arc::new);
        if let Ok(mut cache) = self.discovery.lock() {
            let entry = match &result {
                Ok(m) => Cached::Ok(m.clone(), Instant::now()),
                Err(f) => Cached::Failed(f.clone(), Instant::now()),
            };
            cache.insert(provider.name.clone(), entry);
        }
        if let Err(f) = &result {
            tracing::warn!(provider = %provider.name, failure = ?f, "upstream discovery failed");
        }
        result
    }

    async fn discover(&self, issuer: &str) -> Result<ProviderMetadata, UpstreamFailure> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self.get_json(&url, None).await?;
        let text = |k: &str| doc.get(k).and_then(Value::as_str);
        let url_of = |k: &str| -> Result<Option<Url>, UpstreamFailure> {
            text(k)
                .map(|u| {
                    Url::parse(u).map_err(|_| {
                        UpstreamFailure::Invalid(format!("discovery: `{k}` is not a URL"))
                    })
                })
                .transpose()
        };
        // OpenID Connect Discovery §4.3: the issuer must be exactly the one
        // the document was fetched for.
        if text("issuer") != Some(issuer) {
            return Err(UpstreamFailure::Invalid(
                "discovery: the document's `issuer` is not the configured issuer".into(),
            ));
        }
        let required = |k: &str| {
            url_of(k)?.ok_or_else(|| UpstreamFailure::Invalid(format!("discovery: no `{k}`")))
        };
        let strings = |k: &str| -> Vec<String> {
            doc.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut auth_methods = strings("token_endpoint_auth_methods_supported");
        if auth_methods.is_empty() {
            auth_methods.push("client_secret_basic".into());
        }
        Ok(ProviderMetadata {
            issuer: issuer.to_owned(),
            authorization_endpoint: required("authorization_endpoint")?,
            token_endpoint: required("token_endpoint")?,
            userinfo_endpoint: url_of("userinfo_endpoint")?,
            jwks_uri: Some(required("jwks_uri")?),
            auth_methods,
            iss_parameter_supported: doc
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// The provider's signing keys, cached; `refresh` fetches them again
    /// (a `kid` not among them: the provider rotated its keys), at most
    /// once per [`JWKS_REFETCH_GAP`].
    pub async fn keys(
        &self,
        provider: &Provider,
        metadata: &ProviderMetadata,
        refresh: bool,
    ) -> Result<Arc<Vec<PublicJwk>>, UpstreamFailure> {
        let Some(uri) = &metadata.jwks_uri else {
            return Err(UpstreamFailure::Invalid(
                "the provider publishes no keys".into(),
            ));
        };
        self.jwks(&provider.name, uri, refresh).await
    }

    /// The signing keys of the JWK Set at `uri`, cached under `cache_key`
    /// (a provider's name; `trusted:<name>` for a trusted issuer's, which
    /// no provider name can be), fetched again on `refresh` at most once
    /// per [`JWKS_REFETCH_GAP`].
    pub async fn jwks(
        &self,
        cache_key: &str,
        uri: &Url,
        refresh: bool,
    ) -> Result<Arc<Vec<PublicJwk>>, UpstreamFailure> {
        let cached = self
            .keys
            .lock()
            .ok()
            .and_then(|c| c.get(cache_key).cloned());
        if let Some((keys, at)) = &cached {
            let fresh = at.elapsed() < CACHE_FOR;
            if fresh && (!refresh || at.elapsed() < JWKS_REFETCH_GAP) {
                return Ok(keys.clone());
            }
        }
        let jwks = self.get_json(uri.as_str(), None).await?;
        let keys = Arc::new(ephemera_proto::id_token::signing_keys(&jwks));
        if let Ok(mut cache) = self.keys.lock() {
            cache.insert(cache_key.to_owned(), (keys.clone(), Instant::now()));
        }
        Ok(keys)
    }

    /// The token request (RFC 6749 §4.1.3) with the PKCE verifier, the
    /// client authenticating as the configuration or the provider's
    /// metadata says (Basic when both are allowed).
    pub async fn exchange_code(
        &self,
        provider: &Provider,
        metadata: &ProviderMetadata,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenAnswer, UpstreamFailure> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut request = self
            .http
            .post(metadata.token_endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match (&provider.client_secret, auth_method(provider, metadata)) {
            (Some(secret), AuthMethod::Basic) => {
                // RFC 6749 §2.3.1: both parts form-encoded first.
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                request = request.basic_auth(enc(&provider.client_id), Some(enc(secret.expose())));
            }
            (Some(secret), AuthMethod::Post) => {
                form.push(("client_id", &provider.client_id));
                form.push(("client_secret", secret.expose()));
            }
            (None, _) => form.push(("client_id", &provider.client_id)),
        }
        let response = request.form(&form).send().await.map_err(unreachable)?;
        let status = response.status();
        if status.is_server_error() {
            return Err(UpstreamFailure::Unreachable(format!(
                "the token endpoint answered {status}"
            )));
        }
        let body = read_json(response).await?;
        if !status.is_success() || body.get("error").is_some() {
            let text = |k: &str| {
                body.get(k)
                    .and_then(Value::as_str)
                    .map(|s| s.chars().take(200).collect::<String>())
            };
            return Err(UpstreamFailure::TokenError {
                error: text("error").unwrap_or_else(|| format!("HTTP {status}")),
                description: text("error_description"),
            });
        }
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(TokenAnswer {
            access_token: text("access_token"),
            id_token: text("id_token"),
        })
    }

    /// The userinfo answer for `access_token` (a JSON object).
    pub async fn userinfo(
        &self,
        endpoint: &Url,
        access_token: &str,
    ) -> Result<Map<String, Value>, UpstreamFailure> {
        match self.get_json(endpoint.as_str(), Some(access_token)).await? {
            Value::Object(m) => Ok(m),
            _ => Err(UpstreamFailure::Invalid(
                "userinfo is not a JSON object".into(),
            )),
        }
    }

    /// A JSON document at `url` the operator configured (a SPIFFE trust
    /// domain's bundle endpoint), under the same limits as every fetch
    /// here; cached by the caller.
    pub async fn fetch_json(&self, url: &Url) -> Result<Value, UpstreamFailure> {
        self.get_json(url.as_str(), None).await
    }

    async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<Value, UpstreamFailure> {
        let mut request = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if status.is_server_error() {
            return Err(UpstreamFailure::Unreachable(format!(
                "{url} answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(UpstreamFailure::Invalid(format!("{url} answered {status}")));
        }
        read_json(response).await
    }
}

/// The client authentication method for the token request: the configured
/// one, else Basic if the provider allows it, else post.
fn auth_method(provider: &Provider, metadata: &ProviderMetadata) -> AuthMethod {
    provider.auth_method.unwrap_or_else(|| {
        let allows = |m: AuthMethod| metadata.auth_methods.iter().any(|a| a == m.as_str());
        if !allows(AuthMethod::Basic) && allows(AuthMethod::Post) {
            AuthMethod::Post
        } else {
            AuthMethod::Basic
        }
    })
}

fn unreachable(e: reqwest::Error) -> UpstreamFailure {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's error names the URL, never a body or a header.
    UpstreamFailure::Unreachable(format!("{what}: {e}"))
}

/// The body as JSON, reading at most [`MAX_BODY`] bytes.
async fn read_json(mut response: reqwest::Response) -> Result<Value, UpstreamFailure> {
    if response
        .content_length()
        .is_some_and(|l| l > MAX_BODY as u64)
    {
        return Err(UpstreamFailure::Invalid("the answer is too large".into()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(UpstreamFailure::Invalid("the answer is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    if ephemera_proto::json::too_deep(&body, ephemera_proto::json::MAX_DEPTH) {
        return Err(UpstreamFailure::Invalid(
            "the answer is nested too deeply".into(),
        ));
    }
    serde_json::from_slice(&body)
        .map_err(|_| UpstreamFailure::Invalid("the answer is not JSON".into()))
}

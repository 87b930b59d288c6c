//! The fetcher of Client ID Metadata Documents: the network adapter behind
//! [`DocumentSource`], applying the rules of `ephemera_proto::client_document`.
//!
//! Fetching a URL a stranger chose is a server-side request forgery surface,
//! so the [`DocumentFetcher`]:
//! - refuses URLs outside the draft's rules ("Client Identifier URL": https,
//!   a path, no fragment, no userinfo, no dot segments) and any URL not
//!   written in normalized form, so one document has exactly one `client_id`;
//! - never connects to loopback, private, link-local, multicast, CGNAT,
//!   documentation or other special-use addresses (RFC 6890; the draft's
//!   "SSRF Attacks" section): IP-literal hosts are
//!   checked before any request, and host names are resolved by
//!   [`resolver::GuardedResolver`], which drops such addresses from the answer, so the
//!   check applies to the addresses actually connected to (DNS rebinding
//!   cannot slip past it). An operator allow-list exempts named hosts;
//! - ignores proxy environment variables (a proxy would resolve the name for
//!   us, out of the guard's sight), follows no redirect, bounds connect and
//!   total time, and stops reading as soon as the body passes the size limit;
//! - fetches the keys a document names by `jwks_uri` under the same rules
//!   (the URL rules, the address guard, the host limit, the size and time
//!   bounds), as part of the document: a document whose keys cannot be had
//!   is refused;
//! - caches documents (with their keys) per `Cache-Control`, clamped to the
//!   policy's bounds;
//! - so that it cannot be used to hit a third party's host as often as
//!   anyone asks: merges concurrent fetches of one URL into one, remembers a
//!   failure for `failure_cache` (never as a document: the draft forbids
//!   caching an error as one), and fetches from one host at most
//!   `per_host_per_minute` times a minute;
//! - tells the client the same thing whatever went wrong on the way to the
//!   document (connection, timeout, status, redirect, an address it does not
//!   fetch from): which one is logged, so a client cannot map what the
//!   server reaches.
//!
//! | module | owns |
//! |---|---|
//! | this file | fetching, the caches, merging and limits |
//! | [`federation`] | entity statements (OpenID Federation) through the same fetcher |
//! | [`resolver`] | the resolver that drops addresses the server never connects to |
//! | `tests` | the fetcher against local https servers |

pub mod federation;
pub mod resolver;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ephemera_proto::client_document::{self, UrlRefusal};
use reqwest::header::{HeaderMap, ACCEPT, AGE, CACHE_CONTROL, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::model::Timestamp;
use crate::policy::DocumentPolicy;
use crate::service::metadata_document::{DocumentError, DocumentSource, FetchedDocument};
use resolver::{is_allowed, normalize_host, ForbiddenAddresses, GuardedResolver};

/// Fetches, checks and caches client ID metadata documents. Share one per
/// process: it holds the connection pool and the cache.
pub struct DocumentFetcher {
    policy: DocumentPolicy,
    allow_hosts: Arc<[String]>,
    client: reqwest::Client,
    cache: Cache<FetchedDocument>,
    /// Failed fetches, remembered for `failure_cache`.
    failures: Cache<DocumentError>,
    /// Fetches under way, by URL: a request for a URL being fetched waits
    /// for that fetch instead of starting another.
    in_flight: Mutex<HashMap<String, Arc<InFlight>>>,
    /// Fetches per host.
    per_host: Option<crate::throttle::RateLimiter>,
}

/// One fetch, shared by everyone asking for its URL meanwhile.
type InFlight = tokio::sync::OnceCell<Result<FetchedDocument, DocumentError>>;

impl std::fmt::Debug for DocumentFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentFetcher")
            .field("policy", &self.policy)
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl DocumentFetcher {
    /// Builds the HTTP client; fails on an unusable extra root certificate.
    pub fn new(policy: DocumentPolicy) -> Result<Self, String> {
        let allow_hosts: Arc<[String]> = policy
            .allow_hosts
            .iter()
            .map(|h| normalize_host(h))
            .collect();
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            // The draft ("Client Information Discovery"): MUST NOT follow
            // redirects; one could also point the server inward.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve host names itself, bypassing the guard.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_hosts: allow_hosts.clone(),
            }))
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.total_timeout)
            .referer(false)
            .user_agent(concat!("Ephemera/", env!("CARGO_PKG_VERSION")));
        for (i, pem) in policy.extra_roots_pem.iter().enumerate() {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("extra root certificate {i}: {e}"))?;
            if certs.is_empty() {
                return Err(format!("extra root certificate {i} holds no certificate"));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| format!("building the metadata document HTTP client: {e}"))?;
        let per_host = (policy.per_host_per_minute > 0).then(|| {
            crate::throttle::RateLimiter::new(
                crate::config::Rate {
                    count: policy.per_host_per_minute,
                    seconds: 60,
                },
                policy.max_cache_entries,
            )
        });
        Ok(Self {
            cache: Cache::new(policy.max_cache_entries),
            failures: Cache::new(policy.max_cache_entries),
            in_flight: Mutex::default(),
            per_host,
            policy,
            allow_hosts,
            client,
        })
    }

    /// Resolves a URL `client_id` into its validated metadata: from the cache
    /// while fresh at `now` (Unix seconds), else by fetching it, together
    /// with every other request for it meanwhile. A failure is remembered
    /// for `failure_cache`.
    pub async fn fetch(&self, client_id: &str, now: i64) -> Result<FetchedDocument, DocumentError> {
        if !self.policy.enabled {
            return Err(DocumentError::Disabled);
        }
        let (url, host) = check_client_id(client_id, &self.allow_hosts)?;
        if let Some(doc) = self.cache.get(client_id, now) {
            return Ok(doc);
        }
        if let Some(error) = self.failures.get(client_id, now) {
            return Err(error);
        }
        let shared = {
            let mut in_flight = lock(&self.in_flight);
            if in_flight.len() >= self.policy.max_cache_entries {
                // Fetches whose every asker went away before they finished.
                in_flight.retain(|_, f| Arc::strong_count(f) > 1);
            }
            in_flight.entry(client_id.to_owned()).or_default().clone()
        };
        let result = shared
            .get_or_init(|| self.fetch_now(client_id, url, host, now))
            .await
            .clone();
        let mut in_flight = lock(&self.in_flight);
        if in_flight
            .get(client_id)
            .is_some_and(|f| Arc::ptr_eq(f, &shared))
        {
            in_flight.remove(client_id);
        }
        result
    }

    /// One fetch of `url`, its outcome cached.
    async fn fetch_now(
        &self,
        client_id: &str,
        url: Url,
        host: String,
        now: i64,
    ) -> Result<FetchedDocument, DocumentError> {
        // Per host, whatever the path: a URL of its own per request must not
        // make this server a way to flood someone's host.
        if !self.within_host_limit(&url, now) {
            return Err(DocumentError::Unreachable);
        }
        // reqwest's own timeout covers each request; this one bounds the
        // document and its keys together, and also holds if a future
        // reqwest changes what its timeout covers.
        let outcome = match tokio::time::timeout(
            self.policy.total_timeout,
            self.fetch_checked(client_id, url, host, now),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::info!(client_id, "fetching a metadata document timed out");
                Err(DocumentError::Unreachable)
            }
        };
        match outcome {
            Ok((doc, lifetime)) => {
                self.cache.put(client_id, doc.clone(), now, lifetime);
                Ok(doc)
            }
            Err(e) => {
                self.failures
                    .put(client_id, e.clone(), now, secs(self.policy.failure_cache));
                Err(e)
            }
        }
    }

    /// The document, checked, with the keys its `jwks_uri` names fetched and
    /// checked too: a document whose keys cannot be had is no client.
    async fn fetch_checked(
        &self,
        client_id: &str,
        url: Url,
        host: String,
        now: i64,
    ) -> Result<(FetchedDocument, i64), DocumentError> {
        let (json, lifetime) = self.download(url).await.map_err(|e| e.of_document())?;
        let mut doc = validate(client_id, host, json)?;
        let Some(jwks_uri) = doc.metadata.jwks_uri.clone() else {
            return Ok((doc, lifetime));
        };
        let (keys_url, _) = check_client_id(&jwks_uri, &self.allow_hosts).map_err(|e| match e {
            DocumentError::Forbidden(m) => DocumentError::Invalid(format!("jwks_uri: {m}")),
            DocumentError::InvalidUrl(m) => DocumentError::Invalid(format!("jwks_uri: {m}")),
            other => other,
        })?;
        if !self.within_host_limit(&keys_url, now) {
            return Err(DocumentError::KeysUnreachable);
        }
        let (keys, keys_lifetime) = self.download(keys_url).await.map_err(|e| e.of_keys())?;
        client_document::check_jwks(&keys)
            .map_err(|m| DocumentError::Invalid(format!("the keys at jwks_uri: {m}")))?;
        doc.keys = Some(keys);
        // The pair is only as fresh as its shorter-lived half.
        Ok((doc, lifetime.min(keys_lifetime)))
    }

    /// Counts a fetch from `url`'s host; false when the host is over its limit.
    fn within_host_limit(&self, url: &Url, now: i64) -> bool {
        let host_key = url.host_str().unwrap_or_default().to_ascii_lowercase();
        match &self.per_host {
            Some(limiter) if limiter.hit(&host_key, now).is_err() => {
                tracing::info!(host = %host_key, "metadata document fetches from this host are over their limit");
                false
            }
            _ => true,
        }
    }

    /// GETs a JSON resource (a document or the keys it names): the JSON
    /// value and how long to cache it (seconds).
    async fn download(&self, url: Url) -> Result<(Value, i64), Download> {
        let mut response = self
            .client
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(fetch_error)?;
        let status = response.status();
        if status != StatusCode::OK {
            // A redirect included: the draft forbids following one.
            tracing::info!(%status, "a metadata document or jwks_uri answered a status other than 200");
            return Err(Download::Unreachable);
        }
        // The draft ("Client ID Metadata Document"): JSON, served as
        // application/json or a more specific application/…+json (a JWK
        // Set's own type, application/jwk-set+json, is one).
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !client_document::is_json_media_type(content_type) {
            return Err(Download::NotJsonMediaType);
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.policy.max_bytes as u64)
        {
            return Err(Download::TooLarge);
        }
        let lifetime = cache_lifetime(response.headers(), &self.policy);
        // Enforce the limit while reading: a server may omit or lie about
        // Content-Length and stream forever.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
            if body.len() + chunk.len() > self.policy.max_bytes {
                return Err(Download::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        if ephemera_proto::json::too_deep(&body, ephemera_proto::json::MAX_DEPTH) {
            return Err(Download::TooDeep);
        }
        let json = serde_json::from_slice(&body).map_err(|_| Download::NotJson)?;
        Ok((json, lifetime))
    }
}

/// Why a download failed, before it is told as the document's failure or
/// its keys'.
#[derive(Debug)]
enum Download {
    Unreachable,
    NotJsonMediaType,
    TooLarge,
    TooDeep,
    NotJson,
}

impl Download {
    fn of_document(self) -> DocumentError {
        match self {
            Self::Unreachable => DocumentError::Unreachable,
            Self::TooLarge => DocumentError::TooLarge,
            other => DocumentError::Invalid(format!("the document {}", other.problem())),
        }
    }

    fn of_keys(self) -> DocumentError {
        match self {
            Self::Unreachable => DocumentError::KeysUnreachable,
            other => DocumentError::Invalid(format!(
                "the keys at jwks_uri: the JWK Set {}",
                other.problem()
            )),
        }
    }

    fn problem(&self) -> String {
        match self {
            Self::Unreachable => "could not be fetched".into(),
            Self::NotJsonMediaType => "must be served with Content-Type application/json".into(),
            Self::TooLarge => "is too large".into(),
            Self::TooDeep => format!(
                "nests arrays or objects deeper than {} levels",
                ephemera_proto::json::MAX_DEPTH
            ),
            Self::NotJson => "is not valid JSON".into(),
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Maps a transport error to what the client's developer may see: one
/// description for every cause; the detail (which may name resolved
/// addresses) is only logged.
fn fetch_error(e: reqwest::Error) -> Download {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if err.downcast_ref::<ForbiddenAddresses>().is_some() {
            tracing::info!(error = ?e, "metadata document or jwks_uri host resolves only to forbidden addresses");
            return Download::Unreachable;
        }
        source = err.source();
    }
    tracing::info!(error = ?e, timeout = e.is_timeout(), connect = e.is_connect(), "fetching a metadata document or its keys failed");
    Download::Unreachable
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a map that is still valid.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fetched documents (or failures) by URL, bounded in size.
struct Cache<T> {
    entries: Mutex<HashMap<String, CacheEntry<T>>>,
    capacity: usize,
}

struct CacheEntry<T> {
    value: T,
    expires: i64,
}

impl<T: Clone> Cache<T> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    fn get(&self, url: &str, now: i64) -> Option<T> {
        let mut entries = lock(&self.entries);
        match entries.get(url) {
            Some(entry) if entry.expires > now => Some(entry.value.clone()),
            Some(_) => {
                entries.remove(url);
                None
            }
            None => None,
        }
    }

    fn put(&self, url: &str, value: T, now: i64, lifetime: i64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = lock(&self.entries);
        if entries.len() >= self.capacity && !entries.contains_key(url) {
            entries.retain(|_, e| e.expires > now);
            while entries.len() >= self.capacity {
                let Some(soonest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                entries.remove(&soonest);
            }
        }
        let expires = now.saturating_add(lifetime);
        entries.insert(url.to_owned(), CacheEntry { value, expires });
    }
}

#[async_trait]
impl DocumentSource for DocumentFetcher {
    async fn fetch(
        &self,
        client_id: &str,
        now: Timestamp,
    ) -> Result<FetchedDocument, DocumentError> {
        DocumentFetcher::fetch(self, client_id, now).await
    }
}

/// Checks a `client_id` against the draft's URL rules and the address rules,
/// without any network access. Returns the URL to fetch and the host to
/// display.
fn check_client_id(
    client_id: &str,
    allow_hosts: &[String],
) -> Result<(Url, String), DocumentError> {
    // reqwest connects to IP-literal hosts without asking the resolver, so
    // they are judged here.
    let forbidden =
        |ip: IpAddr| client_document::is_forbidden(ip) && !is_allowed(allow_hosts, &ip.to_string());
    match client_document::check_url(client_id, forbidden) {
        Ok(u) => Ok((u.url, u.shown_host)),
        Err(UrlRefusal::Invalid(m)) => Err(DocumentError::InvalidUrl(m)),
        Err(UrlRefusal::Forbidden(ip)) => Err(DocumentError::Forbidden(format!(
            "client_id host {ip} is a loopback, private or otherwise internal address, which this server does not fetch from"
        ))),
    }
}

/// The draft's rules for the document itself, on top of RFC 7591 parsing.
fn validate(client_id: &str, host: String, json: Value) -> Result<FetchedDocument, DocumentError> {
    let metadata =
        client_document::check_document(client_id, &json).map_err(DocumentError::Invalid)?;
    Ok(FetchedDocument {
        metadata,
        json,
        host,
        keys: None,
    })
}

/// How long to reuse a document, in seconds, by its headers within the
/// policy's bounds (`client_document::cache_lifetime`).
fn cache_lifetime(headers: &HeaderMap, policy: &DocumentPolicy) -> i64 {
    client_document::cache_lifetime(
        headers
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        headers.get(AGE).and_then(|v| v.to_str().ok()),
        secs(policy.min_cache),
        secs(policy.max_cache),
    )
}

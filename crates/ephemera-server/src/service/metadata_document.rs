//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
//! the client model MCP uses): a `client_id` that is an https URL names a JSON
//! document of RFC 7591 client metadata, which the AS fetches and checks.
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
//!   [`guard::GuardedResolver`], which drops such addresses from the answer, so the
//!   check applies to the addresses actually connected to (DNS rebinding
//!   cannot slip past it). An operator allow-list exempts named hosts;
//! - ignores proxy environment variables (a proxy would resolve the name for
//!   us, out of the guard's sight), follows no redirect, bounds connect and
//!   total time, and stops reading as soon as the body passes the size limit;
//! - caches documents per `Cache-Control`, clamped to the policy's bounds;
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
//! | this file | the policy, the URL and document rules, fetching, the cache |
//! | [`guard`] | which addresses are never connected to; the resolver enforcing it |
//! | `tests` | the fetcher against local https servers |

pub mod guard;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ephemera_proto::metadata::{ClientMetadata, MetadataLimits};
use reqwest::header::{HeaderMap, ACCEPT, AGE, CACHE_CONTROL, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;
use url::{Host, Url};

use guard::{is_allowed, is_forbidden, normalize_host, ForbiddenAddresses, GuardedResolver};

/// JWK members that carry private or symmetric key material (RFC 7518 §6).
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The longest `client_id` URL this server fetches.
const MAX_URL_LEN: usize = 2048;

/// What this deployment allows when fetching metadata documents.
#[derive(Debug, Clone)]
pub struct DocumentPolicy {
    /// Whether URL `client_id`s are accepted at all; off by default, as it
    /// makes the server fetch URLs that strangers choose.
    pub enabled: bool,
    /// Hosts (names or IP addresses) that may be fetched even though they
    /// are, or resolve to, loopback or private addresses: for tests and
    /// private deployments. Compared case-insensitively with the URL's host.
    pub allow_hosts: Vec<String>,
    /// Extra trusted CA certificates (PEM, one or more per entry), beside
    /// the Web PKI roots; for tests and private PKIs.
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// The largest document accepted, in bytes (the draft suggests 5 KB).
    pub max_bytes: usize,
    pub connect_timeout: Duration,
    /// For the whole fetch: resolution, connection, headers and body.
    pub total_timeout: Duration,
    /// The shortest time a fetched document is reused, whatever its headers
    /// say: this bounds how often a client (or an attacker naming someone
    /// else's URL) can make the server fetch.
    pub min_cache: Duration,
    /// The longest time a fetched document is reused, whatever its headers
    /// say: this bounds how long a changed document goes unnoticed.
    pub max_cache: Duration,
    /// How many documents the in-memory cache holds (and, apart, how many
    /// failures).
    pub max_cache_entries: usize,
    /// How long a failed fetch is remembered: until then, the same URL
    /// gets the same error without a new fetch.
    pub failure_cache: Duration,
    /// Fetches from one host per minute at most (per node); 0: no limit.
    pub per_host_per_minute: u32,
}

impl Default for DocumentPolicy {
    fn default() -> Self {
        Self {
            enabled: false,
            allow_hosts: Vec::new(),
            extra_roots_pem: Vec::new(),
            max_bytes: 5 * 1024,
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(5),
            min_cache: Duration::from_secs(60),
            max_cache: Duration::from_secs(24 * 60 * 60),
            max_cache_entries: 10_000,
            failure_cache: Duration::from_secs(30),
            per_host_per_minute: 30,
        }
    }
}

/// A metadata document that was fetched and passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedDocument {
    /// The validated metadata. An absent `token_endpoint_auth_method` means
    /// `none`, as for pushed clients: a public document can hold no secret.
    pub metadata: ClientMetadata,
    /// The document as fetched.
    pub json: Value,
    /// The URL's host, with the port when it is not 443: the origin the
    /// consent page shows as verified.
    pub host: String,
}

/// Why a URL `client_id` could not be resolved. Every message is safe to show
/// the client's developer: it names nothing but what the client gave. At the
/// authorization endpoint none of these can be redirected (the redirect URIs
/// are unknown), so the user sees an error page; at back-channel endpoints
/// they are `invalid_client`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// This deployment does not accept URL `client_id`s.
    #[error("this server does not accept client ID metadata documents")]
    Disabled,
    /// The URL breaks the draft's "Client Identifier URL" rules.
    #[error("client_id is not a valid client ID metadata document URL: {0}")]
    InvalidUrl(String),
    /// The host is, or resolves only to, addresses the server never fetches.
    #[error("{0}")]
    Forbidden(String),
    /// Anything that kept the document from arriving: a connection
    /// failure, a timeout, a status other than 200, a redirect, a host name
    /// resolving only to addresses the server never fetches from, or the
    /// host's fetch limit. One description for all: which one is logged.
    #[error("{UNREACHABLE}")]
    Unreachable,
    /// The document is larger than the policy allows.
    #[error("the client metadata document is too large")]
    TooLarge,
    /// The body is not a JSON object, or not acceptable client metadata.
    #[error("invalid client metadata document: {0}")]
    Invalid(String),
}

/// What the client is told when the document could not be fetched.
const UNREACHABLE: &str = "the client metadata document could not be fetched from the client_id URL: it must answer 200 OK with the document itself (no redirect), from a public address, in time";

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
        let host_key = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if let Some(limiter) = &self.per_host {
            if limiter.hit(&host_key, now).is_err() {
                tracing::info!(host = %host_key, "metadata document fetches from this host are over their limit");
                return Err(DocumentError::Unreachable);
            }
        }
        // reqwest's own timeout covers the same span; this one also holds if
        // a future reqwest changes what its timeout covers.
        let outcome = match tokio::time::timeout(self.policy.total_timeout, self.download(url))
            .await
        {
            Ok(Ok((json, lifetime))) => validate(client_id, host, json).map(|doc| (doc, lifetime)),
            Ok(Err(e)) => Err(e),
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

    /// GETs the document: the JSON value and how long to cache it (seconds).
    async fn download(&self, url: Url) -> Result<(Value, i64), DocumentError> {
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
            tracing::info!(%status, "a metadata document URL answered a status other than 200");
            return Err(DocumentError::Unreachable);
        }
        // The draft ("Client ID Metadata Document"): JSON, served as
        // application/json or a more specific application/…+json.
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !is_json_media_type(content_type) {
            return Err(DocumentError::Invalid(
                "the document must be served with Content-Type application/json".into(),
            ));
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.policy.max_bytes as u64)
        {
            return Err(DocumentError::TooLarge);
        }
        let lifetime = cache_lifetime(response.headers(), &self.policy);
        // Enforce the limit while reading: a server may omit or lie about
        // Content-Length and stream forever.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
            if body.len() + chunk.len() > self.policy.max_bytes {
                return Err(DocumentError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        if ephemera_proto::json::too_deep(&body, ephemera_proto::json::MAX_DEPTH) {
            return Err(DocumentError::Invalid(format!(
                "the document nests arrays or objects deeper than {} levels",
                ephemera_proto::json::MAX_DEPTH
            )));
        }
        let json = serde_json::from_slice(&body)
            .map_err(|_| DocumentError::Invalid("the document is not valid JSON".into()))?;
        Ok((json, lifetime))
    }
}

/// Checks a `client_id` against the draft's URL rules and the address rules,
/// without any network access. Returns the URL to fetch and the host to
/// display.
fn check_client_id(
    client_id: &str,
    allow_hosts: &[String],
) -> Result<(Url, String), DocumentError> {
    let invalid = |msg: &str| DocumentError::InvalidUrl(msg.to_owned());
    if client_id.len() > MAX_URL_LEN {
        return Err(DocumentError::InvalidUrl(format!(
            "longer than {MAX_URL_LEN} characters"
        )));
    }
    let url = Url::parse(client_id).map_err(|e| DocumentError::InvalidUrl(format!("{e}")))?;
    if url.scheme() != "https" {
        return Err(invalid("the scheme must be https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not contain a username or password"));
    }
    if url.fragment().is_some() || client_id.contains('#') {
        return Err(invalid("it must not contain a fragment"));
    }
    if has_dot_segment(client_id) {
        return Err(invalid("it must not contain `.` or `..` path segments"));
    }
    if !has_path(client_id) {
        return Err(invalid("it must contain a path component"));
    }
    match url.host() {
        Some(Host::Domain(_)) => {}
        Some(Host::Ipv4(ip)) => check_ip_literal(IpAddr::V4(ip), allow_hosts)?,
        Some(Host::Ipv6(ip)) => check_ip_literal(IpAddr::V6(ip), allow_hosts)?,
        None => return Err(invalid("it must have a host")),
    }
    // The draft compares client_ids as plain strings (RFC 3986 §6.2.1), so
    // `https://a.example:443/c` and `https://a.example/c` would be two
    // clients sharing one document; only the normalized spelling is taken.
    if url.as_str() != client_id {
        return Err(DocumentError::InvalidUrl(format!(
            "it must be written in normalized form: `{url}`"
        )));
    }
    let host = url.host_str().unwrap_or_default();
    let shown = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    Ok((url, shown))
}

/// reqwest connects to IP-literal hosts without asking the resolver, so they
/// are checked here.
fn check_ip_literal(ip: IpAddr, allow_hosts: &[String]) -> Result<(), DocumentError> {
    if is_forbidden(ip) && !is_allowed(allow_hosts, &ip.to_string()) {
        return Err(DocumentError::Forbidden(format!(
            "client_id host {ip} is a loopback, private or otherwise internal address, which this server does not fetch from"
        )));
    }
    Ok(())
}

/// The path of a raw `https://` URL, if it has one (the URL parser would
/// add `/` to a URL without).
fn raw_path(raw: &str) -> Option<&str> {
    let rest = raw.get("https://".len()..)?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let path = rest[authority_end..].split(['?', '#']).next()?;
    (!path.is_empty()).then_some(path)
}

fn has_path(raw: &str) -> bool {
    raw_path(raw).is_some()
}

/// Whether the raw URL's path has a `.` or `..` segment, plain or
/// percent-encoded (the URL parser would silently remove them).
fn has_dot_segment(raw: &str) -> bool {
    raw_path(raw).unwrap_or_default().split('/').any(|segment| {
        let s = segment.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    })
}

fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The draft's rules for the document itself, on top of RFC 7591 parsing.
fn validate(client_id: &str, host: String, json: Value) -> Result<FetchedDocument, DocumentError> {
    let invalid = |msg: String| DocumentError::Invalid(msg);
    let Value::Object(map) = &json else {
        return Err(invalid("the document must be a JSON object".into()));
    };
    match map.get("client_id") {
        Some(Value::String(id)) if id == client_id => {}
        Some(Value::String(_)) => {
            return Err(invalid(
                "the document's client_id does not equal the URL it was fetched from".into(),
            ))
        }
        _ => return Err(invalid("the document has no client_id string".into())),
    }
    // The draft ("Credential and Key Material Restrictions"): the document
    // is public, so it holds no shared secret and no private key.
    for field in ["client_secret", "client_secret_expires_at"] {
        if map.contains_key(field) {
            return Err(invalid(format!(
                "{field} must not appear in a client metadata document: the document is public"
            )));
        }
    }
    let keys = map
        .get("jwks")
        .and_then(|jwks| jwks.get("keys"))
        .and_then(Value::as_array);
    if keys
        .into_iter()
        .flatten()
        .any(|key| PRIVATE_JWK_MEMBERS.iter().any(|m| key.get(m).is_some()))
    {
        return Err(invalid(
            "jwks must hold public keys only: a key has private key members".into(),
        ));
    }
    if map.contains_key("jwks_uri") {
        return Err(invalid(
            "jwks_uri is not supported: put the public keys in jwks".into(),
        ));
    }
    let metadata = ClientMetadata::from_object(map, &MetadataLimits::default())
        .map_err(|e| invalid(e.to_string()))?;
    if metadata.redirect_uris.is_empty() {
        return Err(invalid(
            "redirect_uris must list at least one redirect URI".into(),
        ));
    }
    match metadata.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some("private_key_jwt") if metadata.jwks.is_some() => {}
        Some("private_key_jwt") => {
            return Err(invalid(
                "private_key_jwt needs the client's public keys in jwks".into(),
            ))
        }
        Some(other) => {
            return Err(invalid(format!(
                "token_endpoint_auth_method `{other}` is not allowed: a public document cannot hold a secret; use `none` or `private_key_jwt`"
            )))
        }
    }
    Ok(FetchedDocument {
        metadata,
        json,
        host,
    })
}

/// How long to reuse a document, in seconds: `max-age` less `Age`, clamped to
/// the policy's bounds. `no-store`, `no-cache` and an absent `max-age` all
/// give the minimum: the document is public metadata, not a private response,
/// and the floor is what bounds how often anyone can make the server fetch.
fn cache_lifetime(headers: &HeaderMap, policy: &DocumentPolicy) -> i64 {
    let min = secs(policy.min_cache);
    let max = secs(policy.max_cache).max(min);
    let mut max_age = None;
    let mut uncacheable = false;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for directive in value.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                uncacheable = true;
            } else if name.eq_ignore_ascii_case("max-age") {
                max_age = arg.and_then(|a| a.parse::<u64>().ok());
            }
        }
    }
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    match max_age {
        Some(max_age) if !uncacheable => {
            let fresh = i64::try_from(max_age.saturating_sub(age)).unwrap_or(i64::MAX);
            fresh.clamp(min, max)
        }
        _ => min,
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Maps a transport error to what the client's developer may see: one
/// description for every cause; the detail (which may name resolved
/// addresses) is only logged.
fn fetch_error(e: reqwest::Error) -> DocumentError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if err.downcast_ref::<ForbiddenAddresses>().is_some() {
            tracing::info!(error = ?e, "metadata document host resolves only to forbidden addresses");
            return DocumentError::Unreachable;
        }
        source = err.source();
    }
    tracing::info!(error = ?e, timeout = e.is_timeout(), connect = e.is_connect(), "fetching a metadata document failed");
    DocumentError::Unreachable
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

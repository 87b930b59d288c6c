//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
//! the client model MCP uses): a `client_id` that is an https URL names a JSON
//! document of RFC 7591 client metadata, which the AS fetches and checks.
//!
//! Fetching a URL a stranger chose is a server-side request forgery surface,
//! so the [`DocumentFetcher`]:
//! - refuses URLs outside the draft's §3 rules (https, a path, no fragment, no
//!   userinfo, no dot segments) and any URL not written in normalized form, so
//!   one document has exactly one `client_id`;
//! - never connects to loopback, private, link-local, multicast, CGNAT,
//!   documentation or otherwise internal addresses: IP-literal hosts are
//!   checked before any request, and host names are resolved by
//!   [`GuardedResolver`], which drops such addresses from the answer, so the
//!   check applies to the addresses actually connected to (DNS rebinding
//!   cannot slip past it). An operator allow-list exempts named hosts;
//! - ignores proxy environment variables (a proxy would resolve the name for
//!   us, out of the guard's sight), follows no redirect, bounds connect and
//!   total time, and stops reading as soon as the body passes the size limit;
//! - caches documents per `Cache-Control`, clamped to the policy's bounds.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ephemera_proto::metadata::{ClientMetadata, MetadataLimits};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, ACCEPT, AGE, CACHE_CONTROL, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;
use url::{Host, Url};

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
    /// How many documents the in-memory cache holds.
    pub max_cache_entries: usize,
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
    /// The URL breaks the draft's §3 rules.
    #[error("client_id is not a valid client ID metadata document URL: {0}")]
    InvalidUrl(String),
    /// The host is, or resolves only to, addresses the server never fetches.
    #[error("{0}")]
    Forbidden(String),
    /// Network failure, timeout, a status other than 200, or a redirect.
    #[error("{0}")]
    Fetch(String),
    /// The document is larger than the policy allows.
    #[error("the client metadata document is too large")]
    TooLarge,
    /// The body is not a JSON object, or not acceptable client metadata.
    #[error("invalid client metadata document: {0}")]
    Invalid(String),
}

/// Whether `client_id` is meant as a metadata document URL, so a resolver can
/// send it here (`http://` too, to be refused with a clear message).
pub fn is_url_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Fetches, checks and caches client ID metadata documents. Share one per
/// process: it holds the connection pool and the cache.
pub struct DocumentFetcher {
    policy: DocumentPolicy,
    allow_hosts: Arc<[String]>,
    client: reqwest::Client,
    cache: Cache,
}

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
            // Draft §4: the document is at the URL itself; a redirect could
            // also point the server at an internal address.
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
        Ok(Self {
            cache: Cache::new(policy.max_cache_entries),
            policy,
            allow_hosts,
            client,
        })
    }

    /// Resolves a URL `client_id` into its validated metadata: from the cache
    /// while fresh at `now` (Unix seconds), else by fetching it.
    pub async fn fetch(&self, client_id: &str, now: i64) -> Result<FetchedDocument, DocumentError> {
        if !self.policy.enabled {
            return Err(DocumentError::Disabled);
        }
        let (url, host) = check_client_id(client_id, &self.allow_hosts)?;
        if let Some(doc) = self.cache.get(client_id, now) {
            return Ok(doc);
        }
        // reqwest's own timeout covers the same span; this one also holds if
        // a future reqwest changes what its timeout covers.
        let (json, lifetime) = tokio::time::timeout(self.policy.total_timeout, self.download(url))
            .await
            .map_err(|_| timed_out())??;
        let doc = validate(client_id, host, json)?;
        self.cache.put(client_id, doc.clone(), now, lifetime);
        Ok(doc)
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
        if status.is_redirection() {
            return Err(DocumentError::Fetch(format!(
                "the client_id URL answered {status}: the document must be served at the client_id itself, redirects are not followed"
            )));
        }
        if status != StatusCode::OK {
            return Err(DocumentError::Fetch(format!(
                "the client_id URL answered {status}, not 200 OK"
            )));
        }
        // Draft §4: the document is served as application/json.
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
        let json = serde_json::from_slice(&body)
            .map_err(|_| DocumentError::Invalid("the document is not valid JSON".into()))?;
        Ok((json, lifetime))
    }
}

/// Checks a `client_id` against draft §3 and the address rules, without any
/// network access. Returns the URL to fetch and the host to display.
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
    if url.path() == "/" {
        return Err(invalid("it must have a path naming the document"));
    }
    let host = match url.host() {
        Some(Host::Domain(d)) => d.to_owned(),
        Some(Host::Ipv4(ip)) => check_ip_literal(IpAddr::V4(ip), allow_hosts)?,
        Some(Host::Ipv6(ip)) => check_ip_literal(IpAddr::V6(ip), allow_hosts)?,
        None => return Err(invalid("it must have a host")),
    };
    // The document's client_id must equal the URL (draft §4) and a client has
    // one identifier, so only the normalized spelling is accepted.
    if url.as_str() != client_id {
        return Err(DocumentError::InvalidUrl(format!(
            "it must be written in normalized form: `{url}`"
        )));
    }
    let shown = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or(&host)),
        None => url.host_str().unwrap_or(&host).to_owned(),
    };
    Ok((url, shown))
}

/// reqwest connects to IP-literal hosts without asking the resolver, so they
/// are checked here.
fn check_ip_literal(ip: IpAddr, allow_hosts: &[String]) -> Result<String, DocumentError> {
    let host = ip.to_string();
    if is_forbidden(ip) && !is_allowed(allow_hosts, &host) {
        return Err(DocumentError::Forbidden(format!(
            "client_id host {host} is a loopback, private or otherwise internal address, which this server does not fetch from"
        )));
    }
    Ok(host)
}

/// Whether the raw URL's path has a `.` or `..` segment, plain or
/// percent-encoded (the URL parser would silently remove them).
fn has_dot_segment(raw: &str) -> bool {
    let Some(rest) = raw.get("https://".len()..) else {
        return false;
    };
    let Some(start) = rest.find('/') else {
        return false;
    };
    let path = rest[start..].split(['?', '#']).next().unwrap_or_default();
    path.split('/').any(|segment| {
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
    // Draft §4.1: the document is public, so it can hold no shared secret.
    for field in ["client_secret", "client_secret_expires_at"] {
        if map.contains_key(field) {
            return Err(invalid(format!(
                "{field} must not appear in a client metadata document: the document is public"
            )));
        }
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

fn timed_out() -> DocumentError {
    DocumentError::Fetch("fetching the client metadata document timed out".into())
}

/// Maps a transport error to what the client's developer may see; the detail
/// (which may name resolved addresses) is only logged.
fn fetch_error(e: reqwest::Error) -> DocumentError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if err.downcast_ref::<ForbiddenAddresses>().is_some() {
            tracing::info!(error = ?e, "metadata document host resolves only to forbidden addresses");
            return DocumentError::Forbidden(
                "client_id host resolves only to loopback, private or otherwise internal addresses, which this server does not fetch from".into(),
            );
        }
        source = err.source();
    }
    tracing::info!(error = ?e, "fetching a metadata document failed");
    if e.is_timeout() {
        timed_out()
    } else if e.is_connect() {
        DocumentError::Fetch("could not connect to the client_id host".into())
    } else {
        DocumentError::Fetch("could not fetch the client metadata document".into())
    }
}

/// Lower-cases a host and strips IPv6 brackets; IP addresses are written the
/// way [`IpAddr`]'s `Display` writes them, so spellings compare equal.
fn normalize_host(host: &str) -> String {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.to_ascii_lowercase(),
    }
}

fn is_allowed(allow_hosts: &[String], host: &str) -> bool {
    let host = normalize_host(host);
    allow_hosts.iter().any(|h| *h == host)
}

/// The resolver's error when every address of a name is forbidden.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves only to forbidden addresses")]
struct ForbiddenAddresses;

/// Resolves with the system resolver and drops forbidden addresses from the
/// answer, so the connection can only go to an allowed one.
struct GuardedResolver {
    allow_hosts: Arc<[String]>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = is_allowed(&self.allow_hosts, name.as_str());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if found.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the host has no address",
                )
                .into());
            }
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allowed || !is_forbidden(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(ForbiddenAddresses.into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// IPv4 ranges that are not globally reachable unicast (IANA special-purpose
/// registry, RFC 6890 and successors).
const FORBIDDEN_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network", unspecified
    ([10, 0, 0, 0], 8),      // private (RFC 1918)
    ([100, 64, 0, 0], 10),   // shared address space, CGNAT (RFC 6598)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, cloud metadata services
    ([172, 16, 0, 0], 12),   // private (RFC 1918)
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast (deprecated)
    ([192, 168, 0, 0], 16),  // private (RFC 1918)
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and the limited broadcast address
];

/// IPv6 ranges inside global unicast 2000::/3 that are not globally
/// reachable; everything outside 2000::/3 is refused anyway (loopback,
/// unspecified, ULA fc00::/7, link-local fe80::/10, multicast ff00::/8, …).
const FORBIDDEN_V6: &[(u128, u32)] = &[
    (0x2001_0000_u128 << 96, 23), // IETF protocol assignments: Teredo, benchmarking, ORCHID
    (0x2001_0db8_u128 << 96, 32), // documentation
    (0x3fff_u128 << 112, 20),     // documentation (RFC 9637)
];

/// Whether the server must never connect to `ip`.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    FORBIDDEN_V4.iter().any(|(net, len)| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        bits & mask == u32::from_be_bytes(*net) & mask
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    // Forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4); // ::ffff:0:0/96
    }
    let bits = u128::from(ip);
    if bits >> 32 == 0x0064_ff9b_u128 << 64 {
        return forbidden_v4(Ipv4Addr::from(bits as u32)); // NAT64 64:ff9b::/96 (RFC 6052)
    }
    if bits >> 112 == 0x2002 {
        return forbidden_v4(Ipv4Addr::from((bits >> 80) as u32)); // 6to4 2002::/16 (RFC 3056)
    }
    if bits >> 125 != 0b001 {
        return true;
    }
    FORBIDDEN_V6.iter().any(|(net, len)| {
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        bits & mask == net & mask
    })
}

/// Fetched documents by URL, bounded in size.
struct Cache {
    entries: Mutex<HashMap<String, CacheEntry>>,
    capacity: usize,
}

struct CacheEntry {
    doc: FetchedDocument,
    expires: i64,
}

impl Cache {
    fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CacheEntry>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn get(&self, url: &str, now: i64) -> Option<FetchedDocument> {
        let mut entries = self.lock();
        match entries.get(url) {
            Some(entry) if entry.expires > now => Some(entry.doc.clone()),
            Some(_) => {
                entries.remove(url);
                None
            }
            None => None,
        }
    }

    fn put(&self, url: &str, doc: FetchedDocument, now: i64, lifetime: i64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
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
        entries.insert(url.to_owned(), CacheEntry { doc, expires });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use axum::body::{Body, Bytes};
    use axum::extract::State;
    use axum::http::{header, HeaderMap, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::Router;
    use hyper::body::Frame;
    use serde_json::{json, Map};

    use super::*;

    /// What the test server's `/doc` serves, changeable by the test.
    #[derive(Clone, Default)]
    struct Served {
        hits: Arc<AtomicUsize>,
        /// Fields laid over the default document; `null` removes one.
        overlay: Arc<Mutex<Map<String, Value>>>,
        cache_control: Arc<Mutex<Option<String>>>,
    }

    impl Served {
        fn set(&self, field: &str, value: Value) {
            self.overlay.lock().unwrap().insert(field.into(), value);
        }
        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    /// The default document names itself by the Host it was asked under.
    async fn document(State(s): State<Served>, headers: HeaderMap, uri: Uri) -> Response {
        s.hits.fetch_add(1, Ordering::SeqCst);
        let host = headers[header::HOST].to_str().unwrap();
        let mut doc = json!({
            "client_id": format!("https://{host}{}", uri.path()),
            "client_name": "Test agent",
            "redirect_uris": ["https://agent.example/callback"],
            "token_endpoint_auth_method": "none",
        });
        let map = doc.as_object_mut().unwrap();
        for (k, v) in s.overlay.lock().unwrap().iter() {
            match v {
                Value::Null => map.remove(k),
                v => map.insert(k.clone(), v.clone()),
            };
        }
        let mut response = axum::Json(doc).into_response();
        if let Some(cc) = s.cache_control.lock().unwrap().clone() {
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, cc.parse().unwrap());
        }
        response
    }

    /// A body that yields 1 KiB of JSON whitespace forever, or (`stall`)
    /// once and then never again.
    struct Endless {
        stall: bool,
        sent: bool,
    }

    impl hyper::body::Body for Endless {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.stall && self.sent {
                return Poll::Pending;
            }
            self.sent = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&[b' '; 1024])))))
        }
    }

    fn json_body(body: Body) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    }

    struct TestServer {
        port: u16,
        cert_pem: Vec<u8>,
        served: Served,
        _stop: tokio::sync::oneshot::Sender<()>,
        _dir: tempfile::TempDir,
    }

    impl TestServer {
        async fn start() -> Self {
            let served = Served::default();
            let router = Router::new()
                .route("/doc", get(document))
                .route("/other/doc", get(document))
                .route(
                    "/redirect",
                    get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/doc")]) }),
                )
                .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
                .route("/never", get(std::future::pending::<axum::Json<Value>>))
                .route(
                    "/stall",
                    get(|| async {
                        json_body(Body::new(Endless {
                            stall: true,
                            sent: false,
                        }))
                    }),
                )
                .route(
                    "/endless",
                    get(|| async {
                        json_body(Body::new(Endless {
                            stall: false,
                            sent: false,
                        }))
                    }),
                )
                .route(
                    "/declared-large",
                    get(|| async { json_body(Body::from(vec![b' '; 6000])) }),
                )
                .route("/text", get(|| async { "hello" }))
                .route("/array", get(|| async { axum::Json(json!([1, 2])) }))
                .route(
                    "/broken",
                    get(|| async { json_body(Body::from("{\"a\":")) }),
                )
                .with_state(served.clone());
            let cert = rcgen::generate_simple_self_signed(vec![
                "127.0.0.1".to_owned(),
                "localhost".to_owned(),
            ])
            .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_path, cert.cert.pem()).unwrap();
            std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
            let config = crate::http::tls::server_config(&cert_path, &key_path).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(crate::http::tls::serve(listener, config, router, async {
                let _ = stopped.await;
            }));
            Self {
                port,
                cert_pem: cert.cert.pem().into_bytes(),
                served,
                _stop: stop,
                _dir: dir,
            }
        }

        fn url(&self, path: &str) -> String {
            format!("https://127.0.0.1:{}{path}", self.port)
        }

        /// A fetcher trusting this server's certificate, allowing `allow`.
        fn fetcher(&self, allow: &[&str], policy: DocumentPolicy) -> DocumentFetcher {
            DocumentFetcher::new(DocumentPolicy {
                enabled: true,
                allow_hosts: allow.iter().map(|h| h.to_string()).collect(),
                extra_roots_pem: vec![self.cert_pem.clone()],
                ..policy
            })
            .unwrap()
        }
    }

    const NOW: i64 = 1_700_000_000;

    #[tokio::test]
    async fn a_valid_document_is_fetched_once_and_then_served_from_the_cache() {
        let server = TestServer::start().await;
        let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());
        let url = server.url("/doc");

        let first = fetcher.fetch(&url, NOW).await.unwrap();
        let second = fetcher.fetch(&url, NOW + 30).await.unwrap();

        assert_eq!(first.metadata.client_name.as_deref(), Some("Test agent"));
        assert_eq!(
            first.metadata.redirect_uris[0].as_str(),
            "https://agent.example/callback"
        );
        assert_eq!(first.host, format!("127.0.0.1:{}", server.port));
        assert_eq!(first.json["client_id"], url.as_str());
        assert_eq!(first, second);
        assert_eq!(server.served.hits(), 1);
    }

    #[tokio::test]
    async fn a_changed_document_is_seen_once_the_cache_expires() {
        let server = TestServer::start().await;
        let policy = DocumentPolicy {
            min_cache: Duration::from_secs(10),
            max_cache: Duration::from_secs(100),
            ..DocumentPolicy::default()
        };
        *server.served.cache_control.lock().unwrap() = Some("public, max-age=86400".into());
        let fetcher = server.fetcher(&["127.0.0.1"], policy);
        let url = server.url("/doc");
        fetcher.fetch(&url, NOW).await.unwrap();

        server.served.set("client_name", json!("Renamed agent"));
        let cached = fetcher.fetch(&url, NOW + 99).await.unwrap();
        let refetched = fetcher.fetch(&url, NOW + 100).await.unwrap();

        assert_eq!(cached.metadata.client_name.as_deref(), Some("Test agent"));
        assert_eq!(
            refetched.metadata.client_name.as_deref(),
            Some("Renamed agent")
        );
        assert_eq!(server.served.hits(), 2);
    }

    #[tokio::test]
    async fn max_age_sets_the_cache_lifetime() {
        let server = TestServer::start().await;
        *server.served.cache_control.lock().unwrap() = Some("max-age=120".into());
        let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());
        let url = server.url("/doc");

        fetcher.fetch(&url, NOW).await.unwrap();
        fetcher.fetch(&url, NOW + 119).await.unwrap();
        assert_eq!(server.served.hits(), 1);
        fetcher.fetch(&url, NOW + 120).await.unwrap();
        assert_eq!(server.served.hits(), 2);
    }

    #[test]
    fn cache_lifetime_follows_cache_control_within_the_bounds() {
        let policy = DocumentPolicy::default();
        let lifetime = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, v.parse().unwrap());
            }
            cache_lifetime(&h, &policy)
        };
        assert_eq!(lifetime(&[]), 60);
        assert_eq!(lifetime(&[("cache-control", "max-age=300")]), 300);
        assert_eq!(lifetime(&[("cache-control", "max-age=\"300\"")]), 300);
        assert_eq!(
            lifetime(&[("cache-control", "max-age=300"), ("age", "100")]),
            200
        );
        assert_eq!(lifetime(&[("cache-control", "max-age=5")]), 60);
        assert_eq!(
            lifetime(&[("cache-control", "max-age=99999999999")]),
            86_400
        );
        assert_eq!(lifetime(&[("cache-control", "no-store")]), 60);
        assert_eq!(lifetime(&[("cache-control", "max-age=300, no-cache")]), 60);
        assert_eq!(lifetime(&[("cache-control", "max-age=banana")]), 60);
    }

    #[test]
    fn a_full_cache_evicts_expired_then_soonest_expiring_entries() {
        let cache = Cache::new(2);
        let doc = FetchedDocument {
            metadata: ClientMetadata::default(),
            json: Value::Null,
            host: "a.example".into(),
        };
        cache.put("https://a.example/1", doc.clone(), NOW, 100);
        cache.put("https://a.example/2", doc.clone(), NOW, 50);
        cache.put("https://a.example/3", doc.clone(), NOW, 100);

        assert_eq!(cache.len(), 2);
        assert!(cache.get("https://a.example/2", NOW).is_none());
        assert!(cache.get("https://a.example/1", NOW).is_some());
        cache.put("https://a.example/4", doc, NOW + 100, 100);
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn a_document_larger_than_the_limit_is_refused() {
        let server = TestServer::start().await;
        let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());

        let declared = fetcher.fetch(&server.url("/declared-large"), NOW).await;
        // No Content-Length and no end: only a limit enforced while reading stops it.
        let endless = fetcher.fetch(&server.url("/endless"), NOW).await;

        assert_eq!(declared, Err(DocumentError::TooLarge));
        assert_eq!(endless, Err(DocumentError::TooLarge));
    }

    #[tokio::test]
    async fn a_server_that_does_not_finish_in_time_is_given_up_on() {
        let server = TestServer::start().await;
        let policy = DocumentPolicy {
            total_timeout: Duration::from_millis(300),
            ..DocumentPolicy::default()
        };
        let fetcher = server.fetcher(&["127.0.0.1"], policy);

        let no_headers = fetcher.fetch(&server.url("/never"), NOW).await;
        let stalled_body = fetcher.fetch(&server.url("/stall"), NOW).await;

        assert!(matches!(no_headers, Err(DocumentError::Fetch(m)) if m.contains("timed out")));
        assert!(matches!(stalled_body, Err(DocumentError::Fetch(m)) if m.contains("timed out")));
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        let server = TestServer::start().await;
        let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());

        let result = fetcher.fetch(&server.url("/redirect"), NOW).await;

        assert!(
            matches!(result, Err(DocumentError::Fetch(m)) if m.contains("redirects are not followed"))
        );
        assert_eq!(server.served.hits(), 0);
    }

    #[tokio::test]
    async fn a_status_other_than_200_is_refused() {
        let server = TestServer::start().await;
        let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());

        let result = fetcher.fetch(&server.url("/missing"), NOW).await;

        assert!(matches!(result, Err(DocumentError::Fetch(m)) if m.contains("404")));
    }

    #[tokio::test]
    async fn a_document_naming_another_client_id_is_refused() {
        let server = TestServer::start().await;
        let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());
        server
            .served
            .set("client_id", json!(server.url("/other/doc")));

        let result = fetcher.fetch(&server.url("/doc"), NOW).await;

        assert!(matches!(result, Err(DocumentError::Invalid(m)) if m.contains("does not equal")));
    }

    #[tokio::test]
    async fn a_body_that_is_not_a_json_object_is_refused() {
        let server = TestServer::start().await;
        let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());

        for path in ["/text", "/array", "/broken"] {
            let result = fetcher.fetch(&server.url(path), NOW).await;
            assert!(
                matches!(result, Err(DocumentError::Invalid(_))),
                "{path}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_document_without_redirect_uris_is_refused() {
        let server = TestServer::start().await;
        let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());

        server.served.set("redirect_uris", Value::Null);
        let absent = fetcher.fetch(&server.url("/doc"), NOW).await;
        server.served.set("redirect_uris", json!([]));
        let empty = fetcher.fetch(&server.url("/other/doc"), NOW).await;

        assert!(matches!(absent, Err(DocumentError::Invalid(m)) if m.contains("redirect_uris")));
        assert!(matches!(empty, Err(DocumentError::Invalid(m)) if m.contains("redirect_uris")));
    }

    #[tokio::test]
    async fn secrets_and_secret_based_authentication_are_refused() {
        let server = TestServer::start().await;
        let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());
        let url = server.url("/doc");
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]});
        let cases = [
            (
                "token_endpoint_auth_method",
                json!("client_secret_basic"),
                "not allowed",
            ),
            (
                "token_endpoint_auth_method",
                json!("client_secret_post"),
                "not allowed",
            ),
            (
                "token_endpoint_auth_method",
                json!("private_key_jwt"),
                "jwks",
            ),
            ("client_secret", json!("hunter2"), "client_secret"),
            ("jwks_uri", json!("https://agent.example/jwks"), "jwks_uri"),
        ];

        for (field, value, expected) in cases {
            server.served.overlay.lock().unwrap().clear();
            server.served.set(field, value);
            let result = fetcher.fetch(&url, NOW).await;
            assert!(
                matches!(&result, Err(DocumentError::Invalid(m)) if m.contains(expected)),
                "{field}: {result:?}"
            );
        }
        server
            .served
            .set("token_endpoint_auth_method", json!("private_key_jwt"));
        server.served.set("jwks", jwks);
        let with_keys = fetcher.fetch(&url, NOW).await.unwrap();
        assert_eq!(
            with_keys.metadata.token_endpoint_auth_method.as_deref(),
            Some("private_key_jwt")
        );
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allow_listed() {
        let server = TestServer::start().await;
        let guarded = server.fetcher(&[], DocumentPolicy::default());
        let allowing = server.fetcher(&["LocalHost"], DocumentPolicy::default());
        let by_name = format!("https://localhost:{}/doc", server.port);

        let literal = guarded.fetch(&server.url("/doc"), NOW).await;
        let resolved = guarded.fetch(&by_name, NOW).await;
        assert!(
            matches!(literal, Err(DocumentError::Forbidden(_))),
            "{literal:?}"
        );
        assert!(
            matches!(resolved, Err(DocumentError::Forbidden(_))),
            "{resolved:?}"
        );
        assert_eq!(server.served.hits(), 0);

        let allowed = allowing.fetch(&by_name, NOW).await.unwrap();
        assert_eq!(allowed.host, format!("localhost:{}", server.port));
        assert_eq!(server.served.hits(), 1);
    }

    #[tokio::test]
    async fn internal_ip_literals_are_refused_before_any_connection() {
        // Never send traffic anywhere but loopback: each URL is first checked
        // offline, and `fetch` runs the same check before any network access.
        let fetcher = DocumentFetcher::new(DocumentPolicy {
            enabled: true,
            connect_timeout: Duration::from_millis(1),
            ..DocumentPolicy::default()
        })
        .unwrap();
        for url in [
            "https://10.0.0.1/x",
            "https://172.16.5.4/x",
            "https://192.168.1.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://255.255.255.255/x",
            "https://224.0.0.1/x",
            "https://192.0.2.1/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::1]/x",
            "https://[::]/x",
            "https://[ff02::1]/x",
            "https://[::ffff:a00:1]/x",
            "https://[2001:db8::1]/x",
            "https://0x7f000001/x",
        ] {
            let offline = check_client_id(url, &[]);
            assert!(
                matches!(offline, Err(DocumentError::Forbidden(_))),
                "{url}: {offline:?}"
            );
            let fetched = fetcher.fetch(url, NOW).await;
            assert!(
                matches!(fetched, Err(DocumentError::Forbidden(_))),
                "{url}: {fetched:?}"
            );
        }
    }

    #[test]
    fn forbidden_addresses_cover_internal_ranges_and_nothing_public() {
        let forbidden = [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.1.1",
            "100.127.255.255",
            "0.0.0.0",
            "255.255.255.255",
            "239.1.1.1",
            "198.18.0.1",
            "203.0.113.9",
            "::",
            "::1",
            "fc00::1",
            "fdff::1",
            "fe80::1",
            "fec0::1",
            "ff0e::1",
            "::ffff:127.0.0.1",
            "::ffff:192.168.1.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
        ];
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for ip in forbidden {
            assert!(
                is_forbidden(ip.parse().unwrap()),
                "{ip} should be forbidden"
            );
        }
        for ip in public {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[tokio::test]
    async fn urls_breaking_the_draft_rules_are_refused_offline() {
        let fetcher = DocumentFetcher::new(DocumentPolicy {
            enabled: true,
            ..DocumentPolicy::default()
        })
        .unwrap();
        let long = format!("https://agent.example/{}", "a".repeat(MAX_URL_LEN));
        for url in [
            "http://agent.example/client.json",
            "https://agent.example/client.json#frag",
            "https://user:pass@agent.example/client.json",
            "https://agent.example/a/../client.json",
            "https://agent.example/./client.json",
            "https://agent.example/a/%2E%2e/client.json",
            "https://agent.example",
            "https://agent.example/",
            "https://Agent.Example/client.json",
            "https://agent.example:443/client.json",
            "not a url",
            long.as_str(),
        ] {
            let result = fetcher.fetch(url, NOW).await;
            assert!(
                matches!(result, Err(DocumentError::InvalidUrl(_))),
                "{url}: {result:?}"
            );
        }
        assert!(check_client_id("https://agent.example/client.json?v=1", &[]).is_ok());
    }

    #[tokio::test]
    async fn a_fetcher_is_disabled_by_default_and_then_fetches_nothing() {
        let fetcher = DocumentFetcher::new(DocumentPolicy::default()).unwrap();

        let result = fetcher
            .fetch("https://agent.example/client.json", NOW)
            .await;

        assert_eq!(result, Err(DocumentError::Disabled));
    }
}

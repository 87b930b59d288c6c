//! Configuration in two stages: [`RawConfig`] as read from defaults, a TOML
//! file, `EPHEMERA_*` environment variables and command-line flags (in that
//! order, later wins), then [`Config`], validated and typed at start-up.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use ephemera_proto::redirect::RedirectForm;
use ephemera_proto::scope::Scope;
use figment::providers::{Env, Format as _, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::policy::{
    DocumentPolicy, Lifetimes, Policy, ProofPolicy, PushedPolicy, RegistrationPolicy,
};

pub mod clients;
pub mod federation;
pub mod limits;
pub mod metrics;
pub mod resources;
pub mod spiffe;
pub mod trusted_issuers;
pub mod upstream;

pub use clients::RawClients;
pub use limits::{ConnectionLimits, Limits, Rate, RawLimits};
pub use metrics::{MetricsConfig, RawMetrics};
pub use resources::{RawExchange, RawExchangePolicy, RawResource, RawResourceEntry};
pub use trusted_issuers::{RawTrustedIssuer, TrustedIssuers};
pub use upstream::{RawLogin, RawProvider, Upstreams};

/// Why the configuration was refused; printed as is at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Read(#[from] Box<figment::Error>),
    #[error("configuration: `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// Settings as written by the operator, before validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub listen: String,
    pub issuer: Option<String>,
    /// `sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
    pub database: String,
    /// The resource registry (RFC 8707): identifiers, or tables with the
    /// scopes, token format, lifetime and exchange of each.
    pub resources: Vec<RawResource>,
    pub log_format: String,
    pub sweep_interval: u64,
    pub scopes: RawScopes,
    pub lifetimes: RawLifetimes,
    pub pushed_clients: RawPushed,
    pub proofs: RawProofs,
    pub tls: RawTls,
    pub registration: RawRegistration,
    pub metadata_documents: RawDocuments,
    pub keys: RawKeys,
    pub limits: RawLimits,
    pub clients: RawClients,
    pub metrics: RawMetrics,
    /// Whether local passwords are accepted.
    pub login: RawLogin,
    /// Upstream identity providers, by name (`[upstream.<name>]`).
    pub upstream: std::collections::BTreeMap<String, RawProvider>,
    /// Issuers whose JWTs are authorization grants (RFC 7523 §2.1), by name
    /// (`[trusted_issuers.<name>]`).
    pub trusted_issuers: std::collections::BTreeMap<String, RawTrustedIssuer>,
    /// SPIFFE trust domains whose workloads are clients, by name
    /// (`[spiffe.<name>]`).
    pub spiffe: std::collections::BTreeMap<String, spiffe::RawTrustDomain>,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For`
    /// and `Client-Cert` headers are believed.
    pub trusted_proxies: Vec<String>,
    /// OpenID Federation 1.0 (`[federation]`); absent: no federation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federation: Option<federation::RawFederation>,
}

/// Signing keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawKeys {
    /// 32 bytes, base64: seals the private signing keys in the database.
    /// Required with PostgreSQL, where every node reads them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<String>,
    /// Seconds between reloads of the keys (a rotation elsewhere arrives
    /// within this).
    pub reload_interval: u64,
}

impl Default for RawKeys {
    fn default() -> Self {
        Self {
            encryption_key: None,
            reload_interval: 60,
        }
    }
}

/// Client ID Metadata Documents: URL client_ids the server fetches.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDocuments {
    pub enabled: bool,
    /// Hosts that may be fetched even on loopback or private addresses.
    pub allow_hosts: Vec<String>,
    /// PEM files of extra trusted CA certificates.
    pub extra_roots: Vec<PathBuf>,
    pub max_bytes: usize,
    /// Seconds a failed fetch is remembered (the same error, no new fetch).
    pub failure_cache: u64,
    /// Fetches from one host per minute at most, per node; 0: no limit.
    pub per_host_per_minute: u32,
}

impl Default for RawDocuments {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_hosts: Vec::new(),
            extra_roots: Vec::new(),
            max_bytes: 5 * 1024,
            failure_cache: DocumentPolicy::default().failure_cache.as_secs(),
            per_host_per_minute: DocumentPolicy::default().per_host_per_minute,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRegistration {
    pub enabled: bool,
    pub initial_access_tokens: Vec<String>,
    pub per_minute: u32,
    pub unused_ttl: i64,
    pub idle_ttl: i64,
}

impl Default for RawRegistration {
    fn default() -> Self {
        let r = RegistrationPolicy::default();
        Self {
            enabled: r.enabled,
            initial_access_tokens: r.initial_access_tokens,
            per_minute: r.per_minute,
            unused_ttl: r.unused_ttl,
            idle_ttl: r.idle_ttl,
        }
    }
}

/// TLS termination (RFC 8705 mutual TLS needs it, or a trusted proxy).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTls {
    /// PEM certificate chain; with `key`, the listener speaks TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// The former name of the top-level `trusted_proxies`, still accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawProofs {
    pub dpop_require_nonce: bool,
    pub dpop_max_age: i64,
    pub assertion_max_lifetime: i64,
    pub leeway: i64,
}

impl Default for RawProofs {
    fn default() -> Self {
        let p = ProofPolicy::default();
        Self {
            dpop_require_nonce: p.dpop_require_nonce,
            dpop_max_age: p.dpop_max_age,
            assertion_max_lifetime: p.assertion_max_lifetime,
            leeway: p.leeway,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawScopes {
    pub supported: Vec<String>,
    /// `None`: pushed clients may get every supported scope.
    pub pushed: Option<Vec<String>>,
    pub default: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLifetimes {
    pub request_uri: i64,
    pub interaction: i64,
    pub code: i64,
    pub access_token: i64,
    pub refresh_token: i64,
    pub pushed_refresh_token: i64,
    pub session: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPushed {
    pub enabled: bool,
    pub require_sender_constraint: bool,
    pub redirect_uri_forms: Vec<String>,
    pub max_registration_bytes: usize,
    /// Pushed authorization requests pending at once on this node; more get 503.
    pub max_pending_requests: u64,
    /// Front-channel requests (`GET /authorize` with the parameters) pending
    /// at once on this node, a budget apart from the pushed ones; more get 503.
    pub max_front_channel_requests: u64,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            issuer: None,
            database: "sqlite://data/ephemera.db".into(),
            resources: Vec::new(),
            log_format: "text".into(),
            sweep_interval: 60,
            scopes: RawScopes::default(),
            lifetimes: RawLifetimes::default(),
            pushed_clients: RawPushed::default(),
            proofs: RawProofs::default(),
            tls: RawTls::default(),
            registration: RawRegistration::default(),
            metadata_documents: RawDocuments::default(),
            keys: RawKeys::default(),
            limits: RawLimits::default(),
            clients: RawClients::default(),
            metrics: RawMetrics::default(),
            login: RawLogin::default(),
            upstream: std::collections::BTreeMap::new(),
            trusted_issuers: std::collections::BTreeMap::new(),
            spiffe: std::collections::BTreeMap::new(),
            trusted_proxies: Vec::new(),
            federation: None,
        }
    }
}

impl Default for RawLifetimes {
    fn default() -> Self {
        let l = Lifetimes::default();
        Self {
            request_uri: l.request_uri,
            interaction: l.interaction,
            code: l.code,
            access_token: l.access_token,
            refresh_token: l.refresh_token,
            pushed_refresh_token: l.pushed_refresh_token,
            session: l.session,
        }
    }
}

impl Default for RawPushed {
    fn default() -> Self {
        Self {
            enabled: true,
            require_sender_constraint: false,
            redirect_uri_forms: vec!["https".into(), "loopback".into(), "private_use".into()],
            max_registration_bytes: 8192,
            max_pending_requests: PushedPolicy::default().max_pending_requests,
            max_front_channel_requests: PushedPolicy::default().max_front_channel_requests,
        }
    }
}

/// Command-line values that override every other source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<RawTls>,
}

/// Environment variables under the prefix that are not settings.
const NOT_SETTINGS: &[&str] = &["config", "test_database_url", "log"];

/// The prefix (after `EPHEMERA_`) of the resource-server example's variables
/// (`EPHEMERA_RS_ISSUER`, …): exported in the same shell, they must not stop
/// the server as unknown settings.
const RESOURCE_EXAMPLE_PREFIX: &str = "rs_";

/// Whether `EPHEMERA_<key>` is a setting. Keys reach the filter as written in
/// the environment (`TEST_DATABASE_URL`), before figment lowercases them.
fn is_setting(key: &str) -> bool {
    !NOT_SETTINGS.iter().any(|n| key.eq_ignore_ascii_case(n))
        && !key
            .get(..RESOURCE_EXAMPLE_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(RESOURCE_EXAMPLE_PREFIX))
}

impl RawConfig {
    /// Reads defaults, then `file` (if given), then `EPHEMERA_*` variables
    /// (nested keys with `__`, e.g. `EPHEMERA_LIFETIMES__CODE=30`), then flags.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(invalid(
                    "--config",
                    format!("file {} does not exist", file.display()),
                ));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment
            .merge(
                Env::prefixed("EPHEMERA_")
                    .split("__")
                    .filter(|k| is_setting(k.as_str())),
            )
            .merge(Serialized::defaults(overrides));
        figment
            .extract()
            .map_err(|e| ConfigError::Read(Box::new(e)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The issuer identifier, without a trailing slash (RFC 8414 §2).
    pub issuer: String,
    pub database: String,
    pub log_format: LogFormat,
    pub sweep_interval: Duration,
    pub policy: Policy,
    /// Certificate and key files, when the listener speaks TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub trusted_proxies: TrustedProxies,
    /// How URL client_ids are fetched.
    pub documents: DocumentPolicy,
    /// Seals private signing keys at rest.
    pub keys_encryption_key: Option<[u8; 32]>,
    pub keys_reload_interval: Duration,
    /// Rate limits, login throttling and connection limits.
    pub limits: Limits,
    pub metrics: MetricsConfig,
    /// Local passwords on or off, and the upstream identity providers.
    pub upstream: Upstreams,
    /// OpenID Federation, when `[federation]` is configured.
    pub federation: Option<federation::FederationConfig>,
}

impl Config {
    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let policy = policy_from_raw(&raw)?;
        let listen: SocketAddr = raw
            .listen
            .parse()
            .map_err(|_| invalid("listen", format!("`{}` is not an address:port", raw.listen)))?;
        let issuer = match raw.issuer {
            Some(i) => i,
            None if listen.ip().is_unspecified() => return Err(invalid(
                "issuer",
                "must be set when listening on all interfaces: clients must know the public URL",
            )),
            // A listener that speaks TLS is reached over https.
            None if raw.tls.cert.is_some() => format!("https://{listen}"),
            None => format!("http://{listen}"),
        };
        let issuer = validate_issuer(&issuer)?;
        validate_database(&raw.database)?;
        let log_format = match raw.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "log_format",
                    format!("`{other}` is not `text` or `json`"),
                ))
            }
        };
        if raw.sweep_interval == 0 {
            return Err(invalid("sweep_interval", "must be at least 1 second"));
        }
        let tls = match (&raw.tls.cert, &raw.tls.key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => return Err(invalid("tls", "cert and key go together")),
        };
        let trusted_proxies = TrustedProxies::parse("trusted_proxies", &raw.trusted_proxies)?.with(
            TrustedProxies::parse("tls.trusted_proxies", &raw.tls.trusted_proxies)?,
        );
        let d = &raw.metadata_documents;
        if !(256..=65536).contains(&d.max_bytes) {
            return Err(invalid(
                "metadata_documents.max_bytes",
                "must be between 256 and 65536",
            ));
        }
        let extra_roots_pem = d
            .extra_roots
            .iter()
            .map(|p| {
                std::fs::read(p).map_err(|e| {
                    invalid(
                        "metadata_documents.extra_roots",
                        format!("{}: {e}", p.display()),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let documents = DocumentPolicy {
            enabled: d.enabled,
            allow_hosts: d.allow_hosts.clone(),
            extra_roots_pem,
            max_bytes: d.max_bytes,
            failure_cache: match d.failure_cache {
                1..=3600 => Duration::from_secs(d.failure_cache),
                _ => {
                    return Err(invalid(
                        "metadata_documents.failure_cache",
                        "must be 1 to 3600 seconds: a failure is never cached as a document, and always for a while",
                    ))
                }
            },
            per_host_per_minute: d.per_host_per_minute,
            ..DocumentPolicy::default()
        };
        let keys_encryption_key = match &raw.keys.encryption_key {
            None => None,
            Some(text) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .or_else(|_| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim())
                    })
                    .map_err(|_| invalid("keys.encryption_key", "is not base64"))?;
                Some(<[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    invalid(
                        "keys.encryption_key",
                        "must be 32 bytes (e.g. `openssl rand -base64 32`)",
                    )
                })?)
            }
        };
        if keys_encryption_key.is_none()
            && DatabaseKind::of(&raw.database) == Some(DatabaseKind::Postgres)
        {
            return Err(invalid(
                "keys.encryption_key",
                "is required with PostgreSQL: every node reads the signing keys from the database, sealed with it",
            ));
        }
        if raw.keys.reload_interval == 0 {
            return Err(invalid("keys.reload_interval", "must be at least 1 second"));
        }
        let limits = Limits::from_raw(&raw.limits)?;
        let metrics = raw.metrics.validate(listen)?;
        let upstream =
            upstream::validate(&raw.login, &raw.upstream, |var| std::env::var(var).ok())?;
        let federation = raw
            .federation
            .as_ref()
            .map(|f| federation::validate(f, &issuer))
            .transpose()?;
        Ok(Self {
            federation,
            upstream,
            metrics,
            limits,
            keys_encryption_key,
            keys_reload_interval: Duration::from_secs(raw.keys.reload_interval),
            documents,
            listen,
            issuer,
            database: raw.database,
            log_format,
            sweep_interval: Duration::from_secs(raw.sweep_interval),
            policy,
            tls,
            trusted_proxies,
        })
    }
}

/// The reverse proxies in front of Ephemera: requests from them are counted
/// under the client address they forward (`X-Forwarded-For`), and their
/// `Client-Cert` header (RFC 9440) is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Addresses (`10.0.0.5`, `::1`) or CIDR ranges (`10.0.0.0/8`).
    fn parse(key: &'static str, items: &[String]) -> Result<Self, ConfigError> {
        items
            .iter()
            .map(|p| {
                let p = p.trim();
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        invalid(
                            key,
                            format!("`{p}` is not an IP address or a CIDR range (10.0.0.0/8)"),
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn with(mut self, more: Self) -> Self {
        self.0.extend(more.0);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` (an IPv4-mapped IPv6 address as its IPv4 one) is a
    /// trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Which backend a database URL names, by its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// `sqlite://PATH`: the embedded default, one file.
    Sqlite,
    /// `postgres://…` or `postgresql://…`: shared by any number of nodes.
    Postgres,
}

/// A database URL fit for logs: any password replaced by `****`.
pub fn redacted(database: &str) -> String {
    match Url::parse(database) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("****"));
            url.to_string()
        }
        _ => database.to_owned(),
    }
}

impl DatabaseKind {
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

const DATABASE_FORMS: &str =
    "use sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or postgresql://…)";

/// Refuses a database URL no backend can open. Messages name the scheme, never
/// the whole URL, which may hold a password.
fn validate_database(url: &str) -> Result<(), ConfigError> {
    match DatabaseKind::of(url) {
        Some(DatabaseKind::Sqlite) => Ok(()),
        Some(DatabaseKind::Postgres) => {
            <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)
                .map(drop)
                .map_err(|e| invalid("database", format!("not a valid PostgreSQL URL: {e}")))
        }
        None => Err(invalid(
            "database",
            match url.split_once(':') {
                Some((scheme, _)) => {
                    format!("`{scheme}:` is not a supported database: {DATABASE_FORMS}")
                }
                None => format!("`{url}` is not a database URL: {DATABASE_FORMS}"),
            },
        )),
    }
}

fn validate_issuer(issuer: &str) -> Result<String, ConfigError> {
    let trimmed = issuer.trim_end_matches('/');
    let url = Url::parse(trimmed)
        .map_err(|e| invalid("issuer", format!("`{issuer}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(invalid(
            "issuer",
            "must be an https (or, for local use, http) URL",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "issuer",
            "must not have a query or fragment (RFC 8414 §2)",
        ));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(invalid(
            "issuer",
            "must not have a path: Ephemera serves at the root of its host",
        ));
    }
    Ok(trimmed.to_owned())
}

fn scope_list(key: &'static str, items: &[String]) -> Result<Scope, ConfigError> {
    Scope::from_tokens(items.iter().cloned()).map_err(|e| invalid(key, e.to_string()))
}

fn policy_from_raw(raw: &RawConfig) -> Result<Policy, ConfigError> {
    let (scopes, l, p) = (&raw.scopes, &raw.lifetimes, &raw.pushed_clients);
    let advertised = scope_list("scopes.supported", &scopes.supported)?;
    // The OpenID Connect identity scopes exist everywhere, for every client
    // model: each release is approved by the user on the consent page.
    let identity = || {
        ephemera_proto::oidc::IDENTITY_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
    };
    let with_identity = |scope: &Scope| {
        Scope::from_tokens(scope.iter().map(str::to_owned).chain(identity()))
            .map_err(|e| invalid("scopes.supported", e.to_string()))
    };
    let supported = with_identity(&advertised)?;
    let pushed = match &scopes.pushed {
        Some(list) => with_identity(&scope_list("scopes.pushed", list)?)?,
        None => supported.clone(),
    };
    let default = scope_list("scopes.default", &scopes.default)?;
    for (key, set) in [("scopes.pushed", &pushed), ("scopes.default", &default)] {
        if let Some(unknown) = set.difference(&supported).next() {
            return Err(invalid(
                key,
                format!("`{unknown}` is not in scopes.supported"),
            ));
        }
    }
    let positive = |key: &'static str, v: i64| {
        if v > 0 {
            Ok(v)
        } else {
            Err(invalid(key, "must be a positive number of seconds"))
        }
    };
    let lifetimes = Lifetimes {
        request_uri: positive("lifetimes.request_uri", l.request_uri)?,
        interaction: positive("lifetimes.interaction", l.interaction)?,
        code: positive("lifetimes.code", l.code)?,
        access_token: positive("lifetimes.access_token", l.access_token)?,
        refresh_token: positive("lifetimes.refresh_token", l.refresh_token)?,
        pushed_refresh_token: positive("lifetimes.pushed_refresh_token", l.pushed_refresh_token)?,
        session: positive("lifetimes.session", l.session)?,
    };
    if lifetimes.request_uri > 600 {
        return Err(invalid(
            "lifetimes.request_uri",
            "must be at most 600 seconds",
        ));
    }
    if lifetimes.code > 600 {
        return Err(invalid(
            "lifetimes.code",
            "must be at most 600 seconds (RFC 6749 §4.1.2)",
        ));
    }
    let redirect_forms = p
        .redirect_uri_forms
        .iter()
        .map(|f| match f.as_str() {
            "https" => Ok(RedirectForm::Https),
            "loopback" => Ok(RedirectForm::LoopbackHttp),
            "private_use" => Ok(RedirectForm::PrivateUse),
            other => Err(invalid(
                "pushed_clients.redirect_uri_forms",
                format!("`{other}` is not one of https, loopback, private_use"),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !(256..=65536).contains(&p.max_registration_bytes) {
        return Err(invalid(
            "pushed_clients.max_registration_bytes",
            "must be between 256 and 65536",
        ));
    }
    if p.max_pending_requests == 0 {
        return Err(invalid(
            "pushed_clients.max_pending_requests",
            "must be at least 1",
        ));
    }
    if p.max_front_channel_requests == 0 {
        return Err(invalid(
            "pushed_clients.max_front_channel_requests",
            "must be at least 1",
        ));
    }
    let r = &raw.proofs;
    let proofs = ProofPolicy {
        dpop_require_nonce: r.dpop_require_nonce,
        dpop_max_age: positive("proofs.dpop_max_age", r.dpop_max_age)?,
        assertion_max_lifetime: positive(
            "proofs.assertion_max_lifetime",
            r.assertion_max_lifetime,
        )?,
        leeway: match r.leeway {
            0..=60 => r.leeway,
            _ => return Err(invalid("proofs.leeway", "must be 0 to 60 seconds")),
        },
    };
    let resources = resources::validate(&raw.resources, &supported, &lifetimes)?;
    let trusted_issuers = trusted_issuers::validate(&raw.trusted_issuers, &supported)?;
    let spiffe = spiffe::validate(&raw.spiffe, &supported, &resources)?;
    Ok(Policy {
        scopes_supported: supported,
        advertised_scopes: advertised,
        pushed_scopes: pushed,
        default_scope: default,
        pushed: PushedPolicy {
            enabled: p.enabled,
            require_sender_constraint: p.require_sender_constraint,
            redirect_forms,
            max_registration_bytes: p.max_registration_bytes,
            max_pending_requests: p.max_pending_requests,
            max_front_channel_requests: p.max_front_channel_requests,
            ..PushedPolicy::default()
        },
        lifetimes,
        proofs,
        clients: raw.clients.validate()?,
        documents_enabled: raw.metadata_documents.enabled,
        resources,
        trusted_issuers,
        spiffe,
        registration: {
            let r = &raw.registration;
            if r.initial_access_tokens.iter().any(|t| t.len() < 32) {
                return Err(invalid(
                    "registration.initial_access_tokens",
                    "each token needs at least 32 characters",
                ));
            }
            if r.per_minute == 0 {
                return Err(invalid("registration.per_minute", "must be at least 1"));
            }
            RegistrationPolicy {
                enabled: r.enabled,
                initial_access_tokens: r.initial_access_tokens.clone(),
                per_minute: r.per_minute,
                unused_ttl: positive("registration.unused_ttl", r.unused_ttl)?,
                idle_ttl: positive("registration.idle_ttl", r.idle_ttl)?,
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(raw: RawConfig) -> Result<Config, ConfigError> {
        Config::from_raw(raw)
    }

    #[test]
    fn defaults_give_the_documented_issuer_and_database() {
        let c = from(RawConfig::default());
        assert!(
            matches!(&c, Ok(c) if c.issuer == "http://127.0.0.1:8080" && c.database == "sqlite://data/ephemera.db")
        );
    }

    #[test]
    fn the_resource_examples_variables_are_not_settings_and_unknown_ones_are_refused() {
        assert!(!is_setting("RS_CLIENT_SECRET") && !is_setting("rs_issuer"));
        assert!(!is_setting("TEST_DATABASE_URL") && !is_setting("LOG"));
        assert!(is_setting("LIFETIMES__CODE") && is_setting("RSA_KEY"));
    }

    #[test]
    fn a_tls_listener_defaults_to_an_https_issuer() {
        let raw = RawConfig {
            tls: RawTls {
                cert: Some("cert.pem".into()),
                key: Some("key.pem".into()),
                ..RawTls::default()
            },
            ..RawConfig::default()
        };
        assert!(matches!(from(raw), Ok(c) if c.issuer == "https://127.0.0.1:8080"));
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges_under_either_name() {
        let raw = RawConfig {
            trusted_proxies: vec!["10.0.0.0/8".into(), "::1".into()],
            tls: RawTls {
                trusted_proxies: vec!["192.0.2.1".into()],
                ..RawTls::default()
            },
            ..RawConfig::default()
        };
        let config = from(raw);
        assert!(config.is_ok(), "refused");
        let trusts = |ip: &str| {
            config.as_ref().is_ok_and(|c| {
                c.trusted_proxies
                    .trusts(ip.parse().unwrap_or(IpAddr::from([0; 4])))
            })
        };
        assert!(trusts("10.1.2.3") && trusts("::1") && trusts("192.0.2.1"));
        assert!(trusts("::ffff:10.9.9.9"), "an IPv4-mapped peer");
        assert!(!trusts("11.0.0.1") && !trusts("192.0.2.2"));
        let bad = RawConfig {
            trusted_proxies: vec!["10.0.0.0/33".into()],
            ..RawConfig::default()
        };
        assert!(matches!(
            from(bad),
            Err(ConfigError::Invalid {
                key: "trusted_proxies",
                ..
            })
        ));
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        let mut raw = RawConfig {
            listen: "nowhere".into(),
            ..RawConfig::default()
        };
        assert!(matches!(
            from(raw.clone()),
            Err(ConfigError::Invalid { key: "listen", .. })
        ));
        raw.listen = "0.0.0.0:80".into();
        assert!(matches!(
            from(raw.clone()),
            Err(ConfigError::Invalid { key: "issuer", .. })
        ));
        raw.issuer = Some("https://as.example/".into());
        assert!(matches!(from(raw.clone()), Ok(c) if c.issuer == "https://as.example"));
        raw.issuer = Some("https://as.example/tenant".into());
        assert!(matches!(
            from(raw.clone()),
            Err(ConfigError::Invalid { key: "issuer", .. })
        ));
        raw.issuer = None;
        raw.listen = "127.0.0.1:1".into();
        raw.scopes.default = vec!["read".into()];
        assert!(matches!(
            from(raw.clone()),
            Err(ConfigError::Invalid {
                key: "scopes.default",
                ..
            })
        ));
        raw.scopes.default = vec![];
        raw.lifetimes.code = 0;
        assert!(matches!(
            from(raw.clone()),
            Err(ConfigError::Invalid {
                key: "lifetimes.code",
                ..
            })
        ));
    }

    #[test]
    fn sqlite_and_postgres_urls_are_accepted() {
        for url in [
            "sqlite://data/ephemera.db",
            "postgres://ephemera@db.internal:5432/ephemera",
            "postgresql://ephemera:secret@db.internal/ephemera?sslmode=require",
        ] {
            let mut raw = RawConfig {
                database: url.into(),
                ..RawConfig::default()
            };
            raw.keys.encryption_key = Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into());
            assert!(matches!(from(raw), Ok(c) if c.database == url), "{url}");
        }
        assert_eq!(
            DatabaseKind::of("postgresql://h/db"),
            Some(DatabaseKind::Postgres)
        );
        assert_eq!(
            DatabaseKind::of("sqlite::memory:"),
            Some(DatabaseKind::Sqlite)
        );
    }

    #[test]
    fn another_database_is_refused_with_the_supported_forms_and_without_its_password() {
        for url in ["mysql://root:hunter2@db/ephemera", "data/ephemera.db"] {
            let raw = RawConfig {
                database: url.into(),
                ..RawConfig::default()
            };
            let result = from(raw);
            assert!(
                matches!(
                    &result,
                    Err(ConfigError::Invalid {
                        key: "database",
                        ..
                    })
                ),
                "{url}"
            );
            let message = result.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains("postgres://"), "{message}");
            assert!(message.contains("sqlite://"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn variables_for_the_process_and_the_tests_are_not_settings() {
        for key in ["CONFIG", "TEST_DATABASE_URL", "LOG", "test_database_url"] {
            assert!(!is_setting(key), "{key}");
        }
        assert!(is_setting("DATABASE"));
        assert!(is_setting("LIFETIMES.CODE"));
    }

    #[test]
    fn postgres_needs_a_key_encryption_key_of_32_bytes() {
        let mut raw = RawConfig {
            database: "postgres://h/db".into(),
            ..RawConfig::default()
        };
        assert!(matches!(
            from(raw.clone()),
            Err(ConfigError::Invalid {
                key: "keys.encryption_key",
                ..
            })
        ));
        raw.keys.encryption_key = Some("c2hvcnQ=".into());
        assert!(matches!(
            from(raw.clone()),
            Err(ConfigError::Invalid {
                key: "keys.encryption_key",
                ..
            })
        ));
        raw.keys.encryption_key = Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into());
        assert!(
            matches!(from(raw), Ok(c) if c.keys_encryption_key == Some(core::array::from_fn(|i| i as u8)))
        );
    }

    #[test]
    fn database_passwords_never_reach_the_logs() {
        assert_eq!(
            redacted("postgres://u:secret@db/x"),
            "postgres://u:****@db/x"
        );
        assert_eq!(redacted("sqlite://data/e.db"), "sqlite://data/e.db");
    }

    #[test]
    fn pushed_scopes_default_to_all_supported() {
        let raw = RawConfig {
            scopes: RawScopes {
                supported: vec!["read".into(), "write".into()],
                ..RawScopes::default()
            },
            ..RawConfig::default()
        };
        let c = from(raw);
        // The identity scopes of OpenID Connect always exist, for everyone;
        // the RFC 8414 document lists only the configured ones.
        assert!(
            matches!(&c, Ok(c) if c.policy.pushed_scopes.to_string() == "email openid profile read write"),
            "{c:?}"
        );
        assert!(matches!(&c, Ok(c) if c.policy.advertised_scopes.to_string() == "read write"));
    }
}

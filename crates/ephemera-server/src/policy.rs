//! What this deployment allows: which scopes exist and who may get them, what
//! pushed clients may register, and how long each artifact lives.

use std::time::Duration;

use ephemera_proto::metadata::MetadataLimits;
use ephemera_proto::redirect::RedirectForm;
use ephemera_proto::scope::Scope;

use crate::config::trusted_issuers::TrustedIssuers;
use crate::model::ClientKind;

/// Lifetimes in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifetimes {
    /// A pushed request's `expires_in` (RFC 9126 §2.2).
    pub request_uri: i64,
    /// How long a started login/consent interaction may take once the
    /// request_uri has been presented at the authorization endpoint.
    pub interaction: i64,
    pub code: i64,
    pub access_token: i64,
    /// Refresh tokens of registered clients.
    pub refresh_token: i64,
    /// Refresh tokens of pushed clients: when it ends, the client is gone.
    pub pushed_refresh_token: i64,
    /// Absolute lifetime of a login session.
    pub session: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            request_uri: 60,
            interaction: 600,
            code: 60,
            access_token: 3600,
            refresh_token: 30 * 24 * 3600,
            pushed_refresh_token: 24 * 3600,
            session: 12 * 3600,
        }
    }
}

/// What pushed clients may do.
#[derive(Debug, Clone)]
pub struct PushedPolicy {
    pub enabled: bool,
    /// Pushed clients must bind a key (DPoP or a client certificate) at PAR.
    pub require_sender_constraint: bool,
    pub redirect_forms: Vec<RedirectForm>,
    pub max_registration_bytes: usize,
    pub limits: MetadataLimits,
    /// Pushed authorization requests pending at once per node; more get
    /// 503 + Retry-After.
    pub max_pending_requests: u64,
    /// Front-channel requests (stored from `GET /authorize` parameters)
    /// pending at once per node: a budget of their own, so unauthenticated
    /// browser traffic cannot use up the pushed requests'.
    pub max_front_channel_requests: u64,
}

impl Default for PushedPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            require_sender_constraint: false,
            redirect_forms: vec![
                RedirectForm::Https,
                RedirectForm::LoopbackHttp,
                RedirectForm::PrivateUse,
            ],
            max_registration_bytes: 8192,
            limits: MetadataLimits::default(),
            max_pending_requests: 100_000,
            max_front_channel_requests: 10_000,
        }
    }
}

/// Dynamic Client Registration (RFC 7591): open, or behind initial access
/// tokens; and how long a self-registered client may stay.
#[derive(Debug, Clone)]
pub struct RegistrationPolicy {
    pub enabled: bool,
    /// Tokens that may register (RFC 7591 §3); none: registration is open.
    pub initial_access_tokens: Vec<String>,
    /// Registrations per minute from one address.
    pub per_minute: u32,
    /// A client that never completes a grant is deleted after this, seconds.
    pub unused_ttl: i64,
    /// A client idle this long after its last token is deleted, seconds.
    pub idle_ttl: i64,
}

impl Default for RegistrationPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_access_tokens: Vec::new(),
            per_minute: 20,
            unused_ttl: 24 * 3600,
            idle_ttl: 30 * 24 * 3600,
        }
    }
}

/// How proofs of possession are checked.
#[derive(Debug, Clone)]
pub struct ProofPolicy {
    /// DPoP proofs must carry a server nonce (RFC 9449 §8).
    pub dpop_require_nonce: bool,
    /// How old a DPoP proof's `iat` may be, in seconds.
    pub dpop_max_age: i64,
    /// The furthest ahead a client assertion's `exp` may lie, in seconds.
    pub assertion_max_lifetime: i64,
    /// Allowed clock skew, in seconds.
    pub leeway: i64,
}

impl Default for ProofPolicy {
    fn default() -> Self {
        Self {
            dpop_require_nonce: false,
            dpop_max_age: 60,
            assertion_max_lifetime: 300,
            leeway: 5,
        }
    }
}

/// What clients may do beyond what they registered: the rules OAuth 2.1
/// leaves to the deployment.
#[derive(Debug, Clone)]
pub struct ClientPolicy {
    /// OAuth 2.1 (§4.1.1) requires PKCE of every client; when set,
    /// pre-registered confidential clients may leave it out. Every other
    /// client (public, pushed, self-registered, metadata documents) always
    /// uses it.
    pub pkce_optional_for_registered_confidential: bool,
    /// The client models that may use `client_credentials` at all (each
    /// client must still have registered the grant type). Never pushed
    /// clients: a client that exists only inside its grant has no grant
    /// without a user.
    pub client_credentials: Vec<ClientKind>,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        Self {
            pkce_optional_for_registered_confidential: false,
            // A metadata document with a key is anyone who hosts a page:
            // it mints no machine tokens unless the operator says so.
            client_credentials: vec![ClientKind::Registered, ClientKind::SelfRegistered],
        }
    }
}

/// The whole policy of a deployment.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Every scope that exists here: the configured ones and the OpenID
    /// Connect identity scopes (`openid`, `profile`, `email`).
    pub scopes_supported: Scope,
    /// The configured scopes, which the RFC 8414 document lists
    /// (`scopes_supported`); the OpenID document lists them all.
    pub advertised_scopes: Scope,
    /// The subset pushed clients may be granted.
    pub pushed_scopes: Scope,
    /// Applied when a request names no scope (RFC 6749 §3.3).
    pub default_scope: Scope,
    pub pushed: PushedPolicy,
    pub lifetimes: Lifetimes,
    pub proofs: ProofPolicy,
    pub registration: RegistrationPolicy,
    pub clients: ClientPolicy,
    /// URL client_ids (Client ID Metadata Documents) are accepted.
    pub documents_enabled: bool,
    /// The resource registry: the resources (RFC 8707) tokens may be
    /// issued for, each with its scopes, token format and access token
    /// lifetime; empty: any absolute URI, with opaque tokens.
    pub resources: Vec<ResourcePolicy>,
    /// The issuers whose JWTs are authorization grants (RFC 7523 §2.1):
    /// ID-JAGs and workloads' JWTs; empty: the grant is not served.
    pub trusted_issuers: TrustedIssuers,
    /// The SPIFFE trust domains whose workloads authenticate with their
    /// SVIDs; empty: `jwt-spiffe` client assertions are refused.
    pub spiffe: crate::config::spiffe::TrustDomains,
}

/// What an access token is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenFormat {
    /// 256 random bits, meaningful only to introspection (RFC 7662).
    #[default]
    Opaque,
    /// A JWT access token (RFC 9068), signed with the server's keys, that
    /// a resource server can validate without calling back.
    Jwt,
}

impl TokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opaque => "opaque",
            Self::Jwt => "jwt",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "opaque" => Some(Self::Opaque),
            "jwt" => Some(Self::Jwt),
            _ => None,
        }
    }
}

/// One entry of the resource registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePolicy {
    /// The resource indicator (RFC 8707 §2): an absolute URI without a
    /// fragment, compared as a string.
    pub identifier: String,
    /// The scopes this resource accepts: a token for it carries only these
    /// of the granted scopes (and the OpenID identity scopes, which are for
    /// `/userinfo`). `None`: every granted scope.
    pub scopes: Option<Scope>,
    pub format: TokenFormat,
    /// How long an access token for it lives, in seconds.
    pub access_token_lifetime: i64,
    /// Who may get tokens for it by token exchange (RFC 8693); `None`:
    /// nobody.
    pub exchange: Option<ExchangePolicy>,
}

/// Who may exchange a token for one to a resource (RFC 8693), and from
/// which tokens. Only clients the operator registered with the token
/// exchange grant type ever may; this narrows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExchangePolicy {
    /// The clients that may; `None`: every registered client with the
    /// grant type.
    pub clients: Option<Vec<String>>,
    /// The resources a subject token must have been issued for; `None`:
    /// any.
    pub from: Option<Vec<String>>,
    /// The clients whose exchanges without an `actor_token` are
    /// impersonation: the new token carries no `act` of theirs. Everyone
    /// else's are delegation, with the client as the actor.
    pub impersonation: Vec<String>,
}

impl ExchangePolicy {
    pub fn admits(&self, client_id: &str) -> bool {
        self.clients
            .as_ref()
            .is_none_or(|c| c.iter().any(|x| x == client_id))
    }

    /// Whether a subject token for `audience` may be exchanged.
    pub fn accepts_from(&self, audience: &[String]) -> bool {
        self.from
            .as_ref()
            .is_none_or(|from| audience.iter().any(|a| from.contains(a)))
    }

    pub fn impersonates(&self, client_id: &str) -> bool {
        self.impersonation.iter().any(|x| x == client_id)
    }
}

impl ResourcePolicy {
    /// An entry of the old flat list: every scope, opaque tokens, the
    /// default lifetime, no exchange.
    pub fn plain(identifier: String, lifetimes: &Lifetimes) -> Self {
        Self {
            identifier,
            scopes: None,
            format: TokenFormat::Opaque,
            access_token_lifetime: lifetimes.access_token,
            exchange: None,
        }
    }
}

impl Policy {
    /// The registry's entry for `identifier`, if it lists one.
    pub fn resource(&self, identifier: &str) -> Option<&ResourcePolicy> {
        self.resources.iter().find(|r| r.identifier == identifier)
    }

    /// The longest an access token can live, whatever its resource: how
    /// long a retired signing key stays published, so every JWT it signed
    /// can still be checked until it expires.
    pub fn longest_access_token_lifetime(&self) -> i64 {
        self.resources
            .iter()
            .map(|r| r.access_token_lifetime)
            .fold(self.lifetimes.access_token, i64::max)
    }

    /// The scopes a client of `kind` may be granted at most.
    pub fn grantable_scopes(&self, kind: ClientKind) -> &Scope {
        match kind {
            ClientKind::Registered => &self.scopes_supported,
            // Open-world clients, pushed or self-registered, get what policy
            // allows clients nobody vouched for.
            ClientKind::Pushed
            | ClientKind::SelfRegistered
            | ClientKind::MetadataDocument
            | ClientKind::Federation => &self.pushed_scopes,
            // A workload is no person: never the OpenID identity scopes.
            ClientKind::Workload => &self.advertised_scopes,
        }
    }

    pub fn refresh_lifetime(&self, kind: ClientKind) -> i64 {
        match kind {
            ClientKind::Registered
            | ClientKind::SelfRegistered
            | ClientKind::MetadataDocument
            | ClientKind::Workload
            | ClientKind::Federation => self.lifetimes.refresh_token,
            ClientKind::Pushed => self.lifetimes.pushed_refresh_token,
        }
    }
}

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

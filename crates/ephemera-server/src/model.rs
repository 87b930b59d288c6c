//! Plain data: what the services decide about and the store keeps.

use ephemera_proto::scope::Scope;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secret::SecretHash;

/// Seconds since the Unix epoch. Services take it as an input.
pub type Timestamp = i64;

/// Where a client's metadata came from, and so how far it can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// Created by the operator (`ephemera client add`).
    Registered,
    /// Sent by the client itself in its PAR (Pushed Client Registration).
    Pushed,
    /// Registered by the client itself at the registration endpoint
    /// (Dynamic Client Registration, RFC 7591); `dynamic` in storage,
    /// configuration and introspection.
    #[serde(rename = "dynamic")]
    SelfRegistered,
    /// Its `client_id` is the https URL of its metadata document, which the
    /// server fetched (draft-ietf-oauth-client-id-metadata-document).
    MetadataDocument,
    /// A workload its platform vouches for with a JWT (RFC 7523 §2.1, MCP
    /// workload identity federation): never registered, its `client_id` is
    /// the JWT's `sub`, its metadata names the trusted issuer.
    Workload,
    /// Its `client_id` is the entity identifier of an OpenID Federation
    /// entity whose trust chain leads to a configured trust anchor
    /// (automatic registration, OpenID Federation 1.0 §12.1).
    Federation,
}

impl ClientKind {
    /// The model in words, for error descriptions.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Registered => "pre-registered",
            Self::Pushed => "pushed",
            Self::SelfRegistered => "dynamically registered",
            Self::MetadataDocument => "metadata document",
            Self::Workload => "workload",
            Self::Federation => "federation",
        }
    }

    /// The model as configuration and introspection name it.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Registered,
            Self::Pushed,
            Self::SelfRegistered,
            Self::MetadataDocument,
            Self::Workload,
            Self::Federation,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Pushed => "pushed",
            Self::SelfRegistered => "dynamic",
            Self::MetadataDocument => "metadata_document",
            Self::Workload => "workload",
            Self::Federation => "federation",
        }
    }
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client: `client_id` only, PKCE protects the code.
    None,
    /// A confidential client with a shared secret (basic or post).
    ClientSecret,
    /// A JWT signed by one of the client's keys (RFC 7523), for pushed
    /// clients the keys of their own registration.
    PrivateKeyJwt,
    /// The client's own certificate in mutual TLS, matched against the
    /// certificates (`x5c`) of its registered keys (RFC 8705 §2.2).
    SelfSignedTlsClientAuth,
}

/// The client as resolved once at the start of a transaction: every later
/// step reads this, whatever model the client came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSnapshot {
    pub client_id: String,
    pub kind: ClientKind,
    pub auth_method: AuthMethod,
    /// Display name; self-asserted for pushed clients.
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    /// The grant types it registered (RFC 7591 §2); nothing else is allowed.
    pub grant_types: Vec<String>,
    /// The response types it registered: `["code"]`, or empty for a client
    /// without the authorization code flow.
    #[serde(default = "code_response_type")]
    pub response_types: Vec<String>,
    /// Scopes this client may be granted; `None` means whatever policy allows.
    pub allowed_scope: Option<Scope>,
    /// The metadata as the client sent it (pushed) or as configured.
    pub metadata: Value,
    /// Public keys for `private_key_jwt` (a JWK Set).
    #[serde(default)]
    pub jwks: Option<Value>,
    /// The origin that vouches for the client: the host its metadata
    /// document was fetched from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_origin: Option<String>,
    /// What the client may and must do, as resolution and policy decided
    /// when it was resolved (`service::resolve`). `None` in snapshots stored
    /// before capabilities existed, and in those built as plain data; the
    /// resolver derives them then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caps: Option<Capabilities>,
}

/// What a resolved client may and must do. Resolution computes it once, from
/// the client model and the deployment's policy; every later step reads it
/// instead of asking which model the client came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Who vouches for its name and details.
    pub trust: Trust,
    /// A user's consent is remembered for it (it has a stable identity).
    pub remember_consent: bool,
    /// How an authorization request's redirect URI is decided.
    pub redirect: RedirectRule,
    /// How its transaction is bound to keys.
    pub binding: BindingRule,
    /// Its authorization requests need PKCE (S256).
    pub pkce_required: bool,
    /// Its authorization requests need `state`.
    pub state_required: bool,
    /// The scopes it may be granted at most.
    pub grantable_scope: Scope,
    /// Policy opens `client_credentials` to its model (it must also have
    /// registered the grant type).
    pub client_credentials: bool,
    /// Seconds its refresh tokens live.
    pub refresh_lifetime: i64,
    /// Getting tokens renews its registration's time-to-live (RFC 7591
    /// abuse control deletes only idle self-registered clients).
    pub renew_on_use: bool,
    /// Its keys are published by someone else's server and may change
    /// under its grants (a metadata document's `jwks` or `jwks_uri`): a
    /// grant made under keys it no longer publishes ends at its next use.
    #[serde(default)]
    pub grants_end_with_keys: bool,
    /// Its OpenID Connect requests need a `nonce`, and its ID Tokens name
    /// the grant in `aud` beside its `client_id`: its `client_id` is shared
    /// by every client of its model, so neither it nor an ID Token made for
    /// it tells one instance from another (docs/protocol.md).
    #[serde(default)]
    pub shared_client_id: bool,
    /// Its authorization requests must be pushed (PAR) and authenticated:
    /// the front channel cannot prove the client's keys, which its model
    /// needs before anything else (OpenID Federation 1.0 §12.1.1).
    #[serde(default)]
    pub par_required: bool,
}

/// Who vouches for a client's name and details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// The operator registered it.
    Operator,
    /// It describes itself, from a host the server fetched it from (shown).
    VerifiedOrigin,
    /// It describes itself; nothing vouches for it.
    SelfAsserted,
    /// An issuer the operator trusts vouches for it (a workload's platform).
    Issuer,
    /// Its metadata reached the server through a trust chain from a trust
    /// anchor the operator configured, with the anchor's policies applied.
    TrustAnchor,
}

/// How an authorization request's redirect URI is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedirectRule {
    /// One of the client's registered redirect URIs (exact match, loopback
    /// any port); may be left out when only one is registered.
    Registered,
    /// Sent with every request, among the URIs its registration lists (when
    /// it lists any), in a form policy allows for clients that registered
    /// themselves in the request.
    SentWithRequest,
}

/// How a client's transaction is bound to keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BindingRule {
    /// The binding is fixed when the request is pushed: none can be added
    /// at the token endpoint.
    pub fixed_at_par: bool,
    /// Its requests must come over mutual TLS: the certificate is bound at PAR.
    pub certificate: bool,
    /// Its registration asks for DPoP-bound tokens: a proof (or `dpop_jkt`)
    /// is needed at PAR.
    pub dpop: bool,
    /// Some key (DPoP or a certificate) must be bound at PAR.
    pub required: bool,
}

fn code_response_type() -> Vec<String> {
    vec!["code".to_owned()]
}

/// The response types that go with `grant_types` (RFC 7591 §2.1: the code
/// response type with the `authorization_code` grant, and only with it).
pub fn response_types_for(grant_types: &[String]) -> Vec<String> {
    if grant_types.iter().any(|g| g == "authorization_code") {
        code_response_type()
    } else {
        Vec::new()
    }
}

impl ClientSnapshot {
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    pub fn may_use_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// The keys a transaction is bound to from PAR on: its tokens must be
/// presented with proof of them, and the binding never changes afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeyBinding {
    /// RFC 7638 thumbprint of the DPoP key (RFC 9449 `jkt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// SHA-256 thumbprint of the client certificate (RFC 8705 `x5t#S256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}

impl KeyBinding {
    pub fn is_none(&self) -> bool {
        self.dpop_jkt.is_none() && self.x5t_s256.is_none()
    }
}

/// A pre-registered client as the operator created it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredClient {
    pub client_id: String,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub allowed_scope: Option<Scope>,
    pub confidential: bool,
    pub can_introspect: bool,
    pub created_at: Timestamp,
    /// Public keys for `private_key_jwt`, set by the operator.
    #[serde(default)]
    pub jwks: Option<Value>,
    /// The grant types the operator allowed (`ephemera client add
    /// --grant-type`); `None`: the defaults (`authorization_code` and
    /// `refresh_token`, and `client_credentials` for a confidential client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    /// Set for a client that described itself: registered at the
    /// registration endpoint (RFC 7591), or a fetched metadata document.
    /// Stored as `dynamic`, its name before metadata documents existed.
    #[serde(default, rename = "dynamic")]
    pub self_described: Option<SelfDescription>,
    #[serde(skip)]
    pub secret_hash: Option<SecretHash>,
}

fn dynamic_kind() -> ClientKind {
    ClientKind::SelfRegistered
}

/// What a client said of itself (at the registration endpoint, or in its
/// metadata document), and how long it may stay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfDescription {
    /// `Dynamic` (registered here) or `MetadataDocument` (fetched).
    #[serde(default = "dynamic_kind")]
    pub kind: ClientKind,
    /// The host a metadata document came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_origin: Option<String>,
    /// The validated RFC 7591 metadata (no secrets).
    pub metadata: Value,
    pub grant_types: Vec<String>,
    pub auth_method: AuthMethod,
    /// Deleted by the sweeper after this, unless used (RFC 7591 abuse control).
    #[serde(skip)]
    pub expires_at: Timestamp,
    #[serde(skip)]
    pub registration_token_hash: Option<SecretHash>,
    /// What identifies an identical registration of a public client (its
    /// metadata and the address it came from), so a client registering on
    /// every connect stays one client; `None` for the rest.
    #[serde(skip)]
    pub fingerprint: Option<SecretHash>,
}

/// The grant types of a pre-registered client the operator named none for.
pub fn default_grant_types(confidential: bool) -> Vec<String> {
    let mut grant_types = vec!["authorization_code".to_owned(), "refresh_token".to_owned()];
    if confidential {
        grant_types.push("client_credentials".to_owned());
    }
    grant_types
}

impl StoredClient {
    /// The client as data, its capabilities not yet decided: the resolver
    /// (`service::resolve::snapshot`) adds them.
    pub fn snapshot(&self) -> ClientSnapshot {
        if let Some(d) = &self.self_described {
            return ClientSnapshot {
                caps: None,
                client_id: self.client_id.clone(),
                kind: d.kind,
                verified_origin: d.verified_origin.clone(),
                auth_method: d.auth_method,
                name: self.name.clone(),
                redirect_uris: self.redirect_uris.clone(),
                response_types: response_types_for(&d.grant_types),
                grant_types: d.grant_types.clone(),
                allowed_scope: self.allowed_scope.clone(),
                metadata: d.metadata.clone(),
                jwks: self.jwks.clone(),
            };
        }
        let grant_types = self
            .grant_types
            .clone()
            .unwrap_or_else(|| default_grant_types(self.confidential));
        ClientSnapshot {
            caps: None,
            client_id: self.client_id.clone(),
            kind: ClientKind::Registered,
            auth_method: match (self.confidential, &self.jwks) {
                (_, Some(_)) => AuthMethod::PrivateKeyJwt,
                (true, None) => AuthMethod::ClientSecret,
                (false, None) => AuthMethod::None,
            },
            name: self.name.clone(),
            redirect_uris: self.redirect_uris.clone(),
            response_types: response_types_for(&grant_types),
            grant_types,
            allowed_scope: self.allowed_scope.clone(),
            metadata: Value::Null,
            jwks: self.jwks.clone(),
            verified_origin: None,
        }
    }
}

/// A validated authorization request waiting for the user (RFC 9126), whether
/// it came through PAR or was stored from front-channel parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRequest {
    pub client: ClientSnapshot,
    pub redirect_uri: String,
    /// Whether the client sent `redirect_uri` (rather than relying on its
    /// only registered one), which the token request must then repeat.
    pub redirect_uri_sent: bool,
    pub state: Option<String>,
    pub scope: Scope,
    pub resources: Vec<String>,
    pub code_challenge: Option<String>,
    pub key_binding: KeyBinding,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Stored from front-channel parameters (`GET /authorize` without a
    /// `request_uri`) rather than pushed: it counts against a budget of its
    /// own, so unauthenticated browser traffic cannot use up PAR's.
    #[serde(default)]
    pub front_channel: bool,
    /// The OpenID Connect parameters of the request (`nonce`, `prompt`,
    /// `max_age`); stored as JSON, so older rows read as none.
    #[serde(default, skip_serializing_if = "OidcRequest::is_empty")]
    pub oidc: OidcRequest,
}

/// What an authorization request asked of the sign-in (OpenID Connect Core
/// §3.1.2.1), carried from the request to the grant's ID Tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcRequest {
    /// Echoed in the ID Token issued for the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// A session older than this many seconds signs in again; `auth_time`
    /// is then always in the ID Token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    #[serde(default)]
    pub prompt: ephemera_proto::oidc::Prompt,
}

impl OidcRequest {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// How the user of a grant signed in, and the `nonce` of its request: what
/// its ID Tokens say (OpenID Connect Core §2). Set at consent from the
/// session; refreshed ID Tokens keep the original `auth_time` (§12.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// When the user signed in (the session's start).
    pub auth_time: Timestamp,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// The two budgets of pending requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingBudget {
    /// Pushed authorization requests (RFC 9126).
    Pushed = 0,
    /// Requests stored from front-channel parameters.
    FrontChannel = 1,
}

impl PendingBudget {
    pub fn of(request: &PendingRequest) -> Self {
        if request.front_channel {
            Self::FrontChannel
        } else {
            Self::Pushed
        }
    }
}

/// A transaction: one client snapshot, one user, the rights granted, and the
/// key binding, from the code until its last token ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// Public, stable per-grant identifier (introspection's `grant_id`).
    pub id: String,
    pub client: ClientSnapshot,
    pub key_binding: KeyBinding,
    /// The user's id; `None` for `client_credentials`.
    pub subject: Option<String>,
    pub username: Option<String>,
    pub scope: Scope,
    pub resources: Vec<String>,
    pub created_at: Timestamp,
    /// Where the authorization response went, shown on the account page (its
    /// host tells two installations apart); `None` for `client_credentials`
    /// and for grants stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// How the user signed in, for ID Tokens; `None` for `client_credentials`
    /// and grants stored before OpenID Connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// Set for a grant made by token exchange (RFC 8693): where it came
    /// from and who acts. `None` for every other grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchanged: Option<Exchanged>,
}

impl Grant {
    /// The token's `sub`: the user, else the client a token of no user was
    /// issued to (RFC 9068 §2.2), which for an exchanged token is the
    /// subject token's client, not the one that exchanged it.
    pub fn sub(&self) -> &str {
        self.subject
            .as_deref()
            .or_else(|| self.exchanged.as_ref().map(|e| e.subject_client.as_str()))
            .unwrap_or(&self.client.client_id)
    }

    /// The actor chain of an exchanged grant (RFC 8693 §4.1 `act`).
    pub fn act(&self) -> Option<&Value> {
        self.exchanged.as_ref().and_then(|e| e.act.as_ref())
    }
}

/// What a grant made by token exchange (RFC 8693) keeps of the exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchanged {
    /// The grant of the subject token. Ending it ends this grant (the store
    /// deletes it with its parent), and so every token exchanged from it.
    pub parent: String,
    /// The client the first subject token of the chain was issued to: the
    /// `sub` of a token of no user, kept down a chain of exchanges.
    pub subject_client: String,
    /// The actor chain (RFC 8693 §4.1): the current actor outermost, prior
    /// actors nested in it; `None` for impersonation without prior actors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
}

/// Which grants to list: a user's, a client's, a key's, or any mix (`None`
/// is any).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GrantFilter {
    pub subject: Option<String>,
    pub client_id: Option<String>,
    /// A DPoP key thumbprint (RFC 9449 `jkt`) or a certificate thumbprint
    /// (RFC 8705 `x5t#S256`): the grants bound to it, at PAR (the grant's
    /// `KeyBinding`) or at the token endpoint (any of its tokens).
    pub key: Option<String>,
    pub limit: u32,
}

/// A grant as a person sees it in a list: enough to tell one installation of
/// a client from another.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantSummary {
    pub grant: Grant,
    /// Unused, unexpired access and refresh tokens.
    pub live_tokens: i64,
    /// When it last got tokens.
    pub last_issued: Option<Timestamp>,
    /// The keys its newest bound token is bound to: a grant not bound at PAR
    /// is bound at the token endpoint, per token (RFC 9449 §5).
    pub token_key: KeyBinding,
}

impl GrantSummary {
    /// The key the grant's tokens are bound to: the grant's own, else its
    /// newest bound token's.
    pub fn key(&self) -> &KeyBinding {
        if self.grant.key_binding.is_none() {
            &self.token_key
        } else {
            &self.grant.key_binding
        }
    }
}

/// An authorization code, stored by hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    pub hash: SecretHash,
    pub grant_id: String,
    /// The `redirect_uri` the token request must repeat, when the
    /// authorization request carried one (RFC 6749 §4.1.3).
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(Self::Access),
            "refresh" => Some(Self::Refresh),
            _ => None,
        }
    }
}

/// An access or refresh token, stored by hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub hash: SecretHash,
    pub grant_id: String,
    pub kind: TokenKind,
    pub scope: Scope,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// Set when a refresh token was rotated (used once).
    pub used_at: Option<Timestamp>,
    /// The DPoP key thumbprint the token is bound to.
    pub jkt: Option<String>,
    /// The client certificate thumbprint the token is bound to.
    pub x5t: Option<String>,
    /// The resources this access token is for, when narrowed from the
    /// grant's (RFC 8707 §2.2).
    pub audience: Option<Vec<String>>,
}

/// A resource owner.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub username: String,
    /// The argon2 hash of the local password; `None` for a person who signs
    /// in only through an upstream identity provider.
    pub password_hash: Option<String>,
    /// What the record says of the person, for ID Tokens and `/userinfo`.
    pub claims: UserClaims,
    pub created_at: Timestamp,
}

/// The standard claims a user record holds (OpenID Connect Core §5.1): set
/// by `ephemera user add`, or from an upstream provider's claims at each
/// sign-in through it. Stored as JSON; absent ones are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// How a session's user signed in: OpenID Connect's `amr` (RFC 8176
/// values) and `acr`, and the upstream provider, if any. The session's
/// `created_at` is the `auth_time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The configured name of the upstream provider signed in through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl SignIn {
    /// A local password (`pwd`, RFC 8176 §2).
    pub fn password() -> Self {
        Self {
            amr: vec!["pwd".to_owned()],
            acr: None,
            provider: None,
        }
    }
}

/// A person's identity at an upstream provider, keyed by the provider's
/// issuer and its subject for them (never by email): the link to the local
/// user it signs in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamIdentity {
    /// The provider's issuer identifier (OpenID Connect), or the fixed
    /// identifier configured for a plain OAuth 2 provider.
    pub issuer: String,
    pub subject: String,
    pub user_id: String,
    /// The configured name of the provider.
    pub provider: String,
    pub created_at: Timestamp,
}

/// A logged-in browser session, stored by hash of the cookie value.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub hash: SecretHash,
    pub user_id: String,
    pub username: String,
    /// When the user signed in (`auth_time`).
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub sign_in: SignIn,
}

/// A sign-in through an upstream provider between the redirect to it and
/// its callback. Only hashes of its secrets are stored: `state` (the key),
/// and a value derived from the browser's cookie (the binding); the PKCE
/// verifier and the nonce are derived from the cookie and `state` again at
/// the callback, and where the browser returns (which may hold a
/// `request_uri`) is sealed with a key derived from both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamLogin {
    pub state_hash: SecretHash,
    pub browser_hash: SecretHash,
    /// The configured name of the provider.
    pub provider: String,
    /// The sealed return target, base64url.
    pub return_to: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A signing key; the private part is PKCS#8 DER.
#[derive(Clone, PartialEq)]
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    pub private_der: Vec<u8>,
    pub public_jwk: Value,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Live counts, for `ephemera stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub pending_pushed_requests: i64,
    pub grants: i64,
    pub pushed_client_grants: i64,
    pub codes: i64,
    pub access_tokens: i64,
    pub refresh_tokens: i64,
    pub sessions: i64,
    pub registered_clients: i64,
    pub dynamic_clients: i64,
    pub users: i64,
}

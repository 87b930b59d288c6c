//! The OAuth logic. Services take the [`Context`], their parsed input and
//! `now`; they return a value or an [`OAuthError`]. They never import axum
//! or sqlx.
//!
//! | module | owns |
//! |---|---|
//! | [`resolve`] | `client_id` -> `ClientSnapshot` for every client model, and the `Capabilities` each model gets: the only place services tell client models apart |
//! | [`metadata_document`] | what a URL `client_id` resolves to: the `DocumentSource` interface (the fetcher is `crate::documents`) |
//! | [`federation`] | OpenID Federation: the server's Entity Configuration (federation key), and clients' trust chains, fetched, validated and cached |
//! | [`client_auth`] | who is calling a back-channel endpoint (RFC 6749 §2.3) |
//! | [`spiffe`] | SPIFFE workloads as clients: JWT-SVID client assertions against the trust domain's bundle, and the rule that applies |
//! | [`request`] | validation of an authorization request, shared by PAR and the front channel |
//! | [`par`] | the PAR endpoint (RFC 9126) |
//! | [`authorize`] | the authorization endpoint: which page, or the response |
//! | [`pending`] | a pending request as the pages see it, and the login session |
//! | [`login`] | checking a user's password and opening a session |
//! | [`upstream`] | signing in through an upstream identity provider: the redirect there, the callback, the user it signs in as |
//! | [`federated`] | the local user a person another issuer vouches for is (upstream sign-in, ID-JAGs): keyed by issuer and subject |
//! | [`consent`] | approve/deny, the grant and its code |
//! | [`token`] | the token endpoint: `authorization_code`, `client_credentials` |
//! | [`assertion_grant`] | the JWT bearer grant (RFC 7523 §2.1): ID-JAGs for registered clients, workloads' JWTs |
//! | [`refresh`] | the `refresh_token` grant with rotation and reuse detection |
//! | [`exchange`] | token exchange (RFC 8693): delegation and impersonation by resource policy, the `act` chain |
//! | [`proof`] | proof of possession: DPoP proofs, client assertions, nonces, replay |
//! | [`register`] | Dynamic Client Registration and management (RFC 7591, RFC 7592) |
//! | [`issue`] | minting access and refresh tokens |
//! | [`id_token`] | OpenID Connect ID Tokens, and the claims a user record releases by scope |
//! | [`userinfo`] | the UserInfo endpoint (OpenID Connect Core §5.3): the access token, its binding, the claims |
//! | [`introspect`] | RFC 7662 |
//! | [`revoke`] | RFC 7009 |
//! | [`grants`] | a user's grants on the account page, everyone's for the operator, and revoking one |
//! | [`keys`] | signing keys and the JWKS |
//! | [`sweep`] | expiry and erasure |
//! | [`gauges`] | the counts `/metrics` shows, recounted off the request path |
//! | [`admin`] | users and registered clients, for the CLI |

pub mod admin;
pub mod assertion_grant;
pub mod authorize;
pub mod client_auth;
pub mod consent;
pub mod exchange;
pub mod federated;
pub mod federation;
pub mod gauges;
pub mod grants;
pub mod id_token;
pub mod introspect;
pub mod issue;
pub mod keys;
pub mod login;
pub mod metadata_document;
pub mod par;
pub mod pending;
pub mod proof;
pub mod refresh;
pub mod register;
pub mod request;
pub mod resolve;
pub mod revoke;
pub mod spiffe;
pub mod sweep;
pub mod token;
pub mod upstream;
pub mod userinfo;

use std::borrow::Cow;
use std::sync::Arc;

use ephemera_proto::error::ErrorCode;

use crate::model::Timestamp;
use crate::policy::Policy;
use crate::store::{Store, StoreError};

/// What every service needs: storage, the deployment's policy, the issuer.
#[derive(Clone)]
pub struct Context {
    pub store: Arc<dyn Store>,
    pub policy: Arc<Policy>,
    /// The issuer identifier (RFC 8414 §2), no trailing slash.
    pub issuer: Arc<str>,
    pub keys: Arc<keys::KeyRing>,
    pub clock: Arc<Clock>,
    /// Fetches and caches Client ID Metadata Documents.
    pub documents: Arc<dyn metadata_document::DocumentSource>,
    /// The counts `/metrics` shows, as last recounted.
    pub gauges: Arc<gauges::Gauges>,
    /// Local passwords on or off, the upstream identity providers, and
    /// their discovery and keys.
    pub upstream: Arc<crate::upstream::UpstreamClient>,
    /// The server as an OpenID Federation entity, when `[federation]` is set.
    pub federation: Option<Arc<federation::Federation>>,
}

/// The server's clock: wall time plus an offset that tests may advance, so
/// expiry is tested without sleeping.
#[derive(Debug, Default)]
pub struct Clock {
    offset: std::sync::atomic::AtomicI64,
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        wall + self.offset.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Moves this clock `seconds` into the future.
    pub fn advance(&self, seconds: i64) {
        self.offset
            .fetch_add(seconds, std::sync::atomic::Ordering::Relaxed);
    }
}

/// An OAuth error as the client will see it: a registered code and a
/// description that helps the client's developer. Internal detail never goes
/// here; it is logged where the error is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    /// A fresh DPoP nonce to send with the error (`use_dpop_nonce`).
    pub dpop_nonce: Option<String>,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            dpop_nonce: None,
            retry_after: None,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Full(retry_after) = e {
            tracing::warn!("too many pending authorization requests: refused one");
            return Self {
                retry_after: Some(retry_after),
                ..Self::new(
                    ErrorCode::TemporarilyUnavailable,
                    "too many authorization requests are pending; retry later",
                )
            };
        }
        tracing::error!(error = %e, "storage failed");
        Self::server_error()
    }
}

/// A new public identifier (grant, user and registered client ids): the
/// time in microseconds (14 hex digits), then 128 random bits (base64url).
/// Ids made in later microseconds sort later, so the rows and
/// index entries a burst of new grants adds land on the same few B-tree
/// pages at the end of each index, not on one random page each: a commit
/// of many grants writes a fraction of the pages. The random part keeps
/// the id unguessable all the same; none of these ids is a credential.
pub fn new_id() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let mut bytes = [0u8; 16];
    // The thread-local CSPRNG (ChaCha, seeded and reseeded from the OS):
    // no system call per id.
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut id = format!("{micros:014x}");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(bytes, &mut id);
    id
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::new_id;

    #[test]
    fn ids_sort_in_the_order_they_were_made_and_differ_in_their_random_part() {
        let ids: Vec<String> = (0..1000).map(|_| new_id()).collect();
        // Within one microsecond the random part decides.
        assert!(
            ids.windows(2).all(|w| w[0][..14] <= w[1][..14]),
            "not in order"
        );
        let suffixes: std::collections::HashSet<&str> = ids.iter().map(|i| &i[14..]).collect();
        assert_eq!(suffixes.len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), 14 + 22, "{id}");
            assert!(id[..14].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
    }
}

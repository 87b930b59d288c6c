//! Persistence only: one narrow [`Store`] trait, no protocol decisions.
//!
//! | module | owns |
//! |---|---|
//! | `rows` | what both backends share: JSON columns, unique violations, reading rows back |
//! | [`sqlite`] | the embedded default: SQLite in WAL mode, one file, one writer thread committing in groups |
//! | [`postgres`] | the shared store: PostgreSQL, for N identical nodes |
//! | `conformance` (tests) | one suite every backend must pass |
//!
//! One-time use is enforced by the database (`UPDATE … WHERE used_at IS NULL`
//! inside the transaction that issues what the use yields), never by a read
//! followed by a write.

pub mod postgres;
mod rows;
pub mod sqlite;

#[cfg(test)]
mod conformance;

use async_trait::async_trait;
use ephemera_proto::scope::Scope;

use crate::model::{
    Code, Grant, GrantFilter, GrantSummary, PendingRequest, Session, SigningKey, Stats,
    StoredClient, Timestamp, Token, UpstreamIdentity, UpstreamLogin, User, UserClaims,
};
use crate::secret::SecretHash;

/// The grant list of `Store::list_grants`, in the SQL both stores speak:
/// parameters now, subject, client_id, key (each `NULL` for any) and limit,
/// numbered in the order they appear (SQLite numbers `$N` that way).
/// `binding(field)` is how the backend reads a field of the grant's
/// `key_binding` out of its JSON `data`: a key filter reads the grant's
/// binding from PAR and every token's, the column set at the token endpoint.
fn list_grants_sql(binding: impl Fn(&str) -> String) -> String {
    format!(
        "SELECT g.data, \
           (SELECT count(*) FROM tokens t WHERE t.grant_id = g.id \
              AND t.used_at IS NULL AND t.expires_at > $1) AS live_tokens, \
           (SELECT max(t.issued_at) FROM tokens t WHERE t.grant_id = g.id) AS last_issued, \
           (SELECT t.jkt FROM tokens t WHERE t.grant_id = g.id AND t.jkt IS NOT NULL \
              ORDER BY t.issued_at DESC LIMIT 1) AS token_jkt, \
           (SELECT t.x5t FROM tokens t WHERE t.grant_id = g.id AND t.x5t IS NOT NULL \
              ORDER BY t.issued_at DESC LIMIT 1) AS token_x5t \
         FROM grants g \
         WHERE ($2 IS NULL OR g.subject = $2) AND ($3 IS NULL OR g.client_id = $3) \
           AND ($4 IS NULL OR {jkt} = $4 OR {x5t} = $4 \
                OR EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = g.id \
                           AND (t.jkt = $4 OR t.x5t = $4))) \
         ORDER BY g.created_at DESC, g.id \
         LIMIT $5",
        jkt = binding("dpop_jkt"),
        x5t = binding("x5t_s256"),
    )
}

/// What went wrong in storage. The client sees `server_error` for all but
/// `Conflict`, which callers turn into a precise answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key already exists.
    #[error("already exists")]
    Conflict,
    /// A row the new one refers to is gone (a token exchanged from a grant
    /// that ended meanwhile).
    #[error("a row it refers to no longer exists")]
    Gone,
    /// A stored value could not be read back (corruption or a schema mismatch).
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The limit on pending authorization requests is reached; the client
    /// sees `503 temporarily_unavailable` with `Retry-After` (seconds).
    #[error("too many pending authorization requests")]
    Full(u64),
    /// The store cannot serve now: a commit failed, or it is shutting down.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A code looked up by hash, with its grant.
#[derive(Debug, Clone)]
pub struct StoredCode {
    pub code: Code,
    pub used: bool,
    pub grant: Grant,
}

/// A token looked up by hash, with its grant.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub token: Token,
    pub grant: Grant,
}

/// Grants one sweep checks in turn for having nothing live left, beyond
/// those whose rows expired: all of 10^6 grants are visited in 100 sweeps.
pub const ENDED_GRANT_SCAN: i64 = 10_000;

/// What one sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub pending_requests: u64,
    pub sessions: u64,
    /// Sign-ins through upstream providers never brought back.
    pub upstream_logins: u64,
    pub codes: u64,
    pub tokens: u64,
    pub grants: u64,
    pub jtis: u64,
    /// Dynamically registered clients past their time-to-live.
    pub clients: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates or upgrades the schema.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// One round trip to the database (health checks).
    async fn ping(&self) -> Result<(), StoreError>;

    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    async fn find_user_by_name(&self, username: &str) -> Result<Option<User>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// Replaces a user's standard claims; false if there is no such user.
    async fn update_user_claims(&self, id: &str, claims: &UserClaims) -> Result<bool, StoreError>;
    /// The user an upstream identity (issuer, subject) signs in as.
    async fn find_upstream_user(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<User>, StoreError>;
    /// Links an upstream identity to an existing user; `Conflict` if the
    /// identity is linked already.
    async fn link_upstream_identity(&self, identity: &UpstreamIdentity) -> Result<(), StoreError>;
    /// A new user and its upstream identity, in one transaction: `Conflict`
    /// (and nothing stored) if the username is taken or the identity linked.
    async fn insert_upstream_user(
        &self,
        user: &User,
        identity: &UpstreamIdentity,
    ) -> Result<(), StoreError>;

    /// Stores a sign-in through an upstream provider on its way there.
    async fn insert_upstream_login(&self, login: &UpstreamLogin) -> Result<(), StoreError>;
    /// Removes and returns the unexpired sign-in with this `state` hash:
    /// exactly one callback gets it.
    async fn take_upstream_login(
        &self,
        state_hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<UpstreamLogin>, StoreError>;

    async fn insert_client(&self, client: &StoredClient) -> Result<(), StoreError>;
    async fn find_client(&self, client_id: &str) -> Result<Option<StoredClient>, StoreError>;
    /// The client registered with this fingerprint (an identical earlier
    /// registration of a public client), if it still exists.
    async fn find_client_by_fingerprint(
        &self,
        fingerprint: &SecretHash,
    ) -> Result<Option<StoredClient>, StoreError>;
    async fn list_clients(&self) -> Result<Vec<StoredClient>, StoreError>;
    /// Replaces a client's data (RFC 7592 update); false if it does not exist.
    async fn update_client(&self, client: &StoredClient) -> Result<bool, StoreError>;
    /// Moves a dynamically registered client's expiry to `until` if later.
    async fn touch_client(&self, client_id: &str, until: Timestamp) -> Result<(), StoreError>;
    /// Deletes the client, its grants and their tokens; false if it did not
    /// exist. Its grants are those with its `client_id`: no grant of another
    /// client model can carry an id of the clients table (the pushed URN and
    /// URL client ids are never stored there).
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;

    async fn insert_signing_key(&self, key: &SigningKey) -> Result<(), StoreError>;
    /// Signing keys not retired, newest first, then keys retired after
    /// `retired_after` (still published in the JWKS).
    async fn signing_keys(&self, retired_after: Timestamp) -> Result<Vec<SigningKey>, StoreError>;
    /// Stores `key` only if no signing key exists, atomically across nodes;
    /// true if it was stored.
    async fn insert_first_signing_key(&self, key: &SigningKey) -> Result<bool, StoreError>;
    /// Retires every signing key but `except_kid` (rotation).
    async fn retire_signing_keys(
        &self,
        except_kid: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Stores a pending request unless `max_pending` of its budget
    /// ([`crate::model::PendingBudget::of`]: pushed, or front-channel) are
    /// pending already ([`StoreError::Full`]). Pending requests are not
    /// durable: a restart or crash may forget them (nothing about a pushed
    /// client outlives the process before consent).
    async fn insert_pending_request(
        &self,
        hash: &SecretHash,
        request: &PendingRequest,
        max_pending: u64,
    ) -> Result<(), StoreError>;
    /// An unexpired pending request. A lookup changes nothing.
    async fn find_pending_request(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<PendingRequest>, StoreError>;
    /// The first time an unexpired request is opened (its page shown), moves
    /// its expiry to `until` if that is later; later opens change nothing,
    /// so every request has one deadline however often it is reloaded.
    async fn open_pending_request(
        &self,
        hash: &SecretHash,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Removes and returns an unexpired pending request: exactly one caller gets it.
    async fn take_pending_request(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<PendingRequest>, StoreError>;

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError>;
    async fn find_session(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError>;
    async fn delete_session(&self, hash: &SecretHash) -> Result<(), StoreError>;

    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &Scope,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    async fn find_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<Scope>, StoreError>;

    /// Stores a new grant and its code in one transaction.
    async fn insert_grant_with_code(&self, grant: &Grant, code: &Code) -> Result<(), StoreError>;
    /// Stores a new grant and its tokens in one transaction (`client_credentials`).
    async fn insert_grant_with_tokens(
        &self,
        grant: &Grant,
        tokens: &[Token],
    ) -> Result<(), StoreError>;

    async fn find_code(&self, hash: &SecretHash) -> Result<Option<StoredCode>, StoreError>;
    /// Marks the code used and stores `tokens`, atomically; false if the code
    /// was already used (another request won), in which case nothing is stored.
    async fn redeem_code(
        &self,
        hash: &SecretHash,
        now: Timestamp,
        tokens: &[Token],
    ) -> Result<bool, StoreError>;

    async fn find_token(&self, hash: &SecretHash) -> Result<Option<StoredToken>, StoreError>;
    /// Marks a refresh token used and stores its successors, atomically; false
    /// if it was already used, in which case nothing is stored.
    async fn rotate_refresh_token(
        &self,
        hash: &SecretHash,
        now: Timestamp,
        tokens: &[Token],
    ) -> Result<bool, StoreError>;
    /// Deletes a token and, in the same transaction, its grant when that
    /// leaves nothing live in it (and so a pushed client's metadata): a crash
    /// cannot leave the grant behind. True if the grant went too.
    async fn revoke_token(&self, hash: &SecretHash, now: Timestamp) -> Result<bool, StoreError>;

    /// Deletes a grant with its codes and tokens (and so a pushed client's metadata).
    async fn delete_grant(&self, grant_id: &str) -> Result<bool, StoreError>;
    /// The grants `filter` selects, newest first, at most `filter.limit`,
    /// each with its live token count and when it last got tokens (`now`
    /// decides what is live).
    async fn list_grants(
        &self,
        filter: &GrantFilter,
        now: Timestamp,
    ) -> Result<Vec<GrantSummary>, StoreError>;
    /// Deletes a grant with its codes and tokens only if `subject` (a user
    /// id) granted it; false otherwise.
    async fn delete_grant_of(&self, grant_id: &str, subject: &str) -> Result<bool, StoreError>;
    /// Deletes the grant if nothing live is left in it: no unused unexpired
    /// token and no unused unexpired code.
    async fn delete_grant_if_ended(
        &self,
        grant_id: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Records a proof or assertion `jti` (namespaced in `key`) until
    /// `expires_at`; false if it was already seen and has not expired: a
    /// replay. Enforced by the primary key, so it holds across nodes.
    async fn remember_jti(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Counts one hit for `key` in the one-minute window starting at
    /// `window_start` and returns the window's count so far (shared by every
    /// node: rate limits hold for the whole deployment).
    async fn hit_rate_limit(&self, key: &str, window_start: Timestamp) -> Result<i64, StoreError>;

    /// Deletes everything expired, and every grant that has ended: those
    /// whose codes or tokens expired now, and a batch of the others in turn
    /// (from where the last sweep stopped), so a grant left with nothing by
    /// any path is found within a few sweeps.
    async fn sweep(&self, now: Timestamp) -> Result<SweepReport, StoreError>;
    async fn stats(&self, now: Timestamp) -> Result<Stats, StoreError>;
}

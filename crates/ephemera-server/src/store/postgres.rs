//! The shared store: PostgreSQL, so N identical nodes can serve from one
//! database. Same schema (`migrations/postgres/`, numbered like SQLite's) and
//! the same behavior as [`super::sqlite`], proven by the conformance suite.
//!
//! How the guarantees hold with several connections and nodes at once, at
//! PostgreSQL's default READ COMMITTED isolation:
//! - one-time use (codes, refresh tokens): `UPDATE … WHERE used_at IS NULL`
//!   inside the transaction that inserts what the use yields. A concurrent
//!   second `UPDATE` waits for the first one's row lock, re-checks its
//!   condition against the committed row and matches nothing, so exactly one
//!   caller wins and the losers store nothing.
//! - pushed requests are taken with `DELETE … RETURNING`: one caller gets the row.
//! - the replay cache is `INSERT … ON CONFLICT … DO UPDATE … WHERE`, which
//!   PostgreSQL resolves atomically per key.
//! - [`Store::migrate`] uses sqlx's migrator, which holds a session-level
//!   `pg_advisory_lock` (keyed by the database name) while it checks and
//!   applies migrations, each in its own transaction: nodes starting together
//!   take turns, and every migration is applied once.
//! - sweeps take a transaction-level advisory lock, so two nodes' sweeps run
//!   one after the other, as SQLite's single writer makes them.
//!
//! TEXT cannot hold NUL, which SQLite stores: lookups by a string containing
//! one find nothing (it cannot have been stored), and replay-cache keys,
//! which embed a client's `jti`, are stored escaped.

use std::borrow::Cow;
use std::str::FromStr;

use async_trait::async_trait;
use ephemera_proto::scope::Scope;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Row};

use super::rows::{conflict_or, from_json, sign_in_from, to_json};
use super::{Store, StoreError, StoredCode, StoredToken, SweepReport, ENDED_GRANT_SCAN};
use crate::model::{
    Code, Grant, GrantFilter, GrantSummary, KeyBinding, PendingBudget, PendingRequest, Session,
    SigningKey, Stats, StoredClient, Timestamp, Token, UpstreamIdentity, UpstreamLogin, User,
    UserClaims,
};
use crate::secret::SecretHash;

super::rows::row_readers!(PgRow);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node. Every request step is one short statement or
/// transaction, so a few connections serve many requests; N nodes use N times
/// this many of the server's `max_connections` (100 by default).
const MAX_CONNECTIONS: u32 = 10;

/// The first key of the advisory lock that lets one node create the first
/// signing key ("EPHK").
const FIRST_KEY_LOCK: i32 = 0x4550_484B;

/// The first key of the advisory lock that serializes sweeps ("EPHE"); the
/// second is the schema's, so deployments sharing a database do not wait on
/// each other.
const SWEEP_LOCK: i32 = 0x4550_4845;

pub struct PostgresStore {
    pool: PgPool,
    /// Pending requests this node believes exist, per budget
    /// ([`PendingBudget`] as the index): its inserts minus its takes, set to
    /// the exact count whenever it reaches the limit and after each sweep.
    pending: [std::sync::atomic::AtomicU64; 2],
    /// The last grant id this node's ended-grant scan checked; empty: start
    /// from the first.
    ended_grant_cursor: std::sync::Mutex<String>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://` or `postgresql://`,
    /// with libpq's parameters such as `?sslmode=require`). The database must
    /// exist; [`Store::migrate`] creates the tables.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with prepared options (the conformance suite pins each test's
    /// `search_path` to a schema of its own).
    pub async fn open_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            pending: Default::default(),
            ended_grant_cursor: std::sync::Mutex::default(),
        })
    }
}

/// Whether `s` can be stored in (and so found in) a TEXT column.
fn storable(s: &str) -> bool {
    !s.contains('\0')
}

/// A replay-cache key as stored: `\` becomes `\\` and NUL becomes `\0`. The
/// escape is one-to-one, so distinct keys stay distinct.
fn stored_jti_key(key: &str) -> Cow<'_, str> {
    if key.contains(['\\', '\0']) {
        Cow::Owned(key.replace('\\', "\\\\").replace('\0', "\\0"))
    } else {
        Cow::Borrowed(key)
    }
}

async fn insert_tokens_tx(tx: &mut PgConnection, tokens: &[Token]) -> Result<(), StoreError> {
    for t in tokens {
        sqlx::query(
            "INSERT INTO tokens (hash, grant_id, kind, scope, issued_at, expires_at, used_at, jkt, x5t, audience) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(t.hash.as_bytes())
        .bind(&t.grant_id)
        .bind(t.kind.as_str())
        .bind(t.scope.to_string())
        .bind(t.issued_at)
        .bind(t.expires_at)
        .bind(t.used_at)
        .bind(&t.jkt)
        .bind(&t.x5t)
        .bind(t.audience.as_ref().map(to_json).transpose()?)
        .execute(&mut *tx)
        .await
        .map_err(conflict_or)?;
    }
    Ok(())
}

async fn insert_grant_tx(tx: &mut PgConnection, grant: &Grant) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO grants (id, client_id, client_kind, data, created_at, subject, parent_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&grant.id)
    .bind(&grant.client.client_id)
    .bind(grant.client.kind.as_str())
    .bind(to_json(grant)?)
    .bind(grant.created_at)
    .bind(&grant.subject)
    .bind(grant.exchanged.as_ref().map(|e| e.parent.as_str()))
    .execute(&mut *tx)
    .await
    .map_err(conflict_or)?;
    Ok(())
}

/// A grant is live while it has an unused, unexpired token or code.
const GRANT_ENDED: &str = "NOT EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = grants.id \
       AND t.used_at IS NULL AND t.expires_at > $1) \
     AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.grant_id = grants.id \
       AND c.used_at IS NULL AND c.expires_at > $1)";

/// A stored client with no live token in any of its grants (`$1` is now).
const IDLE_CLIENT: &str = "NOT EXISTS (SELECT 1 FROM grants g JOIN tokens t ON t.grant_id = g.id \
     WHERE g.client_id = clients.client_id AND t.used_at IS NULL AND t.expires_at > $1)";

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        insert_user_row(&self.pool, user).await
    }

    async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        if !storable(id) {
            return Ok(None);
        }
        sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    async fn update_user_claims(&self, id: &str, claims: &UserClaims) -> Result<bool, StoreError> {
        if !storable(id) {
            return Ok(false);
        }
        let n = sqlx::query("UPDATE users SET claims = $1 WHERE id = $2")
            .bind(to_json(claims)?)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn find_upstream_user(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        if !storable(issuer) || !storable(subject) {
            return Ok(None);
        }
        sqlx::query(
            "SELECT u.* FROM upstream_identities i JOIN users u ON u.id = i.user_id \
             WHERE i.issuer = $1 AND i.subject = $2",
        )
        .bind(issuer)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(user_from)
        .transpose()
    }

    async fn link_upstream_identity(&self, identity: &UpstreamIdentity) -> Result<(), StoreError> {
        insert_identity_row(&self.pool, identity).await
    }

    async fn insert_upstream_user(
        &self,
        user: &User,
        identity: &UpstreamIdentity,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_user_row(&mut *tx, user).await?;
        insert_identity_row(&mut *tx, identity).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        if !storable(username) {
            return Ok(None);
        }
        sqlx::query("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        // COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
        sqlx::query(r#"SELECT * FROM users ORDER BY username COLLATE "C""#)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user_from)
            .collect()
    }

    async fn insert_client(&self, client: &StoredClient) -> Result<(), StoreError> {
        let dynamic = client.self_described.as_ref();
        sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, data, created_at, registration_token_hash, expires_at, fingerprint) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&client.client_id)
        .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().to_vec()))
        .bind(to_json(client)?)
        .bind(client.created_at)
        .bind(dynamic.and_then(|d| d.registration_token_hash.as_ref()).map(|h| h.as_bytes().to_vec()))
        .bind(dynamic.map(|d| d.expires_at))
        .bind(dynamic.and_then(|d| d.fingerprint.as_ref()).map(|h| h.as_bytes().to_vec()))
        .execute(&self.pool)
        .await
        .map_err(conflict_or)?;
        Ok(())
    }

    async fn update_client(&self, client: &StoredClient) -> Result<bool, StoreError> {
        if !storable(&client.client_id) {
            return Ok(false);
        }
        let dynamic = client.self_described.as_ref();
        let n = sqlx::query(
            "UPDATE clients SET secret_hash = $1, data = $2, registration_token_hash = $3, expires_at = $4, \
             fingerprint = $5 WHERE client_id = $6",
        )
        .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().to_vec()))
        .bind(to_json(client)?)
        .bind(dynamic.and_then(|d| d.registration_token_hash.as_ref()).map(|h| h.as_bytes().to_vec()))
        .bind(dynamic.map(|d| d.expires_at))
        .bind(dynamic.and_then(|d| d.fingerprint.as_ref()).map(|h| h.as_bytes().to_vec()))
        .bind(&client.client_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn touch_client(&self, client_id: &str, until: Timestamp) -> Result<(), StoreError> {
        if !storable(client_id) {
            return Ok(());
        }
        sqlx::query("UPDATE clients SET expires_at = $1 WHERE client_id = $2 AND expires_at < $1")
            .bind(until)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn find_client(&self, client_id: &str) -> Result<Option<StoredClient>, StoreError> {
        if !storable(client_id) {
            return Ok(None);
        }
        sqlx::query("SELECT * FROM clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(client_from)
            .transpose()
    }

    async fn find_client_by_fingerprint(
        &self,
        fingerprint: &SecretHash,
    ) -> Result<Option<StoredClient>, StoreError> {
        let row = sqlx::query("SELECT * FROM clients WHERE fingerprint = $1")
            .bind(fingerprint.as_bytes())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(client_from).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<StoredClient>, StoreError> {
        sqlx::query(r#"SELECT * FROM clients ORDER BY client_id COLLATE "C""#)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(client_from)
            .collect()
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        if !storable(client_id) {
            return Ok(false);
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM grants WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn insert_signing_key(&self, key: &SigningKey) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO signing_keys (kid, alg, private_der, public_jwk, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.private_der)
            .bind(to_json(&key.public_jwk)?)
            .bind(key.created_at)
            .execute(&self.pool)
            .await
            .map_err(conflict_or)?;
        Ok(())
    }

    async fn insert_first_signing_key(&self, key: &SigningKey) -> Result<bool, StoreError> {
        // Nodes starting together on an empty database take turns here, so
        // exactly one of them creates the first key.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
            .bind(FIRST_KEY_LOCK)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_der, public_jwk, created_at) \
             SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_der)
        .bind(to_json(&key.public_jwk)?)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict_or)?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn signing_keys(&self, retired_after: Timestamp) -> Result<Vec<SigningKey>, StoreError> {
        sqlx::query(r#"SELECT * FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 ORDER BY retired_at IS NOT NULL, created_at DESC, kid COLLATE "C""#)
            .bind(retired_after)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(SigningKey {
                    kid: row.try_get("kid")?,
                    alg: row.try_get("alg")?,
                    private_der: row.try_get("private_der")?,
                    public_jwk: from_json(row.try_get("public_jwk")?)?,
                    created_at: row.try_get("created_at")?,
                    retired_at: row.try_get("retired_at")?,
                })
            })
            .collect()
    }

    async fn retire_signing_keys(
        &self,
        except_kid: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE kid <> $2 AND retired_at IS NULL",
        )
        .bind(now)
        .bind(except_kid)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The limit is checked against an exact count only when this node's own
    /// tally reaches it, so the hot path stays one statement; other nodes'
    /// requests are counted at that point.
    async fn insert_pending_request(
        &self,
        hash: &SecretHash,
        request: &PendingRequest,
        max_pending: u64,
    ) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let budget = PendingBudget::of(request);
        let tally = &self.pending[budget as usize];
        if tally.load(Ordering::Relaxed) >= max_pending {
            let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MIN(expires_at) FROM pending_requests \
                 WHERE expires_at > $1 AND front_channel = $2",
            )
            .bind(request.created_at)
            .bind(request.front_channel)
            .fetch_one(&self.pool)
            .await?;
            let count = count.unsigned_abs();
            tally.store(count, Ordering::Relaxed);
            if count >= max_pending {
                let wait = oldest.map_or(1, |t| t - request.created_at).max(1);
                return Err(StoreError::Full(wait.unsigned_abs()));
            }
        }
        sqlx::query(
            "INSERT INTO pending_requests (hash, data, expires_at, front_channel) VALUES ($1, $2, $3, $4)",
        )
        .bind(hash.as_bytes())
        .bind(to_json(request)?)
        .bind(request.expires_at)
        .bind(request.front_channel)
        .execute(&self.pool)
        .await
        .map_err(conflict_or)?;
        tally.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn find_pending_request(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<PendingRequest>, StoreError> {
        let row = sqlx::query(
            "SELECT data, expires_at FROM pending_requests WHERE hash = $1 AND expires_at > $2",
        )
        .bind(hash.as_bytes())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(pushed_from).transpose()
    }

    async fn open_pending_request(
        &self,
        hash: &SecretHash,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE pending_requests SET expires_at = GREATEST(expires_at, $1), opened = true \
             WHERE hash = $2 AND expires_at > $3 AND NOT opened",
        )
        .bind(until)
        .bind(hash.as_bytes())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_pending_request(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<PendingRequest>, StoreError> {
        // A concurrent second DELETE waits for the first, then finds no row.
        let row = sqlx::query(
            "DELETE FROM pending_requests WHERE hash = $1 AND expires_at > $2 \
             RETURNING data, expires_at",
        )
        .bind(hash.as_bytes())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let taken = row.as_ref().map(pushed_from).transpose()?;
        if let Some(request) = &taken {
            let _ = self.pending[PendingBudget::of(request) as usize].fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |n| Some(n.saturating_sub(1)),
            );
        }
        Ok(taken)
    }

    async fn insert_upstream_login(&self, login: &UpstreamLogin) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO upstream_logins \
             (state_hash, browser_hash, provider, return_to, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(login.state_hash.as_bytes())
        .bind(login.browser_hash.as_bytes())
        .bind(&login.provider)
        .bind(&login.return_to)
        .bind(login.created_at)
        .bind(login.expires_at)
        .execute(&self.pool)
        .await
        .map_err(conflict_or)?;
        Ok(())
    }

    async fn take_upstream_login(
        &self,
        state_hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<UpstreamLogin>, StoreError> {
        // A concurrent second DELETE waits for the first, then finds no row.
        let row = sqlx::query(
            "DELETE FROM upstream_logins WHERE state_hash = $1 AND expires_at > $2 \
             RETURNING state_hash, browser_hash, provider, return_to, created_at, expires_at",
        )
        .bind(state_hash.as_bytes())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(UpstreamLogin {
                state_hash: hash_col(&row, "state_hash")?,
                browser_hash: hash_col(&row, "browser_hash")?,
                provider: row.try_get("provider")?,
                return_to: row.try_get("return_to")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (hash, user_id, created_at, expires_at, sign_in) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session.hash.as_bytes())
        .bind(&session.user_id)
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(to_json(&session.sign_in)?)
        .execute(&self.pool)
        .await
        .map_err(conflict_or)?;
        Ok(())
    }

    async fn find_session(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT s.hash, s.user_id, u.username, s.created_at, s.expires_at, s.sign_in \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.hash = $1 AND s.expires_at > $2",
        )
        .bind(hash.as_bytes())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Session {
                hash: hash_col(&row, "hash")?,
                user_id: row.try_get("user_id")?,
                username: row.try_get("username")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                sign_in: sign_in_from(row.try_get("sign_in")?)?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, hash: &SecretHash) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(hash.as_bytes())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &Scope,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scope.to_string())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<Scope>, StoreError> {
        if !storable(user_id) || !storable(client_id) {
            return Ok(None);
        }
        sqlx::query("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| scope_col(&row, "scope"))
            .transpose()
    }

    async fn insert_grant_with_code(&self, grant: &Grant, code: &Code) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_grant_tx(&mut tx, grant).await?;
        sqlx::query(
            "INSERT INTO codes (hash, grant_id, redirect_uri, code_challenge, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(code.hash.as_bytes())
        .bind(&code.grant_id)
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(code.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict_or)?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_grant_with_tokens(
        &self,
        grant: &Grant,
        tokens: &[Token],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_grant_tx(&mut tx, grant).await?;
        insert_tokens_tx(&mut tx, tokens).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_code(&self, hash: &SecretHash) -> Result<Option<StoredCode>, StoreError> {
        let row = sqlx::query(
            "SELECT c.hash, c.grant_id, c.redirect_uri, c.code_challenge, c.expires_at, c.used_at, g.data \
             FROM codes c JOIN grants g ON g.id = c.grant_id WHERE c.hash = $1",
        )
        .bind(hash.as_bytes())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let used_at: Option<i64> = row.try_get("used_at")?;
            Ok(StoredCode {
                code: Code {
                    hash: hash_col(&row, "hash")?,
                    grant_id: row.try_get("grant_id")?,
                    redirect_uri: row.try_get("redirect_uri")?,
                    code_challenge: row.try_get("code_challenge")?,
                    expires_at: row.try_get("expires_at")?,
                },
                used: used_at.is_some(),
                grant: from_json(row.try_get("data")?)?,
            })
        })
        .transpose()
    }

    async fn redeem_code(
        &self,
        hash: &SecretHash,
        now: Timestamp,
        tokens: &[Token],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A concurrent redemption blocks here on the row lock until this
        // transaction ends, then sees `used_at` set and matches no row.
        let claimed =
            sqlx::query("UPDATE codes SET used_at = $1 WHERE hash = $2 AND used_at IS NULL")
                .bind(now)
                .bind(hash.as_bytes())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if claimed != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_tokens_tx(&mut tx, tokens).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn find_token(&self, hash: &SecretHash) -> Result<Option<StoredToken>, StoreError> {
        let row = sqlx::query(
            "SELECT t.hash, t.grant_id, t.kind, t.scope, t.issued_at, t.expires_at, t.used_at, t.jkt, t.x5t, t.audience, g.data \
             FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE t.hash = $1",
        )
        .bind(hash.as_bytes())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(StoredToken {
                token: token_from(&row)?,
                grant: from_json(row.try_get("data")?)?,
            })
        })
        .transpose()
    }

    async fn rotate_refresh_token(
        &self,
        hash: &SecretHash,
        now: Timestamp,
        tokens: &[Token],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // As in `redeem_code`: the row lock makes a concurrent rotation wait, then miss.
        let claimed = sqlx::query(
            "UPDATE tokens SET used_at = $1 WHERE hash = $2 AND kind = 'refresh' AND used_at IS NULL",
        )
        .bind(now)
        .bind(hash.as_bytes())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_tokens_tx(&mut tx, tokens).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_token(&self, hash: &SecretHash, now: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let grant: Option<String> =
            sqlx::query_scalar("DELETE FROM tokens WHERE hash = $1 RETURNING grant_id")
                .bind(hash.as_bytes())
                .fetch_optional(&mut *tx)
                .await?;
        let ended = match grant {
            Some(g) => {
                sqlx::query(&format!(
                    "DELETE FROM grants WHERE id = $2 AND {GRANT_ENDED}"
                ))
                .bind(now)
                .bind(g)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0
            }
            None => false,
        };
        tx.commit().await?;
        Ok(ended)
    }

    async fn delete_grant(&self, grant_id: &str) -> Result<bool, StoreError> {
        if !storable(grant_id) {
            return Ok(false);
        }
        let n = sqlx::query("DELETE FROM grants WHERE id = $1")
            .bind(grant_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn list_grants(
        &self,
        filter: &GrantFilter,
        now: Timestamp,
    ) -> Result<Vec<GrantSummary>, StoreError> {
        let unstorable = |v: &Option<String>| v.as_deref().is_some_and(|s| !storable(s));
        if unstorable(&filter.subject) || unstorable(&filter.client_id) || unstorable(&filter.key) {
            return Ok(Vec::new());
        }
        let sql = super::list_grants_sql(|field| {
            format!("((g.data::jsonb) #>> '{{key_binding,{field}}}')")
        });
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(&filter.subject)
            .bind(&filter.client_id)
            .bind(&filter.key)
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(GrantSummary {
                    grant: from_json(&row.try_get::<String, _>(0)?)?,
                    live_tokens: row.try_get(1)?,
                    last_issued: row.try_get(2)?,
                    token_key: KeyBinding {
                        dpop_jkt: row.try_get(3)?,
                        x5t_s256: row.try_get(4)?,
                    },
                })
            })
            .collect()
    }

    async fn delete_grant_of(&self, grant_id: &str, subject: &str) -> Result<bool, StoreError> {
        if !storable(grant_id) || !storable(subject) {
            return Ok(false);
        }
        let n = sqlx::query("DELETE FROM grants WHERE id = $1 AND subject = $2")
            .bind(grant_id)
            .bind(subject)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn delete_grant_if_ended(
        &self,
        grant_id: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if !storable(grant_id) {
            return Ok(false);
        }
        let n = sqlx::query(&format!(
            "DELETE FROM grants WHERE id = $2 AND {GRANT_ENDED}"
        ))
        .bind(now)
        .bind(grant_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn sweep(&self, now: Timestamp) -> Result<SweepReport, StoreError> {
        let mut tx = self.pool.begin().await?;
        // One sweep at a time per schema, whichever node runs it; released at
        // commit or rollback.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
            .bind(SWEEP_LOCK)
            .execute(&mut *tx)
            .await?;
        let mut report = SweepReport::default();
        for (table, slot) in [
            ("pending_requests", &mut report.pending_requests),
            ("sessions", &mut report.sessions),
            ("upstream_logins", &mut report.upstream_logins),
            ("seen_jtis", &mut report.jtis),
        ] {
            *slot = sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= $1"))
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        // Only grants whose codes or tokens expired now can have ended: the
        // cost follows what expired, not how many grants are stored. (A grant
        // whose last live token is revoked is deleted by the revocation.)
        let mut candidates: Vec<String> = Vec::new();
        for (table, slot) in [("codes", &mut report.codes), ("tokens", &mut report.tokens)] {
            let gone: Vec<String> = sqlx::query_scalar(&format!(
                "DELETE FROM {table} WHERE expires_at <= $1 RETURNING grant_id"
            ))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            *slot = gone.len() as u64;
            candidates.extend(gone);
        }
        candidates.sort_unstable();
        candidates.dedup();
        report.grants = sqlx::query(&format!(
            "DELETE FROM grants WHERE id = ANY($2) AND {GRANT_ENDED}"
        ))
        .bind(now)
        .bind(&candidates)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Grants left with nothing live by any path, a batch from where this
        // node's last sweep stopped.
        let after = self
            .ended_grant_cursor
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        let (count, last): (i64, Option<String>) = sqlx::query_as(
            "SELECT COUNT(*), MAX(id) FROM (SELECT id FROM grants WHERE id > $1 ORDER BY id LIMIT $2) b",
        )
        .bind(&after)
        .bind(ENDED_GRANT_SCAN)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(last) = &last {
            report.grants += sqlx::query(&format!(
                "DELETE FROM grants WHERE id > $2 AND id <= $3 AND {GRANT_ENDED}"
            ))
            .bind(now)
            .bind(&after)
            .bind(last)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        let next = last
            .filter(|_| count == ENDED_GRANT_SCAN)
            .unwrap_or_default();
        // Rate-limit windows that have ended.
        sqlx::query("DELETE FROM rate_limits WHERE window_start <= $1")
            .bind(now - 60)
            .execute(&mut *tx)
            .await?;
        // Self-registered clients idle past their time-to-live go with their
        // grants, but never while a token of theirs is live (a refresh token
        // may outlive the idle time).
        sqlx::query(&format!(
            "DELETE FROM grants WHERE client_id IN \
             (SELECT client_id FROM clients WHERE expires_at <= $1 AND {IDLE_CLIENT})"
        ))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        report.clients = sqlx::query(&format!(
            "DELETE FROM clients WHERE expires_at <= $1 AND {IDLE_CLIENT}"
        ))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let counts: Vec<(bool, i64)> = sqlx::query_as(
            "SELECT front_channel, COUNT(*) FROM pending_requests GROUP BY front_channel",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Ok(mut cursor) = self.ended_grant_cursor.lock() {
            *cursor = next;
        }
        for (budget, tally) in self.pending.iter().enumerate() {
            let count = counts
                .iter()
                .find(|(front, _)| usize::from(*front) == budget)
                .map_or(0, |(_, n)| n.unsigned_abs());
            tally.store(count, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(report)
    }

    async fn hit_rate_limit(&self, key: &str, window_start: Timestamp) -> Result<i64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "INSERT INTO rate_limits (key, window_start, count) VALUES ($1, $2, 1) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN rate_limits.window_start = excluded.window_start THEN rate_limits.count + 1 ELSE 1 END, \
               window_start = excluded.window_start \
             RETURNING count",
        )
        .bind(key)
        .bind(window_start)
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    async fn remember_jti(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // A row whose window has passed may be taken over; a live one may not.
        // Concurrent inserts of one key are serialized by its primary key:
        // exactly one of them inserts or takes over the row.
        let n = sqlx::query(
            "INSERT INTO seen_jtis (key, expires_at) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE seen_jtis.expires_at <= $3",
        )
        .bind(stored_jti_key(key).as_ref())
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn stats(&self, now: Timestamp) -> Result<Stats, StoreError> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM pending_requests WHERE expires_at > $1) AS pending_pushed_requests, \
               (SELECT COUNT(*) FROM grants) AS grants, \
               (SELECT COUNT(*) FROM grants WHERE client_kind = 'pushed') AS pushed_client_grants, \
               (SELECT COUNT(*) FROM codes WHERE used_at IS NULL AND expires_at > $1) AS codes, \
               (SELECT COUNT(*) FROM tokens WHERE kind = 'access' AND used_at IS NULL AND expires_at > $1) AS access_tokens, \
               (SELECT COUNT(*) FROM tokens WHERE kind = 'refresh' AND used_at IS NULL AND expires_at > $1) AS refresh_tokens, \
               (SELECT COUNT(*) FROM sessions WHERE expires_at > $1) AS sessions, \
               (SELECT COUNT(*) FROM clients WHERE expires_at IS NULL) AS registered_clients, \
               (SELECT COUNT(*) FROM clients WHERE expires_at > $1) AS dynamic_clients, \
               (SELECT COUNT(*) FROM users) AS users",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(Stats {
            pending_pushed_requests: row.try_get("pending_pushed_requests")?,
            grants: row.try_get("grants")?,
            pushed_client_grants: row.try_get("pushed_client_grants")?,
            codes: row.try_get("codes")?,
            access_tokens: row.try_get("access_tokens")?,
            refresh_tokens: row.try_get("refresh_tokens")?,
            sessions: row.try_get("sessions")?,
            registered_clients: row.try_get("registered_clients")?,
            dynamic_clients: row.try_get("dynamic_clients")?,
            users: row.try_get("users")?,
        })
    }
}

async fn insert_user_row<'e, E>(db: E, user: &User) -> Result<(), StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, claims, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&user.id)
    .bind(&user.username)
    .bind(user.password_hash.as_deref().unwrap_or_default())
    .bind(to_json(&user.claims)?)
    .bind(user.created_at)
    .execute(db)
    .await
    .map_err(conflict_or)?;
    Ok(())
}

async fn insert_identity_row<'e, E>(db: E, identity: &UpstreamIdentity) -> Result<(), StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query(
        "INSERT INTO upstream_identities (issuer, subject, user_id, provider, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&identity.issuer)
    .bind(&identity.subject)
    .bind(&identity.user_id)
    .bind(&identity.provider)
    .bind(identity.created_at)
    .execute(db)
    .await
    .map_err(conflict_or)?;
    Ok(())
}

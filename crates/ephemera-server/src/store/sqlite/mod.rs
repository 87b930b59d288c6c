//! The embedded store: SQLite in WAL mode, one file, served by threads of
//! its own so no SQLite call ever blocks the async runtime.
//!
//! - **One writer thread** owns the only connection that writes. It commits
//!   in groups: it takes every write queued while the previous commit ran,
//!   runs each in a savepoint of one transaction (a write that fails is rolled
//!   back alone), commits once, and only then answers each caller. With one
//!   writer there is no lock contention and no busy-waiting, and one commit
//!   carries many requests when the server is loaded.
//! - **Reader threads**, each with its own read-only connection, serve reads
//!   side by side (WAL lets them read while the writer writes). Lookups by
//!   key (`lookup`) run on the caller's thread instead, on a small pool of
//!   such connections: a hop to a thread and back costs more than they do.
//! - **Pending pushed requests are not durable**: they live in a private
//!   temporary database attached to the writer's connection (`pending`), which
//!   SQLite deletes when the connection closes and which a crash cannot leave
//!   behind. Nothing about a pushed client reaches the database file before
//!   the user consents and a grant is stored; after a restart, clients push
//!   again. Every use of them goes through the writer, so the count of pending
//!   requests, bounded by the caller's limit, is exact.
//!
//! Statements are prepared once per connection and cached. The threads and
//! their queues are in `threads`; the SQL is here.

mod threads;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use ephemera_proto::scope::Scope;
use rusqlite::types::FromSql;
use rusqlite::{params, Connection, OptionalExtension as _, RowIndex};

use threads::Threads;

use super::rows::{from_json, sign_in_from, to_json};
use super::{Store, StoreError, StoredCode, StoredToken, SweepReport, ENDED_GRANT_SCAN};
use crate::model::{
    Code, Grant, GrantFilter, GrantSummary, KeyBinding, PendingBudget, PendingRequest, Session,
    SigningKey, Stats, StoredClient, Timestamp, Token, UpstreamIdentity, UpstreamLogin, User,
    UserClaims,
};
use crate::secret::SecretHash;

/// `row.try_get(column)`, as the shared row readers call it.
trait TryGet {
    fn try_get<T: FromSql, I: RowIndex>(&self, index: I) -> rusqlite::Result<T>;
}

impl TryGet for rusqlite::Row<'_> {
    fn try_get<T: FromSql, I: RowIndex>(&self, index: I) -> rusqlite::Result<T> {
        self.get(index)
    }
}

super::rows::row_readers!(rusqlite::Row<'_>);

/// The migrations, embedded at build time. sqlx's migrator embeds them; they
/// are applied here with rusqlite, into sqlx's bookkeeping table, so
/// databases created by earlier versions of Ephemera open unchanged.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
/// Rows one sweep step deletes, so a big sweep never holds the writer long.
const SWEEP_STEP: i64 = 1_000;
/// The same for pending requests: a kilobyte each, in a temporary database
/// that spills to a file, erased with `secure_delete`, they cost the most
/// to delete, and every write queued meanwhile waits for the step.
const PENDING_SWEEP_STEP: i64 = 200;
pub struct SqliteStore {
    threads: Threads,
    /// Pending pushed requests, counted by the writer (their only user).
    /// Pending requests per budget ([`PendingBudget`] as the index): exact,
    /// since every change to them goes through the writer.
    pending: Arc<[AtomicU64; 2]>,
    /// The last grant id the ended-grant scan of the sweep checked; empty:
    /// start from the first.
    ended_grant_cursor: std::sync::Mutex<String>,
    /// Set when a grant (and with it, maybe, a pushed client's metadata)
    /// was deleted since the WAL was last emptied: the next sweep empties it.
    erased: AtomicBool,
}

/// Maps a unique or primary-key violation to [`StoreError::Conflict`].
fn conflict_or(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            StoreError::Conflict
        }
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            StoreError::Gone
        }
        _ => StoreError::Sqlite(e),
    }
}
fn insert_user_row(conn: &Connection, user: &User) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO users (id, username, password_hash, claims, created_at) VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![
        user.id,
        user.username,
        user.password_hash.as_deref().unwrap_or_default(),
        to_json(&user.claims)?,
        user.created_at
    ])
    .map_err(conflict_or)?;
    Ok(())
}

fn insert_identity_row(conn: &Connection, identity: &UpstreamIdentity) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO upstream_identities (issuer, subject, user_id, provider, created_at) \
         VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![
        identity.issuer,
        identity.subject,
        identity.user_id,
        identity.provider,
        identity.created_at
    ])
    .map_err(conflict_or)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH`,
    /// or `sqlite::memory:`).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            threads: Threads::open(url)?,
            pending: Arc::default(),
            ended_grant_cursor: std::sync::Mutex::default(),
            erased: AtomicBool::new(false),
        })
    }

    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.threads.read(work).await
    }

    /// A lookup by key: see `Threads::lookup`.
    async fn lookup<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.threads.lookup(work).await
    }

    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.threads.write(work).await
    }
}

impl SqliteStore {
    /// Remembers that rows were erased, when `gone`.
    fn note_erasure(&self, gone: bool) {
        if gone {
            self.erased.store(true, Ordering::Release);
        }
    }
}

/// A stored client with no live token in any of its grants (`?1` is now).
const IDLE_CLIENT: &str = "NOT EXISTS (SELECT 1 FROM grants g JOIN tokens t ON t.grant_id = g.id \
     WHERE g.client_id = clients.client_id AND t.used_at IS NULL AND t.expires_at > ?1)";

/// Sets the per-budget counts of pending requests to the rows there are.
fn recount_pending(conn: &Connection, pending: &[AtomicU64; 2]) -> Result<(), StoreError> {
    let mut counts = [0u64; 2];
    let mut stmt = conn.prepare_cached(
        "SELECT front_channel, COUNT(*) FROM pending.requests GROUP BY front_channel",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let budget: usize = row.get(0)?;
        if let Some(slot) = counts.get_mut(budget) {
            *slot = row.get(1)?;
        }
    }
    for (slot, count) in pending.iter().zip(counts) {
        slot.store(count, Ordering::Relaxed);
    }
    Ok(())
}

fn insert_tokens(conn: &Connection, tokens: &[Token]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO tokens (hash, grant_id, kind, scope, issued_at, expires_at, used_at, jkt, x5t, audience) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    for t in tokens {
        stmt.execute(params![
            t.hash.as_bytes(),
            t.grant_id,
            t.kind.as_str(),
            t.scope.to_string(),
            t.issued_at,
            t.expires_at,
            t.used_at,
            t.jkt,
            t.x5t,
            t.audience.as_ref().map(to_json).transpose()?,
        ])
        .map_err(conflict_or)?;
    }
    Ok(())
}

fn insert_grant(conn: &Connection, grant: &Grant) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO grants (id, client_id, client_kind, data, created_at, subject, parent_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        grant.id,
        grant.client.client_id,
        grant.client.kind.as_str(),
        to_json(grant)?,
        grant.created_at,
        grant.subject,
        grant.exchanged.as_ref().map(|e| e.parent.as_str()),
    ])
    .map_err(conflict_or)?;
    Ok(())
}

/// A grant is live while it has an unused, unexpired token or code.
const GRANT_ENDED: &str = "NOT EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = grants.id \
       AND t.used_at IS NULL AND t.expires_at > ?1) \
     AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.grant_id = grants.id \
       AND c.used_at IS NULL AND c.expires_at > ?1)";

fn delete_grant_if_ended_now(
    conn: &Connection,
    grant_id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(&format!(
            "DELETE FROM grants WHERE id = ?2 AND {GRANT_ENDED}"
        ))?
        .execute(params![now, grant_id])?;
    Ok(n > 0)
}

/// Checks the [`SWEEP_STEP`] grants after `after` (in id order) and deletes
/// those with nothing live left; returns the last id checked (`None` when
/// the end was reached: the next scan starts over) and how many went.
fn ended_grants_step(
    conn: &Connection,
    after: &str,
    now: Timestamp,
) -> Result<(Option<String>, u64), StoreError> {
    let (count, last): (i64, Option<String>) = conn
        .prepare_cached(
            "SELECT COUNT(*), MAX(id) FROM (SELECT id FROM grants WHERE id > ? ORDER BY id LIMIT ?)",
        )?
        .query_row(params![after, SWEEP_STEP], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let Some(last) = last else {
        return Ok((None, 0));
    };
    let ended = conn
        .prepare_cached(&format!(
            "DELETE FROM grants WHERE id > ?2 AND id <= ?3 AND {GRANT_ENDED}"
        ))?
        .execute(params![now, after, last])?;
    Ok(((count == SWEEP_STEP).then_some(last), ended as u64))
}

/// Deletes up to `step` expired rows of `table` and returns the grants
/// they belonged to (`grant_id` tables) and how many went.
fn sweep_step(
    conn: &Connection,
    table: &str,
    returning: &str,
    step: i64,
    now: Timestamp,
) -> Result<(u64, Vec<String>), StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "DELETE FROM {table} WHERE rowid IN \
         (SELECT rowid FROM {table} WHERE expires_at <= ?1 LIMIT ?2) RETURNING {returning}"
    ))?;
    let mut rows = stmt.query(params![now, step])?;
    let mut n = 0;
    let mut grants = Vec::new();
    while let Some(row) = rows.next()? {
        n += 1;
        if let Ok(Some(g)) = row.get::<_, Option<String>>(0) {
            grants.push(g);
        }
    }
    Ok((n, grants))
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS _sqlx_migrations ( \
                     version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
                     installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
                     success BOOLEAN NOT NULL, checksum BLOB NOT NULL, \
                     execution_time BIGINT NOT NULL);",
            )?;
            for migration in MIGRATIONS.iter() {
                let applied: Option<(Vec<u8>, bool)> = conn
                    .query_row(
                        "SELECT checksum, success FROM _sqlx_migrations WHERE version = ?",
                        [migration.version],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                match applied {
                    Some((checksum, true)) if checksum == migration.checksum.as_ref() => continue,
                    Some((_, true)) => {
                        return Err(StoreError::Corrupt(format!(
                            "migration {} was changed after it was applied",
                            migration.version
                        )))
                    }
                    Some((_, false)) => {
                        return Err(StoreError::Corrupt(format!(
                            "migration {} is marked as failed; fix the database by hand",
                            migration.version
                        )))
                    }
                    None => {}
                }
                let started = std::time::Instant::now();
                conn.execute_batch(&migration.sql)?;
                conn.execute(
                    "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                     VALUES (?, ?, TRUE, ?, ?)",
                    params![
                        migration.version,
                        migration.description.as_ref(),
                        migration.checksum.as_ref(),
                        i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX),
                    ],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT 1")?.query_row([], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let user = user.clone();
        self.write(move |conn| insert_user_row(conn, &user)).await
    }

    async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_owned();
        self.lookup(move |conn| {
            conn.prepare_cached("SELECT * FROM users WHERE id = ?")?
                .query_row([id], |r| Ok(user_from(r)))
                .optional()?
                .transpose()
        })
        .await
    }

    async fn update_user_claims(&self, id: &str, claims: &UserClaims) -> Result<bool, StoreError> {
        let (id, claims) = (id.to_owned(), to_json(claims)?);
        self.write(move |conn| {
            let n = conn
                .prepare_cached("UPDATE users SET claims = ? WHERE id = ?")?
                .execute(params![claims, id])?;
            Ok(n > 0)
        })
        .await
    }

    async fn find_upstream_user(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        let (issuer, subject) = (issuer.to_owned(), subject.to_owned());
        self.lookup(move |conn| {
            conn.prepare_cached(
                "SELECT u.* FROM upstream_identities i JOIN users u ON u.id = i.user_id \
                 WHERE i.issuer = ? AND i.subject = ?",
            )?
            .query_row([issuer, subject], |r| Ok(user_from(r)))
            .optional()?
            .transpose()
        })
        .await
    }

    async fn link_upstream_identity(&self, identity: &UpstreamIdentity) -> Result<(), StoreError> {
        let identity = identity.clone();
        self.write(move |conn| insert_identity_row(conn, &identity))
            .await
    }

    async fn insert_upstream_user(
        &self,
        user: &User,
        identity: &UpstreamIdentity,
    ) -> Result<(), StoreError> {
        let (user, identity) = (user.clone(), identity.clone());
        self.write(move |conn| {
            // The writer's transaction: both rows or, on a conflict, neither.
            insert_user_row(conn, &user)?;
            insert_identity_row(conn, &identity)
        })
        .await
    }

    async fn find_user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let username = username.to_owned();
        self.lookup(move |conn| {
            conn.prepare_cached("SELECT * FROM users WHERE username = ?")?
                .query_row([username], |r| Ok(user_from(r)))
                .optional()?
                .transpose()
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT * FROM users ORDER BY username")?;
            let mut rows = stmt.query([])?;
            let mut users = Vec::new();
            while let Some(row) = rows.next()? {
                users.push(user_from(row)?);
            }
            Ok(users)
        })
        .await
    }

    async fn insert_client(&self, client: &StoredClient) -> Result<(), StoreError> {
        let client = client.clone();
        self.write(move |conn| {
            let dynamic = client.self_described.as_ref();
            conn.prepare_cached(
                "INSERT INTO clients (client_id, secret_hash, data, created_at, registration_token_hash, expires_at, fingerprint) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                client.client_id,
                client.secret_hash.as_ref().map(|h| h.as_bytes()),
                to_json(&client)?,
                client.created_at,
                dynamic
                    .and_then(|d| d.registration_token_hash.as_ref())
                    .map(|h| h.as_bytes()),
                dynamic.map(|d| d.expires_at),
                dynamic
                    .and_then(|d| d.fingerprint.as_ref())
                    .map(|h| h.as_bytes()),
            ])
            .map_err(conflict_or)?;
            Ok(())
        })
        .await
    }

    async fn update_client(&self, client: &StoredClient) -> Result<bool, StoreError> {
        let client = client.clone();
        self.write(move |conn| {
            let dynamic = client.self_described.as_ref();
            let n = conn
                .prepare_cached(
                    "UPDATE clients SET secret_hash = ?, data = ?, registration_token_hash = ?, expires_at = ?, \
                     fingerprint = ? WHERE client_id = ?",
                )?
                .execute(params![
                    client.secret_hash.as_ref().map(|h| h.as_bytes()),
                    to_json(&client)?,
                    dynamic
                        .and_then(|d| d.registration_token_hash.as_ref())
                        .map(|h| h.as_bytes()),
                    dynamic.map(|d| d.expires_at),
                    dynamic
                        .and_then(|d| d.fingerprint.as_ref())
                        .map(|h| h.as_bytes()),
                    client.client_id,
                ])?;
            Ok(n > 0)
        })
        .await
    }

    async fn touch_client(&self, client_id: &str, until: Timestamp) -> Result<(), StoreError> {
        let client_id = client_id.to_owned();
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE clients SET expires_at = ?1 WHERE client_id = ?2 AND expires_at < ?1",
            )?
            .execute(params![until, client_id])?;
            Ok(())
        })
        .await
    }

    async fn find_client(&self, client_id: &str) -> Result<Option<StoredClient>, StoreError> {
        let client_id = client_id.to_owned();
        self.lookup(move |conn| {
            conn.prepare_cached("SELECT * FROM clients WHERE client_id = ?")?
                .query_row([client_id], |r| Ok(client_from(r)))
                .optional()?
                .transpose()
        })
        .await
    }

    async fn find_client_by_fingerprint(
        &self,
        fingerprint: &SecretHash,
    ) -> Result<Option<StoredClient>, StoreError> {
        let fingerprint = fingerprint.clone();
        self.lookup(move |conn| {
            conn.prepare_cached("SELECT * FROM clients WHERE fingerprint = ?")?
                .query_row([fingerprint.as_bytes()], |r| Ok(client_from(r)))
                .optional()?
                .transpose()
        })
        .await
    }

    async fn list_clients(&self) -> Result<Vec<StoredClient>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT * FROM clients ORDER BY client_id")?;
            let mut rows = stmt.query([])?;
            let mut clients = Vec::new();
            while let Some(row) = rows.next()? {
                clients.push(client_from(row)?);
            }
            Ok(clients)
        })
        .await
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM grants WHERE client_id = ?")?
                .execute([&client_id])?;
            let deleted = conn
                .prepare_cached("DELETE FROM clients WHERE client_id = ?")?
                .execute([&client_id])?;
            Ok(deleted > 0)
        })
        .await
        .inspect(|gone| self.note_erasure(*gone))
    }

    async fn insert_signing_key(&self, key: &SigningKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO signing_keys (kid, alg, private_der, public_jwk, created_at) VALUES (?, ?, ?, ?, ?)",
            )?
            .execute(params![
                key.kid,
                key.alg,
                key.private_der,
                to_json(&key.public_jwk)?,
                key.created_at
            ])
            .map_err(conflict_or)?;
            Ok(())
        })
        .await
    }

    async fn insert_first_signing_key(&self, key: &SigningKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.write(move |conn| {
            // The writer holds the write lock while it checks.
            let n = conn
                .prepare_cached(
                    "INSERT INTO signing_keys (kid, alg, private_der, public_jwk, created_at) \
                     SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
                )?
                .execute(params![
                    key.kid,
                    key.alg,
                    key.private_der,
                    to_json(&key.public_jwk)?,
                    key.created_at
                ])
                .map_err(conflict_or)?;
            Ok(n == 1)
        })
        .await
    }

    async fn signing_keys(&self, retired_after: Timestamp) -> Result<Vec<SigningKey>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT * FROM signing_keys WHERE retired_at IS NULL OR retired_at > ? \
                 ORDER BY retired_at IS NOT NULL, created_at DESC, kid",
            )?;
            let mut rows = stmt.query([retired_after])?;
            let mut keys = Vec::new();
            while let Some(row) = rows.next()? {
                keys.push(SigningKey {
                    kid: row.get("kid")?,
                    alg: row.get("alg")?,
                    private_der: row.get("private_der")?,
                    public_jwk: from_json(&row.get::<_, String>("public_jwk")?)?,
                    created_at: row.get("created_at")?,
                    retired_at: row.get("retired_at")?,
                });
            }
            Ok(keys)
        })
        .await
    }

    async fn retire_signing_keys(
        &self,
        except_kid: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let except_kid = except_kid.to_owned();
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE signing_keys SET retired_at = ? WHERE kid <> ? AND retired_at IS NULL",
                )?
                .execute(params![now, except_kid])?;
            Ok(n as u64)
        })
        .await
    }

    async fn insert_pending_request(
        &self,
        hash: &SecretHash,
        request: &PendingRequest,
        max_pending: u64,
    ) -> Result<(), StoreError> {
        let hash = hash.clone();
        let data = to_json(request)?;
        let (created_at, expires_at) = (request.created_at, request.expires_at);
        let budget = PendingBudget::of(request) as usize;
        let pending = self.pending.clone();
        self.write(move |conn| {
            if pending[budget].load(Ordering::Relaxed) >= max_pending {
                // Expired ones wait for the sweep: drop some of this budget's
                // now (a bounded step: the transaction stays small, and its
                // rollback journal with it), then recount.
                conn.prepare_cached(
                    "DELETE FROM pending.requests WHERE rowid IN (SELECT rowid FROM \
                     pending.requests WHERE front_channel = ?1 AND expires_at <= ?2 LIMIT ?3)",
                )?
                .execute(params![budget, created_at, PENDING_SWEEP_STEP])?;
                recount_pending(conn, &pending)?;
                let (count, oldest): (u64, Option<Timestamp>) = conn
                    .prepare_cached(
                        "SELECT COUNT(*), MIN(expires_at) FROM pending.requests \
                         WHERE front_channel = ?",
                    )?
                    .query_row([budget], |r| Ok((r.get(0)?, r.get(1)?)))?;
                if count >= max_pending {
                    // A place frees up when the oldest pending request expires.
                    let wait = oldest.map_or(1, |t| t - created_at).max(1);
                    return Err(StoreError::Full(wait.unsigned_abs()));
                }
            }
            conn.prepare_cached(
                "INSERT INTO pending.requests (hash, data, expires_at, front_channel) \
                 VALUES (?, ?, ?, ?)",
            )?
            .execute(params![hash.as_bytes(), data, expires_at, budget])
            .map_err(conflict_or)?;
            pending[budget].fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .await
    }

    async fn find_pending_request(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<PendingRequest>, StoreError> {
        let hash = hash.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "SELECT data, expires_at FROM pending.requests WHERE hash = ? AND expires_at > ?",
            )?
            .query_row(params![hash.as_bytes(), now], |r| Ok(pushed_from(r)))
            .optional()?
            .transpose()
        })
        .await
    }

    async fn open_pending_request(
        &self,
        hash: &SecretHash,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let hash = hash.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE pending.requests SET expires_at = max(expires_at, ?1), opened = 1 \
                 WHERE hash = ?2 AND expires_at > ?3 AND opened = 0",
            )?
            .execute(params![until, hash.as_bytes(), now])?;
            Ok(())
        })
        .await
    }

    async fn take_pending_request(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<PendingRequest>, StoreError> {
        let hash = hash.clone();
        let pending = self.pending.clone();
        self.write(move |conn| {
            let taken = conn
                .prepare_cached(
                    "DELETE FROM pending.requests WHERE hash = ? AND expires_at > ? \
                     RETURNING data, expires_at",
                )?
                .query_row(params![hash.as_bytes(), now], |r| Ok(pushed_from(r)))
                .optional()?
                .transpose()?;
            if let Some(request) = &taken {
                pending[PendingBudget::of(request) as usize].fetch_sub(1, Ordering::Relaxed);
            }
            Ok(taken)
        })
        .await
    }

    async fn insert_upstream_login(&self, login: &UpstreamLogin) -> Result<(), StoreError> {
        let login = login.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO upstream_logins \
                 (state_hash, browser_hash, provider, return_to, created_at, expires_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                login.state_hash.as_bytes(),
                login.browser_hash.as_bytes(),
                login.provider,
                login.return_to,
                login.created_at,
                login.expires_at
            ])
            .map_err(conflict_or)?;
            Ok(())
        })
        .await
    }

    async fn take_upstream_login(
        &self,
        state_hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<UpstreamLogin>, StoreError> {
        let hash = state_hash.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "DELETE FROM upstream_logins WHERE state_hash = ? AND expires_at > ? \
                 RETURNING state_hash, browser_hash, provider, return_to, created_at, expires_at",
            )?
            .query_row(params![hash.as_bytes(), now], |row| {
                Ok((|| {
                    Ok(UpstreamLogin {
                        state_hash: hash_col(row, "state_hash")?,
                        browser_hash: hash_col(row, "browser_hash")?,
                        provider: row.get("provider")?,
                        return_to: row.get("return_to")?,
                        created_at: row.get("created_at")?,
                        expires_at: row.get("expires_at")?,
                    })
                })())
            })
            .optional()?
            .transpose()
        })
        .await
    }

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        let session = session.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO sessions (hash, user_id, created_at, expires_at, sign_in) \
                 VALUES (?, ?, ?, ?, ?)",
            )?
            .execute(params![
                session.hash.as_bytes(),
                session.user_id,
                session.created_at,
                session.expires_at,
                to_json(&session.sign_in)?
            ])
            .map_err(conflict_or)?;
            Ok(())
        })
        .await
    }

    async fn find_session(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let hash = hash.clone();
        self.lookup(move |conn| {
            conn.prepare_cached(
                "SELECT s.hash, s.user_id, u.username, s.created_at, s.expires_at, s.sign_in \
                 FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.hash = ? AND s.expires_at > ?",
            )?
            .query_row(params![hash.as_bytes(), now], |row| {
                Ok((|| {
                    Ok(Session {
                        hash: hash_col(row, "hash")?,
                        user_id: row.get("user_id")?,
                        username: row.get("username")?,
                        created_at: row.get("created_at")?,
                        expires_at: row.get("expires_at")?,
                        sign_in: sign_in_from(row.get("sign_in")?)?,
                    })
                })())
            })
            .optional()?
            .transpose()
        })
        .await
    }

    async fn delete_session(&self, hash: &SecretHash) -> Result<(), StoreError> {
        let hash = hash.clone();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM sessions WHERE hash = ?")?
                .execute([hash.as_bytes()])?;
            Ok(())
        })
        .await
    }

    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &Scope,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (user_id, client_id, scope) =
            (user_id.to_owned(), client_id.to_owned(), scope.to_string());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
            )?
            .execute(params![user_id, client_id, scope, now])?;
            Ok(())
        })
        .await
    }

    async fn find_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<Scope>, StoreError> {
        let (user_id, client_id) = (user_id.to_owned(), client_id.to_owned());
        self.lookup(move |conn| {
            conn.prepare_cached("SELECT scope FROM consents WHERE user_id = ? AND client_id = ?")?
                .query_row(params![user_id, client_id], |r| Ok(scope_col(r, "scope")))
                .optional()?
                .transpose()
        })
        .await
    }

    async fn insert_grant_with_code(&self, grant: &Grant, code: &Code) -> Result<(), StoreError> {
        let (grant, code) = (grant.clone(), code.clone());
        self.write(move |conn| {
            insert_grant(conn, &grant)?;
            conn.prepare_cached(
                "INSERT INTO codes (hash, grant_id, redirect_uri, code_challenge, expires_at) VALUES (?, ?, ?, ?, ?)",
            )?
            .execute(params![
                code.hash.as_bytes(),
                code.grant_id,
                code.redirect_uri,
                code.code_challenge,
                code.expires_at
            ])
            .map_err(conflict_or)?;
            Ok(())
        })
        .await
    }

    async fn insert_grant_with_tokens(
        &self,
        grant: &Grant,
        tokens: &[Token],
    ) -> Result<(), StoreError> {
        let (grant, tokens) = (grant.clone(), tokens.to_vec());
        self.write(move |conn| {
            insert_grant(conn, &grant)?;
            insert_tokens(conn, &tokens)
        })
        .await
    }

    async fn find_code(&self, hash: &SecretHash) -> Result<Option<StoredCode>, StoreError> {
        let hash = hash.clone();
        self.lookup(move |conn| {
            conn.prepare_cached(
                "SELECT c.hash, c.grant_id, c.redirect_uri, c.code_challenge, c.expires_at, c.used_at, g.data \
                 FROM codes c JOIN grants g ON g.id = c.grant_id WHERE c.hash = ?",
            )?
            .query_row([hash.as_bytes()], |row| {
                Ok((|| {
                    let used_at: Option<i64> = row.get("used_at")?;
                    Ok(StoredCode {
                        code: Code {
                            hash: hash_col(row, "hash")?,
                            grant_id: row.get("grant_id")?,
                            redirect_uri: row.get("redirect_uri")?,
                            code_challenge: row.get("code_challenge")?,
                            expires_at: row.get("expires_at")?,
                        },
                        used: used_at.is_some(),
                        grant: from_json(&row.get::<_, String>("data")?)?,
                    })
                })())
            })
            .optional()?
            .transpose()
        })
        .await
    }

    async fn redeem_code(
        &self,
        hash: &SecretHash,
        now: Timestamp,
        tokens: &[Token],
    ) -> Result<bool, StoreError> {
        let (hash, tokens) = (hash.clone(), tokens.to_vec());
        self.write(move |conn| {
            let claimed = conn
                .prepare_cached("UPDATE codes SET used_at = ? WHERE hash = ? AND used_at IS NULL")?
                .execute(params![now, hash.as_bytes()])?;
            if claimed != 1 {
                return Ok(false);
            }
            insert_tokens(conn, &tokens)?;
            Ok(true)
        })
        .await
    }

    async fn find_token(&self, hash: &SecretHash) -> Result<Option<StoredToken>, StoreError> {
        let hash = hash.clone();
        self.lookup(move |conn| {
            conn.prepare_cached(
                "SELECT t.hash, t.grant_id, t.kind, t.scope, t.issued_at, t.expires_at, t.used_at, t.jkt, t.x5t, t.audience, g.data \
                 FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE t.hash = ?",
            )?
            .query_row([hash.as_bytes()], |row| {
                Ok((|| {
                    Ok(StoredToken {
                        token: token_from(row)?,
                        grant: from_json(&row.get::<_, String>("data")?)?,
                    })
                })())
            })
            .optional()?
            .transpose()
        })
        .await
    }

    async fn rotate_refresh_token(
        &self,
        hash: &SecretHash,
        now: Timestamp,
        tokens: &[Token],
    ) -> Result<bool, StoreError> {
        let (hash, tokens) = (hash.clone(), tokens.to_vec());
        self.write(move |conn| {
            let claimed = conn
                .prepare_cached(
                    "UPDATE tokens SET used_at = ? WHERE hash = ? AND kind = 'refresh' AND used_at IS NULL",
                )?
                .execute(params![now, hash.as_bytes()])?;
            if claimed != 1 {
                return Ok(false);
            }
            insert_tokens(conn, &tokens)?;
            Ok(true)
        })
        .await
    }

    async fn revoke_token(&self, hash: &SecretHash, now: Timestamp) -> Result<bool, StoreError> {
        let hash = hash.clone();
        self.write(move |conn| {
            let grant: Option<String> = conn
                .prepare_cached("DELETE FROM tokens WHERE hash = ? RETURNING grant_id")?
                .query_row([hash.as_bytes()], |r| r.get(0))
                .optional()?;
            match grant {
                Some(g) => delete_grant_if_ended_now(conn, &g, now),
                None => Ok(false),
            }
        })
        .await
        .inspect(|gone| self.note_erasure(*gone))
    }

    async fn delete_grant(&self, grant_id: &str) -> Result<bool, StoreError> {
        let grant_id = grant_id.to_owned();
        self.write(move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM grants WHERE id = ?")?
                .execute([grant_id])?;
            Ok(n > 0)
        })
        .await
        .inspect(|gone| self.note_erasure(*gone))
    }

    async fn list_grants(
        &self,
        filter: &GrantFilter,
        now: Timestamp,
    ) -> Result<Vec<GrantSummary>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| {
            let sql = super::list_grants_sql(|field| {
                format!("json_extract(g.data, '$.key_binding.{field}')")
            });
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![
                    now,
                    filter.subject,
                    filter.client_id,
                    filter.key,
                    filter.limit
                ],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        KeyBinding {
                            dpop_jkt: row.get(3)?,
                            x5t_s256: row.get(4)?,
                        },
                    ))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (data, live_tokens, last_issued, token_key) = row?;
                out.push(GrantSummary {
                    grant: from_json(&data)?,
                    live_tokens,
                    last_issued,
                    token_key,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn delete_grant_of(&self, grant_id: &str, subject: &str) -> Result<bool, StoreError> {
        let (grant_id, subject) = (grant_id.to_owned(), subject.to_owned());
        self.write(move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM grants WHERE id = ? AND subject = ?")?
                .execute([grant_id, subject])?;
            Ok(n > 0)
        })
        .await
        .inspect(|gone| self.note_erasure(*gone))
    }

    async fn delete_grant_if_ended(
        &self,
        grant_id: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let grant_id = grant_id.to_owned();
        self.write(move |conn| delete_grant_if_ended_now(conn, &grant_id, now))
            .await
            .inspect(|gone| self.note_erasure(*gone))
    }

    /// In steps of at most [`SWEEP_STEP`] rows, each its own write, so
    /// requests keep being served during a big sweep. Grants are checked
    /// when a code or token of theirs was swept (the cost follows what
    /// expired), and [`ENDED_GRANT_SCAN`] others in turn.
    async fn sweep(&self, now: Timestamp) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        for (table, returning, step, slot) in [
            (
                "pending.requests",
                "NULL",
                PENDING_SWEEP_STEP,
                &mut report.pending_requests,
            ),
            ("sessions", "NULL", SWEEP_STEP, &mut report.sessions),
            (
                "upstream_logins",
                "NULL",
                SWEEP_STEP,
                &mut report.upstream_logins,
            ),
            ("seen_jtis", "NULL", SWEEP_STEP, &mut report.jtis),
            ("codes", "grant_id", SWEEP_STEP, &mut report.codes),
            ("tokens", "grant_id", SWEEP_STEP, &mut report.tokens),
        ] {
            loop {
                let began = std::time::Instant::now();
                let (n, grants) = self
                    .write(move |conn| {
                        let (n, mut grants) = sweep_step(conn, table, returning, step, now)?;
                        grants.sort_unstable();
                        grants.dedup();
                        let mut ended = 0;
                        for g in &grants {
                            ended += u64::from(delete_grant_if_ended_now(conn, g, now)?);
                        }
                        Ok((n, ended))
                    })
                    .await?;
                *slot += n;
                report.grants += grants;
                if n < step as u64 {
                    break;
                }
                // More to do: the writer serves requests for as long as the
                // step took before the next one, so a big sweep takes at
                // most about half of it.
                tokio::time::sleep(began.elapsed()).await;
            }
        }
        // The pending requests' counts, once their expired rows are gone.
        let pending = self.pending.clone();
        self.write(move |conn| recount_pending(conn, &pending))
            .await?;
        // Grants left with nothing live by any path, a batch at a time from
        // where the last sweep stopped.
        let mut scanned = 0;
        while scanned < ENDED_GRANT_SCAN {
            let after = self
                .ended_grant_cursor
                .lock()
                .map(|c| c.clone())
                .unwrap_or_default();
            let (next, ended) = self
                .write(move |conn| ended_grants_step(conn, &after, now))
                .await?;
            report.grants += ended;
            scanned += SWEEP_STEP;
            let wrapped = next.is_none();
            if let Ok(mut cursor) = self.ended_grant_cursor.lock() {
                *cursor = next.unwrap_or_default();
            }
            if wrapped {
                break;
            }
        }
        report.clients = self
            .write(move |conn| {
                // Rate-limit windows that have ended.
                conn.prepare_cached("DELETE FROM rate_limits WHERE window_start <= ?")?
                    .execute([now - 60])?;
                // Self-registered clients idle past their time-to-live go with
                // their grants, but never while a token of theirs is live
                // (a refresh token may outlive the idle time).
                conn.prepare_cached(&format!(
                    "DELETE FROM grants WHERE client_id IN \
                     (SELECT client_id FROM clients WHERE expires_at <= ?1 AND {IDLE_CLIENT})"
                ))?
                .execute([now])?;
                let clients = conn
                    .prepare_cached(&format!(
                        "DELETE FROM clients WHERE expires_at <= ?1 AND {IDLE_CLIENT}"
                    ))?
                    .execute([now])?;
                Ok(clients as u64)
            })
            .await?;
        self.note_erasure(report.grants > 0 || report.clients > 0);
        // Erased rows are zeroed in their pages (`secure_delete`); emptying
        // the WAL removes the page images it still held of them.
        if self.erased.swap(false, Ordering::AcqRel) && !self.threads.truncate_wal().await? {
            self.erased.store(true, Ordering::Release);
        }
        Ok(report)
    }

    async fn hit_rate_limit(&self, key: &str, window_start: Timestamp) -> Result<i64, StoreError> {
        let key = key.to_owned();
        self.write(move |conn| {
            let count = conn
                .prepare_cached(
                    "INSERT INTO rate_limits (key, window_start, count) VALUES (?1, ?2, 1) \
                     ON CONFLICT (key) DO UPDATE SET \
                       count = CASE WHEN rate_limits.window_start = excluded.window_start THEN rate_limits.count + 1 ELSE 1 END, \
                       window_start = excluded.window_start \
                     RETURNING count",
                )?
                .query_row(params![key, window_start], |r| r.get(0))?;
            Ok(count)
        })
        .await
    }

    async fn remember_jti(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.write(move |conn| {
            // A row whose window has passed may be taken over; a live one may not.
            let n = conn
                .prepare_cached(
                    "INSERT INTO seen_jtis (key, expires_at) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at \
                     WHERE seen_jtis.expires_at <= ?3",
                )?
                .execute(params![key, expires_at, now])?;
            Ok(n == 1)
        })
        .await
    }

    async fn stats(&self, now: Timestamp) -> Result<Stats, StoreError> {
        let pending = self
            .write(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT COUNT(*) FROM pending.requests WHERE expires_at > ?")?
                    .query_row([now], |r| r.get(0))?)
            })
            .await?;
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT \
                   (SELECT COUNT(*) FROM grants) AS grants, \
                   (SELECT COUNT(*) FROM grants WHERE client_kind = 'pushed') AS pushed_client_grants, \
                   (SELECT COUNT(*) FROM codes WHERE used_at IS NULL AND expires_at > ?1) AS codes, \
                   (SELECT COUNT(*) FROM tokens WHERE kind = 'access' AND used_at IS NULL AND expires_at > ?1) AS access_tokens, \
                   (SELECT COUNT(*) FROM tokens WHERE kind = 'refresh' AND used_at IS NULL AND expires_at > ?1) AS refresh_tokens, \
                   (SELECT COUNT(*) FROM sessions WHERE expires_at > ?1) AS sessions, \
                   (SELECT COUNT(*) FROM clients WHERE expires_at IS NULL) AS registered_clients, \
                   (SELECT COUNT(*) FROM clients WHERE expires_at > ?1) AS dynamic_clients, \
                   (SELECT COUNT(*) FROM users) AS users",
            )?;
            let stats = stmt.query_row([now], |row| {
                Ok(Stats {
                    pending_pushed_requests: pending,
                    grants: row.get("grants")?,
                    pushed_client_grants: row.get("pushed_client_grants")?,
                    codes: row.get("codes")?,
                    access_tokens: row.get("access_tokens")?,
                    refresh_tokens: row.get("refresh_tokens")?,
                    sessions: row.get("sessions")?,
                    registered_clients: row.get("registered_clients")?,
                    dynamic_clients: row.get("dynamic_clients")?,
                    users: row.get("users")?,
                })
            })?;
            Ok(stats)
        })
        .await
    }
}

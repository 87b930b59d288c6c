//! The embedded store: SQLite in WAL mode, one file.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use ephemera_proto::scope::Scope;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::rows::{conflict_or, from_json, to_json};
use super::{Store, StoreError, StoredCode, StoredToken, SweepReport};
use crate::model::{
    Code, Grant, PushedRequest, RegisteredClient, Session, SigningKey, Stats, Timestamp, Token,
    User,
};
use crate::secret::SecretHash;

super::rows::row_readers!(SqliteRow);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH`).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

async fn insert_tokens_tx(
    tx: &mut sqlx::SqliteConnection,
    tokens: &[Token],
) -> Result<(), StoreError> {
    for t in tokens {
        sqlx::query(
            "INSERT INTO tokens (hash, grant_id, kind, scope, issued_at, expires_at, used_at, jkt, x5t, audience) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

async fn insert_grant_tx(tx: &mut sqlx::SqliteConnection, grant: &Grant) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO grants (id, client_id, client_kind, data, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&grant.id)
    .bind(&grant.client.client_id)
    .bind(grant.client.kind.as_str())
    .bind(to_json(grant)?)
    .bind(grant.created_at)
    .execute(&mut *tx)
    .await
    .map_err(conflict_or)?;
    Ok(())
}

/// A grant is live while it has an unused, unexpired token or code.
const GRANT_ENDED: &str = "NOT EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = grants.id \
       AND t.used_at IS NULL AND t.expires_at > ?1) \
     AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.grant_id = grants.id \
       AND c.used_at IS NULL AND c.expires_at > ?1)";

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(conflict_or)?;
        Ok(())
    }

    async fn find_user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        sqlx::query("SELECT * FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query("SELECT * FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user_from)
            .collect()
    }

    async fn insert_client(&self, client: &RegisteredClient) -> Result<(), StoreError> {
        let dynamic = client.dynamic.as_ref();
        sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, data, created_at, registration_token_hash, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&client.client_id)
        .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().to_vec()))
        .bind(to_json(client)?)
        .bind(client.created_at)
        .bind(dynamic.and_then(|d| d.registration_token_hash.as_ref()).map(|h| h.as_bytes().to_vec()))
        .bind(dynamic.map(|d| d.expires_at))
        .execute(&self.pool)
        .await
        .map_err(conflict_or)?;
        Ok(())
    }

    async fn update_client(&self, client: &RegisteredClient) -> Result<bool, StoreError> {
        let dynamic = client.dynamic.as_ref();
        let n = sqlx::query(
            "UPDATE clients SET secret_hash = ?, data = ?, registration_token_hash = ?, expires_at = ? \
             WHERE client_id = ?",
        )
        .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().to_vec()))
        .bind(to_json(client)?)
        .bind(dynamic.and_then(|d| d.registration_token_hash.as_ref()).map(|h| h.as_bytes().to_vec()))
        .bind(dynamic.map(|d| d.expires_at))
        .bind(&client.client_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn touch_client(&self, client_id: &str, until: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE clients SET expires_at = ?1 WHERE client_id = ?2 AND expires_at < ?1")
            .bind(until)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn find_client(&self, client_id: &str) -> Result<Option<RegisteredClient>, StoreError> {
        sqlx::query("SELECT * FROM clients WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(client_from)
            .transpose()
    }

    async fn list_clients(&self) -> Result<Vec<RegisteredClient>, StoreError> {
        sqlx::query("SELECT * FROM clients ORDER BY client_id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(client_from)
            .collect()
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM grants WHERE client_id = ? AND client_kind IN ('registered', 'dynamic')",
        )
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM clients WHERE client_id = ?")
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn insert_signing_key(&self, key: &SigningKey) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO signing_keys (kid, alg, private_der, public_jwk, created_at) VALUES (?, ?, ?, ?, ?)")
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
        // One statement: SQLite holds the write lock while it checks.
        let n = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_der, public_jwk, created_at) \
             SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_der)
        .bind(to_json(&key.public_jwk)?)
        .bind(key.created_at)
        .execute(&self.pool)
        .await
        .map_err(conflict_or)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn signing_keys(&self, retired_after: Timestamp) -> Result<Vec<SigningKey>, StoreError> {
        sqlx::query("SELECT * FROM signing_keys WHERE retired_at IS NULL OR retired_at > ? ORDER BY retired_at IS NOT NULL, created_at DESC, kid")
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
            "UPDATE signing_keys SET retired_at = ? WHERE kid <> ? AND retired_at IS NULL",
        )
        .bind(now)
        .bind(except_kid)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn insert_pushed_request(
        &self,
        hash: &SecretHash,
        request: &PushedRequest,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO pushed_requests (hash, data, expires_at) VALUES (?, ?, ?)")
            .bind(hash.as_bytes())
            .bind(to_json(request)?)
            .bind(request.expires_at)
            .execute(&self.pool)
            .await
            .map_err(conflict_or)?;
        Ok(())
    }

    async fn find_pushed_request(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<PushedRequest>, StoreError> {
        let row = sqlx::query(
            "SELECT data, expires_at FROM pushed_requests WHERE hash = ? AND expires_at > ?",
        )
        .bind(hash.as_bytes())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(pushed_from).transpose()
    }

    async fn extend_pushed_request(
        &self,
        hash: &SecretHash,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE pushed_requests SET expires_at = ? WHERE hash = ? AND expires_at > ? AND expires_at < ?")
            .bind(until)
            .bind(hash.as_bytes())
            .bind(now)
            .bind(until)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_pushed_request(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<PushedRequest>, StoreError> {
        let row = sqlx::query("DELETE FROM pushed_requests WHERE hash = ? AND expires_at > ? RETURNING data, expires_at")
            .bind(hash.as_bytes())
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(pushed_from).transpose()
    }

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(session.hash.as_bytes())
        .bind(&session.user_id)
        .bind(session.created_at)
        .bind(session.expires_at)
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
            "SELECT s.hash, s.user_id, u.username, s.created_at, s.expires_at FROM sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.hash = ? AND s.expires_at > ?",
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
            })
        })
        .transpose()
    }

    async fn delete_session(&self, hash: &SecretHash) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE hash = ?")
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
            "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES (?, ?, ?, ?) \
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
        sqlx::query("SELECT scope FROM consents WHERE user_id = ? AND client_id = ?")
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
            "INSERT INTO codes (hash, grant_id, redirect_uri, code_challenge, expires_at) VALUES (?, ?, ?, ?, ?)",
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
             FROM codes c JOIN grants g ON g.id = c.grant_id WHERE c.hash = ?",
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
        let claimed =
            sqlx::query("UPDATE codes SET used_at = ? WHERE hash = ? AND used_at IS NULL")
                .bind(now)
                .bind(hash.as_bytes())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if claimed != 1 {
            return Ok(false);
        }
        insert_tokens_tx(&mut tx, tokens).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn find_token(&self, hash: &SecretHash) -> Result<Option<StoredToken>, StoreError> {
        let row = sqlx::query(
            "SELECT t.hash, t.grant_id, t.kind, t.scope, t.issued_at, t.expires_at, t.used_at, t.jkt, t.x5t, t.audience, g.data \
             FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE t.hash = ?",
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
        let claimed = sqlx::query(
            "UPDATE tokens SET used_at = ? WHERE hash = ? AND kind = 'refresh' AND used_at IS NULL",
        )
        .bind(now)
        .bind(hash.as_bytes())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed != 1 {
            return Ok(false);
        }
        insert_tokens_tx(&mut tx, tokens).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_token(&self, hash: &SecretHash) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM tokens WHERE hash = ?")
            .bind(hash.as_bytes())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_grant(&self, grant_id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM grants WHERE id = ?")
            .bind(grant_id)
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
        let n = sqlx::query(&format!(
            "DELETE FROM grants WHERE id = ?2 AND {GRANT_ENDED}"
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
        let mut report = SweepReport::default();
        for (table, slot) in [
            ("pushed_requests", &mut report.pushed_requests),
            ("sessions", &mut report.sessions),
            ("codes", &mut report.codes),
            ("tokens", &mut report.tokens),
            ("seen_jtis", &mut report.jtis),
        ] {
            *slot = sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= ?"))
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        // Rate-limit windows that have ended.
        sqlx::query("DELETE FROM rate_limits WHERE window_start <= ?")
            .bind(now - 60)
            .execute(&mut *tx)
            .await?;
        // Self-registered clients nobody used in time go with their grants.
        sqlx::query(
            "DELETE FROM grants WHERE client_kind = 'dynamic' AND client_id IN \
             (SELECT client_id FROM clients WHERE expires_at <= ?)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        report.clients = sqlx::query("DELETE FROM clients WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        report.grants = sqlx::query(&format!("DELETE FROM grants WHERE {GRANT_ENDED}"))
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(report)
    }

    async fn hit_rate_limit(&self, key: &str, window_start: Timestamp) -> Result<i64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "INSERT INTO rate_limits (key, window_start, count) VALUES (?1, ?2, 1) \
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
        let n = sqlx::query(
            "INSERT INTO seen_jtis (key, expires_at) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE seen_jtis.expires_at <= ?3",
        )
        .bind(key)
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
               (SELECT COUNT(*) FROM pushed_requests WHERE expires_at > ?1) AS pending_pushed_requests, \
               (SELECT COUNT(*) FROM grants) AS grants, \
               (SELECT COUNT(*) FROM grants WHERE client_kind = 'pushed') AS pushed_client_grants, \
               (SELECT COUNT(*) FROM codes WHERE used_at IS NULL AND expires_at > ?1) AS codes, \
               (SELECT COUNT(*) FROM tokens WHERE kind = 'access' AND used_at IS NULL AND expires_at > ?1) AS access_tokens, \
               (SELECT COUNT(*) FROM tokens WHERE kind = 'refresh' AND used_at IS NULL AND expires_at > ?1) AS refresh_tokens, \
               (SELECT COUNT(*) FROM sessions WHERE expires_at > ?1) AS sessions, \
               (SELECT COUNT(*) FROM clients WHERE expires_at IS NULL) AS registered_clients, \
               (SELECT COUNT(*) FROM clients WHERE expires_at > ?1) AS dynamic_clients, \
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

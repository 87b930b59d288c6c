//! What both backends share when they write and read rows: JSON columns,
//! unique-violation mapping, and the functions that turn a row back into a
//! model value (one macro, expanded for each backend's row type, since the
//! code is the same and only the row type differs).

use super::StoreError;

/// Maps a unique violation to [`StoreError::Conflict`] (PostgreSQL).
pub(super) fn conflict_or(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::Gone,
        _ => StoreError::Database(e),
    }
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// [`from_json`] for the row macro's expansions.
pub(crate) fn from_json_str<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    from_json(s)
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A session's `sign_in` column: NULL for sessions from before it existed,
/// which were all local passwords.
pub(super) fn sign_in_from(s: Option<String>) -> Result<crate::model::SignIn, StoreError> {
    match s {
        Some(s) => from_json(&s),
        None => Ok(crate::model::SignIn::password()),
    }
}

/// Defines `hash_col`, `optional_hash`, `scope_col`, `user_from`,
/// `client_from`, `pushed_from` and `token_from` for the row type `$row`
/// (the caller has a `try_get(column)` method in scope: `sqlx::Row`, or the
/// SQLite store's own for rusqlite rows).
macro_rules! row_readers {
    ($row:ty) => {
        fn hash_col(
            row: &$row,
            col: &str,
        ) -> Result<$crate::secret::SecretHash, $crate::store::StoreError> {
            let bytes: Vec<u8> = row.try_get(col)?;
            $crate::secret::SecretHash::from_bytes(&bytes).ok_or_else(|| {
                $crate::store::StoreError::Corrupt(format!("{col} is not a SHA-256 hash"))
            })
        }

        fn scope_col(
            row: &$row,
            col: &str,
        ) -> Result<ephemera_proto::scope::Scope, $crate::store::StoreError> {
            let s: String = row.try_get(col)?;
            if s.is_empty() {
                return Ok(ephemera_proto::scope::Scope::default());
            }
            ephemera_proto::scope::Scope::parse(&s)
                .map_err(|e| $crate::store::StoreError::Corrupt(e.to_string()))
        }

        fn user_from(row: &$row) -> Result<$crate::model::User, $crate::store::StoreError> {
            Ok($crate::model::User {
                id: row.try_get("id")?,
                username: row.try_get("username")?,
                password_hash: Some(row.try_get::<String, _>("password_hash")?)
                    .filter(|h| !h.is_empty()),
                claims: $crate::store::rows::from_json_str(&row.try_get::<String, _>("claims")?)?,
                created_at: row.try_get("created_at")?,
            })
        }

        fn client_from(
            row: &$row,
        ) -> Result<$crate::model::StoredClient, $crate::store::StoreError> {
            let mut client: $crate::model::StoredClient =
                $crate::store::rows::from_json(&row.try_get::<String, _>("data")?)?;
            client.secret_hash = optional_hash(row, "secret_hash")?;
            if let Some(d) = &mut client.self_described {
                d.registration_token_hash = optional_hash(row, "registration_token_hash")?;
                d.fingerprint = optional_hash(row, "fingerprint")?;
                d.expires_at = row
                    .try_get::<Option<i64>, _>("expires_at")?
                    .unwrap_or_default();
            }
            Ok(client)
        }

        fn optional_hash(
            row: &$row,
            col: &str,
        ) -> Result<Option<$crate::secret::SecretHash>, $crate::store::StoreError> {
            let bytes: Option<Vec<u8>> = row.try_get(col)?;
            bytes
                .map(|b| {
                    $crate::secret::SecretHash::from_bytes(&b).ok_or_else(|| {
                        $crate::store::StoreError::Corrupt(format!("{col} is not a SHA-256 hash"))
                    })
                })
                .transpose()
        }

        fn pushed_from(
            row: &$row,
        ) -> Result<$crate::model::PendingRequest, $crate::store::StoreError> {
            let mut req: $crate::model::PendingRequest =
                $crate::store::rows::from_json(&row.try_get::<String, _>("data")?)?;
            req.expires_at = row.try_get("expires_at")?;
            Ok(req)
        }

        fn token_from(row: &$row) -> Result<$crate::model::Token, $crate::store::StoreError> {
            let kind: String = row.try_get("kind")?;
            Ok($crate::model::Token {
                hash: hash_col(row, "hash")?,
                grant_id: row.try_get("grant_id")?,
                kind: $crate::model::TokenKind::parse(&kind).ok_or_else(|| {
                    $crate::store::StoreError::Corrupt(format!("token kind {kind}"))
                })?,
                scope: scope_col(row, "scope")?,
                issued_at: row.try_get("issued_at")?,
                expires_at: row.try_get("expires_at")?,
                used_at: row.try_get("used_at")?,
                jkt: row.try_get("jkt")?,
                x5t: row.try_get("x5t")?,
                audience: row
                    .try_get::<Option<String>, _>("audience")?
                    .map(|a| $crate::store::rows::from_json(&a))
                    .transpose()?,
            })
        }
    };
}
pub(super) use row_readers;

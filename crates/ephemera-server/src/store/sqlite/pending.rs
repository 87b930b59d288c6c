//! Pending pushed requests: private temporary databases, not the file.
//!
//! Each shard is a connection to an anonymous temporary database of its own
//! (SQLite keeps it in memory up to its page cache and spills the rest to a
//! temporary file that is deleted when the connection closes, or by the
//! system after a crash). A request goes to the shard its hash picks; the
//! work runs right where it is asked, under the shard's lock, since it is a
//! lookup or an insert by key in a small table: no thread hop, and no part
//! in the writer's transactions. The count of pending requests is kept
//! exactly: a place is reserved before an insert and given back when a
//! request is taken, swept or fails to go in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension as _};

use crate::model::{PushedRequest, Timestamp};
use crate::secret::SecretHash;
use crate::store::StoreError;

/// Page cache of each shard, in KiB: beyond it, pages spill to the
/// shard's temporary file rather than grow the process.
const SHARD_CACHE_KIB: i64 = 1024;

pub(super) struct Pending {
    shards: Vec<Mutex<Connection>>,
    count: AtomicU64,
}

fn open_shard() -> rusqlite::Result<Connection> {
    // An empty file name: a private, temporary on-disk database.
    let conn = Connection::open("")?;
    conn.execute_batch(&format!(
        "PRAGMA cache_size = -{SHARD_CACHE_KIB}; \
         CREATE TABLE pushed_requests ( \
             hash BLOB PRIMARY KEY, data TEXT NOT NULL, expires_at INTEGER NOT NULL); \
         CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at);"
    ))?;
    Ok(conn)
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("a pending-request shard was poisoned by a panic".into())
}

impl Pending {
    pub(super) fn open(shards: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            shards: (0..shards.max(1))
                .map(|_| open_shard().map(Mutex::new))
                .collect::<rusqlite::Result<_>>()?,
            count: AtomicU64::new(0),
        })
    }

    fn shard(&self, hash: &SecretHash) -> Result<MutexGuard<'_, Connection>, StoreError> {
        let first = hash.as_bytes().first().copied().unwrap_or(0);
        self.shards[usize::from(first) % self.shards.len()]
            .lock()
            .map_err(|_| poisoned())
    }

    /// Takes a place if fewer than `max` are taken.
    fn reserve(&self, max: u64) -> bool {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(&self, n: u64) {
        let _ = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_sub(n))
            });
    }

    /// Deletes what expired by `now` in every shard; returns how many, and
    /// the earliest expiry of what is left.
    pub(super) fn sweep(&self, now: Timestamp) -> Result<(u64, Option<Timestamp>), StoreError> {
        let (mut swept, mut oldest) = (0, None::<Timestamp>);
        for shard in &self.shards {
            let conn = shard.lock().map_err(|_| poisoned())?;
            let n = conn
                .prepare_cached("DELETE FROM pushed_requests WHERE expires_at <= ?")?
                .execute([now])?;
            swept += n as u64;
            let first: Option<Timestamp> = conn
                .prepare_cached("SELECT MIN(expires_at) FROM pushed_requests")?
                .query_row([], |r| r.get(0))?;
            oldest = match (oldest, first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        self.release(swept);
        Ok((swept, oldest))
    }

    pub(super) fn insert(
        &self,
        hash: &SecretHash,
        request: &PushedRequest,
        data: &str,
        max: u64,
    ) -> Result<(), StoreError> {
        if !self.reserve(max) {
            // Expired ones wait for the sweep: drop them now, then try again.
            let (_, oldest) = self.sweep(request.created_at)?;
            if !self.reserve(max) {
                // A place frees up when the oldest pending request expires.
                let wait = oldest.map_or(1, |t| t - request.created_at).max(1);
                return Err(StoreError::Full(wait.unsigned_abs()));
            }
        }
        let inserted = self.shard(hash).and_then(|conn| {
            conn.prepare_cached(
                "INSERT INTO pushed_requests (hash, data, expires_at) VALUES (?, ?, ?)",
            )?
            .execute(params![hash.as_bytes(), data, request.expires_at])
            .map_err(super::conflict_or)
        });
        if inserted.is_err() {
            self.release(1);
        }
        inserted.map(drop)
    }

    pub(super) fn find(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<(String, Timestamp)>, StoreError> {
        Ok(self
            .shard(hash)?
            .prepare_cached(
                "SELECT data, expires_at FROM pushed_requests WHERE hash = ? AND expires_at > ?",
            )?
            .query_row(params![hash.as_bytes(), now], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    pub(super) fn extend(
        &self,
        hash: &SecretHash,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.shard(hash)?
            .prepare_cached(
                "UPDATE pushed_requests SET expires_at = ?1 \
                 WHERE hash = ?2 AND expires_at > ?3 AND expires_at < ?1",
            )?
            .execute(params![until, hash.as_bytes(), now])?;
        Ok(())
    }

    pub(super) fn take(
        &self,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<(String, Timestamp)>, StoreError> {
        let taken: Option<(String, Timestamp)> = self
            .shard(hash)?
            .prepare_cached(
                "DELETE FROM pushed_requests WHERE hash = ? AND expires_at > ? \
                 RETURNING data, expires_at",
            )?
            .query_row(params![hash.as_bytes(), now], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if taken.is_some() {
            self.release(1);
        }
        Ok(taken)
    }

    /// Pending requests not yet expired at `now`.
    pub(super) fn live(&self, now: Timestamp) -> Result<i64, StoreError> {
        let mut n = 0i64;
        for shard in &self.shards {
            n += shard
                .lock()
                .map_err(|_| poisoned())?
                .prepare_cached("SELECT COUNT(*) FROM pushed_requests WHERE expires_at > ?")?
                .query_row([now], |r| r.get::<_, i64>(0))?;
        }
        Ok(n)
    }
}

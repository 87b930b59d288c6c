//! The gauges of `/metrics` (grants, tokens, codes, pending requests,
//! sessions, clients), recounted off the request path: each node's
//! background task refreshes them every `metrics.refresh_interval`, and a
//! scrape reads the last reading from memory. However often anyone scrapes,
//! the database sees one recount per interval, and none goes through the
//! SQLite writer.

use std::sync::RwLock;

use crate::model::{Stats, Timestamp};
use crate::store::Store;

/// The last recount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub stats: Stats,
    /// When it was taken.
    pub at: Timestamp,
}

/// The gauges as last recounted; `None` until the first recount, or when
/// the last one failed (the database did not answer).
#[derive(Debug, Default)]
pub struct Gauges {
    latest: RwLock<Option<Reading>>,
}

impl Gauges {
    /// Recounts from `store`; on failure the gauges are dropped (a scrape
    /// then says the database is down) and the error is returned.
    pub async fn refresh(
        &self,
        store: &dyn Store,
        now: Timestamp,
    ) -> Result<(), crate::store::StoreError> {
        let reading = store.stats(now).await;
        let mut latest = self
            .latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match reading {
            Ok(stats) => {
                *latest = Some(Reading { stats, at: now });
                Ok(())
            }
            Err(e) => {
                *latest = None;
                Err(e)
            }
        }
    }

    pub fn latest(&self) -> Option<Reading> {
        self.latest
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

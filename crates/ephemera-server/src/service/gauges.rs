//! The gauges of `/metrics` (grants, tokens, codes, pending requests,
//! sessions, clients), recounted off the request path: each node's
//! background task refreshes them every `metrics.refresh_interval`, and a
//! scrape reads the last reading from memory. However often anyone scrapes,
//! the database sees one recount per interval, and none goes through the
//! SQLite writer. A recount reads every live row, so on a large database the
//! interval grows with what a recount costs (see [`next_recount`]).

use std::sync::RwLock;
use std::time::Duration;

use crate::model::{Stats, Timestamp};
use crate::store::Store;

/// A recount takes at most one part in this many of the server's time.
pub const RECOUNT_SHARE: u32 = 100;

/// How long to wait before the next recount: the configured interval
/// (`every`), or [`RECOUNT_SHARE`] times as long as the last recount took
/// when that is longer (a million grants take seconds of a core to count).
pub fn next_recount(every: Duration, took: Duration) -> Duration {
    every.max(took.saturating_mul(RECOUNT_SHARE))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quick_recount_keeps_the_interval_and_a_slow_one_stretches_it() {
        let every = Duration::from_secs(15);
        assert_eq!(next_recount(every, Duration::from_millis(20)), every);
        assert_eq!(next_recount(every, Duration::from_millis(150)), every);
        assert_eq!(
            next_recount(every, Duration::from_secs(2)),
            Duration::from_secs(200)
        );
    }
}

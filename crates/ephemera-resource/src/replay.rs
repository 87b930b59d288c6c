//! The DPoP `jti` replay cache (RFC 9449 §11.1): a proof is accepted once.
//!
//! Keys are SHA-256 of `jkt` and `jti`, so two keys' `jti`s never collide
//! and entries have a fixed size. Every entry lives exactly `window` (the
//! proof's acceptance window), so they expire in insertion order: a queue
//! drops them in O(1) each. At `capacity` unexpired entries the cache
//! refuses new ones rather than forget old ones, since forgetting would
//! let a replay through. The cache is per process: behind several
//! instances, replays across instances are not seen (keep the window short
//! or route a client to one instance).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

type Key = [u8; 32];

/// What [`ReplayCache::check_and_insert`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First use: the proof is now remembered.
    New,
    /// The same key already used this `jti` within the window.
    Replayed,
    /// The cache is full of unexpired entries.
    Full,
}

struct Entries {
    expiry: HashMap<Key, Instant>,
    queue: VecDeque<(Instant, Key)>,
}

pub struct ReplayCache {
    entries: Mutex<Entries>,
    window: Duration,
    capacity: usize,
}

impl ReplayCache {
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(Entries {
                expiry: HashMap::new(),
                queue: VecDeque::new(),
            }),
            window,
            capacity,
        }
    }

    /// Records the proof `jti` of key `jkt` at `now`, unless it was seen.
    pub fn check_and_insert(&self, jkt: &str, jti: &str, now: Instant) -> Seen {
        let key = key(jkt, jti);
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Entries { expiry, queue } = &mut *entries;
        while let Some(&(at, old)) = queue.front() {
            if at > now {
                break;
            }
            queue.pop_front();
            // A key may have been recorded again after it expired; only
            // the entry this queue slot belongs to goes.
            if expiry.get(&old) == Some(&at) {
                expiry.remove(&old);
            }
        }
        match expiry.get(&key) {
            Some(&at) if at > now => return Seen::Replayed,
            _ => {}
        }
        if expiry.len() >= self.capacity {
            return Seen::Full;
        }
        let at = now + self.window;
        expiry.insert(key, at);
        queue.push_back((at, key));
        Seen::New
    }
}

fn key(jkt: &str, jti: &str) -> Key {
    let mut hash = Sha256::new();
    hash.update(jkt.as_bytes());
    // A separator no thumbprint contains, so ("ab", "c") != ("a", "bc").
    hash.update([0]);
    hash.update(jti.as_bytes());
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_accepted_once_per_key_within_the_window() {
        let cache = ReplayCache::new(Duration::from_secs(65), 10);
        let now = Instant::now();
        assert_eq!(cache.check_and_insert("k1", "j", now), Seen::New);
        assert_eq!(
            cache.check_and_insert("k1", "j", now + Duration::from_secs(64)),
            Seen::Replayed
        );
        assert_eq!(cache.check_and_insert("k2", "j", now), Seen::New);
        assert_eq!(cache.check_and_insert("k", "1j", now), Seen::New);
        assert_eq!(
            cache.check_and_insert("k1", "j", now + Duration::from_secs(65)),
            Seen::New
        );
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_refuses() {
        let cache = ReplayCache::new(Duration::from_secs(10), 2);
        let now = Instant::now();
        assert_eq!(cache.check_and_insert("k", "a", now), Seen::New);
        let later = now + Duration::from_secs(5);
        assert_eq!(cache.check_and_insert("k", "b", later), Seen::New);
        assert_eq!(cache.check_and_insert("k", "c", later), Seen::Full);
        let after_a = now + Duration::from_secs(10);
        assert_eq!(cache.check_and_insert("k", "c", after_a), Seen::New);
        assert_eq!(cache.check_and_insert("k", "b", after_a), Seen::Replayed);
    }
}

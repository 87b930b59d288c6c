//! In-memory, per-node rate limiters: fixed windows counted in a sharded,
//! bounded map. Nothing is written to the database per request (the
//! registration limit of `service::register` is different: it counts in the
//! store because registrations are rare and must hold across nodes).
//!
//! Keys are hashed with a per-process random key ([`RandomState`]), so the
//! map holds only 64-bit hashes (never usernames) and a client cannot aim
//! its keys at one shard. The time is an input (`now`, seconds), so tests
//! move the server's clock instead of sleeping.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::Mutex;

use crate::config::{Limits, Rate};
use crate::model::Timestamp;

const SHARDS: usize = 16;

/// Seconds to wait before the next attempt can succeed (`Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub i64);

#[derive(Debug, Clone, Copy)]
struct Slot {
    start: Timestamp,
    count: u32,
}

#[derive(Debug, Default)]
struct Shard {
    slots: HashMap<u64, Slot>,
    last_purge: Timestamp,
}

/// At most `rate.count` events per key per window.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    per_shard: usize,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
}

impl RateLimiter {
    /// A limiter remembering at most about `max_tracked` keys.
    pub fn new(rate: Rate, max_tracked: usize) -> Self {
        Self {
            rate,
            per_shard: max_tracked.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// Counts one event for `key`; refused once the window's count is spent.
    pub fn hit(&self, key: impl Hash, now: Timestamp) -> Result<(), RetryAfter> {
        self.with_slot(key, now, true)
    }

    /// Whether `key` has spent its count, without counting.
    pub fn check(&self, key: impl Hash, now: Timestamp) -> Result<(), RetryAfter> {
        self.with_slot(key, now, false)
    }

    fn with_slot(&self, key: impl Hash, now: Timestamp, count: bool) -> Result<(), RetryAfter> {
        let hash = self.hasher.hash_one(key);
        let Some(shard) = self.shards.get((hash as usize) % SHARDS) else {
            return Ok(());
        };
        // Never held across an await: the lock covers a map lookup.
        let Ok(mut shard) = shard.lock() else {
            return Ok(());
        };
        let seconds = self.rate.seconds;
        if !shard.slots.contains_key(&hash) {
            if !count {
                return Ok(());
            }
            if shard.slots.len() >= self.per_shard && shard.last_purge != now {
                // Full: forget finished windows, at most once a second per
                // shard so a flood of new keys cannot make every call O(n).
                shard.last_purge = now;
                shard.slots.retain(|_, s| s.start + seconds > now);
            }
            if shard.slots.len() >= self.per_shard {
                // Still full of live windows (a flood from very many
                // addresses): the newcomer is not limited rather than every
                // address being refused.
                return Ok(());
            }
        }
        let slot = shard.slots.entry(hash).or_insert(Slot {
            start: now,
            count: 0,
        });
        if slot.start + seconds <= now {
            *slot = Slot {
                start: now,
                count: 0,
            };
        }
        if slot.count >= self.rate.count {
            return Err(RetryAfter((slot.start + seconds - now).max(1)));
        }
        if count {
            slot.count += 1;
        }
        Ok(())
    }

    /// Keys currently remembered.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok().map(|s| s.slots.len()))
            .sum()
    }
}

/// The limiters of one node; `None` is a limit turned off.
#[derive(Debug, Default)]
pub struct Limiters {
    /// `POST /par`, per address.
    pub par: Option<RateLimiter>,
    /// `GET /authorize`, per address.
    pub authorize: Option<RateLimiter>,
    /// `POST /token`, per address.
    pub token: Option<RateLimiter>,
    /// `POST /authorize/login`, per address.
    pub login: Option<RateLimiter>,
    /// Failed logins, per username.
    pub login_failures: Option<RateLimiter>,
}

impl Limiters {
    pub fn new(limits: &Limits) -> Self {
        let make = |rate: Option<Rate>| rate.map(|r| RateLimiter::new(r, limits.max_tracked));
        Self {
            par: make(limits.par),
            authorize: make(limits.authorize),
            token: make(limits.token),
            login: make(limits.login),
            login_failures: make(limits.login_failures),
        }
    }
}

/// The key an address is limited under: IPv6 clients usually hold a whole
/// /64, so they are counted per /64 (as one IPv4 address is).
pub fn address_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(v6) >> 64 << 64) | 1 << 32,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly
mod tests {
    use super::*;

    fn limiter(count: u32, max: usize) -> RateLimiter {
        RateLimiter::new(Rate { count, seconds: 60 }, max)
    }

    #[test]
    fn the_count_is_spent_then_refused_until_the_window_ends() {
        let l = limiter(2, 100);
        assert_eq!(l.hit("a", 1000), Ok(()));
        assert_eq!(l.hit("a", 1010), Ok(()));
        assert_eq!(l.hit("a", 1020), Err(RetryAfter(40)));
        assert_eq!(l.hit("b", 1020), Ok(()));
        assert_eq!(l.hit("a", 1060), Ok(()));
    }

    #[test]
    fn check_does_not_count() {
        let l = limiter(1, 100);
        assert_eq!(l.check("a", 0), Ok(()));
        assert_eq!(l.tracked(), 0);
        assert_eq!(l.hit("a", 0), Ok(()));
        assert_eq!(l.check("a", 1), Err(RetryAfter(59)));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_new_keys() {
        let l = limiter(1, 160);
        for i in 0..10_000u32 {
            let _ = l.hit(i, 5);
        }
        assert!(l.tracked() <= 160, "{}", l.tracked());
        // Once the windows are over, new keys are tracked again.
        for i in 0..10_000u32 {
            let _ = l.hit(i, 70);
        }
        assert!(l.tracked() <= 160);
    }

    #[test]
    fn one_ipv6_slash_64_is_one_key() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            address_key(mapped),
            address_key("192.0.2.1".parse().unwrap())
        );
    }
}

//! Per-address rate limits: a fixed one-minute window per key, in memory,
//! bounded in size. (State is per node; several nodes each apply the limit.)

use std::collections::HashMap;
use std::sync::Mutex;

use crate::model::Timestamp;

/// The most keys tracked; past it, windows that have ended are dropped and,
/// if still full, the oldest.
const MAX_KEYS: usize = 50_000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<String, (Timestamp, u32)>>,
}

impl RateLimiter {
    /// Counts one request for `key`; `Err(seconds)` when more than `limit`
    /// came in the current minute, with the seconds until it ends.
    pub fn check(&self, key: &str, limit: u32, now: Timestamp) -> Result<(), i64> {
        let window = now - now.rem_euclid(60);
        let Ok(mut map) = self.windows.lock() else {
            return Ok(());
        };
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.retain(|_, (w, _)| *w == window);
            if map.len() >= MAX_KEYS {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (w, _))| *w)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(key.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= limit {
            return Err(window + 60 - now);
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds_within_a_minute_and_resets_after() {
        let l = RateLimiter::default();
        assert!(l.check("a", 2, 120).is_ok());
        assert!(l.check("a", 2, 130).is_ok());
        assert_eq!(l.check("a", 2, 135), Err(45));
        assert!(l.check("b", 2, 135).is_ok(), "keys are separate");
        assert!(l.check("a", 2, 180).is_ok(), "a new window");
    }
}

//! Server-provided DPoP nonces (RFC 9449 §9): random values that rotate
//! every `period`; a proof may carry the current one or the one before,
//! so a nonce handed out just before a rotation still works.
//!
//! They are plain random values, not MACs: this process keeps the two it
//! accepts. Behind several instances each has its own, and a client that
//! moves between them is asked for a new nonce (RFC 9449 §9 allows it).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;

struct State {
    current: String,
    previous: Option<String>,
    rotated_at: Instant,
}

pub struct Nonces {
    state: Mutex<State>,
    period: Duration,
}

impl Nonces {
    pub fn new(period: Duration, now: Instant) -> Self {
        Self {
            state: Mutex::new(State {
                current: fresh(),
                previous: None,
                rotated_at: now,
            }),
            period,
        }
    }

    /// The nonce to hand out at `now`.
    pub fn current(&self, now: Instant) -> String {
        self.rotated(now).current.clone()
    }

    /// Whether `nonce` is the current or the previous one at `now`.
    pub fn accepts(&self, nonce: &str, now: Instant) -> bool {
        let state = self.rotated(now);
        // Nonces are public values: no need for a constant-time comparison.
        state.current == nonce || state.previous.as_deref() == Some(nonce)
    }

    fn rotated(&self, now: Instant) -> std::sync::MutexGuard<'_, State> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let elapsed = now.saturating_duration_since(state.rotated_at);
        if elapsed >= self.period {
            // After two periods or more the current nonce is too old to
            // stay on as the previous one.
            state.previous = if elapsed < self.period * 2 {
                Some(std::mem::replace(&mut state.current, fresh()))
            } else {
                state.current = fresh();
                None
            };
            state.rotated_at = now;
        }
        state
    }
}

/// 128 random bits, base64url.
fn fresh() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_and_previous_nonces_are_accepted() {
        let start = Instant::now();
        let nonces = Nonces::new(Duration::from_secs(60), start);
        let first = nonces.current(start);
        assert!(nonces.accepts(&first, start + Duration::from_secs(59)));
        assert!(!nonces.accepts("made-up", start));

        let second = nonces.current(start + Duration::from_secs(60));
        assert_ne!(first, second);
        assert!(nonces.accepts(&first, start + Duration::from_secs(61)));
        assert!(nonces.accepts(&second, start + Duration::from_secs(61)));

        let third = nonces.current(start + Duration::from_secs(120));
        assert!(!nonces.accepts(&first, start + Duration::from_secs(120)));
        assert!(nonces.accepts(&second, start + Duration::from_secs(120)));
        assert!(nonces.accepts(&third, start + Duration::from_secs(120)));
    }

    #[test]
    fn a_long_idle_time_forgets_the_old_nonce() {
        let start = Instant::now();
        let nonces = Nonces::new(Duration::from_secs(60), start);
        let first = nonces.current(start);
        assert!(!nonces.accepts(&first, start + Duration::from_secs(120)));
    }
}

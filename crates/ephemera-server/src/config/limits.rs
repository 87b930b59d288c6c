//! `[limits]`: per-address rate limits, login throttling and the limits on
//! connections, raw then validated. Every count or duration may be 0 to turn
//! that limit off (a benchmark from one address needs that).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// `[limits]` as written by the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    /// Pushed authorization requests per address per minute.
    pub par_per_minute: u32,
    /// Front-channel authorization requests (`GET /authorize`) per address
    /// per minute.
    pub authorize_per_minute: u32,
    /// Token requests per address per minute.
    pub token_per_minute: u32,
    /// Login form posts per address per minute.
    pub login_per_minute: u32,
    /// Failed logins per username within `login_failure_window` before that
    /// username is refused for the rest of the window.
    pub login_failures: u32,
    /// Seconds.
    pub login_failure_window: u64,
    /// Addresses (or usernames) remembered per limit; beyond that, new keys
    /// are not limited until old windows expire (memory stays bounded).
    pub max_tracked: usize,
    /// Seconds a client has to send a request's line and headers, counted
    /// from when the connection is ready for a request: it also closes
    /// keep-alive connections left idle that long.
    pub header_read_timeout: u64,
    /// Request headers per request (431 beyond).
    pub max_headers: usize,
    /// Bytes of request line and headers (431 beyond); at least 8192.
    pub max_header_bytes: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            par_per_minute: 600,
            authorize_per_minute: 300,
            token_per_minute: 1200,
            login_per_minute: 30,
            login_failures: 10,
            login_failure_window: 900,
            max_tracked: 100_000,
            header_read_timeout: 10,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// At most `count` events per `seconds`-long fixed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub seconds: i64,
}

impl Rate {
    fn of(count: u32, seconds: i64) -> Option<Self> {
        (count > 0).then_some(Self { count, seconds })
    }
}

/// Validated `[limits]`; `None` is a limit turned off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub par: Option<Rate>,
    pub authorize: Option<Rate>,
    pub token: Option<Rate>,
    pub login: Option<Rate>,
    pub login_failures: Option<Rate>,
    pub max_tracked: usize,
    pub connections: ConnectionLimits,
}

/// What the HTTP/1 connection handling enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Option<Duration>,
    /// `None`: hyper's default (100).
    pub max_headers: Option<usize>,
    /// `None`: hyper's default buffer (about 400 KiB).
    pub max_header_bytes: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        // The defaults are valid by construction.
        Self::from_raw(&RawLimits::default()).unwrap_or(Self {
            par: None,
            authorize: None,
            token: None,
            login: None,
            login_failures: None,
            max_tracked: 0,
            connections: ConnectionLimits {
                header_read_timeout: None,
                max_headers: None,
                max_header_bytes: None,
            },
        })
    }
}

impl Limits {
    pub fn from_raw(raw: &RawLimits) -> Result<Self, ConfigError> {
        if raw.login_failures > 0 && raw.login_failure_window == 0 {
            return Err(invalid(
                "limits.login_failure_window",
                "must be at least 1 second when limits.login_failures is set",
            ));
        }
        let window = i64::try_from(raw.login_failure_window)
            .map_err(|_| invalid("limits.login_failure_window", "is too large"))?;
        let any_rate = raw.par_per_minute > 0
            || raw.authorize_per_minute > 0
            || raw.token_per_minute > 0
            || raw.login_per_minute > 0
            || raw.login_failures > 0;
        if any_rate && !(100..=10_000_000).contains(&raw.max_tracked) {
            return Err(invalid(
                "limits.max_tracked",
                "must be between 100 and 10000000",
            ));
        }
        // hyper refuses read buffers under 8 KiB.
        if raw.max_header_bytes != 0 && !(8192..=1024 * 1024).contains(&raw.max_header_bytes) {
            return Err(invalid(
                "limits.max_header_bytes",
                "must be 0 (hyper's default) or between 8192 and 1048576",
            ));
        }
        if raw.max_headers > 1000 {
            return Err(invalid(
                "limits.max_headers",
                "must be 0 (hyper's default) or at most 1000",
            ));
        }
        let seconds = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        Ok(Self {
            par: Rate::of(raw.par_per_minute, 60),
            authorize: Rate::of(raw.authorize_per_minute, 60),
            token: Rate::of(raw.token_per_minute, 60),
            login: Rate::of(raw.login_per_minute, 60),
            login_failures: Rate::of(raw.login_failures, window),
            max_tracked: raw.max_tracked,
            connections: ConnectionLimits {
                header_read_timeout: seconds(raw.header_read_timeout),
                max_headers: (raw.max_headers > 0).then_some(raw.max_headers),
                max_header_bytes: (raw.max_header_bytes > 0).then_some(raw.max_header_bytes),
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly
mod tests {
    use super::*;

    #[test]
    fn zero_turns_each_limit_off() {
        let raw = RawLimits {
            par_per_minute: 0,
            authorize_per_minute: 0,
            token_per_minute: 0,
            login_per_minute: 0,
            login_failures: 0,
            header_read_timeout: 0,
            max_headers: 0,
            max_header_bytes: 0,
            ..RawLimits::default()
        };
        let limits = Limits::from_raw(&raw).unwrap();
        assert_eq!(limits.par, None);
        assert_eq!(limits.authorize, None);
        assert_eq!(limits.login_failures, None);
        assert_eq!(limits.connections.header_read_timeout, None);
        assert_eq!(limits.connections.max_header_bytes, None);
    }

    #[test]
    fn a_header_buffer_hyper_would_refuse_is_refused_at_start_up() {
        let raw = RawLimits {
            max_header_bytes: 4096,
            ..RawLimits::default()
        };
        let err = Limits::from_raw(&raw).unwrap_err().to_string();
        assert!(err.contains("limits.max_header_bytes"), "{err}");
    }

    #[test]
    fn defaults_limit_every_endpoint_family() {
        let limits = Limits::default();
        assert_eq!(
            limits.par,
            Some(Rate {
                count: 600,
                seconds: 60
            })
        );
        assert_eq!(
            limits.login_failures,
            Some(Rate {
                count: 10,
                seconds: 900
            })
        );
        assert_eq!(
            limits.connections.header_read_timeout,
            Some(Duration::from_secs(10))
        );
    }
}

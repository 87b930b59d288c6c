//! `[metrics]`: where `/metrics` is served, who may read it, and how often
//! its gauges are recounted; raw then validated.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// `[metrics]` as written by the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMetrics {
    /// An address of its own for `/metrics` (and `/healthz`, `/readyz`), the
    /// Prometheus convention: the main listener then does not serve it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// When set, `/metrics` wants `Authorization: Bearer <token>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// Seconds between recounts of the gauges.
    pub refresh_interval: u64,
}

impl Default for RawMetrics {
    fn default() -> Self {
        Self {
            listen: None,
            bearer_token: None,
            refresh_interval: 15,
        }
    }
}

/// Validated `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: Option<SocketAddr>,
    pub bearer_token: Option<String>,
    pub refresh_interval: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: None,
            bearer_token: None,
            refresh_interval: Duration::from_secs(RawMetrics::default().refresh_interval),
        }
    }
}

impl RawMetrics {
    pub fn validate(&self, main: SocketAddr) -> Result<MetricsConfig, ConfigError> {
        let listen = match &self.listen {
            None => None,
            Some(text) => {
                let addr: SocketAddr = text.parse().map_err(|_| {
                    invalid("metrics.listen", format!("`{text}` is not an address:port"))
                })?;
                if addr == main && addr.port() != 0 {
                    return Err(invalid(
                        "metrics.listen",
                        "must differ from listen: it is a listener of its own",
                    ));
                }
                Some(addr)
            }
        };
        if self
            .bearer_token
            .as_ref()
            .is_some_and(|t| t.len() < 32 || t.chars().any(|c| c.is_whitespace()))
        {
            return Err(invalid(
                "metrics.bearer_token",
                "needs at least 32 characters without spaces",
            ));
        }
        if !(1..=3600).contains(&self.refresh_interval) {
            return Err(invalid(
                "metrics.refresh_interval",
                "must be 1 to 3600 seconds",
            ));
        }
        Ok(MetricsConfig {
            listen,
            bearer_token: self.bearer_token.clone(),
            refresh_interval: Duration::from_secs(self.refresh_interval),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn main() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8080))
    }

    #[test]
    fn a_short_token_or_the_main_address_is_refused_at_start_up() {
        let short = RawMetrics {
            bearer_token: Some("short".into()),
            ..RawMetrics::default()
        };
        assert!(matches!(
            short.validate(main()),
            Err(ConfigError::Invalid {
                key: "metrics.bearer_token",
                ..
            })
        ));
        let same = RawMetrics {
            listen: Some("127.0.0.1:8080".into()),
            ..RawMetrics::default()
        };
        assert!(matches!(
            same.validate(main()),
            Err(ConfigError::Invalid {
                key: "metrics.listen",
                ..
            })
        ));
    }

    #[test]
    fn defaults_serve_metrics_on_the_main_listener_recounted_every_15_seconds() {
        let config = RawMetrics::default().validate(main()).ok();
        assert_eq!(config, Some(MetricsConfig::default()));
    }
}

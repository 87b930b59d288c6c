//! The authorization server's signing keys, for JWT access tokens: its
//! `jwks_uri` found in its metadata (RFC 8414 §3, the `issuer` there must
//! be the configured one), the JWK Set fetched on first use and kept,
//! fetched again when it is older than `max_key_age`, or when a token names
//! a `kid` it lacks (a rotation) and the last fetch is older than
//! `min_refetch_interval`, so a stream of tokens with made-up `kid`s costs
//! the authorization server at most one fetch per interval.
//!
//! The lock around fetching is async and held across it: concurrent
//! requests wait for one fetch instead of each making their own. Readers
//! take the current set without waiting for a fetch unless they need one.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use ephemera_proto::jose::PublicJwk;
use serde_json::Value;

use crate::config::JwtValidation;

/// The largest metadata or JWK Set document read.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// Why no keys could be had. Logged, never sent: the client sees a 503.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("fetching {0} failed: {1}")]
    Http(String, reqwest::Error),
    #[error("{0} answered HTTP {1}")]
    Status(String, StatusCode),
    #[error("{0} is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge(String),
    #[error("{0} is not JSON")]
    NotJson(String),
    #[error("the authorization server's metadata names issuer `{0}`, not the configured one")]
    Issuer(String),
    #[error("the authorization server's metadata has no jwks_uri")]
    NoJwksUri,
}

#[derive(Default)]
struct Current {
    keys: Arc<Vec<PublicJwk>>,
    fetched_at: Option<Instant>,
    /// Found in the metadata on the first fetch, then kept.
    jwks_uri: Option<String>,
}

pub struct Jwks {
    http: reqwest::Client,
    issuer: String,
    settings: JwtValidation,
    current: RwLock<Current>,
    fetching: tokio::sync::Mutex<()>,
}

impl Jwks {
    pub fn new(http: reqwest::Client, issuer: &str, settings: JwtValidation) -> Self {
        let current = Current {
            jwks_uri: settings.jwks_uri.clone(),
            ..Current::default()
        };
        Self {
            http,
            issuer: issuer.to_owned(),
            settings,
            current: RwLock::new(current),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The keys to check a token whose header names `kid` with: the cached
    /// set, fetched again first when it is due or lacks `kid` (and may be
    /// fetched again). A failed fetch keeps the set there was, if any.
    pub async fn keys(&self, kid: Option<&str>) -> Result<Arc<Vec<PublicJwk>>, JwksError> {
        if let Some(keys) = self.fresh(kid, Instant::now()) {
            return Ok(keys);
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(keys) = self.fresh(kid, Instant::now()) {
            return Ok(keys);
        }
        match self.fetch().await {
            Ok((keys, jwks_uri)) => {
                let keys = Arc::new(keys);
                let mut current = self.write();
                current.keys = keys.clone();
                current.fetched_at = Some(Instant::now());
                current.jwks_uri = Some(jwks_uri);
                Ok(keys)
            }
            Err(error) => {
                let mut current = self.write();
                if current.fetched_at.is_none() {
                    return Err(error);
                }
                tracing::warn!(%error, "fetching the authorization server's keys again failed; the keys there were stay in use");
                // Not again before the interval is over.
                current.fetched_at = Some(Instant::now());
                Ok(current.keys.clone())
            }
        }
    }

    /// The cached keys, when they may be used as they are for `kid`.
    fn fresh(&self, kid: Option<&str>, now: Instant) -> Option<Arc<Vec<PublicJwk>>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let age = now.saturating_duration_since(current.fetched_at?);
        if age >= self.settings.max_key_age {
            return None;
        }
        let known = kid.is_none_or(|kid| current.keys.iter().any(|k| k.kid() == Some(kid)));
        if known || age < self.settings.min_refetch_interval {
            return Some(current.keys.clone());
        }
        None
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Current> {
        self.current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The signing keys of the JWK Set, and the `jwks_uri` they came from.
    async fn fetch(&self) -> Result<(Vec<PublicJwk>, String), JwksError> {
        let known = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .jwks_uri
            .clone();
        let jwks_uri = match known {
            Some(uri) => uri,
            None => self.discover().await?,
        };
        let jwks = self.get_json(&jwks_uri).await?;
        Ok((ephemera_proto::id_token::signing_keys(&jwks), jwks_uri))
    }

    /// The `jwks_uri` of the authorization server's metadata (RFC 8414 §3).
    async fn discover(&self) -> Result<String, JwksError> {
        let url = format!(
            "{}/.well-known/oauth-authorization-server",
            self.issuer.trim_end_matches('/')
        );
        let metadata = self.get_json(&url).await?;
        let issuer = metadata
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // RFC 8414 §3.3: the metadata must be the configured issuer's.
        if issuer != self.issuer {
            return Err(JwksError::Issuer(issuer.chars().take(200).collect()));
        }
        metadata
            .get("jwks_uri")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(JwksError::NoJwksUri)
    }

    async fn get_json(&self, url: &str) -> Result<Value, JwksError> {
        let http = |e| JwksError::Http(url.to_owned(), e);
        let mut response = self
            .http
            .get(url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(http)?;
        if response.status() != StatusCode::OK {
            return Err(JwksError::Status(url.to_owned(), response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(JwksError::TooLarge(url.to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        if ephemera_proto::json::too_deep(&body, ephemera_proto::json::MAX_DEPTH) {
            return Err(JwksError::NotJson(url.to_owned()));
        }
        serde_json::from_slice(&body).map_err(|_| JwksError::NotJson(url.to_owned()))
    }
}

/// Seconds as a [`Duration`]'s whole seconds, for the claim checks.
pub fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

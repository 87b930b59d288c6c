//! The resource server's half of DPoP (RFC 9449 §7.1): one `DPoP` header,
//! a proof that verifies for this request and this access token
//! ([`ephemera_proto::dpop::verify`]), the server nonce when required
//! (§9), then, once introspection names the token's key, the key match
//! and the `jti` replay check (§11.1).

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, Method};
use ephemera_proto::dpop::{self as proof, DpopError, DpopProof, Expectations};
use url::Url;

use crate::config::IntrospectionConfig;
use crate::nonce::Nonces;
use crate::rejection::Rejection;
use crate::replay::{ReplayCache, Seen};

/// The `DPoP` request header (RFC 9449 §4.1).
pub static DPOP: HeaderName = HeaderName::from_static("dpop");

/// How many proofs the replay cache remembers at most.
const REPLAY_CAPACITY: usize = 100_000;

pub struct DpopCheck {
    /// The public base URL without its trailing `/`.
    base_url: String,
    max_age: i64,
    leeway: i64,
    replay: ReplayCache,
    nonces: Option<Nonces>,
}

impl DpopCheck {
    /// The check for `config`, or `None` when DPoP is off (no public base URL).
    pub fn new(config: &IntrospectionConfig, now: Instant) -> Option<Self> {
        let base_url = config.public_base_url.as_ref()?;
        Some(Self {
            base_url: base_url_prefix(base_url),
            max_age: seconds(config.dpop_max_age),
            leeway: seconds(config.dpop_leeway),
            // A proof is good from `iat - skew` until `iat + max_age`;
            // its jti must be remembered that long.
            replay: ReplayCache::new(
                config.dpop_max_age
                    + Duration::from_secs(
                        ephemera_proto::future_skew(seconds(config.dpop_leeway)).unsigned_abs(),
                    ),
                REPLAY_CAPACITY,
            ),
            nonces: config.dpop_nonce_period.map(|p| Nonces::new(p, now)),
        })
    }

    /// Checks the request's one proof against the request and `token`,
    /// then the nonce; all that can be known before introspection.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        method: &Method,
        path: &str,
        token: &str,
        now_unix: i64,
        now: Instant,
    ) -> Result<DpopProof, Rejection> {
        let mut values = headers.get_all(&DPOP).iter();
        let Some(value) = values.next() else {
            return Err(Rejection::InvalidDpopProof(
                "the request lacks a DPoP proof header".into(),
            ));
        };
        if values.next().is_some() {
            return Err(invalid(DpopError::Repeated));
        }
        let value = value.to_str().map_err(|_| invalid(DpopError::Malformed))?;
        let url = format!("{}{path}", self.base_url);
        let expect = Expectations {
            method: method.as_str(),
            url: &url,
            now: now_unix,
            max_age: self.max_age,
            leeway: self.leeway,
            access_token: Some(token),
        };
        let proof = proof::verify(value, &expect).map_err(invalid)?;
        if let Some(nonces) = &self.nonces {
            let fresh = proof
                .nonce
                .as_deref()
                .is_some_and(|nonce| nonces.accepts(nonce, now));
            if !fresh {
                return Err(Rejection::UseDpopNonce(nonces.current(now)));
            }
        }
        Ok(proof)
    }

    /// Binds a verified proof to the token: its key must be the one the
    /// token is bound to (when it is bound), and its `jti` new.
    pub fn bind(
        &self,
        proof: &DpopProof,
        bound_to: Option<&str>,
        now: Instant,
    ) -> Result<(), Rejection> {
        if let Some(jkt) = bound_to {
            if proof.jkt != jkt {
                return Err(Rejection::InvalidDpopProof(
                    "the DPoP proof is not signed with the key the token is bound to".into(),
                ));
            }
        }
        match self.replay.check_and_insert(&proof.jkt, &proof.jti, now) {
            Seen::New => Ok(()),
            Seen::Replayed => Err(Rejection::InvalidDpopProof(
                "the DPoP proof was already used".into(),
            )),
            Seen::Full => {
                tracing::warn!("DPoP replay cache full; refusing proofs until entries expire");
                Err(Rejection::Unavailable)
            }
        }
    }

    /// The nonce to send in `DPoP-Nonce`, when nonces are on.
    pub fn nonce(&self, now: Instant) -> Option<String> {
        self.nonces.as_ref().map(|n| n.current(now))
    }
}

fn invalid(error: DpopError) -> Rejection {
    Rejection::InvalidDpopProof(error.to_string())
}

/// The base URL as a prefix for request paths: no trailing `/`, no query
/// or fragment.
fn base_url_prefix(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.as_str().trim_end_matches('/').to_owned()
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_prefix_keeps_the_path_and_drops_the_slash() {
        let prefix = |s: &str| base_url_prefix(&Url::parse(s).unwrap());
        assert_eq!(prefix("https://api.example"), "https://api.example");
        assert_eq!(prefix("https://api.example/"), "https://api.example");
        assert_eq!(prefix("https://api.example/v1/"), "https://api.example/v1");
        assert_eq!(
            prefix("https://api.example/v1?x#y"),
            "https://api.example/v1"
        );
    }

    #[test]
    fn dpop_is_off_without_a_public_base_url() {
        let config = IntrospectionConfig::new("http://as/introspect", "rs", "s", "http://as");
        assert!(DpopCheck::new(&config, Instant::now()).is_none());
        let config = config.public_base_url(Url::parse("https://api.example").unwrap());
        assert!(DpopCheck::new(&config, Instant::now()).is_some());
    }

    #[test]
    fn a_request_without_a_proof_or_with_two_is_refused() {
        let config = IntrospectionConfig::new("http://as/introspect", "rs", "s", "http://as")
            .public_base_url(Url::parse("https://api.example").unwrap());
        let check = DpopCheck::new(&config, Instant::now()).unwrap();
        let mut headers = HeaderMap::new();
        let verify =
            |headers: &HeaderMap| check.verify(headers, &Method::GET, "/x", "t", 0, Instant::now());
        assert!(matches!(
            verify(&headers),
            Err(Rejection::InvalidDpopProof(_))
        ));
        headers.append(&DPOP, "a.b.c".parse().unwrap());
        headers.append(&DPOP, "a.b.c".parse().unwrap());
        assert_eq!(
            verify(&headers).err(),
            Some(Rejection::InvalidDpopProof(DpopError::Repeated.to_string()))
        );
    }
}

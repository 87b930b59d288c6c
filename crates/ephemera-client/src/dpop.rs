//! [`DpopKey`]: the key a client proves possession of with DPoP
//! (RFC 9449), and the proofs it signs; plus reading the server's
//! `DPoP-Nonce` (RFC 9449 §8, §9).

use std::sync::Arc;

use ephemera_proto::error::{ErrorCode, ErrorResponse};
use p256::elliptic_curve::zeroize::Zeroizing;
use serde_json::{json, Value};
use url::Url;

use crate::error::{Error, Result};
use crate::keys::{now, random_jti, EcKey};

/// The request header that carries a proof (RFC 9449 §4.1).
pub const DPOP_HEADER: &str = "DPoP";

/// The response header that carries a server nonce (RFC 9449 §8.1).
pub const DPOP_NONCE_HEADER: &str = "DPoP-Nonce";

/// An ES256 key for DPoP. Hand it to
/// [`ClientIdentity::with_dpop`](crate::ClientIdentity::with_dpop) and every
/// PAR, token and refresh request of that identity carries a proof, which
/// binds the grant and its tokens to this key; give it to
/// [`AccessToken`](crate::AccessToken) to present a DPoP-bound token.
///
/// Keep the key as long as the refresh token: a refresh must be proved by the
/// same key ([`to_pkcs8_pem`](Self::to_pkcs8_pem) saves it).
///
/// `Clone` shares the key (it is reference-counted), it does not copy it.
/// `Debug` shows only the thumbprint.
#[derive(Clone)]
pub struct DpopKey {
    key: Arc<EcKey>,
}

impl DpopKey {
    /// A new random P-256 key (proofs use `ES256`).
    pub fn generate() -> Self {
        Self {
            key: Arc::new(EcKey::generate()),
        }
    }

    /// Loads a key saved with [`to_pkcs8_pem`](Self::to_pkcs8_pem).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        Ok(Self {
            key: Arc::new(EcKey::from_pkcs8_pem(pem)?),
        })
    }

    /// The private key as PKCS #8 PEM, wiped from memory when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        self.key.to_pkcs8_pem()
    }

    /// The RFC 7638 thumbprint of the public key: the `jkt` the server binds
    /// the grant to, and the value of the `dpop_jkt` PAR parameter
    /// (RFC 9449 §10).
    pub fn jkt(&self) -> &str {
        self.key.thumbprint()
    }

    /// The public JWK (`kty`, `crv`, `x`, `y`), as it goes in a proof's header.
    pub fn public_jwk(&self) -> Value {
        self.key.public_jwk().clone()
    }

    /// A DPoP proof (RFC 9449 §4.2) for one request: `htm` = `method`,
    /// `htu` = `url` without query and fragment, `iat` = now, a fresh `jti`,
    /// `ath` = the access token's SHA-256 when one is presented with it
    /// (at a resource server), and the server's `nonce` when it asked for one.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String> {
        self.proof_at(method, url, access_token, nonce, now())
    }

    pub(crate) fn proof_at(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
        iat: i64,
    ) -> Result<String> {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.key.public_jwk()});
        let mut claims = json!({
            "jti": random_jti(),
            "htm": method,
            "htu": htu(url)?,
            "iat": iat,
        });
        if let Value::Object(members) = &mut claims {
            if let Some(token) = access_token {
                members.insert(
                    "ath".into(),
                    Value::from(ephemera_proto::jose::sha256_b64(token.as_bytes())),
                );
            }
            if let Some(nonce) = nonce {
                members.insert("nonce".into(), Value::from(nonce));
            }
        }
        self.key.sign(&header, &claims)
    }
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.jkt())
            .finish_non_exhaustive()
    }
}

/// RFC 9449 §4.2: `htu` is the request URL without query and fragment.
fn htu(url: &str) -> Result<String> {
    let mut url =
        Url::parse(url).map_err(|e| Error::protocol(format!("DPoP htu is not a URL: {e}")))?;
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.into())
}

/// The `DPoP-Nonce` of a response, if it has a usable one.
pub(crate) fn nonce_of(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get(DPOP_NONCE_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// Whether an authorization server's error body is `use_dpop_nonce`
/// (RFC 9449 §8: a 400 from the token or PAR endpoint).
pub(crate) fn is_use_dpop_nonce_body(body: &[u8]) -> bool {
    serde_json::from_slice::<ErrorResponse>(body)
        .is_ok_and(|body| body.error == ErrorCode::UseDpopNonce)
}

/// Whether a resource server's `WWW-Authenticate` challenges are a DPoP
/// challenge with `error="use_dpop_nonce"` (RFC 9449 §9).
pub(crate) fn is_use_dpop_nonce_challenge(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|challenge| {
            let challenge = challenge.trim_start();
            let is_dpop = challenge
                .get(..5)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("dpop "));
            let compact: String = challenge.chars().filter(|c| !c.is_whitespace()).collect();
            is_dpop
                && (compact.contains(r#"error="use_dpop_nonce""#)
                    || compact.contains("error=use_dpop_nonce"))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use ephemera_proto::dpop::{self, DpopError, Expectations};
    use ephemera_proto::jose;
    use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};

    const TOKEN_URL: &str = "https://as.example/token";

    fn expect<'a>(method: &'a str, url: &'a str, token: Option<&'a str>) -> Expectations<'a> {
        Expectations {
            method,
            url,
            now: now(),
            max_age: 60,
            leeway: 5,
            access_token: token,
        }
    }

    #[test]
    fn a_proof_verifies_for_its_method_and_url() {
        let key = DpopKey::generate();

        let proof = key.proof("POST", TOKEN_URL, None, None).unwrap();
        let verified = dpop::verify(&proof, &expect("POST", TOKEN_URL, None)).unwrap();

        assert_eq!(verified.jkt, key.jkt());
        assert_eq!(verified.jwk, key.public_jwk());
        assert_eq!(verified.nonce, None);
        assert!(verified.jti.len() >= 22, "128 bits or more");
        assert!((verified.iat - now()).abs() <= 1);
        let header = jose::header(&proof).unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
    }

    #[test]
    fn a_proof_fails_for_another_method_or_url() {
        let key = DpopKey::generate();
        let proof = key.proof("POST", TOKEN_URL, None, None).unwrap();

        let wrong_method = dpop::verify(&proof, &expect("GET", TOKEN_URL, None));
        let wrong_url = dpop::verify(&proof, &expect("POST", "https://as.example/par", None));

        assert_eq!(wrong_method.err(), Some(DpopError::Method));
        assert_eq!(wrong_url.err(), Some(DpopError::Url));
    }

    #[test]
    fn htu_drops_query_and_fragment() {
        let key = DpopKey::generate();
        let proof = key
            .proof("GET", "https://rs.example/api?q=1#frag", None, None)
            .unwrap();
        let claims = claims_of(&proof);
        assert_eq!(claims["htu"], "https://rs.example/api");
        assert!(dpop::verify(&proof, &expect("GET", "https://rs.example/api", None)).is_ok());
        assert!(key.proof("GET", "not a url", None, None).is_err());
    }

    #[test]
    fn a_proof_for_a_token_carries_its_hash_and_the_nonce() {
        let key = DpopKey::generate();
        let url = "https://rs.example/api";

        let proof = key.proof("GET", url, Some("at-1"), Some("n-1")).unwrap();
        let verified = dpop::verify(&proof, &expect("GET", url, Some("at-1"))).unwrap();
        let other_token = dpop::verify(&proof, &expect("GET", url, Some("at-2")));
        let without_ath = key.proof("GET", url, None, None).unwrap();

        assert_eq!(verified.nonce.as_deref(), Some("n-1"));
        assert_eq!(other_token.err(), Some(DpopError::AccessTokenHash));
        assert_eq!(
            dpop::verify(&without_ath, &expect("GET", url, Some("at-1"))).err(),
            Some(DpopError::MissingClaim("ath"))
        );
        assert_eq!(claims_of(&proof)["ath"], jose::sha256_b64(b"at-1").as_str());
    }

    #[test]
    fn an_old_proof_is_refused() {
        let key = DpopKey::generate();
        let proof = key
            .proof_at("POST", TOKEN_URL, None, None, now() - 600)
            .unwrap();
        assert_eq!(
            dpop::verify(&proof, &expect("POST", TOKEN_URL, None)).err(),
            Some(DpopError::Time)
        );
    }

    #[test]
    fn every_proof_has_a_fresh_jti() {
        let key = DpopKey::generate();
        let a = claims_of(&key.proof("POST", TOKEN_URL, None, None).unwrap());
        let b = claims_of(&key.proof("POST", TOKEN_URL, None, None).unwrap());
        assert_ne!(a["jti"], b["jti"]);
    }

    #[test]
    fn the_jkt_is_the_rfc7638_thumbprint_of_the_public_jwk() {
        let key = DpopKey::generate();
        let jwk = key.public_jwk();
        let Value::Object(members) = &jwk else {
            panic!("not an object")
        };
        assert_eq!(jose::thumbprint(members).as_deref(), Some(key.jkt()));
        assert_eq!(jose::PublicJwk::parse(&jwk).unwrap().thumbprint, key.jkt());
        let mut names: Vec<&str> = members.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["crv", "kty", "x", "y"]);
        assert_ne!(DpopKey::generate().jkt(), key.jkt());
    }

    #[test]
    fn a_key_survives_a_pem_round_trip_and_debug_hides_it() {
        let key = DpopKey::generate();
        let loaded = DpopKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
        assert_eq!(loaded.jkt(), key.jkt());
        assert_eq!(
            format!("{key:?}"),
            format!("DpopKey {{ jkt: {:?}, .. }}", key.jkt())
        );
    }

    #[test]
    fn nonce_errors_are_recognized() {
        assert!(is_use_dpop_nonce_body(br#"{"error":"use_dpop_nonce"}"#));
        assert!(!is_use_dpop_nonce_body(
            br#"{"error":"invalid_dpop_proof"}"#
        ));
        assert!(!is_use_dpop_nonce_body(b"<html>"));

        let challenge = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_str(value).unwrap());
            is_use_dpop_nonce_challenge(&headers)
        };
        assert!(challenge(
            r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#
        ));
        assert!(challenge(r#"dpop algs="ES256", error = "use_dpop_nonce""#));
        assert!(!challenge(r#"DPoP error="invalid_token""#));
        assert!(!challenge(r#"Bearer error="use_dpop_nonce""#));

        let mut headers = HeaderMap::new();
        assert_eq!(nonce_of(&headers), None);
        headers.insert(DPOP_NONCE_HEADER, HeaderValue::from_static("n-2"));
        assert_eq!(nonce_of(&headers).as_deref(), Some("n-2"));
    }

    fn claims_of(proof: &str) -> serde_json::Map<String, Value> {
        let payload = proof.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }
}

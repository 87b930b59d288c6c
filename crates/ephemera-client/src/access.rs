//! [`AccessToken`]: presenting an access token at a resource server, as a
//! bearer token (RFC 6750 §2.1) or a DPoP-bound one (RFC 9449 §7), with the
//! resource server's DPoP nonce (RFC 9449 §9).
//!
//! **Certificate-bound tokens** (RFC 8705 §3) need nothing here: their
//! `token_type` is `Bearer` and the binding is the TLS connection, which
//! must present the certificate the token was issued over. Send the request
//! with the HTTP client that holds that certificate — the one the
//! [`AuthorizationServer`](crate::AuthorizationServer) was made with
//! ([`AuthorizationServer::http`](crate::AuthorizationServer::http), built by
//! [`http_client`](crate::http::http_client)) — and
//! [`send_with_nonce_retry`](AccessToken::send_with_nonce_retry) or
//! [`authorize`](AccessToken::authorize) as for any bearer token. Sent over
//! another client, the resource server refuses it (`invalid_token`).

use std::collections::HashMap;
use std::sync::Mutex;

use ephemera_proto::wire::TokenResponse;
use reqwest::header::AUTHORIZATION;
use reqwest::RequestBuilder;
use url::Url;

use crate::dpop::{self, DpopKey, DPOP_HEADER};
use crate::error::{Error, Result};
use crate::exchange::TokenExchangeResponse;

/// An access token and how to present it.
///
/// `Debug` never shows the token. Not `Clone`: it is a secret, and it keeps
/// the last `DPoP-Nonce` of each resource server it has been sent to.
pub struct AccessToken {
    token: String,
    dpop: Option<DpopKey>,
    /// The latest `DPoP-Nonce` per origin (RFC 9449 §9: each resource
    /// server has its own).
    nonces: Mutex<HashMap<String, String>>,
}

impl AccessToken {
    /// A bearer token: `Authorization: Bearer <token>`.
    pub fn bearer(token: impl Into<String>) -> Self {
        Self::new(token.into(), None)
    }

    /// A DPoP-bound token: `Authorization: DPoP <token>` and a `DPoP` proof
    /// by `key` with the token's hash (`ath`) on every request.
    pub fn dpop(token: impl Into<String>, key: DpopKey) -> Self {
        Self::new(token.into(), Some(key))
    }

    /// The access token of a token response, presented as its `token_type`
    /// says (case-insensitively, RFC 6749 §5.1): `DPoP` needs the key the
    /// grant is bound to, `Bearer` ignores any key (the server chose not to
    /// bind the token; RFC 9449 §5 lets the client use it as a bearer token).
    /// A certificate-bound token is `Bearer` too: send it over the mutual TLS
    /// client (see the [module docs](self)).
    pub fn from_response(tokens: &TokenResponse, dpop: Option<&DpopKey>) -> Result<Self> {
        Self::of_type(&tokens.access_token, &tokens.token_type, dpop)
    }

    /// The token a token exchange (RFC 8693 §2.2.1) issued, presented as
    /// its `token_type` says, as [`from_response`](Self::from_response)
    /// does. A token whose `token_type` is `N_A` is not an access token (an
    /// ID-JAG, say: present it with
    /// [`jwt_bearer`](crate::AuthorizationServer::jwt_bearer) instead) and
    /// is refused.
    pub fn from_exchange(
        exchanged: &TokenExchangeResponse,
        dpop: Option<&DpopKey>,
    ) -> Result<Self> {
        if !exchanged.is_access_token() {
            return Err(Error::protocol(format!(
                "the exchanged token is a {} with token_type N_A, not an access token \
                 (RFC 8693 §2.2.1)",
                exchanged.issued_token_type
            )));
        }
        Self::of_type(&exchanged.access_token, &exchanged.token_type, dpop)
    }

    fn of_type(token: &str, token_type: &str, dpop: Option<&DpopKey>) -> Result<Self> {
        if token_type.eq_ignore_ascii_case("DPoP") {
            let key = dpop.ok_or_else(|| {
                Error::protocol("the token is DPoP-bound but no DPoP key was given")
            })?;
            Ok(Self::dpop(token, key.clone()))
        } else if token_type.eq_ignore_ascii_case("Bearer") {
            Ok(Self::bearer(token))
        } else {
            Err(Error::protocol(format!(
                "unsupported token_type {token_type:?}"
            )))
        }
    }

    fn new(token: String, dpop: Option<DpopKey>) -> Self {
        Self {
            token,
            dpop,
            nonces: Mutex::default(),
        }
    }

    /// The token itself.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// `Bearer` or `DPoP`: the `Authorization` scheme.
    pub fn scheme(&self) -> &'static str {
        if self.dpop.is_some() {
            "DPoP"
        } else {
            "Bearer"
        }
    }

    /// The DPoP key the token is bound to, if any.
    pub fn dpop_key(&self) -> Option<&DpopKey> {
        self.dpop.as_ref()
    }

    /// The last `DPoP-Nonce` the resource server at `url`'s origin sent.
    pub fn dpop_nonce(&self, url: &str) -> Option<String> {
        let origin = origin(url).ok()?;
        self.lock_nonces().get(&origin).cloned()
    }

    /// Adds `Authorization` (and, for a DPoP-bound token, a `DPoP` proof for
    /// `method` and `url`, with `ath` and the last nonce the resource
    /// server sent) to a request that must be for that method and URL.
    /// [`send_with_nonce_retry`](Self::send_with_nonce_retry) reads both from
    /// the request itself.
    pub fn authorize(
        &self,
        request: RequestBuilder,
        method: &str,
        url: &str,
    ) -> Result<RequestBuilder> {
        let (authorization, proof) = self.credentials(method, url)?;
        let request = request.header(AUTHORIZATION, authorization);
        Ok(match proof {
            Some(proof) => request.header(DPOP_HEADER, proof),
            None => request,
        })
    }

    /// The `Authorization` value and, for a DPoP-bound token, a fresh proof.
    fn credentials(&self, method: &str, url: &str) -> Result<(String, Option<String>)> {
        let authorization = format!("{} {}", self.scheme(), self.token);
        let proof = match &self.dpop {
            Some(key) => {
                let nonce = self.dpop_nonce(url);
                Some(key.proof(method, url, Some(&self.token), nonce.as_deref())?)
            }
            None => None,
        };
        Ok((authorization, proof))
    }

    /// Authorizes and sends `request`. When a resource server answers 401
    /// with a DPoP `use_dpop_nonce` challenge and a `DPoP-Nonce`
    /// (RFC 9449 §9), the request is sent once more with a proof carrying
    /// that nonce (not possible for a streaming body: its answer is returned
    /// as it is). Every `DPoP-Nonce` seen is remembered for later requests.
    /// Other answers, errors included, are returned for the caller to read.
    pub async fn send_with_nonce_retry(
        &self,
        request: RequestBuilder,
    ) -> Result<reqwest::Response> {
        let (http, request) = request.build_split();
        let request = request?;
        let method = request.method().as_str().to_owned();
        let url = request.url().to_string();
        let retry = request.try_clone();

        let response = http
            .execute(self.authorize_request(request, &method, &url)?)
            .await?;
        let fresh_nonce = self.remember(&url, response.headers());
        let asks_for_nonce = response.status() == reqwest::StatusCode::UNAUTHORIZED
            && fresh_nonce
            && dpop::is_use_dpop_nonce_challenge(response.headers());
        match retry {
            Some(retry) if self.dpop.is_some() && asks_for_nonce => {
                let response = http
                    .execute(self.authorize_request(retry, &method, &url)?)
                    .await?;
                self.remember(&url, response.headers());
                Ok(response)
            }
            _ => Ok(response),
        }
    }

    /// [`authorize`](Self::authorize) for a built request.
    fn authorize_request(
        &self,
        mut request: reqwest::Request,
        method: &str,
        url: &str,
    ) -> Result<reqwest::Request> {
        let header = |value: String| {
            reqwest::header::HeaderValue::try_from(value)
                .map_err(|e| Error::protocol(format!("unusable header value: {e}")))
        };
        let (authorization, proof) = self.credentials(method, url)?;
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, header(authorization)?);
        if let Some(proof) = proof {
            headers.insert(DPOP_HEADER, header(proof)?);
        }
        Ok(request)
    }

    /// Keeps the response's `DPoP-Nonce`, if any; says whether there was one.
    fn remember(&self, url: &str, headers: &reqwest::header::HeaderMap) -> bool {
        match (dpop::nonce_of(headers), origin(url)) {
            (Some(nonce), Ok(origin)) => {
                self.lock_nonces().insert(origin, nonce);
                true
            }
            _ => false,
        }
    }

    fn lock_nonces(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.nonces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("scheme", &self.scheme())
            .field("token", &"[redacted]")
            .field("dpop", &self.dpop)
            .finish()
    }
}

/// `scheme://host:port` of a URL (RFC 6454), the unit nonces belong to.
fn origin(url: &str) -> Result<String> {
    let url = Url::parse(url).map_err(|e| Error::protocol(format!("not a URL: {url:?}: {e}")))?;
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ephemera_proto::dpop::{verify, Expectations};

    const API: &str = "https://rs.example/api?page=2";

    fn tokens(token_type: &str) -> TokenResponse {
        serde_json::from_value(serde_json::json!({
            "access_token": "at-1",
            "token_type": token_type,
            "expires_in": 60,
        }))
        .unwrap()
    }

    #[test]
    fn a_bearer_token_sets_only_the_authorization_header() {
        let token = AccessToken::from_response(&tokens("Bearer"), None).unwrap();
        let request = token
            .authorize(reqwest::Client::new().get(API), "GET", API)
            .unwrap()
            .build()
            .unwrap();

        assert_eq!(request.headers()[AUTHORIZATION], "Bearer at-1");
        assert!(request.headers().get(DPOP_HEADER).is_none());
    }

    #[test]
    fn a_dpop_token_sets_the_scheme_and_a_proof_with_its_hash() {
        let key = DpopKey::generate();
        let token = AccessToken::from_response(&tokens("DPoP"), Some(&key)).unwrap();
        let request = token
            .authorize(reqwest::Client::new().get(API), "GET", API)
            .unwrap()
            .build()
            .unwrap();

        assert_eq!(request.headers()[AUTHORIZATION], "DPoP at-1");
        let proof = request.headers()[DPOP_HEADER].to_str().unwrap();
        let verified = verify(
            proof,
            &Expectations {
                method: "GET",
                url: "https://rs.example/api",
                now: crate::keys::now(),
                max_age: 60,
                leeway: 5,
                access_token: Some("at-1"),
            },
        )
        .unwrap();
        assert_eq!(verified.jkt, key.jkt());
    }

    #[test]
    fn a_dpop_token_without_its_key_or_an_unknown_type_is_refused() {
        assert!(matches!(
            AccessToken::from_response(&tokens("dpop"), None),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            AccessToken::from_response(&tokens("MAC"), None),
            Err(Error::Protocol(_))
        ));
        let key = DpopKey::generate();
        let bearer = AccessToken::from_response(&tokens("bearer"), Some(&key)).unwrap();
        assert_eq!(bearer.scheme(), "Bearer");
    }

    #[test]
    fn an_exchanged_access_token_is_presented_as_its_type_says_and_n_a_is_refused() {
        let exchanged = |token_type: &str, issued: &str| -> TokenExchangeResponse {
            serde_json::from_value(serde_json::json!({
                "access_token": "xt-1",
                "token_type": token_type,
                "issued_token_type": issued,
            }))
            .unwrap()
        };
        let key = DpopKey::generate();
        let access = "urn:ietf:params:oauth:token-type:access_token";

        let dpop = AccessToken::from_exchange(&exchanged("DPoP", access), Some(&key)).unwrap();
        let bearer = AccessToken::from_exchange(&exchanged("Bearer", access), None).unwrap();
        let id_jag = exchanged("N_A", "urn:ietf:params:oauth:token-type:id-jag");

        assert_eq!((dpop.scheme(), dpop.secret()), ("DPoP", "xt-1"));
        assert_eq!(bearer.scheme(), "Bearer");
        assert!(matches!(
            AccessToken::from_exchange(&id_jag, Some(&key)),
            Err(Error::Protocol(m)) if m.contains("N_A")
        ));
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let printed = format!("{:?}", AccessToken::bearer("at-secret"));
        assert!(!printed.contains("at-secret"));
    }

    #[test]
    fn nonces_are_kept_per_origin() {
        let token = AccessToken::dpop("at-1", DpopKey::generate());
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            dpop::DPOP_NONCE_HEADER,
            reqwest::header::HeaderValue::from_static("n-1"),
        );

        assert!(token.remember("https://rs.example/a", &headers));

        assert_eq!(
            token.dpop_nonce("https://rs.example:443/b").as_deref(),
            Some("n-1")
        );
        assert_eq!(token.dpop_nonce("https://other.example/a"), None);
    }
}

//! SPIFFE workloads as OAuth clients (draft-ietf-oauth-spiffe-client-auth):
//! SPIFFE IDs (the SPIFFE ID standard), trust bundles (a JWK Set with the
//! SPIFFE members, the SPIFFE Trust Domain and Bundle standard §4), and
//! the checks of a JWT-SVID presented as a client assertion that need no
//! state. The caller picks the bundle, and remembers a `jti`.
//!
//! How a JWT-SVID differs from an RFC 7523 client assertion (the draft's
//! JWT-SVID section): `client_assertion_type` is its own
//! ([`JWT_SPIFFE_ASSERTION`]); `sub` is the SPIFFE ID and the `client_id`;
//! `iss` is optional and not read (the bundle vouches, not the issuer
//! claim); `jti` is optional (SPIFFE implementations cache and reuse
//! JWT-SVIDs); `aud` may hold other audiences beside this server.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::Value;

use crate::jose::{self, JoseError, PublicJwk};

/// `client_assertion_type` of a JWT-SVID (draft-ietf-oauth-spiffe-client-auth).
pub const JWT_SPIFFE_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";

/// The longest SPIFFE ID (the SPIFFE ID standard §2.3: 2048 bytes).
const MAX_ID_LEN: usize = 2048;
/// The most keys a bundle may hold: a few authorities overlapping in a
/// rotation, for each kind of SVID.
const MAX_BUNDLE_KEYS: usize = 32;

/// A SPIFFE ID: `spiffe://<trust domain><path>`, checked as the SPIFFE ID
/// standard (§2) says: a lowercase trust domain of `[a-z0-9.-_]`, a path of
/// non-empty segments of `[a-zA-Z0-9.-_]`, none `.` or `..`, no trailing
/// `/`, no query, fragment, port or user info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiffeId {
    value: String,
    /// Where the trust domain ends in `value`.
    domain_end: usize,
}

/// Why a string is no SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    #[error("it does not start with spiffe://")]
    Scheme,
    #[error("its trust domain is empty or has a character other than a-z, 0-9, `.`, `-` and `_`")]
    TrustDomain,
    #[error("its path has an empty, `.` or `..` segment, or a character other than a-z, A-Z, 0-9, `.`, `-` and `_`")]
    Path,
    #[error("it is longer than 2048 bytes")]
    TooLong,
}

impl SpiffeId {
    pub fn parse(s: &str) -> Result<Self, SpiffeIdError> {
        if s.len() > MAX_ID_LEN {
            return Err(SpiffeIdError::TooLong);
        }
        let rest = s.strip_prefix("spiffe://").ok_or(SpiffeIdError::Scheme)?;
        let (domain, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if !is_trust_domain(domain) {
            return Err(SpiffeIdError::TrustDomain);
        }
        if !path.is_empty() {
            let segment_ok = |seg: &str| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            };
            if !path[1..].split('/').all(segment_ok) {
                return Err(SpiffeIdError::Path);
            }
        }
        Ok(Self {
            value: s.to_owned(),
            domain_end: "spiffe://".len() + domain.len(),
        })
    }

    /// The trust domain's name (`example.org`).
    pub fn trust_domain(&self) -> &str {
        &self.value["spiffe://".len()..self.domain_end]
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.value)
    }
}

/// Whether `name` is a trust domain name (the SPIFFE ID standard §2.1).
pub fn is_trust_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
}

/// A trust bundle: the keys of a trust domain's authorities, by what they
/// sign (the SPIFFE Trust Domain and Bundle standard §4).
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// `use: jwt-svid`: the keys JWT-SVIDs are signed with, each with a `kid`.
    pub jwt_keys: Vec<PublicJwk>,
    /// `use: x509-svid`: the DER of each root certificate (its `x5c`).
    pub x509_roots: Vec<Vec<u8>>,
    /// `spiffe_sequence`: grows with every change of the bundle.
    pub sequence: Option<u64>,
    /// `spiffe_refresh_hint`: how often to fetch it again, in seconds.
    pub refresh_hint: Option<u64>,
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("a SPIFFE bundle is a JWK Set: a JSON object with a `keys` array")]
    NotJwks,
    #[error("a SPIFFE bundle holds 1 to 32 keys")]
    KeyCount,
    #[error("key {0}: {1}")]
    Key(usize, String),
    #[error("`{0}` is not a non-negative integer")]
    Member(&'static str),
    #[error("it holds no `jwt-svid` or `x509-svid` key")]
    Empty,
}

/// Reads a SPIFFE bundle. Keys of another `use` are skipped, as the
/// standard (§4.2.2) asks; a `jwt-svid` key needs a `kid` (§4.2.2.2) and an
/// `x509-svid` key exactly one certificate in `x5c` (§4.2.2.1).
pub fn parse_bundle(value: &Value) -> Result<Bundle, BundleError> {
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(BundleError::NotJwks)?;
    if keys.is_empty() || keys.len() > MAX_BUNDLE_KEYS {
        return Err(BundleError::KeyCount);
    }
    let number = |name: &'static str| match value.get(name) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(BundleError::Member(name)),
    };
    let mut bundle = Bundle {
        sequence: number("spiffe_sequence")?,
        refresh_hint: number("spiffe_refresh_hint")?,
        ..Bundle::default()
    };
    for (i, key) in keys.iter().enumerate() {
        let fail = |m: &str| BundleError::Key(i, m.to_owned());
        match key.get("use").and_then(Value::as_str) {
            Some("jwt-svid") => {
                if key
                    .get("kid")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(fail("a `jwt-svid` key needs a `kid`"));
                }
                // `use` is SPIFFE's own value, which a JOSE library need not know.
                let mut plain = key.clone();
                if let Some(m) = plain.as_object_mut() {
                    m.remove("use");
                }
                let jwk = PublicJwk::parse(&plain).map_err(|e| fail(&e.to_string()))?;
                bundle.jwt_keys.push(jwk);
            }
            Some("x509-svid") => {
                let der = match key.get("x5c").and_then(Value::as_array).map(Vec::as_slice) {
                    Some([Value::String(cert)]) => STANDARD
                        .decode(cert)
                        .map_err(|_| fail("`x5c` is not base64"))?,
                    _ => {
                        return Err(fail(
                            "an `x509-svid` key needs exactly one certificate in `x5c`",
                        ))
                    }
                };
                bundle.x509_roots.push(der);
            }
            _ => {}
        }
    }
    if bundle.jwt_keys.is_empty() && bundle.x509_roots.is_empty() {
        return Err(BundleError::Empty);
    }
    Ok(bundle)
}

/// Why a JWT-SVID was refused; each message is the `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SvidError {
    #[error("client_assertion is not a valid JWT-SVID")]
    Malformed,
    #[error("the JWT-SVID: {0}")]
    Jose(JoseError),
    #[error("the JWT-SVID's sub is not a SPIFFE ID: {0}")]
    Subject(SpiffeIdError),
    #[error("the JWT-SVID's sub is in trust domain `{0}`, not the one whose bundle was given")]
    Domain(String),
    #[error("the JWT-SVID's header has no kid (the JWT-SVID standard §2.2 requires one)")]
    MissingKid,
    #[error("the JWT-SVID's kid names no jwt-svid key of its trust domain's bundle")]
    NoKey,
    #[error("the JWT-SVID's signature does not verify with its trust domain's bundle")]
    Signature,
    #[error("the JWT-SVID's typ must be JWT or JOSE when present")]
    Type,
    #[error("the JWT-SVID's aud must name this server: its issuer identifier `{0}` or its token endpoint")]
    Audience(String),
    #[error("the JWT-SVID has expired")]
    Expired,
    #[error("the JWT-SVID needs an exp no more than {0} seconds ahead")]
    Lifetime(i64),
    #[error("the JWT-SVID's iat or nbf is in the future")]
    NotYetValid,
    #[error("the JWT-SVID's jti, when present, is 1 to 256 characters")]
    Jti,
}

/// What a JWT-SVID must match.
#[derive(Debug, Clone, Copy)]
pub struct SvidExpectations<'a> {
    /// The trust domain whose bundle `keys` is.
    pub trust_domain: &'a str,
    /// The authorization server's issuer identifier, named in the errors.
    pub issuer: &'a str,
    /// What `aud` must contain one of: the issuer identifier, the token
    /// endpoint URL.
    pub audiences: &'a [String],
    pub now: i64,
    /// The furthest `exp` may lie ahead.
    pub max_lifetime: i64,
    /// Clock skew allowed, seconds.
    pub leeway: i64,
}

/// A verified JWT-SVID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSvid {
    pub spiffe_id: SpiffeId,
    pub exp: i64,
    /// Its `jti`, when it has one: then it is used once.
    pub jti: Option<String>,
}

/// The `sub` of a JWT-SVID, read before its signature is checked, only to
/// know which trust domain's bundle to check it with.
pub fn peek_subject(jwt: &str) -> Result<SpiffeId, SvidError> {
    jose::header(jwt).map_err(|_| SvidError::Malformed)?;
    let payload = jwt.split('.').nth(1).ok_or(SvidError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| SvidError::Malformed)?;
    let claims: Value = serde_json::from_slice(&bytes).map_err(|_| SvidError::Malformed)?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or(SvidError::Subject(SpiffeIdError::Scheme))?;
    SpiffeId::parse(sub).map_err(SvidError::Subject)
}

/// Verifies a JWT-SVID with the `jwt-svid` keys of its trust domain's
/// bundle (the key its `kid` names), then its claims.
pub fn verify_jwt_svid(
    jwt: &str,
    keys: &[PublicJwk],
    expect: &SvidExpectations<'_>,
) -> Result<JwtSvid, SvidError> {
    let header = jose::header(jwt).map_err(|_| SvidError::Malformed)?;
    let alg = jose::allowed_alg(&header).map_err(SvidError::Jose)?;
    if let Some(typ) = header.get("typ") {
        if !matches!(typ.as_str(), Some("JWT" | "JOSE")) {
            return Err(SvidError::Type);
        }
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(SvidError::MissingKid)?;
    let key = keys
        .iter()
        .find(|k| k.kid() == Some(kid))
        .ok_or(SvidError::NoKey)?;
    let claims = jose::verify(jwt, alg, key).map_err(|e| match e {
        JoseError::Signature => SvidError::Signature,
        other => SvidError::Jose(other),
    })?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or(SvidError::Subject(SpiffeIdError::Scheme))?;
    let spiffe_id = SpiffeId::parse(sub).map_err(SvidError::Subject)?;
    if spiffe_id.trust_domain() != expect.trust_domain {
        return Err(SvidError::Domain(spiffe_id.trust_domain().to_owned()));
    }
    let named = |a: &Value| {
        a.as_str()
            .is_some_and(|a| expect.audiences.iter().any(|e| e == a))
    };
    let aud_ok = match claims.get("aud") {
        Some(a @ Value::String(_)) => named(a),
        Some(Value::Array(list)) => list.iter().any(named),
        _ => false,
    };
    if !aud_ok {
        return Err(SvidError::Audience(expect.issuer.to_owned()));
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(SvidError::Lifetime(expect.max_lifetime))?;
    if exp <= expect.now - expect.leeway {
        return Err(SvidError::Expired);
    }
    if exp > expect.now + expect.max_lifetime {
        return Err(SvidError::Lifetime(expect.max_lifetime));
    }
    for name in ["iat", "nbf"] {
        if let Some(t) = claims.get(name) {
            match t.as_i64() {
                Some(t) if t <= expect.now + crate::future_skew(expect.leeway) => {}
                _ => return Err(SvidError::NotYetValid),
            }
        }
    }
    let jti = match claims.get("jti") {
        None => None,
        Some(Value::String(j)) if !j.is_empty() && j.len() <= 256 => Some(j.clone()),
        Some(_) => return Err(SvidError::Jti),
    };
    Ok(JwtSvid {
        spiffe_id,
        exp,
        jti,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spiffe_ids_are_read_as_the_standard_says() {
        let id = SpiffeId::parse("spiffe://example.org/ns/prod/sa/api");
        assert_eq!(id.as_ref().map(SpiffeId::trust_domain), Ok("example.org"));
        assert!(SpiffeId::parse("spiffe://example.org").is_ok());
        for (bad, why) in [
            ("https://example.org/x", SpiffeIdError::Scheme),
            ("SPIFFE://example.org/x", SpiffeIdError::Scheme),
            ("spiffe://Example.org/x", SpiffeIdError::TrustDomain),
            ("spiffe://example.org:443/x", SpiffeIdError::TrustDomain),
            ("spiffe://user@example.org/x", SpiffeIdError::TrustDomain),
            ("spiffe:///x", SpiffeIdError::TrustDomain),
            ("spiffe://example.org/", SpiffeIdError::Path),
            ("spiffe://example.org//x", SpiffeIdError::Path),
            ("spiffe://example.org/a/../b", SpiffeIdError::Path),
            ("spiffe://example.org/a?b", SpiffeIdError::Path),
            ("spiffe://example.org/a#b", SpiffeIdError::Path),
        ] {
            assert_eq!(SpiffeId::parse(bad), Err(why), "{bad}");
        }
    }

    const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    #[test]
    fn a_bundle_keeps_jwt_and_x509_keys_apart() {
        let bundle = serde_json::json!({
            "spiffe_sequence": 7,
            "spiffe_refresh_hint": 300,
            "keys": [
                {"kty": "EC", "crv": "P-256", "x": X, "y": Y, "use": "jwt-svid", "kid": "j1"},
                {"kty": "EC", "crv": "P-256", "x": X, "y": Y, "use": "x509-svid", "x5c": ["AQID"]},
                {"kty": "EC", "crv": "P-256", "x": X, "y": Y, "use": "wit-svid"}
            ]
        });
        let b = parse_bundle(&bundle);
        let Ok(b) = b else {
            return assert!(b.is_ok(), "{b:?}");
        };
        assert_eq!(b.jwt_keys.len(), 1);
        assert_eq!(b.x509_roots, vec![vec![1, 2, 3]]);
        assert_eq!((b.sequence, b.refresh_hint), (Some(7), Some(300)));
    }

    #[test]
    fn bad_bundles_are_named() {
        let key = |extra: Value| {
            let mut k = serde_json::json!({"kty": "EC", "crv": "P-256", "x": X, "y": Y});
            if let (Some(k), Value::Object(e)) = (k.as_object_mut(), extra) {
                k.extend(e);
            }
            k
        };
        for (bundle, expected) in [
            (serde_json::json!([]), "JWK Set"),
            (serde_json::json!({"keys": []}), "1 to 32"),
            (
                serde_json::json!({"keys": [key(serde_json::json!({"use": "jwt-svid"}))]}),
                "needs a `kid`",
            ),
            (
                serde_json::json!({"keys": [key(serde_json::json!({"use": "x509-svid"}))]}),
                "exactly one certificate",
            ),
            (
                serde_json::json!({"keys": [key(serde_json::json!({"use": "sig"}))]}),
                "no `jwt-svid` or `x509-svid` key",
            ),
            (
                serde_json::json!({"spiffe_refresh_hint": "soon",
                    "keys": [key(serde_json::json!({"use": "jwt-svid", "kid": "a"}))]}),
                "spiffe_refresh_hint",
            ),
        ] {
            let e = parse_bundle(&bundle).err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains(expected)),
                "{expected:?} not in {e:?}"
            );
        }
    }

    #[test]
    fn a_subject_is_peeked_before_the_signature() {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"spiffe://example.org/w"}"#);
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"k"}"#);
        let jwt = format!("{header}.{claims}.sig");
        assert_eq!(
            peek_subject(&jwt).map(|id| id.trust_domain().to_owned()),
            Ok("example.org".to_owned())
        );
        let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"workload"}"#);
        assert!(matches!(
            peek_subject(&format!("{header}.{claims}.sig")),
            Err(SvidError::Subject(_))
        ));
    }
}

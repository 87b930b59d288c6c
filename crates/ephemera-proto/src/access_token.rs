//! JWT access tokens (RFC 9068): the claims an authorization server puts in
//! them (§2.2) and the checks a resource server makes on one (§4): `typ`,
//! the algorithm allow-list, the signature with a key of the issuer's
//! JWKS, `iss`, `aud`, `exp` and `nbf`. Time is an input; nothing here
//! fetches keys.

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jose::{self, JoseError, PublicJwk};

/// The `typ` header of a JWT access token (RFC 9068 §2.1).
pub const TYP: &str = "at+jwt";

/// The algorithms a JWT access token of Ephemera is signed with: its keys
/// are ES256 keys, so no other algorithm is ever accepted (RFC 9068 §4:
/// the resource server uses the algorithms it expects, never the token's
/// word alone).
pub const ALGORITHMS: &[&str] = &["ES256"];

/// Why a JWT access token was refused. The messages name the claim, never
/// its value: they go into `WWW-Authenticate` as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessTokenError {
    #[error("the access token is not a well-formed JWT access token")]
    Malformed,
    #[error("the JWT is not an access token (its `typ` is not `at+jwt`, RFC 9068 §4)")]
    Type,
    #[error("the access token's signing algorithm is not allowed")]
    Algorithm,
    #[error("the access token was signed with a key the issuer does not publish")]
    NoKey,
    #[error("the access token's signature does not verify")]
    Signature,
    #[error("the access token was not issued by the expected issuer")]
    Issuer,
    #[error("the access token is not meant for this resource")]
    Audience,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
}

/// `aud`: one resource as a string, several as an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// `One` for a single resource, `Many` for several.
    pub fn of(resources: &[String]) -> Self {
        match resources {
            [one] => Self::One(one.clone()),
            many => Self::Many(many.to_vec()),
        }
    }

    pub fn contains(&self, resource: &str) -> bool {
        match self {
            Self::One(a) => a == resource,
            Self::Many(list) => list.iter().any(|a| a == resource),
        }
    }

    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(a) => vec![a.clone()],
            Self::Many(list) => list.clone(),
        }
    }
}

/// The claims of a JWT access token (RFC 9068 §2.2), with Ephemera's
/// `grant_id` (the same as introspection's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub exp: i64,
    pub aud: Audience,
    /// The user's id; the client's `client_id` for a token of no user
    /// (`client_credentials`, RFC 9068 §2.2).
    pub sub: String,
    pub client_id: String,
    pub iat: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Space-separated (RFC 9068 §2.2.3, RFC 8693 §4.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The confirmation (RFC 7800): `jkt` (RFC 9449 §6.1) or `x5t#S256`
    /// (RFC 8705 §3.1). Kept as JSON, so a member a resource server cannot
    /// check is seen and refused rather than dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// The actor chain of a token obtained by token exchange (RFC 8693
    /// §4.1): the current actor, prior actors nested in its own `act`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
}

impl AccessTokenClaims {
    /// The scope's tokens.
    pub fn scopes(&self) -> Vec<String> {
        self.scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The confirmation claim of a bound token (RFC 9449 §6.1, RFC 8705 §3.1).
pub fn confirmation(jkt: Option<&str>, x5t_s256: Option<&str>) -> Option<Value> {
    let mut m = Map::new();
    if let Some(j) = jkt {
        m.insert("jkt".into(), Value::from(j));
    }
    if let Some(x) = x5t_s256 {
        m.insert("x5t#S256".into(), Value::from(x));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// Whether `token` is a JWT at all (three parts, a JSON header), as opposed
/// to an opaque token: a resource server validates the first kind itself
/// and introspects the second.
pub fn is_jwt(token: &str) -> bool {
    jose::header(token).is_ok()
}

/// The header's `kid`, when the token is a JWT that names one: a resource
/// server that does not know it fetches the issuer's keys again.
pub fn kid(token: &str) -> Option<String> {
    jose::header(token)
        .ok()?
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// What a JWT access token must say to be accepted by one resource server.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The authorization server's issuer identifier, exactly.
    pub issuer: &'a str,
    /// This resource's identifier: `aud` must contain it.
    pub audience: &'a str,
    pub now: i64,
    /// Seconds of clock skew allowed for `exp` and `nbf`.
    pub leeway: i64,
}

/// RFC 9068 §4: verifies `token` with one of the issuer's `keys` (by `kid`
/// when the header names one) and checks its claims; returns them.
pub fn verify(
    token: &str,
    keys: &[PublicJwk],
    expected: &Expected<'_>,
) -> Result<AccessTokenClaims, AccessTokenError> {
    let header = jose::header(token).map_err(|_| AccessTokenError::Malformed)?;
    let typ = header
        .get("typ")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !typ.eq_ignore_ascii_case(TYP) && !typ.eq_ignore_ascii_case("application/at+jwt") {
        return Err(AccessTokenError::Type);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !ALGORITHMS.contains(&alg) {
        return Err(AccessTokenError::Algorithm);
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let mut candidates = keys
        .iter()
        .filter(|k| kid.is_none() || k.kid() == kid)
        .peekable();
    if candidates.peek().is_none() {
        return Err(AccessTokenError::NoKey);
    }
    let mut verified = None;
    for key in candidates {
        match jose::verify(token, Algorithm::ES256, key) {
            Ok(claims) => {
                verified = Some(claims);
                break;
            }
            Err(JoseError::Malformed) => return Err(AccessTokenError::Malformed),
            // Another key type, or not this key: try the next.
            Err(_) => continue,
        }
    }
    let claims = verified.ok_or(AccessTokenError::Signature)?;
    let claims: AccessTokenClaims =
        serde_json::from_value(Value::Object(claims)).map_err(|_| AccessTokenError::Malformed)?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

/// The claim checks of RFC 9068 §4 after the signature.
pub fn check_claims(
    claims: &AccessTokenClaims,
    expected: &Expected<'_>,
) -> Result<(), AccessTokenError> {
    if claims.iss != expected.issuer {
        return Err(AccessTokenError::Issuer);
    }
    if !claims.aud.contains(expected.audience) {
        return Err(AccessTokenError::Audience);
    }
    if claims.exp.saturating_add(expected.leeway) <= expected.now {
        return Err(AccessTokenError::Expired);
    }
    let not_before = claims.nbf.unwrap_or(claims.iat);
    if not_before.saturating_sub(expected.leeway) > expected.now {
        return Err(AccessTokenError::NotYetValid);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://as.example".into(),
            exp: 2_000,
            aud: Audience::of(&["https://api.example/".into()]),
            sub: "u1".into(),
            client_id: "app".into(),
            iat: 1_000,
            jti: "j1".into(),
            nbf: None,
            scope: Some("read write".into()),
            cnf: None,
            auth_time: None,
            acr: None,
            grant_id: None,
            act: None,
        }
    }

    fn expected(now: i64) -> Expected<'static> {
        Expected {
            issuer: "https://as.example",
            audience: "https://api.example/",
            now,
            leeway: 5,
        }
    }

    #[test]
    fn one_audience_is_a_string_and_several_an_array() {
        let one = serde_json::to_value(Audience::of(&["a:x".into()])).unwrap();
        assert_eq!(one, json!("a:x"));
        let many = serde_json::to_value(Audience::of(&["a:x".into(), "b:y".into()])).unwrap();
        assert_eq!(many, json!(["a:x", "b:y"]));
        assert!(serde_json::from_value::<Audience>(many)
            .unwrap()
            .contains("b:y"));
    }

    #[test]
    fn the_claims_are_checked_with_leeway() {
        assert_eq!(check_claims(&claims(), &expected(1_500)), Ok(()));
        assert_eq!(check_claims(&claims(), &expected(2_004)), Ok(()));
        assert_eq!(
            check_claims(&claims(), &expected(2_005)),
            Err(AccessTokenError::Expired)
        );
        assert_eq!(
            check_claims(&claims(), &expected(994)),
            Err(AccessTokenError::NotYetValid)
        );
        let other = Expected {
            audience: "https://other.example/",
            ..expected(1_500)
        };
        assert_eq!(
            check_claims(&claims(), &other),
            Err(AccessTokenError::Audience)
        );
        let foreign = Expected {
            issuer: "https://evil.example",
            ..expected(1_500)
        };
        assert_eq!(
            check_claims(&claims(), &foreign),
            Err(AccessTokenError::Issuer)
        );
    }

    #[test]
    fn opaque_tokens_are_not_jwts() {
        assert!(!is_jwt("k3Jx0aB-opaque_value_of_43_characters_xxxxxx"));
        assert!(!is_jwt("a.b.c"));
        assert!(is_jwt("eyJhbGciOiJFUzI1NiJ9.e30.sig"));
        assert_eq!(
            kid("eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.e30.sig").as_deref(),
            Some("k1")
        );
    }

    #[test]
    fn a_header_of_another_type_or_algorithm_is_refused_before_any_key() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let token = |header: Value| {
            format!(
                "{}.e30.c2ln",
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap())
            )
        };
        let e = expected(1_500);
        assert_eq!(
            verify(&token(json!({"alg": "ES256", "typ": "JWT"})), &[], &e).err(),
            Some(AccessTokenError::Type)
        );
        assert_eq!(
            verify(&token(json!({"alg": "RS256", "typ": "at+jwt"})), &[], &e).err(),
            Some(AccessTokenError::Algorithm)
        );
        assert_eq!(
            verify(&token(json!({"alg": "none", "typ": "at+jwt"})), &[], &e).err(),
            Some(AccessTokenError::Algorithm)
        );
        assert_eq!(
            verify(
                &token(json!({"alg": "ES256", "typ": "application/at+jwt", "kid": "k"})),
                &[],
                &e
            )
            .err(),
            Some(AccessTokenError::NoKey)
        );
    }
}

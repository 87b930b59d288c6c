//! OpenID Federation 1.0: entity statements, metadata policies, constraints,
//! trust marks and trust chains, checked without I/O. The server fetches the
//! statements; everything that decides whether they form a valid chain, and
//! what the chain's subject may then claim to be, is here.
//!
//! | module | owns |
//! |---|---|
//! | this file | entity statements (§3): parsing and verifying `entity-statement+jwt`; entity identifiers; the Entity Configuration and fetch URLs (§9, §8.1); constraints (§6.2); trust marks (§7.3) |
//! | [`policy`] | metadata policy operators (§6.1): validation, merging, application |
//! | [`chain`] | trust chain validation (§10.2) and the resolved metadata |

pub mod chain;
pub mod policy;

use serde_json::{Map, Value};
use url::Url;

use crate::jose::{self, JoseError, PublicJwk};

/// The `typ` of an entity statement (§3).
pub const ENTITY_STATEMENT_TYP: &str = "entity-statement+jwt";
/// The media type entity statements are served as (§3, §9.2, §8.1.2).
pub const ENTITY_STATEMENT_MEDIA_TYPE: &str = "application/entity-statement+jwt";
/// The `typ` of a trust mark (§7).
pub const TRUST_MARK_TYP: &str = "trust-mark+jwt";
/// Where an entity publishes its Entity Configuration, appended to its
/// Entity Identifier (§9).
pub const WELL_KNOWN_PATH: &str = "/.well-known/openid-federation";

/// Why a statement, a trust mark or a chain was refused. Every message names
/// what failed and is safe to send as an `error_description`: it holds only
/// entity identifiers the statements themselves carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationError {
    #[error(
        "`{0}` is not an entity identifier (an https URL with a host and no query or fragment)"
    )]
    EntityId(String),
    #[error("an entity statement is not a signed JWT ({0})")]
    Malformed(String),
    #[error("an entity statement's typ must be `entity-statement+jwt`")]
    Type,
    #[error("the entity statement by `{iss}` about `{sub}`: {reason}")]
    Claims {
        iss: String,
        sub: String,
        reason: String,
    },
    #[error("the entity statement by `{iss}` about `{sub}` is not signed by a key {by}")]
    Signature {
        iss: String,
        sub: String,
        by: &'static str,
    },
    #[error("the entity statement by `{iss}` about `{sub}` has expired")]
    Expired { iss: String, sub: String },
    #[error("the entity statement by `{iss}` about `{sub}` is issued in the future")]
    NotYetValid { iss: String, sub: String },
    #[error("the entity statement by `{iss}` about `{sub}` marks the claim `{claim}` critical, which this server does not understand")]
    Critical {
        iss: String,
        sub: String,
        claim: String,
    },
    #[error(
        "no trust anchor this server trusts was reached from `{0}` through its authority_hints"
    )]
    UnknownAnchor(String),
    #[error("the trust chain does not link up: {0}")]
    Linkage(String),
    #[error("the authority_hints of the trust chain loop back to `{0}`")]
    Loop(String),
    #[error("the trust chain is too long: {0}")]
    PathTooLong(String),
    #[error("`{entity}` is outside the naming constraints of `{by}`")]
    Naming { by: String, entity: String },
    #[error("{0}")]
    Policy(#[from] policy::PolicyError),
    #[error("the trust mark `{trust_mark_type}`: {reason}")]
    TrustMark {
        trust_mark_type: String,
        reason: String,
    },
}

/// A checked entity identifier (§1.2): an https URL with a host, without
/// query, fragment or user information.
pub fn check_entity_id(id: &str) -> Result<Url, FederationError> {
    let refuse = || FederationError::EntityId(id.chars().take(200).collect());
    let url = Url::parse(id).map_err(|_| refuse())?;
    if url.scheme() != "https"
        || url.host_str().is_none_or(str::is_empty)
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(refuse());
    }
    Ok(url)
}

/// Where an entity's Entity Configuration is (§9): the well-known path
/// appended to its identifier (after any path it has, without a doubled `/`).
pub fn configuration_url(entity_id: &str) -> Result<Url, FederationError> {
    check_entity_id(entity_id)?;
    let base = entity_id.trim_end_matches('/');
    Url::parse(&format!("{base}{WELL_KNOWN_PATH}"))
        .map_err(|_| FederationError::EntityId(entity_id.chars().take(200).collect()))
}

/// The fetch endpoint's URL for a subordinate statement about `sub` (§8.1.1).
pub fn fetch_url(endpoint: &str, sub: &str) -> Result<Url, FederationError> {
    let mut url = Url::parse(endpoint)
        .ok()
        .filter(|u| u.scheme() == "https" && u.fragment().is_none())
        .ok_or_else(|| {
            FederationError::Linkage(format!(
                "federation_fetch_endpoint `{}` is not an https URL",
                endpoint.chars().take(200).collect::<String>()
            ))
        })?;
    url.query_pairs_mut().append_pair("sub", sub);
    Ok(url)
}

/// An entity statement's claims (§3), as far as this server uses them.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityStatement {
    pub iss: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// The subject's Federation Entity Keys (a JWK Set).
    pub jwks: Value,
    /// Entity Configurations only: the entity's superiors.
    pub authority_hints: Vec<String>,
    /// Per entity type.
    pub metadata: Map<String, Value>,
    /// Subordinate Statements only.
    pub metadata_policy: Option<Value>,
    pub metadata_policy_crit: Vec<String>,
    pub constraints: Option<Constraints>,
    /// Entity Configurations only: `{"trust_mark_type", "trust_mark"}` objects.
    pub trust_marks: Vec<Value>,
    /// Every claim, as signed.
    pub claims: Map<String, Value>,
}

/// The claims of §3 this server understands, for `crit` (§13.4).
const UNDERSTOOD: &[&str] = &[
    "iss",
    "sub",
    "iat",
    "exp",
    "jwks",
    "authority_hints",
    "metadata",
    "metadata_policy",
    "metadata_policy_crit",
    "constraints",
    "trust_marks",
    "source_endpoint",
];

impl EntityStatement {
    /// The statement's claims, read before its signature is checked: only
    /// to learn whom it is by and about, and which keys to check it with.
    /// Nothing read here is trusted until [`EntityStatement::verify`].
    pub fn peek(jwt: &str) -> Result<Self, FederationError> {
        let payload = jwt
            .split('.')
            .nth(1)
            .ok_or_else(|| FederationError::Malformed("not a compact JWS".into()))?;
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| FederationError::Malformed("the payload is not base64url".into()))?;
        if crate::json::too_deep(&bytes, crate::json::MAX_DEPTH) {
            return Err(FederationError::Malformed(
                "the claims nest too deep".into(),
            ));
        }
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(claims)) => Self::from_claims(claims),
            _ => Err(FederationError::Malformed(
                "the payload is not a JSON object".into(),
            )),
        }
    }

    /// Verifies `jwt` as an entity statement signed by one of `keys` (a JWK
    /// Set; by `kid`, which §3 requires in the header), and reads its claims.
    /// `by` says whose keys they are, for the error. Times are the caller's.
    pub fn verify(jwt: &str, keys: &Value, by: &'static str) -> Result<Self, FederationError> {
        let header = jose::header(jwt).map_err(|e| FederationError::Malformed(e.to_string()))?;
        if header.get("typ").and_then(Value::as_str) != Some(ENTITY_STATEMENT_TYP) {
            return Err(FederationError::Type);
        }
        // §3: the signing key is named, so no key is tried at random.
        if !header.get("kid").is_some_and(Value::is_string) {
            return Err(FederationError::Malformed(
                "the header names no signing key (kid)".into(),
            ));
        }
        let peeked = Self::peek(jwt)?;
        let claims = verify_signature(jwt, &header, keys).map_err(|e| match e {
            Some(JoseError::Algorithm(a)) => {
                FederationError::Malformed(format!("algorithm `{a}` is not allowed"))
            }
            _ => FederationError::Signature {
                iss: peeked.iss.clone(),
                sub: peeked.sub.clone(),
                by,
            },
        })?;
        Self::from_claims(claims)
    }

    fn from_claims(claims: Map<String, Value>) -> Result<Self, FederationError> {
        let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        let iss = s("iss").unwrap_or_default();
        let sub = s("sub").unwrap_or_default();
        let bad = |reason: &str| FederationError::Claims {
            iss: iss.clone(),
            sub: sub.clone(),
            reason: reason.to_owned(),
        };
        if iss.is_empty() || sub.is_empty() {
            return Err(bad("iss and sub are required"));
        }
        let (Some(iat), Some(exp)) = (
            claims.get("iat").and_then(Value::as_i64),
            claims.get("exp").and_then(Value::as_i64),
        ) else {
            return Err(bad("iat and exp are required numbers"));
        };
        let jwks = claims.get("jwks").cloned().unwrap_or(Value::Null);
        if !jwks.get("keys").is_some_and(Value::is_array) {
            return Err(bad("jwks (a JWK Set) is required"));
        }
        let strings = |k: &str| -> Result<Vec<String>, FederationError> {
            match claims.get(k) {
                None => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad(&format!("{k} must be an array of strings"))),
                Some(_) => Err(bad(&format!("{k} must be an array of strings"))),
            }
        };
        let authority_hints = strings("authority_hints")?;
        let metadata_policy_crit = strings("metadata_policy_crit")?;
        let metadata = match claims.get("metadata") {
            None => Map::new(),
            Some(Value::Object(m)) if m.values().all(Value::is_object) => m.clone(),
            Some(_) => return Err(bad("metadata must be an object of objects")),
        };
        let constraints = match claims.get("constraints") {
            None => None,
            Some(c) => Some(Constraints::parse(c).map_err(|r| bad(&r))?),
        };
        let trust_marks = match claims.get("trust_marks") {
            None => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(bad("trust_marks must be an array")),
        };
        if let Some(crit) = claims.get("crit") {
            let unknown = crit
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c.as_str().unwrap_or_default())
                .find(|c| !UNDERSTOOD.contains(c));
            if let Some(claim) = unknown {
                return Err(FederationError::Critical {
                    iss,
                    sub,
                    claim: claim.to_owned(),
                });
            }
        }
        Ok(Self {
            metadata_policy: claims.get("metadata_policy").cloned(),
            iss,
            sub,
            iat,
            exp,
            jwks,
            authority_hints,
            metadata,
            metadata_policy_crit,
            constraints,
            trust_marks,
            claims,
        })
    }

    /// An Entity Configuration is a statement an entity makes about itself.
    pub fn is_configuration(&self) -> bool {
        self.iss == self.sub
    }

    /// The entity's `federation_fetch_endpoint` (§5.1.1), if it publishes one.
    pub fn fetch_endpoint(&self) -> Option<&str> {
        self.metadata
            .get("federation_entity")?
            .get("federation_fetch_endpoint")?
            .as_str()
    }

    /// `iat` not ahead of `now` (with `leeway`) and `exp` not behind it.
    pub fn check_times(&self, now: i64, leeway: i64) -> Result<(), FederationError> {
        if self.exp.saturating_add(leeway) <= now {
            return Err(FederationError::Expired {
                iss: self.iss.clone(),
                sub: self.sub.clone(),
            });
        }
        if self.iat.saturating_sub(leeway) > now {
            return Err(FederationError::NotYetValid {
                iss: self.iss.clone(),
                sub: self.sub.clone(),
            });
        }
        Ok(())
    }
}

/// Checks a JWS against the keys of a JWK Set, by `kid` when the header has
/// one. `Err(None)`: no key verifies it.
fn verify_signature(
    jwt: &str,
    header: &Map<String, Value>,
    keys: &Value,
) -> Result<Map<String, Value>, Option<JoseError>> {
    let alg = jose::allowed_alg(header).map_err(Some)?;
    let kid = header.get("kid").and_then(Value::as_str);
    let keys: Vec<PublicJwk> = keys
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| PublicJwk::parse(k).ok())
        .filter(|k| kid.is_none() || k.kid() == kid)
        .collect();
    keys.iter()
        .find_map(|k| jose::verify(jwt, alg, k).ok())
        .ok_or(None)
}

/// A subordinate statement's `constraints` (§6.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    /// At most this many intermediates between the issuer and the subject.
    pub max_path_length: Option<usize>,
    pub naming: Option<NamingConstraints>,
    /// Entity types (besides `federation_entity`) subordinates may have.
    pub allowed_entity_types: Option<Vec<String>>,
}

/// Permitted and excluded host name subtrees (§6.2.2, RFC 5280 §4.2.1.10).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamingConstraints {
    pub permitted: Vec<String>,
    pub excluded: Vec<String>,
}

impl Constraints {
    fn parse(v: &Value) -> Result<Self, String> {
        let Value::Object(m) = v else {
            return Err("constraints must be a JSON object".into());
        };
        let list = |v: Option<&Value>, name: &str| -> Result<Option<Vec<String>>, String> {
            match v {
                None => Ok(None),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|s| s.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .map(Some)
                    .ok_or_else(|| format!("{name} must be an array of strings")),
                Some(_) => Err(format!("{name} must be an array of strings")),
            }
        };
        let max_path_length = match m.get("max_path_length") {
            None => None,
            Some(n) => Some(
                n.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or("max_path_length must be a number of zero or more")?,
            ),
        };
        let naming = match m.get("naming_constraints") {
            None => None,
            Some(n) => Some(NamingConstraints {
                permitted: list(n.get("permitted"), "permitted")?.unwrap_or_default(),
                excluded: list(n.get("excluded"), "excluded")?.unwrap_or_default(),
            }),
        };
        Ok(Self {
            max_path_length,
            naming,
            allowed_entity_types: list(m.get("allowed_entity_types"), "allowed_entity_types")?,
        })
    }
}

impl NamingConstraints {
    /// Whether the host of `entity_id` is within the permitted subtrees (if
    /// any are listed) and outside every excluded one.
    pub fn allows(&self, entity_id: &str) -> bool {
        let Some(host) = Url::parse(entity_id)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        else {
            return false;
        };
        let matches = |c: &String| {
            let c = c.to_ascii_lowercase();
            // ".example.com" is any host below example.com, not example.com.
            if c.starts_with('.') {
                host.ends_with(&c) && host.len() > c.len()
            } else {
                host == c
            }
        };
        !self.excluded.iter().any(matches)
            && (self.permitted.is_empty() || self.permitted.iter().any(matches))
    }
}

/// What a trust mark must be to count (§7.3).
#[derive(Debug, Clone, Copy)]
pub struct ExpectedTrustMark<'a> {
    pub trust_mark_type: &'a str,
    /// The trust mark issuer's entity identifier, and its keys.
    pub issuer: &'a str,
    pub issuer_jwks: &'a Value,
    /// The entity whose configuration carries it.
    pub subject: &'a str,
    pub now: i64,
    pub leeway: i64,
}

/// Finds and validates the trust mark of `expected`'s type among an Entity
/// Configuration's `trust_marks` (§7.3: typed, signed by the issuer's key,
/// about the subject, within its times). Delegated trust marks are not
/// accepted.
pub fn check_trust_mark(
    trust_marks: &[Value],
    expected: &ExpectedTrustMark<'_>,
) -> Result<(), FederationError> {
    let refuse = |reason: &str| FederationError::TrustMark {
        trust_mark_type: expected.trust_mark_type.to_owned(),
        reason: reason.to_owned(),
    };
    let type_of = |m: &Value| {
        // `id` is the name earlier drafts gave the type.
        m.get("trust_mark_type")
            .or_else(|| m.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let candidates: Vec<&str> = trust_marks
        .iter()
        .filter(|m| type_of(m).as_deref() == Some(expected.trust_mark_type))
        .filter_map(|m| m.get("trust_mark").and_then(Value::as_str))
        .collect();
    if candidates.is_empty() {
        return Err(refuse("the entity's configuration does not carry it"));
    }
    let mut last = refuse("it is not valid");
    for jwt in candidates {
        match check_one_trust_mark(jwt, expected) {
            Ok(()) => return Ok(()),
            Err(reason) => last = refuse(&reason),
        }
    }
    Err(last)
}

fn check_one_trust_mark(jwt: &str, e: &ExpectedTrustMark<'_>) -> Result<(), String> {
    let header = jose::header(jwt).map_err(|_| "it is not a signed JWT".to_owned())?;
    if header.get("typ").and_then(Value::as_str) != Some(TRUST_MARK_TYP) {
        return Err("its typ must be trust-mark+jwt".into());
    }
    let claims = verify_signature(jwt, &header, e.issuer_jwks)
        .map_err(|_| "it is not signed by the trust mark issuer's key".to_owned())?;
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    if s("iss") != Some(e.issuer) {
        return Err("it is not issued by the configured trust mark issuer".into());
    }
    if s("sub") != Some(e.subject) {
        return Err("it is about another entity".into());
    }
    if s("trust_mark_type").or_else(|| s("id")) != Some(e.trust_mark_type) {
        return Err("its trust_mark_type differs from the one it is listed under".into());
    }
    if claims.contains_key("delegation") {
        return Err("delegated trust marks are not accepted".into());
    }
    match claims.get("iat").and_then(Value::as_i64) {
        Some(iat) if iat.saturating_sub(e.leeway) <= e.now => {}
        _ => return Err("its iat is missing or in the future".into()),
    }
    if let Some(exp) = claims.get("exp") {
        if exp
            .as_i64()
            .is_none_or(|x| x.saturating_add(e.leeway) <= e.now)
        {
            return Err("it has expired".into());
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::testing::Key;
    use super::*;
    use serde_json::json;

    #[test]
    fn entity_identifiers_are_https_urls_without_query_or_fragment() {
        assert!(check_entity_id("https://rp.example.org").is_ok());
        assert!(check_entity_id("https://rp.example.org/fed").is_ok());
        for bad in [
            "http://rp.example.org",
            "https://rp.example.org?x=1",
            "https://rp.example.org#f",
            "https://u:p@rp.example.org",
            "rp",
        ] {
            assert!(check_entity_id(bad).is_err(), "{bad}");
        }
        assert_eq!(
            configuration_url("https://rp.example.org/")
                .unwrap()
                .as_str(),
            "https://rp.example.org/.well-known/openid-federation"
        );
        assert_eq!(
            configuration_url("https://example.org/org/rp")
                .unwrap()
                .as_str(),
            "https://example.org/org/rp/.well-known/openid-federation"
        );
        assert_eq!(
            fetch_url("https://ta.example.org/fetch", "https://rp.example.org")
                .unwrap()
                .as_str(),
            "https://ta.example.org/fetch?sub=https%3A%2F%2Frp.example.org"
        );
    }

    #[test]
    fn a_statement_verifies_only_with_its_type_and_the_issuers_key() {
        let key = Key::new("k1");
        let other = Key::new("k2");
        let claims = json!({
            "iss": "https://ta.example.org", "sub": "https://ta.example.org",
            "iat": 1000, "exp": 2000, "jwks": key.jwks(),
            "metadata": {"federation_entity": {"federation_fetch_endpoint": "https://ta.example.org/fetch"}}
        });
        let jwt = key.sign(ENTITY_STATEMENT_TYP, &claims);
        let st = EntityStatement::verify(&jwt, &key.jwks(), "of the anchor").unwrap();
        assert!(st.is_configuration());
        assert_eq!(st.fetch_endpoint(), Some("https://ta.example.org/fetch"));
        assert!(matches!(
            EntityStatement::verify(&jwt, &other.jwks(), "of the anchor"),
            Err(FederationError::Signature { .. })
        ));
        let untyped = key.sign("JWT", &claims);
        assert_eq!(
            EntityStatement::verify(&untyped, &key.jwks(), "x"),
            Err(FederationError::Type)
        );
        let unnamed = key.sign_without_kid(ENTITY_STATEMENT_TYP, &claims);
        assert!(matches!(
            EntityStatement::verify(&unnamed, &key.jwks(), "x"),
            Err(FederationError::Malformed(_))
        ));
        assert!(st.check_times(1500, 0).is_ok());
        assert!(matches!(
            st.check_times(2000, 0),
            Err(FederationError::Expired { .. })
        ));
        assert!(matches!(
            st.check_times(900, 0),
            Err(FederationError::NotYetValid { .. })
        ));
    }

    #[test]
    fn an_rs256_statement_verifies_with_its_rsa_key() {
        let claims = json!({
            "iss": "https://ta.example.org", "sub": "https://ta.example.org",
            "iat": 1000, "exp": 2000, "jwks": super::testing::rsa_jwks()
        });
        let jwt = super::testing::sign_rs256(ENTITY_STATEMENT_TYP, &claims);
        let st = EntityStatement::verify(&jwt, &super::testing::rsa_jwks(), "x").unwrap();
        assert_eq!(st.iss, "https://ta.example.org");
        assert!(matches!(
            EntityStatement::verify(&jwt, &Key::new("rsa").jwks(), "x"),
            Err(FederationError::Signature { .. })
        ));
    }

    #[test]
    fn a_statement_without_its_required_claims_or_with_unknown_critical_claims_is_refused() {
        let key = Key::new("k1");
        for claims in [
            json!({"iss": "https://a.example", "sub": "https://a.example", "iat": 1, "exp": 2}),
            json!({"iss": "https://a.example", "iat": 1, "exp": 2, "jwks": key.jwks()}),
            json!({"iss": "https://a.example", "sub": "https://a.example", "exp": 2, "jwks": key.jwks()}),
            json!({"iss": "https://a.example", "sub": "https://a.example", "iat": 1, "exp": 2,
                   "jwks": key.jwks(), "crit": ["jti"], "jti": "x"}),
        ] {
            let jwt = key.sign(ENTITY_STATEMENT_TYP, &claims);
            assert!(
                EntityStatement::verify(&jwt, &key.jwks(), "x").is_err(),
                "{claims}"
            );
        }
    }

    #[test]
    fn naming_constraints_match_hosts_and_subtrees() {
        // §6.2.2 and Figure 17.
        let n = NamingConstraints {
            permitted: vec![".example.com".into()],
            excluded: vec!["east.example.com".into()],
        };
        assert!(n.allows("https://rp.example.com"));
        assert!(n.allows("https://my.host.example.com/x"));
        assert!(!n.allows("https://example.com"));
        assert!(!n.allows("https://east.example.com"));
        assert!(!n.allows("https://rp.example.org"));
    }

    #[test]
    fn a_required_trust_mark_must_be_present_typed_signed_and_current() {
        let issuer = Key::new("tm");
        let mark = |typ: &str, claims: Value| {
            json!([{"trust_mark_type": "https://ta.example.org/tm/certified",
                    "trust_mark": issuer.sign(typ, &claims)}])
        };
        let good = json!({"iss": "https://tmi.example.org", "sub": "https://rp.example.org",
            "trust_mark_type": "https://ta.example.org/tm/certified", "iat": 1000, "exp": 2000});
        let jwks = issuer.jwks();
        let expected = ExpectedTrustMark {
            trust_mark_type: "https://ta.example.org/tm/certified",
            issuer: "https://tmi.example.org",
            issuer_jwks: &jwks,
            subject: "https://rp.example.org",
            now: 1500,
            leeway: 0,
        };
        let marks = mark(TRUST_MARK_TYP, good.clone());
        assert_eq!(
            check_trust_mark(marks.as_array().unwrap(), &expected),
            Ok(())
        );
        assert!(check_trust_mark(&[], &expected).is_err());
        let wrong_type = mark("JWT", good.clone());
        assert!(check_trust_mark(wrong_type.as_array().unwrap(), &expected).is_err());
        let expired = ExpectedTrustMark {
            now: 2001,
            ..expected
        };
        assert!(check_trust_mark(marks.as_array().unwrap(), &expired).is_err());
        let mut other_sub = good;
        other_sub["sub"] = json!("https://other.example.org");
        let marks = mark(TRUST_MARK_TYP, other_sub);
        assert!(check_trust_mark(marks.as_array().unwrap(), &expected).is_err());
    }
}

//! `[federation]`: OpenID Federation 1.0. Absent, the server is no
//! federation entity: it publishes no Entity Configuration and resolves no
//! client through a trust chain. Present, it needs the federation signing
//! key and at least one trust anchor.
//!
//! The federation key is read from a file, never generated or rotated with
//! the token-signing keys: its public half is what the server's superiors
//! publish about it in their subordinate statements, registered with them
//! out of band, so it changes only when the operator changes it there too.

use std::path::PathBuf;

use base64::Engine as _;
use ephemera_proto::federation::chain::TrustAnchor;
use ephemera_proto::federation::check_entity_id;
use p256::pkcs8::DecodePrivateKey as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{invalid, ConfigError};

/// `[federation]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFederation {
    /// PEM file of the federation signing key (PKCS#8, P-256).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<PathBuf>,
    /// The anchors whose chains are trusted, each with its keys.
    pub trust_anchors: Vec<RawKeyedEntity>,
    /// The server's own superiors, published in its Entity Configuration.
    pub authority_hints: Vec<String>,
    /// Trust marks every federation client must carry.
    pub required_trust_marks: Vec<RawTrustMark>,
    /// Seconds the server's Entity Configuration is valid after it is served.
    pub configuration_lifetime: i64,
    /// Subordinate statements followed at most from a client up to an anchor.
    pub max_chain_length: usize,
}

impl Default for RawFederation {
    fn default() -> Self {
        Self {
            signing_key: None,
            trust_anchors: Vec::new(),
            authority_hints: Vec::new(),
            required_trust_marks: Vec::new(),
            configuration_lifetime: 86_400,
            max_chain_length: 4,
        }
    }
}

/// An entity and its keys: `jwks` inline (a table, or JSON text), or
/// `jwks_file` (a JSON JWK Set).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawKeyedEntity {
    pub entity_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
}

/// A trust mark required of every federation client, with the keys of the
/// trust mark issuer that signs it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTrustMark {
    pub trust_mark_type: String,
    pub issuer: RawKeyedEntity,
}

/// `[federation]`, validated.
#[derive(Clone)]
pub struct FederationConfig {
    /// The server's entity identifier: its issuer.
    pub entity_id: String,
    pub signing_key: p256::ecdsa::SigningKey,
    pub trust_anchors: Vec<TrustAnchor>,
    pub authority_hints: Vec<String>,
    pub required_trust_marks: Vec<RequiredTrustMark>,
    pub configuration_lifetime: i64,
    pub max_chain_length: usize,
}

impl std::fmt::Debug for FederationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederationConfig")
            .field("entity_id", &self.entity_id)
            .field("signing_key", &"[redacted]")
            .field("trust_anchors", &self.trust_anchors)
            .field("authority_hints", &self.authority_hints)
            .finish_non_exhaustive()
    }
}

/// A trust mark every federation client must carry.
#[derive(Debug, Clone, PartialEq)]
pub struct RequiredTrustMark {
    pub trust_mark_type: String,
    pub issuer: String,
    pub issuer_jwks: Value,
}

/// Validates `[federation]` for a server whose issuer is `issuer`.
pub fn validate(raw: &RawFederation, issuer: &str) -> Result<FederationConfig, ConfigError> {
    if !issuer.starts_with("https://") {
        return Err(invalid(
            "federation",
            "needs an https issuer: the issuer is the server's entity identifier",
        ));
    }
    let Some(path) = &raw.signing_key else {
        return Err(invalid(
            "federation.signing_key",
            "is required: the PEM file of the federation key (PKCS#8 P-256, e.g. `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`)",
        ));
    };
    let signing_key = read_signing_key(path)?;
    if raw.trust_anchors.is_empty() {
        return Err(invalid(
            "federation.trust_anchors",
            "needs at least one trust anchor (entity_id and jwks or jwks_file)",
        ));
    }
    let trust_anchors = raw
        .trust_anchors
        .iter()
        .map(|a| {
            let (entity_id, jwks) = keyed("federation.trust_anchors", a)?;
            Ok(TrustAnchor { entity_id, jwks })
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    for hint in &raw.authority_hints {
        check_entity_id(hint).map_err(|e| invalid("federation.authority_hints", e.to_string()))?;
    }
    let required_trust_marks = raw
        .required_trust_marks
        .iter()
        .map(|m| {
            if m.trust_mark_type.is_empty() {
                return Err(invalid(
                    "federation.required_trust_marks",
                    "each needs its trust_mark_type",
                ));
            }
            let (issuer, issuer_jwks) = keyed("federation.required_trust_marks.issuer", &m.issuer)?;
            Ok(RequiredTrustMark {
                trust_mark_type: m.trust_mark_type.clone(),
                issuer,
                issuer_jwks,
            })
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    if !(60..=31_536_000).contains(&raw.configuration_lifetime) {
        return Err(invalid(
            "federation.configuration_lifetime",
            "must be 60 seconds to a year",
        ));
    }
    if !(1..=10).contains(&raw.max_chain_length) {
        return Err(invalid("federation.max_chain_length", "must be 1 to 10"));
    }
    Ok(FederationConfig {
        entity_id: issuer.to_owned(),
        signing_key,
        trust_anchors,
        authority_hints: raw.authority_hints.clone(),
        required_trust_marks,
        configuration_lifetime: raw.configuration_lifetime,
        max_chain_length: raw.max_chain_length,
    })
}

/// An entity identifier and its public keys, from `jwks` or `jwks_file`.
fn keyed(key: &'static str, raw: &RawKeyedEntity) -> Result<(String, Value), ConfigError> {
    check_entity_id(&raw.entity_id).map_err(|e| invalid(key, e.to_string()))?;
    let id = &raw.entity_id;
    let jwks = match (&raw.jwks, &raw.jwks_file) {
        (Some(Value::String(text)), None) => serde_json::from_str(text)
            .map_err(|e| invalid(key, format!("{id}: jwks is not JSON: {e}")))?,
        (Some(v), None) => v.clone(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid(key, format!("{id}: {}: {e}", path.display())))?;
            serde_json::from_str(&text)
                .map_err(|e| invalid(key, format!("{id}: {} is not JSON: {e}", path.display())))?
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                key,
                format!("{id}: give jwks or jwks_file, not both"),
            ))
        }
        (None, None) => return Err(invalid(key, format!("{id}: jwks or jwks_file is required"))),
    };
    ephemera_proto::assertion::parse_jwks(&jwks)
        .map_err(|e| invalid(key, format!("{id}: jwks: {e}")))?;
    Ok((raw.entity_id.clone(), jwks))
}

/// Reads a PKCS#8 PEM P-256 private key.
fn read_signing_key(path: &PathBuf) -> Result<p256::ecdsa::SigningKey, ConfigError> {
    let key = "federation.signing_key";
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            invalid(
                key,
                format!(
                    "{} holds no `BEGIN PRIVATE KEY` (PKCS#8) block",
                    path.display()
                ),
            )
        })?;
    p256::ecdsa::SigningKey::from_pkcs8_der(&der).map_err(|_| {
        invalid(
            key,
            format!("{} is not a PKCS#8 P-256 private key", path.display()),
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use p256::pkcs8::EncodePrivateKey as _;

    fn key_file(dir: &tempfile::TempDir) -> PathBuf {
        let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let pem = key.to_pkcs8_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem.as_bytes());
        let path = dir.path().join("fed.pem");
        std::fs::write(
            &path,
            format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"),
        )
        .unwrap();
        path
    }

    fn anchor_jwks() -> Value {
        let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let jwk: Value = serde_json::from_str(&key.public_key().to_jwk_string()).unwrap();
        serde_json::json!({ "keys": [jwk] })
    }

    fn raw(dir: &tempfile::TempDir) -> RawFederation {
        RawFederation {
            signing_key: Some(key_file(dir)),
            trust_anchors: vec![RawKeyedEntity {
                entity_id: "https://ta.example.org".into(),
                jwks: Some(Value::String(anchor_jwks().to_string())),
                jwks_file: None,
            }],
            ..RawFederation::default()
        }
    }

    fn error(r: Result<FederationConfig, ConfigError>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_federation_needs_an_https_issuer_a_key_and_an_anchor_with_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ok = validate(&raw(&dir), "https://as.example.org").unwrap();
        assert_eq!(ok.entity_id, "https://as.example.org");
        assert!(error(validate(&raw(&dir), "http://127.0.0.1:8080")).contains("https issuer"));
        let no_key = RawFederation {
            signing_key: None,
            ..raw(&dir)
        };
        assert!(
            error(validate(&no_key, "https://as.example.org")).contains("federation.signing_key")
        );
        let no_anchor = RawFederation {
            trust_anchors: Vec::new(),
            ..raw(&dir)
        };
        assert!(error(validate(&no_anchor, "https://as.example.org"))
            .contains("federation.trust_anchors"));
        let mut keyless = raw(&dir);
        keyless.trust_anchors[0].jwks = None;
        assert!(error(validate(&keyless, "https://as.example.org"))
            .contains("jwks or jwks_file is required"));
        let mut bad_id = raw(&dir);
        bad_id.trust_anchors[0].entity_id = "http://ta.example.org".into();
        assert!(error(validate(&bad_id, "https://as.example.org")).contains("entity identifier"));
        let bad_pem = dir.path().join("bad.pem");
        std::fs::write(&bad_pem, "not a key").unwrap();
        let bad = RawFederation {
            signing_key: Some(bad_pem),
            ..raw(&dir)
        };
        assert!(error(validate(&bad, "https://as.example.org")).contains("PKCS#8"));
    }
}

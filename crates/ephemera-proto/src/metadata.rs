//! RFC 7591 client metadata, as a pushed client sends it in `client_registration`.
//!
//! Parsing checks syntax and internal consistency only; what a deployment
//! accepts (auth methods, redirect forms, scopes) is the server's policy.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use url::Url;

use crate::redirect::{RedirectUri, RedirectUriError};
use crate::scope::Scope;

/// Why client metadata was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The value is not JSON, or not a JSON object.
    #[error("client_registration must be a JSON object")]
    NotAnObject,
    /// A redirect URI is malformed (`invalid_redirect_uri` at DCR).
    #[error("redirect_uris[{index}]: {source}")]
    RedirectUri {
        index: usize,
        source: RedirectUriError,
    },
    /// Any other field is malformed or inconsistent (`invalid_client_metadata`).
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> MetadataError {
    MetadataError::Invalid(msg.into())
}

/// The client authentication methods of the IANA registry that Ephemera knows.
pub const KNOWN_AUTH_METHODS: &[&str] = &[
    "none",
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
];

/// Grant types a client may register for.
pub const KNOWN_GRANT_TYPES: &[&str] =
    &["authorization_code", "refresh_token", "client_credentials"];

/// Size limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct MetadataLimits {
    pub max_redirect_uris: usize,
    pub max_string_len: usize,
    pub max_contacts: usize,
}

impl Default for MetadataLimits {
    fn default() -> Self {
        Self {
            max_redirect_uris: 10,
            max_string_len: 1000,
            max_contacts: 10,
        }
    }
}

/// Validated client metadata. Unknown fields are dropped, as RFC 7591 §2 says
/// the server must ignore metadata it does not understand.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<RedirectUri>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub contacts: Vec<String>,
    pub scope: Option<Scope>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    /// RFC 9449 §5.2: the client always uses DPoP-bound access tokens.
    pub dpop_bound_access_tokens: Option<bool>,
    /// RFC 8705 §3.4: the client always uses certificate-bound access tokens.
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// Human-readable fields with a language tag (`client_name#fr`), RFC 7591 §2.2.
    pub localized: BTreeMap<String, String>,
}

const URL_FIELDS: &[&str] = &[
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "jwks_uri",
];
const LOCALIZABLE: &[&str] = &[
    "client_name",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
];

impl ClientMetadata {
    /// Parses the JSON text of a `client_registration` parameter.
    pub fn parse_json(text: &str, limits: &MetadataLimits) -> Result<Self, MetadataError> {
        if crate::json::too_deep(text.as_bytes(), crate::json::MAX_DEPTH) {
            return Err(invalid(format!(
                "the client metadata nests arrays or objects deeper than {} levels",
                crate::json::MAX_DEPTH
            )));
        }
        let value: Value = serde_json::from_str(text).map_err(|_| MetadataError::NotAnObject)?;
        match value {
            Value::Object(map) => Self::from_object(&map, limits),
            _ => Err(MetadataError::NotAnObject),
        }
    }

    /// Validates a JSON object of client metadata.
    pub fn from_object(
        map: &Map<String, Value>,
        limits: &MetadataLimits,
    ) -> Result<Self, MetadataError> {
        let mut md = ClientMetadata::default();
        // An empty string for an optional field means the field is absent:
        // real clients send `"scope": ""` and `"client_uri": ""`.
        let string = |name: &str| -> Result<Option<String>, MetadataError> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) if s.chars().count() > limits.max_string_len => {
                    Err(invalid(format!(
                        "{name} is longer than {} characters",
                        limits.max_string_len
                    )))
                }
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid(format!("{name} must be a string"))),
            }
        };
        let string_array = |name: &str, max: usize| -> Result<Option<Vec<String>>, MetadataError> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => {
                    if items.len() > max {
                        return Err(invalid(format!("{name} has more than {max} entries")));
                    }
                    items
                        .iter()
                        .map(|v| match v {
                            Value::String(s) if s.chars().count() <= limits.max_string_len => {
                                Ok(s.clone())
                            }
                            Value::String(_) => {
                                Err(invalid(format!("an entry of {name} is too long")))
                            }
                            _ => Err(invalid(format!("{name} must be an array of strings"))),
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(Some)
                }
                Some(_) => Err(invalid(format!("{name} must be an array of strings"))),
            }
        };

        if let Some(uris) = string_array("redirect_uris", limits.max_redirect_uris)? {
            for (index, raw) in uris.iter().enumerate() {
                let uri = RedirectUri::parse(raw)
                    .map_err(|source| MetadataError::RedirectUri { index, source })?;
                md.redirect_uris.push(uri);
            }
        }

        md.token_endpoint_auth_method = string("token_endpoint_auth_method")?;
        if let Some(m) = &md.token_endpoint_auth_method {
            if !KNOWN_AUTH_METHODS.contains(&m.as_str()) {
                return Err(invalid(format!(
                    "token_endpoint_auth_method `{m}` is not a known method"
                )));
            }
        }

        // Grant types this server does not serve (a JWT bearer grant, say)
        // are left out, as unknown fields are: the client gets what it may
        // use. A list naming none of them is refused.
        md.grant_types = match string_array("grant_types", 8)? {
            None => None,
            Some(listed) => {
                let mut known: Vec<String> = Vec::new();
                for g in &listed {
                    if KNOWN_GRANT_TYPES.contains(&g.as_str()) && !known.contains(g) {
                        known.push(g.clone());
                    }
                }
                if known.is_empty() && !listed.is_empty() {
                    return Err(invalid(format!(
                        "none of grant_types ({}) is supported here: use {}",
                        listed.join(", "),
                        KNOWN_GRANT_TYPES.join(", ")
                    )));
                }
                Some(known)
            }
        };
        md.response_types = string_array("response_types", 8)?;
        if let Some(types) = &md.response_types {
            if let Some(t) = types.iter().find(|t| t.as_str() != "code") {
                return Err(invalid(format!(
                    "response type `{t}` is not supported (only `code`)"
                )));
            }
        }
        // RFC 7591 §2.1: grant_types and response_types must agree.
        let grants_code = md
            .grant_types
            .as_ref()
            .is_none_or(|g| g.iter().any(|g| g == "authorization_code"));
        let responds_code = md.response_types.as_ref().is_none_or(|t| !t.is_empty());
        if grants_code != responds_code {
            return Err(invalid(
                "grant_types and response_types disagree: authorization_code goes with response type code",
            ));
        }

        md.client_name = string("client_name")?;
        for field in URL_FIELDS {
            let value = string(field)?;
            if let Some(v) = &value {
                check_web_url(field, v)?;
            }
            match *field {
                "client_uri" => md.client_uri = value,
                "logo_uri" => md.logo_uri = value,
                "tos_uri" => md.tos_uri = value,
                "policy_uri" => md.policy_uri = value,
                _ => md.jwks_uri = value,
            }
        }
        md.contacts = string_array("contacts", limits.max_contacts)?.unwrap_or_default();
        md.scope = match string("scope")? {
            Some(s) => Some(Scope::parse(&s).map_err(|e| invalid(e.to_string()))?),
            None => None,
        };
        let boolean = |name: &str| -> Result<Option<bool>, MetadataError> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(_) => Err(invalid(format!("{name} must be true or false"))),
            }
        };
        md.dpop_bound_access_tokens = boolean("dpop_bound_access_tokens")?;
        md.tls_client_certificate_bound_access_tokens =
            boolean("tls_client_certificate_bound_access_tokens")?;
        md.software_id = string("software_id")?;
        md.software_version = string("software_version")?;
        md.jwks = match map.get("jwks") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(o)) if matches!(o.get("keys"), Some(Value::Array(_))) => {
                Some(v.clone())
            }
            Some(_) => {
                return Err(invalid(
                    "jwks must be a JSON Web Key Set: an object with a `keys` array",
                ))
            }
        };
        if md.jwks.is_some() && md.jwks_uri.is_some() {
            return Err(invalid(
                "jwks and jwks_uri must not both be present (RFC 7591 §2)",
            ));
        }

        for (key, value) in map {
            let Some((base, tag)) = key.split_once('#') else {
                continue;
            };
            if !LOCALIZABLE.contains(&base) || tag.is_empty() || tag.len() > 35 {
                continue;
            }
            let Value::String(s) = value else {
                return Err(invalid(format!("{key} must be a string")));
            };
            if s.chars().count() > limits.max_string_len {
                return Err(invalid(format!("{key} is too long")));
            }
            if base != "client_name" {
                check_web_url(key, s)?;
            }
            md.localized.insert(key.clone(), s.clone());
        }
        Ok(md)
    }

    /// The grant types in force: RFC 7591 §2 defaults to `authorization_code`.
    pub fn effective_grant_types(&self) -> Vec<String> {
        self.grant_types
            .clone()
            .unwrap_or_else(|| vec!["authorization_code".to_owned()])
    }

    /// The metadata as a JSON object, only the fields that were set.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.redirect_uris.is_empty() {
            m.insert(
                "redirect_uris".into(),
                self.redirect_uris
                    .iter()
                    .map(|r| Value::from(r.as_str()))
                    .collect(),
            );
        }
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.insert(k.into(), Value::from(v.as_str()));
            }
        };
        put(
            "token_endpoint_auth_method",
            &self.token_endpoint_auth_method,
        );
        put("client_name", &self.client_name);
        put("client_uri", &self.client_uri);
        put("logo_uri", &self.logo_uri);
        put("tos_uri", &self.tos_uri);
        put("policy_uri", &self.policy_uri);
        put("software_id", &self.software_id);
        put("software_version", &self.software_version);
        put("jwks_uri", &self.jwks_uri);
        if let Some(g) = &self.grant_types {
            m.insert(
                "grant_types".into(),
                g.iter().map(|s| Value::from(s.as_str())).collect(),
            );
        }
        if let Some(t) = &self.response_types {
            m.insert(
                "response_types".into(),
                t.iter().map(|s| Value::from(s.as_str())).collect(),
            );
        }
        if !self.contacts.is_empty() {
            m.insert(
                "contacts".into(),
                self.contacts
                    .iter()
                    .map(|s| Value::from(s.as_str()))
                    .collect(),
            );
        }
        if let Some(s) = &self.scope {
            m.insert("scope".into(), Value::from(s.to_string()));
        }
        if let Some(j) = &self.jwks {
            m.insert("jwks".into(), j.clone());
        }
        if let Some(b) = self.dpop_bound_access_tokens {
            m.insert("dpop_bound_access_tokens".into(), Value::from(b));
        }
        if let Some(b) = self.tls_client_certificate_bound_access_tokens {
            m.insert(
                "tls_client_certificate_bound_access_tokens".into(),
                Value::from(b),
            );
        }
        for (k, v) in &self.localized {
            m.insert(k.clone(), Value::from(v.as_str()));
        }
        Value::Object(m)
    }
}

/// Informational URLs must be http(s) URLs: anything else (`javascript:`,
/// `data:`) could run code where a page links to them.
fn check_web_url(field: &str, value: &str) -> Result<(), MetadataError> {
    match Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Ok(()),
        _ => Err(invalid(format!("{field} must be an http or https URL"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ClientMetadata, MetadataError> {
        ClientMetadata::parse_json(s, &MetadataLimits::default())
    }

    #[test]
    fn a_typical_registration_parses_and_round_trips() {
        let md = parse(
            r#"{"client_name":"Agent","redirect_uris":["http://127.0.0.1:9/cb"],
                "token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],
                "client_name#fr":"Agent FR","unknown":1}"#,
        );
        let Ok(md) = md else { unreachable!("{md:?}") };
        assert_eq!(md.client_name.as_deref(), Some("Agent"));
        let json = md.to_json();
        assert_eq!(json["client_name#fr"], "Agent FR");
        assert!(json.get("unknown").is_none());
        assert_eq!(json["redirect_uris"][0], "http://127.0.0.1:9/cb");
    }

    #[test]
    fn non_objects_are_refused() {
        assert_eq!(parse("[]"), Err(MetadataError::NotAnObject));
        assert_eq!(parse("\"x\""), Err(MetadataError::NotAnObject));
        assert_eq!(parse("{"), Err(MetadataError::NotAnObject));
    }

    #[test]
    fn bad_fields_are_refused() {
        assert!(matches!(
            parse(r#"{"client_name":5}"#),
            Err(MetadataError::Invalid(_))
        ));
        assert!(matches!(
            parse(r#"{"token_endpoint_auth_method":"magic"}"#),
            Err(MetadataError::Invalid(_))
        ));
        assert!(matches!(
            parse(r#"{"logo_uri":"javascript:alert(1)"}"#),
            Err(MetadataError::Invalid(_))
        ));
        assert!(matches!(
            parse(r#"{"grant_types":["implicit"]}"#),
            Err(MetadataError::Invalid(_))
        ));
        assert!(matches!(
            parse(r#"{"response_types":["token"]}"#),
            Err(MetadataError::Invalid(_))
        ));
        assert!(matches!(
            parse(r#"{"redirect_uris":["https://a.example/#f"]}"#),
            Err(MetadataError::RedirectUri { index: 0, .. })
        ));
        assert!(matches!(
            parse(r#"{"jwks":[1]}"#),
            Err(MetadataError::Invalid(_))
        ));
    }

    #[test]
    fn an_empty_string_means_the_field_is_absent_and_unknown_fields_are_dropped() {
        let parsed = parse(
            r#"{"scope":"","client_uri":"","client_name":"","token_endpoint_auth_method":"",
                "application_type":"native","code_challenge_methods_used":["S256"]}"#,
        );
        let Ok(md) = parsed else {
            return assert!(parsed.is_ok(), "{parsed:?}");
        };
        assert_eq!(md.scope, None);
        assert_eq!(md.client_uri, None);
        assert_eq!(md.client_name, None);
        assert_eq!(md.token_endpoint_auth_method, None);
        assert_eq!(md.to_json(), serde_json::json!({}));
    }

    #[test]
    fn grant_types_this_server_does_not_serve_are_left_out() {
        let parsed = parse(
            r#"{"grant_types":["authorization_code","urn:ietf:params:oauth:grant-type:jwt-bearer","refresh_token","refresh_token"]}"#,
        );
        let Ok(md) = parsed else {
            return assert!(parsed.is_ok(), "{parsed:?}");
        };
        assert_eq!(
            md.grant_types.as_deref(),
            Some(&["authorization_code".to_owned(), "refresh_token".to_owned()][..])
        );
    }

    #[test]
    fn inconsistent_grant_and_response_types_are_refused() {
        assert!(matches!(
            parse(r#"{"grant_types":["client_credentials"],"response_types":["code"]}"#),
            Err(MetadataError::Invalid(_))
        ));
    }

    #[test]
    fn long_names_are_refused() {
        let long = "x".repeat(1001);
        assert!(matches!(
            parse(&format!(r#"{{"client_name":"{long}"}}"#)),
            Err(MetadataError::Invalid(_))
        ));
    }
}

//! `resources`: the resource registry (RFC 8707 resource indicators with
//! what each accepts and the tokens it gets), raw then validated into
//! [`ResourcePolicy`] entries.
//!
//! Each entry is either a bare identifier, the form `resources` took before
//! the registry (`resources = ["https://api.example/"]`), or a table:
//!
//! ```toml
//! [[resources]]
//! identifier = "https://api.example/"
//! scopes = ["read", "write"]
//! token_format = "jwt"
//! access_token_lifetime = 600
//! # token exchange (RFC 8693) toward it: `true` for every registered client
//! # with the grant type, or a table narrowing who and from what
//! exchange = { clients = ["mcp-server"], from = ["https://mcp.example/mcp"] }
//! ```

use std::fmt;

use ephemera_proto::resource::ResourceIndicator;
use ephemera_proto::scope::Scope;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::{invalid, ConfigError};
use crate::policy::{ExchangePolicy, Lifetimes, ResourcePolicy, TokenFormat};

/// The longest access token lifetime a resource may set: a JWT access token
/// cannot be recalled from a resource that validates it locally, so it
/// should not live for long (RFC 9068 §6 leaves it to the deployment).
pub const MAX_ACCESS_TOKEN_LIFETIME: i64 = 24 * 3600;

/// One `resources` entry as written by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RawResource {
    /// The identifier alone: every scope, opaque tokens, the default
    /// lifetime.
    Identifier(String),
    Entry(RawResourceEntry),
}

impl From<&str> for RawResource {
    fn from(identifier: &str) -> Self {
        Self::Identifier(identifier.to_owned())
    }
}

impl From<RawResourceEntry> for RawResource {
    fn from(entry: RawResourceEntry) -> Self {
        Self::Entry(entry)
    }
}

/// A `resources` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResourceEntry {
    pub identifier: String,
    /// The scopes the resource accepts; absent: every scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// `opaque` (the default) or `jwt` (RFC 9068).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_format: Option<String>,
    /// Seconds; absent: `lifetimes.access_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_lifetime: Option<i64>,
    /// Whether token exchange (RFC 8693) may target it, and for whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<RawExchange>,
}

/// A resource's `exchange`: `true`/`false`, or a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RawExchange {
    Enabled(bool),
    Policy(RawExchangePolicy),
}

/// An `exchange` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExchangePolicy {
    /// The client ids that may exchange toward the resource; absent: every
    /// registered client with the token exchange grant type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<Vec<String>>,
    /// The resources a subject token must be for; absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<String>>,
    /// Clients whose exchanges without an `actor_token` are impersonation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub impersonation: Vec<String>,
}

// A boolean or a table, told apart by type, so a table's own errors (an
// unknown key) are reported as such.
impl<'de> Deserialize<'de> for RawExchange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;

        impl<'de> Visitor<'de> for Either {
            type Value = RawExchange;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, or a table with `clients`, `from`, `impersonation`")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawExchange::Enabled(v))
            }

            // The environment form gives `true` as a string.
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "true" => Ok(RawExchange::Enabled(true)),
                    "false" => Ok(RawExchange::Enabled(false)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawExchangePolicy::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawExchange::Policy)
            }
        }

        deserializer.deserialize_any(Either)
    }
}

// A string or a table: the two forms are told apart by their type, and a
// table's errors (an unknown key, a missing identifier) are its own rather
// than "did not match any variant".
impl<'de> Deserialize<'de> for RawResource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;

        impl<'de> Visitor<'de> for Either {
            type Value = RawResource;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a resource identifier or a table with `identifier`")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawResource::Identifier(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawResourceEntry::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawResource::Entry)
            }
        }

        deserializer.deserialize_any(Either)
    }
}

/// The registry, validated: identifiers are resource indicators, listed
/// once; scopes exist; formats and lifetimes are known and bounded.
pub fn validate(
    raw: &[RawResource],
    supported: &Scope,
    lifetimes: &Lifetimes,
) -> Result<Vec<ResourcePolicy>, ConfigError> {
    let mut registry: Vec<ResourcePolicy> = Vec::with_capacity(raw.len());
    for item in raw {
        let entry = match item {
            RawResource::Identifier(id) => RawResourceEntry {
                identifier: id.clone(),
                ..RawResourceEntry::default()
            },
            RawResource::Entry(e) => e.clone(),
        };
        let id = &entry.identifier;
        ResourceIndicator::parse(id).map_err(|e| invalid("resources", format!("`{id}`: {e}")))?;
        if registry.iter().any(|r| r.identifier == *id) {
            return Err(invalid(
                "resources",
                format!("`{id}` is listed twice; each resource has one entry"),
            ));
        }
        let scopes = match &entry.scopes {
            None => None,
            Some(list) => {
                let scope = Scope::from_tokens(list.iter().cloned())
                    .map_err(|e| invalid("resources", format!("`{id}`: scopes: {e}")))?;
                if let Some(unknown) = scope.difference(supported).next() {
                    return Err(invalid(
                        "resources",
                        format!("`{id}`: scope `{unknown}` is not in scopes.supported"),
                    ));
                }
                Some(scope)
            }
        };
        let format = match entry.token_format.as_deref() {
            None => TokenFormat::Opaque,
            Some(name) => TokenFormat::parse(name).ok_or_else(|| {
                invalid(
                    "resources",
                    format!("`{id}`: token_format `{name}` is not `opaque` or `jwt`"),
                )
            })?,
        };
        let access_token_lifetime = match entry.access_token_lifetime {
            None => lifetimes.access_token,
            Some(s) if (1..=MAX_ACCESS_TOKEN_LIFETIME).contains(&s) => s,
            Some(_) => {
                return Err(invalid(
                    "resources",
                    format!(
                        "`{id}`: access_token_lifetime must be 1 to {MAX_ACCESS_TOKEN_LIFETIME} seconds"
                    ),
                ))
            }
        };
        registry.push(ResourcePolicy {
            identifier: id.clone(),
            scopes,
            format,
            access_token_lifetime,
            exchange: exchange(id, entry.exchange)?,
        });
    }
    // `from` names resources of the registry: a typo would otherwise
    // refuse every exchange without saying why.
    for entry in &registry {
        let from = entry.exchange.as_ref().and_then(|e| e.from.as_ref());
        if let Some(unknown) = from
            .into_iter()
            .flatten()
            .find(|f| !registry.iter().any(|r| r.identifier == **f))
        {
            return Err(invalid(
                "resources",
                format!(
                    "`{}`: exchange.from names `{unknown}`, which is not in the registry",
                    entry.identifier
                ),
            ));
        }
    }
    Ok(registry)
}

/// A resource's exchange policy, checked: `impersonation` only among the
/// `clients` it names.
fn exchange(id: &str, raw: Option<RawExchange>) -> Result<Option<ExchangePolicy>, ConfigError> {
    let raw = match raw {
        None | Some(RawExchange::Enabled(false)) => return Ok(None),
        Some(RawExchange::Enabled(true)) => RawExchangePolicy::default(),
        Some(RawExchange::Policy(p)) => p,
    };
    if let Some(empty) = [("clients", &raw.clients), ("from", &raw.from)]
        .into_iter()
        .find(|(_, list)| list.as_ref().is_some_and(Vec::is_empty))
    {
        return Err(invalid(
            "resources",
            format!(
                "`{id}`: exchange.{} is empty, which admits nothing; set `exchange = false` instead",
                empty.0
            ),
        ));
    }
    if let (Some(clients), Some(outsider)) = (
        &raw.clients,
        raw.impersonation
            .iter()
            .find(|c| raw.clients.as_ref().is_some_and(|l| !l.contains(c))),
    ) {
        return Err(invalid(
            "resources",
            format!(
                "`{id}`: exchange.impersonation names `{outsider}`, which is not in exchange.clients ({})",
                clients.join(", ")
            ),
        ));
    }
    Ok(Some(ExchangePolicy {
        clients: raw.clients,
        from: raw.from,
        impersonation: raw.impersonation,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::{Format as _, Toml};
    use figment::Figment;

    #[derive(Debug, Deserialize)]
    struct Only {
        resources: Vec<RawResource>,
    }

    fn read(toml: &str) -> Result<Vec<RawResource>, String> {
        Figment::from(Toml::string(toml))
            .extract::<Only>()
            .map(|o| o.resources)
            .map_err(|e| e.to_string())
    }

    fn check(raw: &[RawResource]) -> Result<Vec<ResourcePolicy>, ConfigError> {
        let supported = Scope::parse("read write").unwrap_or_default();
        validate(raw, &supported, &Lifetimes::default())
    }

    #[test]
    fn the_old_flat_list_still_reads_as_opaque_resources_with_every_scope() {
        let raw = read(r#"resources = ["https://api.example/", "https://files.example/"]"#);
        let registry = check(&raw.unwrap_or_default()).unwrap_or_default();
        assert_eq!(registry.len(), 2);
        assert_eq!(
            registry.first(),
            Some(&ResourcePolicy::plain(
                "https://api.example/".into(),
                &Lifetimes::default()
            ))
        );
    }

    #[test]
    fn tables_and_bare_identifiers_mix() {
        let raw = read(
            r#"
            resources = [
                "https://files.example/",
                { identifier = "https://api.example/", scopes = ["read"], token_format = "jwt", access_token_lifetime = 300, exchange = true },
            ]
            "#,
        )
        .unwrap_or_default();
        let registry = check(&raw).unwrap_or_default();
        let api = registry
            .iter()
            .find(|r| r.identifier == "https://api.example/");
        assert_eq!(
            api,
            Some(&ResourcePolicy {
                identifier: "https://api.example/".into(),
                scopes: Scope::parse("read").ok(),
                format: TokenFormat::Jwt,
                access_token_lifetime: 300,
                exchange: Some(ExchangePolicy::default()),
            })
        );
    }

    #[test]
    fn an_array_of_tables_reads_too() {
        let raw = read(
            r#"
            [[resources]]
            identifier = "https://api.example/"
            token_format = "jwt"
            "#,
        )
        .unwrap_or_default();
        let registry = check(&raw).unwrap_or_default();
        assert_eq!(
            registry
                .first()
                .map(|r| (r.format, r.access_token_lifetime)),
            Some((TokenFormat::Jwt, Lifetimes::default().access_token))
        );
    }

    #[test]
    fn the_environment_variable_takes_both_forms_inline() {
        // `EPHEMERA_RESOURCES` is read by figment as an inline value.
        for (text, format) in [
            ("[https://api.example/]", TokenFormat::Opaque),
            (
                r#"[{identifier="https://api.example/", token_format=jwt, scopes=[read]}]"#,
                TokenFormat::Jwt,
            ),
        ] {
            let value: figment::value::Value = text
                .parse()
                .unwrap_or_else(|e: std::convert::Infallible| match e {});
            let raw = Figment::from(figment::providers::Serialized::default("resources", value))
                .extract::<Only>()
                .map(|o| o.resources)
                .unwrap_or_default();
            let registry = check(&raw).unwrap_or_default();
            assert_eq!(
                registry.first().map(|r| (r.identifier.as_str(), r.format)),
                Some(("https://api.example/", format)),
                "{text}"
            );
        }
    }

    #[test]
    fn an_exchange_table_names_clients_sources_and_impersonators() {
        let raw = read(
            r#"
            resources = [
                "https://mcp.example/mcp",
                { identifier = "https://api.example/", exchange = { clients = ["mcp", "gateway"], from = ["https://mcp.example/mcp"], impersonation = ["gateway"] } },
                { identifier = "https://off.example/", exchange = false },
            ]
            "#,
        )
        .unwrap_or_default();
        let registry = check(&raw).unwrap_or_default();
        let policy = registry.get(1).and_then(|r| r.exchange.clone());
        assert_eq!(
            policy,
            Some(ExchangePolicy {
                clients: Some(vec!["mcp".into(), "gateway".into()]),
                from: Some(vec!["https://mcp.example/mcp".into()]),
                impersonation: vec!["gateway".into()],
            })
        );
        assert_eq!(registry.get(2).map(|r| r.exchange.is_none()), Some(true));
        assert_eq!(registry.first().map(|r| r.exchange.is_none()), Some(true));
    }

    #[test]
    fn a_bad_exchange_policy_is_refused_with_the_resource_named() {
        for (toml, expected) in [
            (
                r#"resources = [{ identifier = "https://api.example/", exchange = { from = ["https://nowhere.example/"] } }]"#,
                "exchange.from names `https://nowhere.example/`",
            ),
            (
                r#"resources = [{ identifier = "https://api.example/", exchange = { clients = ["a"], impersonation = ["b"] } }]"#,
                "exchange.impersonation names `b`",
            ),
            (
                r#"resources = [{ identifier = "https://api.example/", exchange = { clients = [] } }]"#,
                "exchange.clients is empty",
            ),
        ] {
            let raw = read(toml).unwrap_or_default();
            let message = check(&raw).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.contains("`https://api.example/`") && message.contains(expected),
                "{toml}: {message}"
            );
        }
        let error = read(r#"resources = [{ identifier = "https://api.example/", exchange = { client = ["a"] } }]"#)
            .err()
            .unwrap_or_default();
        assert!(error.contains("client"), "{error}");
    }

    #[test]
    fn an_unknown_key_in_a_table_is_named() {
        let error =
            read(r#"resources = [{ identifier = "https://api.example/", format = "jwt" }]"#)
                .err()
                .unwrap_or_default();
        assert!(error.contains("format"), "{error}");
    }

    #[test]
    fn bad_entries_are_refused_with_the_resource_named() {
        let entry = |f: fn(&mut RawResourceEntry)| {
            let mut e = RawResourceEntry {
                identifier: "https://api.example/".into(),
                ..RawResourceEntry::default()
            };
            f(&mut e);
            vec![RawResource::Entry(e)]
        };
        let cases: Vec<(Vec<RawResource>, &str)> = vec![
            (vec!["api".into()], "RFC 8707"),
            (
                vec!["https://a.example/".into(), "https://a.example/".into()],
                "listed twice",
            ),
            (
                entry(|e| e.scopes = Some(vec!["admin".into()])),
                "scope `admin` is not in scopes.supported",
            ),
            (
                entry(|e| e.token_format = Some("JWT".into())),
                "`opaque` or `jwt`",
            ),
            (
                entry(|e| e.access_token_lifetime = Some(0)),
                "access_token_lifetime",
            ),
            (
                entry(|e| e.access_token_lifetime = Some(MAX_ACCESS_TOKEN_LIFETIME + 1)),
                "access_token_lifetime",
            ),
        ];
        for (raw, expected) in cases {
            let message = check(&raw).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.contains("`resources`") && message.contains(expected),
                "{raw:?}: {message}"
            );
        }
    }
}

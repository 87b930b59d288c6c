//! `[spiffe.<name>]`: the SPIFFE trust domains whose workloads are clients
//! here, authenticating with their SVIDs (draft-ietf-oauth-spiffe-client-auth):
//! the trust domain, where its bundle comes from (a file, or its bundle
//! endpoint; never one a client points to), and rules saying which SPIFFE
//! IDs may use which grants, scopes and resources. Raw, then validated into
//! [`TrustDomains`] beside `[trusted_issuers.<name>]`.
//!
//! The bundle as last read lives with its source ([`BundleCache`]): the
//! service reads it again when it is stale or lacks a key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ephemera_proto::scope::Scope;
use ephemera_proto::spiffe::{self, Bundle, SpiffeId};
use serde::{Deserialize, Serialize};
use url::Url;

use super::trusted_issuers::SubjectPattern;
use super::upstream::{is_name, web_url};
use super::{invalid, ConfigError};
use crate::model::Timestamp;
use crate::policy::ResourcePolicy;

/// The default `max_lifetime` of a JWT-SVID: SPIRE's default JWT-SVID
/// lifetime is 5 minutes; a little more allows for other issuers.
const DEFAULT_MAX_LIFETIME: i64 = 900;

/// The grant types a rule may open to workloads.
pub const GRANTS: &[&str] = &[
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
];

/// One `[spiffe.<name>]` table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTrustDomain {
    /// The trust domain's name (`example.org`): the host of its SPIFFE IDs.
    pub trust_domain: String,
    /// A file holding the trust bundle (a SPIFFE bundle JWK Set), read at
    /// start-up and again when a JWT-SVID names a key it lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_file: Option<PathBuf>,
    /// The trust domain's bundle endpoint (https), fetched when first
    /// needed and again after its `spiffe_refresh_hint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_endpoint: Option<String>,
    /// The longest a JWT-SVID may live, in seconds (60 to 3600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<i64>,
    /// Which SPIFFE IDs get which grants; the first rule matching an ID
    /// applies.
    pub rules: Vec<RawRule>,
}

/// One `[[spiffe.<name>.rules]]` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRule {
    /// SPIFFE IDs of the trust domain, exact or ending in `*`.
    pub ids: Vec<String>,
    /// Grant types among [`GRANTS`].
    pub grants: Vec<String>,
    /// The scopes these workloads may be granted at most (default: every
    /// configured scope).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// The resources they may get tokens for (default: any the server serves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<String>>,
}

/// Every configured trust domain, in the order of their names.
#[derive(Debug, Clone, Default)]
pub struct TrustDomains {
    pub domains: Vec<TrustDomain>,
}

impl TrustDomains {
    /// The configured trust domain named `name` (`example.org`).
    pub fn find(&self, name: &str) -> Option<&TrustDomain> {
        self.domains.iter().find(|d| d.trust_domain == name)
    }

    pub fn any(&self) -> bool {
        !self.domains.is_empty()
    }
}

/// A trust domain, validated.
#[derive(Debug, Clone)]
pub struct TrustDomain {
    /// `[a-z0-9_-]{1,32}`: in logs, replay keys and workloads' metadata.
    pub name: String,
    pub trust_domain: String,
    pub source: BundleSource,
    pub max_lifetime: i64,
    pub rules: Vec<Rule>,
    /// The bundle as last read.
    pub bundle: Arc<BundleCache>,
}

impl TrustDomain {
    /// The first rule that admits `id`.
    pub fn rule_for(&self, id: &SpiffeId) -> Option<&Rule> {
        self.rules.iter().find(|r| r.admits(id.as_str()))
    }
}

/// Where a trust domain's bundle comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleSource {
    File(PathBuf),
    Endpoint(Url),
}

/// Which SPIFFE IDs may use which grants, scopes and resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub ids: Vec<SubjectPattern>,
    pub grants: Vec<String>,
    /// `None`: every scope a workload may have.
    pub scopes: Option<Scope>,
    /// `None`: every resource served here.
    pub resources: Option<Vec<String>>,
}

impl Rule {
    pub fn admits(&self, id: &str) -> bool {
        self.ids.iter().any(|p| match p {
            SubjectPattern::Exact(s) => s == id,
            SubjectPattern::Prefix(p) => id.starts_with(p.as_str()),
        })
    }
}

/// A trust domain's bundle as last read, with when.
#[derive(Debug, Default)]
pub struct BundleCache {
    state: Mutex<Option<Loaded>>,
}

/// A bundle and when it was read (by the server's clock; 0: at start-up).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub bundle: Arc<Bundle>,
    pub at: Timestamp,
}

impl BundleCache {
    fn with(bundle: Bundle) -> Self {
        Self {
            state: Mutex::new(Some(Loaded {
                bundle: Arc::new(bundle),
                at: 0,
            })),
        }
    }

    /// The bundle as last read, if any.
    pub fn current(&self) -> Option<Loaded> {
        self.state.lock().ok().and_then(|s| s.clone())
    }

    /// Keeps `bundle`, read now; an older one (a lower `spiffe_sequence`
    /// than the one kept) only counts as read, so a stale copy served by
    /// one replica never rolls the keys back.
    pub fn store(&self, bundle: Bundle, now: Timestamp) -> Arc<Bundle> {
        let Ok(mut state) = self.state.lock() else {
            return Arc::new(bundle);
        };
        let older = state.as_ref().is_some_and(
            |kept| matches!((kept.bundle.sequence, bundle.sequence), (Some(k), Some(n)) if n < k),
        );
        let bundle = match (&*state, older) {
            (Some(kept), true) => kept.bundle.clone(),
            _ => Arc::new(bundle),
        };
        *state = Some(Loaded {
            bundle: bundle.clone(),
            at: now,
        });
        bundle
    }
}

/// Validates every `[spiffe.<name>]`; `supported` is every scope that
/// exists here, `resources` the resource registry.
pub fn validate(
    raw: &BTreeMap<String, RawTrustDomain>,
    supported: &Scope,
    resources: &[ResourcePolicy],
) -> Result<TrustDomains, ConfigError> {
    let mut domains: Vec<TrustDomain> = Vec::new();
    for (name, r) in raw {
        let domain = trust_domain(name, r, supported, resources)?;
        if let Some(other) = domains
            .iter()
            .find(|d| d.trust_domain == domain.trust_domain)
        {
            return Err(fail(
                name,
                format!(
                    "trust domain `{}` is [spiffe.{}]'s too: one table per trust domain",
                    domain.trust_domain, other.name
                ),
            ));
        }
        domains.push(domain);
    }
    Ok(TrustDomains { domains })
}

fn fail(name: &str, message: String) -> ConfigError {
    invalid("spiffe", format!("[spiffe.{name}]: {message}"))
}

fn trust_domain(
    name: &str,
    r: &RawTrustDomain,
    supported: &Scope,
    resources: &[ResourcePolicy],
) -> Result<TrustDomain, ConfigError> {
    let fail = |message: String| fail(name, message);
    if !is_name(name) {
        return Err(fail(
            "a trust domain's table name is 1 to 32 of a-z, 0-9, `-` and `_`".into(),
        ));
    }
    if !spiffe::is_trust_domain(&r.trust_domain) {
        return Err(fail(format!(
            "`trust_domain` `{}` is not a trust domain name: lowercase a-z, 0-9, `.`, `-` and `_` (`example.org`, no scheme or path)",
            r.trust_domain
        )));
    }
    let (source, cache) = match (&r.bundle_file, &r.bundle_endpoint) {
        (Some(path), None) => {
            let bundle = read_bundle_file(path).map_err(&fail)?;
            (BundleSource::File(path.clone()), BundleCache::with(bundle))
        }
        (None, Some(endpoint)) => {
            let url = Url::parse(endpoint)
                .map_err(|e| fail(format!("`bundle_endpoint` `{endpoint}`: {e}")))?;
            web_url(&url).map_err(|m| fail(format!("`bundle_endpoint` {m}")))?;
            (BundleSource::Endpoint(url), BundleCache::default())
        }
        (None, None) => return Err(fail(
            "no bundle: set `bundle_file` (a SPIFFE bundle) or `bundle_endpoint` (its https URL)"
                .into(),
        )),
        (Some(_), Some(_)) => {
            return Err(fail(
                "set one of `bundle_file` and `bundle_endpoint`".into(),
            ))
        }
    };
    let max_lifetime = r.max_lifetime.unwrap_or(DEFAULT_MAX_LIFETIME);
    if !(60..=3600).contains(&max_lifetime) {
        return Err(fail(
            "`max_lifetime` is 60 to 3600 seconds: a JWT-SVID lives minutes".into(),
        ));
    }
    if r.rules.is_empty() {
        return Err(fail(
            "`rules` is required: which SPIFFE IDs get which grants ([[spiffe.<name>.rules]] with `ids` and `grants`)".into(),
        ));
    }
    let rules = r
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            self::rule(&r.trust_domain, rule, supported, resources)
                .map_err(|m| fail(format!("rule {}: {m}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TrustDomain {
        name: name.to_owned(),
        trust_domain: r.trust_domain.clone(),
        source,
        max_lifetime,
        rules,
        bundle: Arc::new(cache),
    })
}

/// A bundle file, read and parsed; the message names the file.
pub fn read_bundle_file(path: &std::path::Path) -> Result<Bundle, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("`bundle_file` {}: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("`bundle_file` {} is not JSON: {e}", path.display()))?;
    spiffe::parse_bundle(&value).map_err(|e| format!("`bundle_file` {}: {e}", path.display()))
}

fn rule(
    domain: &str,
    r: &RawRule,
    supported: &Scope,
    resources: &[ResourcePolicy],
) -> Result<Rule, String> {
    if r.ids.is_empty() {
        return Err("`ids` is required: SPIFFE IDs, exact or ending in `*`".into());
    }
    let ids = r
        .ids
        .iter()
        .map(|s| id_pattern(domain, s))
        .collect::<Result<Vec<_>, _>>()?;
    if r.grants.is_empty() {
        return Err(format!(
            "`grants` is required: some of {}",
            GRANTS.join(", ")
        ));
    }
    if let Some(g) = r.grants.iter().find(|g| !GRANTS.contains(&g.as_str())) {
        return Err(format!(
            "grant `{g}` is not one a workload may use (one of {})",
            GRANTS.join(", ")
        ));
    }
    let scopes = match &r.scopes {
        None => None,
        Some(list) => {
            let scope = Scope::from_tokens(list.iter().cloned()).map_err(|e| e.to_string())?;
            if let Some(unknown) = scope.difference(supported).next() {
                return Err(format!("scope `{unknown}` is not in scopes.supported"));
            }
            Some(scope)
        }
    };
    if let Some(list) = &r.resources {
        for res in list {
            let served = if resources.is_empty() {
                Url::parse(res).is_ok_and(|u| u.fragment().is_none())
            } else {
                resources.iter().any(|p| &p.identifier == res)
            };
            if !served {
                return Err(format!(
                    "resource `{res}` is not one this server serves (the resource registry, or an absolute URI without a fragment)"
                ));
            }
        }
    }
    Ok(Rule {
        ids,
        grants: r.grants.clone(),
        scopes,
        resources: r.resources.clone(),
    })
}

/// A SPIFFE ID pattern of `domain`: an ID, or an ID's beginning and `*`.
fn id_pattern(domain: &str, s: &str) -> Result<SubjectPattern, String> {
    let (text, prefix) = match s.strip_suffix('*') {
        Some(p) => (p, true),
        None => (s, false),
    };
    if text.contains('*') {
        return Err(format!("id `{s}`: `*` may only end it"));
    }
    let start = format!("spiffe://{domain}/");
    if !(text.starts_with(&start) || (!prefix && text == start.trim_end_matches('/'))) {
        return Err(format!(
            "id `{s}` is not in trust domain `{domain}`: it starts with `{start}`"
        ));
    }
    if prefix {
        // The part before `*` is a SPIFFE ID, or one followed by `/`.
        let id = text.trim_end_matches('/');
        SpiffeId::parse(id).map_err(|e| format!("id `{s}`: {e}"))?;
        Ok(SubjectPattern::Prefix(text.to_owned()))
    } else {
        SpiffeId::parse(text).map_err(|e| format!("id `{s}`: {e}"))?;
        Ok(SubjectPattern::Exact(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLE: &str = r#"{"spiffe_sequence":1,"keys":[{"kty":"EC","crv":"P-256","use":"jwt-svid","kid":"k1",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

    type Outcome = Result<(), Box<dyn std::error::Error>>;

    fn bundle_file() -> std::io::Result<(tempfile::TempDir, PathBuf)> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bundle.json");
        std::fs::write(&path, BUNDLE)?;
        Ok((dir, path))
    }

    fn prod(path: &std::path::Path) -> RawTrustDomain {
        RawTrustDomain {
            trust_domain: "example.org".into(),
            bundle_file: Some(path.to_owned()),
            rules: vec![RawRule {
                ids: vec!["spiffe://example.org/ns/prod/*".into()],
                grants: vec!["client_credentials".into()],
                scopes: Some(vec!["read".into()]),
                resources: None,
            }],
            ..RawTrustDomain::default()
        }
    }

    fn supported() -> Scope {
        Scope::from_tokens(["read".to_owned(), "write".to_owned()]).unwrap_or_default()
    }

    fn these(list: Vec<(&str, RawTrustDomain)>) -> Result<TrustDomains, ConfigError> {
        let raw = list
            .into_iter()
            .map(|(n, r)| (n.to_owned(), r))
            .collect::<BTreeMap<_, _>>();
        validate(&raw, &supported(), &[])
    }

    #[test]
    fn a_trust_domain_with_its_bundle_and_rules_is_read() -> Outcome {
        let (_dir, path) = bundle_file()?;
        let t = these(vec![("prod", prod(&path))])?;
        let d = t.find("example.org");
        assert!(d.is_some_and(|d| d
            .bundle
            .current()
            .is_some_and(|b| b.bundle.jwt_keys.len() == 1)));
        let id = SpiffeId::parse("spiffe://example.org/ns/prod/sa/api")?;
        assert!(d.and_then(|d| d.rule_for(&id)).is_some());
        let other = SpiffeId::parse("spiffe://example.org/ns/dev/sa/api")?;
        assert!(d.and_then(|d| d.rule_for(&other)).is_none());
        Ok(())
    }

    #[test]
    fn mistakes_are_named_at_start_up() -> Outcome {
        let (_dir, path) = bundle_file()?;
        let rule = |r: RawRule| RawTrustDomain {
            rules: vec![r],
            ..prod(&path)
        };
        let base_rule = || prod(&path).rules[0].clone();
        let cases = [
            ("Prod", prod(&path), "table name"),
            (
                "prod",
                RawTrustDomain {
                    trust_domain: "spiffe://example.org".into(),
                    ..prod(&path)
                },
                "not a trust domain name",
            ),
            (
                "prod",
                RawTrustDomain {
                    bundle_file: None,
                    ..prod(&path)
                },
                "no bundle",
            ),
            (
                "prod",
                RawTrustDomain {
                    bundle_endpoint: Some("https://spire.example.org/bundle".into()),
                    ..prod(&path)
                },
                "one of",
            ),
            (
                "prod",
                RawTrustDomain {
                    bundle_file: Some("/nonexistent/bundle.json".into()),
                    ..prod(&path)
                },
                "`bundle_file` /nonexistent",
            ),
            (
                "prod",
                RawTrustDomain {
                    bundle_file: None,
                    bundle_endpoint: Some("http://spire.example.org/bundle".into()),
                    ..prod(&path)
                },
                "`bundle_endpoint` must be an https URL",
            ),
            (
                "prod",
                RawTrustDomain {
                    max_lifetime: Some(86_400),
                    ..prod(&path)
                },
                "`max_lifetime`",
            ),
            (
                "prod",
                RawTrustDomain {
                    rules: vec![],
                    ..prod(&path)
                },
                "`rules` is required",
            ),
            (
                "prod",
                rule(RawRule {
                    ids: vec!["spiffe://other.org/x".into()],
                    ..base_rule()
                }),
                "rule 1: id `spiffe://other.org/x` is not in trust domain `example.org`",
            ),
            (
                "prod",
                rule(RawRule {
                    ids: vec!["spiffe://example.org/a*b".into()],
                    ..base_rule()
                }),
                "may only end it",
            ),
            (
                "prod",
                rule(RawRule {
                    grants: vec!["authorization_code".into()],
                    ..base_rule()
                }),
                "grant `authorization_code`",
            ),
            (
                "prod",
                rule(RawRule {
                    scopes: Some(vec!["admin".into()]),
                    ..base_rule()
                }),
                "scope `admin`",
            ),
            (
                "prod",
                rule(RawRule {
                    resources: Some(vec!["not a uri".into()]),
                    ..base_rule()
                }),
                "resource `not a uri`",
            ),
        ];
        for (name, raw, expected) in cases {
            let m = these(vec![(name, raw)]).err().map(|e| e.to_string());
            assert!(
                m.as_deref().is_some_and(
                    |m| m.contains(expected) && m.contains(&format!("[spiffe.{name}]"))
                ),
                "{expected:?} not in {m:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn one_trust_domain_has_one_table() -> Outcome {
        let (_dir, path) = bundle_file()?;
        let m = these(vec![("a", prod(&path)), ("b", prod(&path))])
            .err()
            .map(|e| e.to_string());
        assert!(m.is_some_and(|m| m.contains("one table per trust domain")));
        Ok(())
    }

    #[test]
    fn an_older_bundle_never_replaces_a_newer_one() {
        let cache = BundleCache::default();
        let with = |sequence| Bundle {
            sequence: Some(sequence),
            ..Bundle::default()
        };
        cache.store(with(5), 1);
        assert_eq!(cache.store(with(4), 2).sequence, Some(5));
        assert_eq!(cache.current().map(|l| l.at), Some(2));
        assert_eq!(cache.store(with(6), 3).sequence, Some(6));
    }
}

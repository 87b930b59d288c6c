//! `[trusted_issuers.<name>]`: the issuers whose JWTs the token endpoint
//! takes as authorization grants (RFC 7523 §2.1): an enterprise identity
//! provider's ID-JAGs (draft-ietf-oauth-identity-assertion-authz-grant),
//! for the people it signs in, and a workload platform's JWTs (MCP
//! workload identity federation), for its workloads. Raw, then validated
//! into [`TrustedIssuers`] beside `[upstream.<name>]`, whose claim mapping
//! and `link_existing` an ID-JAG issuer shares.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ephemera_proto::jose::PublicJwk;
use ephemera_proto::scope::Scope;
use serde::{Deserialize, Serialize};
use url::Url;

use super::upstream::{claim_mapping, is_name, web_url, ClaimMapping, RawClaims};
use super::{invalid, ConfigError};

/// The default `max_lifetime`: an hour, a Kubernetes projected service
/// account token's default lifetime.
const DEFAULT_MAX_LIFETIME: i64 = 3600;

/// One `[trusted_issuers.<name>]` table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTrustedIssuer {
    /// Compared exactly with the assertions' `iss`.
    pub issuer: String,
    /// Where the issuer publishes its keys (a JWK Set), fetched when first
    /// needed and cached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The issuer's keys, a JWK Set as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    /// A file holding the issuer's JWK Set, read at start-up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// `id-jag` (people, for registered clients) and/or `workload`.
    pub grants: Vec<String>,
    /// `workload`: `aud` values accepted besides this server's issuer
    /// identifier and token endpoint URL.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// `workload`: the `sub`s that get tokens; a trailing `*` matches any
    /// rest, `*` alone every workload of the issuer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// The scopes its assertions may bring at most (default: every scope).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// The longest an assertion may live, in seconds (60 to 86400).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<i64>,
    /// `id-jag`: which claim fills which part of the user record.
    pub claims: RawClaims,
    /// `id-jag`: a person whose username exists locally (and is linked to
    /// no identity of this issuer) is that user.
    pub link_existing: bool,
}

/// Every trusted issuer, in the order of their names.
#[derive(Debug, Clone, Default)]
pub struct TrustedIssuers {
    pub issuers: Vec<TrustedIssuer>,
}

impl TrustedIssuers {
    /// The issuer whose identifier `iss` is, exactly.
    pub fn find(&self, iss: &str) -> Option<&TrustedIssuer> {
        self.issuers.iter().find(|i| i.issuer == iss)
    }

    /// Some issuer is trusted: the JWT bearer grant is served.
    pub fn any(&self) -> bool {
        !self.issuers.is_empty()
    }

    /// Some issuer's ID-JAGs are taken.
    pub fn any_id_jag(&self) -> bool {
        self.issuers.iter().any(|i| i.id_jag)
    }
}

/// A trusted issuer, validated.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// `[a-z0-9_-]{1,32}`: in logs, replay keys and the records it creates.
    pub name: String,
    pub issuer: String,
    pub keys: KeySource,
    /// Its ID-JAGs are taken, for registered clients that may use the grant.
    pub id_jag: bool,
    /// Its workloads get tokens: `Some` with grant `workload`.
    pub workloads: Option<Workloads>,
    /// The scopes its assertions may bring at most; `None`: no cap here.
    pub scopes: Option<Scope>,
    pub max_lifetime: i64,
    pub claims: ClaimMapping,
    pub link_existing: bool,
}

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Fetched from its `jwks_uri` (https, or http on a loopback host).
    Fetched(Url),
    /// Configured, parsed at start-up.
    Fixed(Arc<Vec<PublicJwk>>),
}

/// Which of an issuer's workloads get tokens, and the audiences they may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workloads {
    pub audiences: Vec<String>,
    pub subjects: Vec<SubjectPattern>,
}

impl Workloads {
    pub fn admits(&self, subject: &str) -> bool {
        self.subjects.iter().any(|p| match p {
            SubjectPattern::Exact(s) => s == subject,
            SubjectPattern::Prefix(p) => subject.starts_with(p.as_str()),
        })
    }
}

/// A workload `sub` admitted: exactly, or by its beginning (`prefix*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectPattern {
    Exact(String),
    Prefix(String),
}

/// Validates every `[trusted_issuers.<name>]`; `supported` is every scope
/// that exists here.
pub fn validate(
    raw: &BTreeMap<String, RawTrustedIssuer>,
    supported: &Scope,
) -> Result<TrustedIssuers, ConfigError> {
    let mut issuers: Vec<TrustedIssuer> = Vec::new();
    for (name, r) in raw {
        let issuer = trusted_issuer(name, r, supported)?;
        if let Some(other) = issuers.iter().find(|i| i.issuer == issuer.issuer) {
            return Err(fail(
                name,
                format!(
                    "`issuer` `{}` is [trusted_issuers.{}]'s too: one table per issuer",
                    issuer.issuer, other.name
                ),
            ));
        }
        issuers.push(issuer);
    }
    Ok(TrustedIssuers { issuers })
}

fn fail(name: &str, message: String) -> ConfigError {
    invalid(
        "trusted_issuers",
        format!("[trusted_issuers.{name}]: {message}"),
    )
}

fn trusted_issuer(
    name: &str,
    r: &RawTrustedIssuer,
    supported: &Scope,
) -> Result<TrustedIssuer, ConfigError> {
    let fail = |message: String| fail(name, message);
    if !is_name(name) {
        return Err(fail(
            "a trusted issuer's name is 1 to 32 of a-z, 0-9, `-` and `_`".into(),
        ));
    }
    let (mut id_jag, mut workload) = (false, false);
    for g in &r.grants {
        match g.as_str() {
            "id-jag" => id_jag = true,
            "workload" => workload = true,
            other => {
                return Err(fail(format!(
                    "grant `{other}` is not `id-jag` (people's identity assertions) or `workload`"
                )))
            }
        }
    }
    if !id_jag && !workload {
        return Err(fail(
            "`grants` is required: `id-jag`, `workload`, or both".into(),
        ));
    }
    let issuer = validate_issuer(&r.issuer, id_jag).map_err(&fail)?;
    let keys = key_source(r).map_err(&fail)?;
    if !workload && (!r.audiences.is_empty() || !r.subjects.is_empty()) {
        return Err(fail(
            "`audiences` and `subjects` are for grant `workload`; an ID-JAG's aud is this server's issuer and its subject a person".into(),
        ));
    }
    let workloads = if workload {
        Some(workloads(r).map_err(&fail)?)
    } else {
        None
    };
    let raw_claims_set = [
        &r.claims.subject,
        &r.claims.username,
        &r.claims.name,
        &r.claims.email,
    ]
    .iter()
    .any(|c| c.is_some());
    if !id_jag && (raw_claims_set || r.link_existing) {
        return Err(fail(
            "`claims` and `link_existing` are for grant `id-jag`: a workload is no local user"
                .into(),
        ));
    }
    let claims = claim_mapping(&r.claims, true).map_err(|m| fail(m.into()))?;
    let scopes = match &r.scopes {
        None => None,
        Some(list) => {
            let scope =
                Scope::from_tokens(list.iter().cloned()).map_err(|e| fail(e.to_string()))?;
            if let Some(unknown) = scope.difference(supported).next() {
                return Err(fail(format!(
                    "scope `{unknown}` is not in scopes.supported"
                )));
            }
            Some(scope)
        }
    };
    let max_lifetime = r.max_lifetime.unwrap_or(DEFAULT_MAX_LIFETIME);
    if !(60..=86_400).contains(&max_lifetime) {
        return Err(fail(
            "`max_lifetime` is 60 to 86400 seconds: an assertion lives minutes, not days".into(),
        ));
    }
    Ok(TrustedIssuer {
        name: name.to_owned(),
        issuer,
        keys,
        id_jag,
        workloads,
        scopes,
        max_lifetime,
        claims,
        link_existing: r.link_existing,
    })
}

/// An ID-JAG's issuer is an authorization server's issuer identifier (RFC
/// 8414): https (http on a loopback host). A workload platform's may be any
/// absolute URI (`spiffe://example.org`); an http(s) one follows the same
/// rule. Kept as written: `iss` is compared with it exactly.
fn validate_issuer(issuer: &str, id_jag: bool) -> Result<String, String> {
    if issuer.trim().is_empty() {
        return Err("`issuer` is required: the `iss` its assertions carry".into());
    }
    let url = Url::parse(issuer).map_err(|e| format!("`issuer` `{issuer}` is not a URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("`issuer` `{issuer}` has a fragment"));
    }
    if id_jag || matches!(url.scheme(), "http" | "https") {
        web_url(&url).map_err(|m| format!("`issuer` `{issuer}` {m}"))?;
    }
    Ok(issuer.to_owned())
}

fn key_source(r: &RawTrustedIssuer) -> Result<KeySource, String> {
    let parse = |text: &str, from: &str| -> Result<KeySource, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("{from} is not JSON: {e}"))?;
        let keys =
            ephemera_proto::assertion::parse_jwks(&value).map_err(|e| format!("{from}: {e}"))?;
        Ok(KeySource::Fixed(Arc::new(keys)))
    };
    match (&r.jwks_uri, &r.jwks, &r.jwks_file) {
        (Some(uri), None, None) => {
            let url = Url::parse(uri).map_err(|e| format!("`jwks_uri` `{uri}`: {e}"))?;
            web_url(&url).map_err(|m| format!("`jwks_uri` {m}"))?;
            Ok(KeySource::Fetched(url))
        }
        (None, Some(jwks), None) => parse(jwks, "`jwks`"),
        (None, None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("`jwks_file` {}: {e}", path.display()))?;
            parse(&text, &format!("`jwks_file` {}", path.display()))
        }
        (None, None, None) => {
            Err("no key source: set `jwks_uri`, `jwks` (a JWK Set) or `jwks_file`".into())
        }
        _ => Err("set one of `jwks_uri`, `jwks` and `jwks_file`".into()),
    }
}

fn workloads(r: &RawTrustedIssuer) -> Result<Workloads, String> {
    if r.subjects.is_empty() {
        return Err(
            "`subjects` is required with grant `workload`: the `sub`s that get tokens (`prefix*` for several, `*` for every workload of the issuer)".into(),
        );
    }
    let subjects = r
        .subjects
        .iter()
        .map(|s| match s.strip_suffix('*') {
            _ if s.is_empty() => Err("a subject is never empty".to_owned()),
            Some(prefix) if prefix.contains('*') => {
                Err(format!("subject `{s}`: `*` may only end it"))
            }
            Some(prefix) => Ok(SubjectPattern::Prefix(prefix.to_owned())),
            None if s.contains('*') => Err(format!("subject `{s}`: `*` may only end it")),
            None => Ok(SubjectPattern::Exact(s.clone())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(a) = r.audiences.iter().find(|a| a.trim().is_empty()) {
        return Err(format!("audience `{a}` is empty"));
    }
    Ok(Workloads {
        audiences: r.audiences.clone(),
        subjects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

    fn acme() -> RawTrustedIssuer {
        RawTrustedIssuer {
            issuer: "https://idp.acme.example".into(),
            jwks_uri: Some("https://idp.acme.example/jwks".into()),
            grants: vec!["id-jag".into()],
            ..RawTrustedIssuer::default()
        }
    }

    fn k8s() -> RawTrustedIssuer {
        RawTrustedIssuer {
            issuer: "spiffe://cluster.example".into(),
            jwks: Some(JWKS.into()),
            grants: vec!["workload".into()],
            subjects: vec!["spiffe://cluster.example/ns/agents/*".into()],
            ..RawTrustedIssuer::default()
        }
    }

    fn supported() -> Scope {
        Scope::from_tokens(["read".to_owned(), "write".to_owned()]).unwrap_or_default()
    }

    fn these(list: Vec<(&str, RawTrustedIssuer)>) -> Result<TrustedIssuers, ConfigError> {
        let raw = list
            .into_iter()
            .map(|(n, r)| (n.to_owned(), r))
            .collect::<BTreeMap<_, _>>();
        validate(&raw, &supported())
    }

    fn message(r: Result<TrustedIssuers, ConfigError>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        }
    }

    #[test]
    fn an_id_jag_issuer_and_a_workload_platform_are_read() {
        let t = these(vec![("acme", acme()), ("k8s", k8s())]);
        let Ok(t) = t else {
            return assert!(t.is_ok(), "{t:?}");
        };
        let acme = t.find("https://idp.acme.example");
        assert!(acme.is_some_and(|a| a.id_jag && a.workloads.is_none()));
        assert_eq!(acme.map(|a| a.claims.subject.as_str()), Some("sub"));
        assert_eq!(acme.map(|a| a.max_lifetime), Some(3600));
        let k8s = t.find("spiffe://cluster.example");
        assert!(matches!(k8s.map(|k| &k.keys), Some(KeySource::Fixed(keys)) if keys.len() == 1));
        let workloads = k8s.and_then(|k| k.workloads.clone());
        assert!(workloads
            .as_ref()
            .is_some_and(|w| w.admits("spiffe://cluster.example/ns/agents/sa/router")));
        assert!(!workloads.is_some_and(|w| w.admits("spiffe://cluster.example/ns/other/sa/x")));
        assert!(t.any() && t.any_id_jag());
        assert!(!TrustedIssuers::default().any());
    }

    #[test]
    fn mistakes_are_named_at_start_up() {
        let cases = [
            ("Acme", acme(), "name"),
            (
                "acme",
                RawTrustedIssuer {
                    issuer: "not a url".into(),
                    ..acme()
                },
                "is not a URL",
            ),
            (
                "acme",
                RawTrustedIssuer {
                    issuer: "http://idp.acme.example".into(),
                    ..acme()
                },
                "https",
            ),
            (
                "acme",
                RawTrustedIssuer {
                    issuer: "spiffe://acme.example".into(),
                    ..acme()
                },
                "https",
            ),
            (
                "acme",
                RawTrustedIssuer {
                    jwks_uri: None,
                    ..acme()
                },
                "no key source",
            ),
            (
                "acme",
                RawTrustedIssuer {
                    jwks: Some(JWKS.into()),
                    ..acme()
                },
                "one of",
            ),
            (
                "acme",
                RawTrustedIssuer {
                    jwks_uri: None,
                    jwks: Some(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#.into()),
                    ..acme()
                },
                "`jwks`",
            ),
            (
                "acme",
                RawTrustedIssuer {
                    jwks_uri: None,
                    jwks_file: Some("/nonexistent/jwks.json".into()),
                    ..acme()
                },
                "`jwks_file`",
            ),
            (
                "acme",
                RawTrustedIssuer {
                    grants: vec!["saml".into()],
                    ..acme()
                },
                "grant `saml`",
            ),
            (
                "acme",
                RawTrustedIssuer {
                    grants: vec![],
                    ..acme()
                },
                "`grants` is required",
            ),
            (
                "acme",
                RawTrustedIssuer {
                    subjects: vec!["x".into()],
                    ..acme()
                },
                "for grant `workload`",
            ),
            (
                "k8s",
                RawTrustedIssuer {
                    subjects: vec![],
                    ..k8s()
                },
                "`subjects` is required",
            ),
            (
                "k8s",
                RawTrustedIssuer {
                    subjects: vec!["a*b".into()],
                    ..k8s()
                },
                "may only end it",
            ),
            (
                "k8s",
                RawTrustedIssuer {
                    link_existing: true,
                    ..k8s()
                },
                "for grant `id-jag`",
            ),
            (
                "acme",
                RawTrustedIssuer {
                    scopes: Some(vec!["admin".into()]),
                    ..acme()
                },
                "scope `admin`",
            ),
            (
                "acme",
                RawTrustedIssuer {
                    max_lifetime: Some(7 * 86_400),
                    ..acme()
                },
                "`max_lifetime`",
            ),
            (
                "acme",
                RawTrustedIssuer {
                    claims: RawClaims {
                        subject: Some("email".into()),
                        ..RawClaims::default()
                    },
                    ..acme()
                },
                "never the email",
            ),
        ];
        for (name, raw, expected) in cases {
            let m = message(these(vec![(name, raw)]));
            assert!(m.contains(expected), "{expected:?} not in {m:?}");
            assert!(m.contains(&format!("[trusted_issuers.{name}]")), "{m}");
        }
    }

    #[test]
    fn the_documented_tables_are_read_from_toml() {
        use figment::providers::{Format as _, Toml};
        let toml = r#"
            [acme]
            issuer = "https://idp.acme.example"
            jwks_uri = "https://idp.acme.example/.well-known/jwks.json"
            grants = ["id-jag"]
            scopes = ["read", "write"]
            claims.username = "email"

            [cluster]
            issuer = "https://kubernetes.default.svc.cluster.local"
            jwks = '''{"keys":[{"kty":"EC","crv":"P-256",
                "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}'''
            grants = ["workload"]
            audiences = ["ephemera"]
            subjects = ["system:serviceaccount:agents:*"]
        "#;
        let raw = figment::Figment::from(Toml::string(toml))
            .extract::<BTreeMap<String, RawTrustedIssuer>>()
            .map_err(|e| e.to_string());
        let t = raw.and_then(|r| validate(&r, &supported()).map_err(|e| e.to_string()));
        let Ok(t) = t else {
            return assert!(t.is_ok(), "{t:?}");
        };
        let acme = t.find("https://idp.acme.example");
        assert_eq!(acme.map(|a| a.claims.username.as_str()), Some("email"));
        assert_eq!(
            acme.and_then(|a| a.scopes.as_ref())
                .map(ToString::to_string),
            Some("read write".to_owned())
        );
        let cluster = t.find("https://kubernetes.default.svc.cluster.local");
        let workloads = cluster.and_then(|c| c.workloads.as_ref());
        assert!(workloads.is_some_and(
            |w| w.admits("system:serviceaccount:agents:router") && w.audiences == ["ephemera"]
        ));
    }

    #[test]
    fn one_issuer_has_one_table() {
        let m = message(these(vec![("acme", acme()), ("again", acme())]));
        assert!(m.contains("one table per issuer"), "{m}");
    }

    #[test]
    fn a_loopback_issuer_over_http_is_accepted_for_tests() {
        let local = RawTrustedIssuer {
            issuer: "http://127.0.0.1:4000".into(),
            jwks_uri: Some("http://127.0.0.1:4000/jwks".into()),
            ..acme()
        };
        assert!(these(vec![("local", local)]).is_ok());
    }
}

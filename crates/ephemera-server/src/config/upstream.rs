//! `[login]` and `[upstream.<name>]`: whether local passwords are accepted,
//! and the upstream identity providers people may sign in through, raw then
//! validated into [`Upstreams`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{invalid, ConfigError};

/// `[login]` as written by the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLogin {
    /// Local passwords (`ephemera user add`) are accepted; `false` leaves
    /// only the upstream providers.
    pub passwords: bool,
}

impl Default for RawLogin {
    fn default() -> Self {
        Self { passwords: true }
    }
}

/// One `[upstream.<name>]` table; `<name>` is the provider's name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawProvider {
    /// What the login page says: "Continue with <label>" (default: the name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `oidc` (OpenID Connect, by discovery) or `oauth2` (GitHub's shape).
    pub kind: String,
    /// `oidc`: the issuer, whose discovery document is read. `oauth2`: the
    /// fixed identifier its identities are keyed by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_url: Option<String>,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The environment variable holding the client secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// `client_secret_basic` or `client_secret_post`; unset: as the
    /// provider's metadata allows, Basic first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    pub claims: RawClaims,
    /// Signing in through this provider as a username that exists locally
    /// (and is linked to no identity of this provider) signs in as that user.
    pub link_existing: bool,
}

/// Which upstream claim fills which part of the user record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// How the sign-in pages offer signing in.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    /// Local passwords are accepted (the password form is shown).
    pub passwords: bool,
    /// In the order the pages list them (by name).
    pub providers: Vec<Provider>,
}

impl Upstreams {
    pub fn find(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }
}

/// An upstream identity provider, validated.
#[derive(Debug, Clone)]
pub struct Provider {
    /// `[a-z0-9_-]{1,32}`: its callback is `/login/upstream/<name>/callback`.
    pub name: String,
    pub label: String,
    pub kind: ProviderKind,
    pub client_id: String,
    pub client_secret: Option<ClientSecret>,
    /// Forced by the operator; `None`: as the provider's metadata allows.
    pub auth_method: Option<AuthMethod>,
    pub scopes: Vec<String>,
    pub claims: ClaimMapping,
    pub link_existing: bool,
}

impl Provider {
    /// The identifier identities at this provider are keyed by.
    pub fn issuer(&self) -> &str {
        match &self.kind {
            ProviderKind::Oidc { issuer } => issuer,
            ProviderKind::OAuth2(e) => &e.issuer,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenID Connect: endpoints and keys from
    /// `<issuer>/.well-known/openid-configuration`.
    Oidc { issuer: String },
    /// Plain OAuth 2 with a userinfo URL (GitHub's shape).
    OAuth2(Box<OAuth2Endpoints>),
}

/// A plain OAuth 2 provider's configured identifier and endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Endpoints {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub userinfo_url: Url,
}

/// How the client authenticates at the provider's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "client_secret_basic",
            Self::Post => "client_secret_post",
        }
    }
}

/// A client secret at an upstream provider; `Debug` never shows it.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// The claim names that fill a user record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    /// The stable identifier (`sub`; `id` for GitHub): never an email.
    pub subject: String,
    pub username: String,
    pub name: String,
    pub email: String,
}

/// Validates `[login]` and every `[upstream.<name>]`; `env` reads the
/// environment variables named by `client_secret_env`.
pub fn validate(
    login: &RawLogin,
    raw: &BTreeMap<String, RawProvider>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Upstreams, ConfigError> {
    let providers = raw
        .iter()
        .map(|(name, p)| provider(name, p, &env))
        .collect::<Result<Vec<_>, _>>()?;
    if !login.passwords && providers.is_empty() {
        return Err(invalid(
            "login.passwords",
            "is false but no [upstream.<name>] provider is configured: nobody could sign in",
        ));
    }
    Ok(Upstreams {
        passwords: login.passwords,
        providers,
    })
}

fn provider(
    name: &str,
    p: &RawProvider,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Provider, ConfigError> {
    let key = "upstream";
    let fail = |message: String| invalid(key, format!("[upstream.{name}]: {message}"));
    if !is_name(name) {
        return Err(fail(
            "a provider's name is 1 to 32 of a-z, 0-9, `-` and `_` (it is part of its callback URL)".into(),
        ));
    }
    let url = |field: &str, value: &Option<String>| -> Result<Url, ConfigError> {
        let Some(text) = value else {
            return Err(fail(format!("`{field}` is required for kind `oauth2`")));
        };
        let url = Url::parse(text).map_err(|e| fail(format!("`{field}` `{text}`: {e}")))?;
        web_url(&url).map_err(|m| fail(format!("`{field}` {m}")))?;
        Ok(url)
    };
    let kind = match p.kind.as_str() {
        "oidc" => {
            let Some(issuer) = &p.issuer else {
                return Err(fail("`issuer` is required for kind `oidc`".into()));
            };
            for (field, set) in [
                ("authorization_endpoint", &p.authorization_endpoint),
                ("token_endpoint", &p.token_endpoint),
                ("userinfo_url", &p.userinfo_url),
            ] {
                if set.is_some() {
                    return Err(fail(format!(
                        "`{field}` comes from the provider's discovery document for kind `oidc`; leave it out"
                    )));
                }
            }
            let parsed =
                Url::parse(issuer).map_err(|e| fail(format!("`issuer` `{issuer}`: {e}")))?;
            web_url(&parsed).map_err(|m| fail(format!("`issuer` {m}")))?;
            if parsed.query().is_some() || parsed.fragment().is_some() {
                return Err(fail("`issuer` has no query or fragment".into()));
            }
            // Compared exactly with `iss`: kept as written, but without the
            // trailing slash discovery URLs are built without.
            ProviderKind::Oidc {
                issuer: issuer.clone(),
            }
        }
        "oauth2" => {
            let issuer = p
                .issuer
                .clone()
                .filter(|i| !i.trim().is_empty())
                .ok_or_else(|| {
                    fail("`issuer` (a fixed identifier such as `https://github.com`, which its identities are keyed by) is required for kind `oauth2`".into())
                })?;
            ProviderKind::OAuth2(Box::new(OAuth2Endpoints {
                issuer,
                authorization_endpoint: url("authorization_endpoint", &p.authorization_endpoint)?,
                token_endpoint: url("token_endpoint", &p.token_endpoint)?,
                userinfo_url: url("userinfo_url", &p.userinfo_url)?,
            }))
        }
        other => return Err(fail(format!("kind `{other}` is not `oidc` or `oauth2`"))),
    };
    if p.client_id.trim().is_empty() {
        return Err(fail("`client_id` is required".into()));
    }
    let client_secret = match (&p.client_secret, &p.client_secret_env) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "set `client_secret` or `client_secret_env`, not both".into(),
            ))
        }
        (Some(s), None) => Some(s.clone()),
        (None, Some(var)) => match env(var) {
            Some(s) if !s.is_empty() => Some(s),
            _ => {
                return Err(fail(format!(
                    "`client_secret_env` names `{var}`, which is not set in the environment"
                )))
            }
        },
        (None, None) => None,
    }
    .map(ClientSecret);
    let auth_method = match p.token_endpoint_auth_method.as_deref() {
        None => None,
        Some("client_secret_basic") => Some(AuthMethod::Basic),
        Some("client_secret_post") => Some(AuthMethod::Post),
        Some(other) => {
            return Err(fail(format!(
                "`token_endpoint_auth_method` `{other}` is not client_secret_basic or client_secret_post"
            )))
        }
    };
    if auth_method.is_some() && client_secret.is_none() {
        return Err(fail(
            "`token_endpoint_auth_method` needs a client secret".into(),
        ));
    }
    let oidc = matches!(kind, ProviderKind::Oidc { .. });
    let scopes = match &p.scopes {
        Some(s) => s.clone(),
        None if oidc => vec!["openid".into(), "profile".into(), "email".into()],
        None => Vec::new(),
    };
    if oidc && !scopes.iter().any(|s| s == "openid") {
        return Err(fail(
            "`scopes` must include `openid` for kind `oidc` (without it there is no ID Token)"
                .into(),
        ));
    }
    if let Some(bad) = scopes.iter().find(|s| {
        s.is_empty()
            || s.chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    }) {
        return Err(fail(format!("scope `{bad}` is not a scope token")));
    }
    let claims = claim_mapping(&p.claims, oidc).map_err(|m| fail(m.into()))?;
    let label = p.label.clone().unwrap_or_else(|| name.to_owned());
    if label.trim().is_empty() || label.chars().count() > 64 {
        return Err(fail("`label` is 1 to 64 characters".into()));
    }
    Ok(Provider {
        name: name.to_owned(),
        label,
        kind,
        client_id: p.client_id.clone(),
        client_secret,
        auth_method,
        scopes,
        claims,
        link_existing: p.link_existing,
    })
}

/// The claims `raw` names, else OpenID Connect's (`oidc`) or GitHub's.
pub(super) fn claim_mapping(raw: &RawClaims, oidc: bool) -> Result<ClaimMapping, &'static str> {
    let pick = |set: &Option<String>, oidc_default: &str, oauth2_default: &str| {
        set.clone()
            .unwrap_or_else(|| if oidc { oidc_default } else { oauth2_default }.to_owned())
    };
    let claims = ClaimMapping {
        subject: pick(&raw.subject, "sub", "id"),
        username: pick(&raw.username, "preferred_username", "login"),
        name: pick(&raw.name, "name", "name"),
        email: pick(&raw.email, "email", "email"),
    };
    if claims.subject == claims.email {
        return Err("`claims.subject` must be the provider's stable identifier, never the email");
    }
    Ok(claims)
}

/// A table's `<name>`: 1 to 32 of `a-z`, `0-9`, `-` and `_` (it goes into
/// URLs and keys).
pub(super) fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// An https URL, or http on a loopback host (tests, a provider beside this
/// server).
pub(super) fn web_url(url: &Url) -> Result<(), &'static str> {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("has no host"),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("must be an https URL (http only on a loopback address)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc() -> RawProvider {
        RawProvider {
            kind: "oidc".into(),
            issuer: Some("https://idp.example".into()),
            client_id: "ephemera".into(),
            client_secret: Some("s3cret".into()),
            ..RawProvider::default()
        }
    }

    fn one(name: &str, p: RawProvider) -> Result<Upstreams, ConfigError> {
        validate(
            &RawLogin::default(),
            &BTreeMap::from([(name.to_owned(), p)]),
            |v| (v == "IDP_SECRET").then(|| "from-env".to_owned()),
        )
    }

    fn message(r: Result<Upstreams, ConfigError>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        }
    }

    #[test]
    fn an_oidc_provider_gets_the_standard_scopes_and_claims() {
        let u = one("corp", oidc()).ok();
        let p = u.as_ref().and_then(|u| u.find("corp"));
        assert_eq!(
            p.map(|p| p.scopes.join(" ")).as_deref(),
            Some("openid profile email")
        );
        assert_eq!(p.map(|p| p.claims.subject.as_str()), Some("sub"));
        assert_eq!(p.map(|p| p.label.as_str()), Some("corp"));
    }

    #[test]
    fn a_secret_may_come_from_the_environment_and_must_be_there() {
        let from_env = RawProvider {
            client_secret: None,
            client_secret_env: Some("IDP_SECRET".into()),
            ..oidc()
        };
        let u = one("corp", from_env.clone()).ok();
        let secret = u
            .as_ref()
            .and_then(|u| u.find("corp"))
            .and_then(|p| p.client_secret.as_ref())
            .map(|s| s.expose().to_owned());
        assert_eq!(secret.as_deref(), Some("from-env"));
        assert!(
            !format!("{u:?}").contains("from-env"),
            "Debug shows the secret"
        );
        let missing = RawProvider {
            client_secret_env: Some("NOT_SET".into()),
            ..from_env
        };
        assert!(message(one("corp", missing)).contains("`NOT_SET`"));
    }

    #[test]
    fn mistakes_are_named_at_start_up() {
        let cases = [
            ("Bad Name", oidc(), "name"),
            (
                "corp",
                RawProvider {
                    kind: "saml".into(),
                    ..oidc()
                },
                "kind `saml`",
            ),
            (
                "corp",
                RawProvider {
                    issuer: None,
                    ..oidc()
                },
                "`issuer` is required",
            ),
            (
                "corp",
                RawProvider {
                    issuer: Some("http://idp.example".into()),
                    ..oidc()
                },
                "https",
            ),
            (
                "corp",
                RawProvider {
                    scopes: Some(vec!["profile".into()]),
                    ..oidc()
                },
                "openid",
            ),
            (
                "corp",
                RawProvider {
                    token_endpoint: Some("https://x.example/t".into()),
                    ..oidc()
                },
                "discovery",
            ),
            (
                "gh",
                RawProvider {
                    kind: "oauth2".into(),
                    issuer: Some("https://github.com".into()),
                    ..oidc()
                },
                "`authorization_endpoint` is required",
            ),
            (
                "corp",
                RawProvider {
                    claims: RawClaims {
                        subject: Some("email".into()),
                        ..RawClaims::default()
                    },
                    ..oidc()
                },
                "never the email",
            ),
        ];
        for (name, raw, expected) in cases {
            let m = message(one(name, raw));
            assert!(m.contains(expected), "{expected:?} not in {m:?}");
        }
    }

    #[test]
    fn passwords_off_needs_a_provider() {
        let off = RawLogin { passwords: false };
        assert!(
            message(validate(&off, &BTreeMap::new(), |_| None)).contains("nobody could sign in")
        );
    }
}

//! A server under load: what it is, its endpoints (from its discovery
//! document), and the credentials the scenarios use.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

/// The loopback redirect URI every client of the benchmark uses.
pub const REDIRECT: &str = "http://127.0.0.1:9999/cb";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ephemera,
    /// node-oidc-provider, as configured by `bench/peer/server.mjs`.
    Peer,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Ephemera => "ephemera",
            Kind::Peer => "peer",
        }
    }
}

/// Who the scenarios act as; the same names and secrets on both servers.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The resource owner, already logged in after each task's first flow.
    pub user: String,
    pub password: String,
    /// A confidential client allowed to introspect; also used for
    /// `client_credentials`.
    pub rs_id: String,
    pub rs_secret: String,
    /// A confidential client (`client_secret_basic`) with the redirect URI
    /// [`REDIRECT`]: the client of the like-for-like flows.
    pub app_id: String,
    pub app_secret: String,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub kind: Kind,
    pub base: String,
    pub discovery: String,
    pub par: String,
    pub authorize: String,
    pub token: String,
    pub introspect: String,
    pub register: String,
    pub creds: Credentials,
    /// The scope the flows ask for.
    pub scope: String,
}

impl Target {
    /// Reads the endpoints from the server's discovery document (RFC 8414
    /// for Ephemera, OpenID Connect Discovery for the peer, which serves
    /// only that one).
    pub async fn discover(kind: Kind, base: &str, creds: Credentials) -> Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let discovery = match kind {
            Kind::Ephemera => format!("{base}/.well-known/oauth-authorization-server"),
            Kind::Peer => format!("{base}/.well-known/openid-configuration"),
        };
        let res = reqwest::get(&discovery).await?;
        if !res.status().is_success() {
            bail!("{discovery}: HTTP {}", res.status());
        }
        let doc: Value = res.json().await?;
        let endpoint = |name: &str| {
            doc[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("{discovery} has no `{name}`"))
        };
        Ok(Self {
            kind,
            par: endpoint("pushed_authorization_request_endpoint")?,
            authorize: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            introspect: endpoint("introspection_endpoint")?,
            register: endpoint("registration_endpoint")?,
            base,
            discovery,
            creds,
            scope: "read".into(),
        })
    }

    /// Ephemera's own form handlers (login and consent pages post here).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The metadata a pushed client sends in `client_registration`.
pub fn pushed_registration() -> String {
    serde_json::json!({
        "client_name": "Bench Agent",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        "client_uri": "https://bench.example/",
        "software_id": "ephemera-bench",
    })
    .to_string()
}

/// The body of a Dynamic Client Registration (RFC 7591), the same for both
/// servers: a public client with a loopback redirect.
pub fn dcr_body() -> String {
    serde_json::json!({
        "client_name": "Bench Agent",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
    .to_string()
}

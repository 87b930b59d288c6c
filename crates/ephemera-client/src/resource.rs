//! [`ProtectedResource`]: discovery from a resource, as an MCP client does
//! it (MCP 2025-11-25, "Authorization Server Discovery"): the resource's
//! `401` names its metadata (RFC 9728 §5.1), or the well-known URIs are
//! tried (§3.1); the metadata names the authorization server, whose own
//! metadata [`AuthorizationServer::discover_with`] then fetches.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::challenge::{find_param, Challenge};
use crate::error::{Error, Result};
use crate::server::AuthorizationServer;

/// The well-known suffix of protected resource metadata (RFC 9728 §3.1).
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Protected resource metadata (RFC 9728 §2), the fields a client uses,
/// the rest in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceMetadata {
    /// The resource identifier, the `resource` of RFC 8707 requests.
    pub resource: String,
    /// Issuers of the authorization servers the resource trusts.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A resource, known by its metadata and by what its challenge asked for.
#[derive(Debug, Clone)]
pub struct ProtectedResource {
    /// The URL the client asked for.
    pub url: Url,
    /// Where the metadata was found.
    pub metadata_url: Url,
    pub metadata: ResourceMetadata,
    /// The `scope` of the resource's `401` challenge (RFC 6750 §3), if any.
    pub challenge_scope: Option<String>,
}

impl ProtectedResource {
    /// Requests `url` without a token and discovers from the answer: see
    /// [`from_challenge`](Self::from_challenge).
    pub async fn discover(http: &reqwest::Client, url: &str) -> Result<Self> {
        let response = http.get(url).send().await?;
        Self::from_challenge(http, url, response.headers()).await
    }

    /// Discovers from the headers of the resource's answer to a request
    /// for `url` (normally a `401`): its metadata comes from the
    /// challenge's `resource_metadata` (RFC 9728 §5.1) or, when no
    /// challenge names one, from the first well-known URI that answers
    /// (`/.well-known/oauth-protected-resource/<path>`, then the root,
    /// MCP 2025-11-25). The challenge's `scope` is kept.
    ///
    /// The metadata's `resource` must identify `url`: the same origin and
    /// a path that is `url`'s or a prefix of it, segment by segment. That
    /// is RFC 9728 §3.3's rule (the identifier the metadata was fetched
    /// for) widened as draft-mcguinness-oauth-rfc9728bis and the MCP SDKs
    /// do, so one resource can guard several paths; metadata for another
    /// resource is refused, whoever pointed to it.
    pub async fn from_challenge(
        http: &reqwest::Client,
        url: &str,
        headers: &reqwest::header::HeaderMap,
    ) -> Result<Self> {
        let requested =
            Url::parse(url).map_err(|e| Error::protocol(format!("{url:?} is not a URL: {e}")))?;
        let challenges = Challenge::all(headers);
        let challenge_scope = find_param(&challenges, "scope")
            .filter(|scope| !scope.trim().is_empty())
            .map(str::to_owned);
        let candidates = match find_param(&challenges, "resource_metadata") {
            Some(named) => vec![Url::parse(named).map_err(|e| {
                Error::protocol(format!("resource_metadata {named:?} is not a URL: {e}"))
            })?],
            None => resource_metadata_urls(&requested),
        };
        let mut tried = Vec::new();
        for candidate in candidates {
            let response = http
                .get(candidate.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await?;
            let status = response.status().as_u16();
            if status != 200 {
                tried.push(format!("{candidate} ({status})"));
                continue;
            }
            let metadata: ResourceMetadata = response.json().await.map_err(|e| {
                Error::protocol(format!("{candidate} is not resource metadata: {e}"))
            })?;
            if !identifies(&metadata.resource, &requested) {
                return Err(Error::protocol(format!(
                    "the metadata at {candidate} is for resource {:?}, not {url:?} (RFC 9728 §3.3)",
                    metadata.resource
                )));
            }
            return Ok(Self {
                url: requested,
                metadata_url: candidate,
                metadata,
                challenge_scope,
            });
        }
        Err(Error::protocol(format!(
            "no protected resource metadata for {url:?}: tried {}",
            tried.join(", ")
        )))
    }

    /// The resource identifier to send as `resource` (RFC 8707) on the
    /// authorization and token requests.
    pub fn resource(&self) -> &str {
        &self.metadata.resource
    }

    /// The scope to ask for, as MCP (2025-11-25, "Scope Selection
    /// Strategy") picks it: the challenge's `scope`, else every scope of
    /// `scopes_supported`, else none (the parameter is left out).
    pub fn scope(&self) -> Option<String> {
        self.challenge_scope.clone().or_else(|| {
            (!self.metadata.scopes_supported.is_empty())
                .then(|| self.metadata.scopes_supported.join(" "))
        })
    }

    /// The issuer to ask: the first of `authorization_servers` (RFC 9728
    /// §2; MCP leaves the choice to the client).
    pub fn issuer(&self) -> Result<&str> {
        self.metadata
            .authorization_servers
            .first()
            .map(String::as_str)
            .ok_or_else(|| {
                Error::protocol(format!(
                    "the metadata at {} names no authorization_servers",
                    self.metadata_url
                ))
            })
    }

    /// Discovers the [`issuer`](Self::issuer)'s metadata with `http`
    /// ([`AuthorizationServer::discover_with`]: the MCP order of well-known
    /// URIs and the issuer check of RFC 8414 §3.3).
    pub async fn authorization_server(
        &self,
        http: &reqwest::Client,
    ) -> Result<AuthorizationServer> {
        AuthorizationServer::discover_with(http.clone(), self.issuer()?).await
    }
}

/// The well-known URIs of `url`'s metadata, in the MCP order: with the
/// path inserted (RFC 9728 §3.1), then at the root; only the root for a
/// URL without a path.
pub fn resource_metadata_urls(url: &Url) -> Vec<Url> {
    let path = url.path().trim_end_matches('/');
    let at = |path: &str| {
        let mut candidate = url.clone();
        candidate.set_path(path);
        candidate.set_query(None);
        candidate.set_fragment(None);
        candidate
    };
    let mut urls = Vec::new();
    if !path.is_empty() {
        urls.push(at(&format!("{WELL_KNOWN}{path}")));
    }
    urls.push(at(WELL_KNOWN));
    urls
}

/// Whether the resource identifier `resource` covers `requested`: same
/// origin, and its path equal to or a segment-wise prefix of the
/// requested path.
fn identifies(resource: &str, requested: &Url) -> bool {
    let Ok(resource) = Url::parse(resource) else {
        return false;
    };
    if resource.fragment().is_some()
        || resource.origin() != requested.origin()
        || resource
            .query()
            .is_some_and(|q| Some(q) != requested.query())
    {
        return false;
    }
    let prefix = resource.path().trim_end_matches('/');
    let path = requested.path();
    path.trim_end_matches('/') == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn well_known_uris_put_the_path_after_the_suffix_then_try_the_root() {
        let urls: Vec<String> = resource_metadata_urls(&url("https://mcp.example/public/mcp?x=1"))
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            urls,
            [
                "https://mcp.example/.well-known/oauth-protected-resource/public/mcp",
                "https://mcp.example/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            resource_metadata_urls(&url("https://mcp.example/")).len(),
            1
        );
    }

    #[test]
    fn a_resource_identifies_its_own_url_and_the_paths_below_it() {
        let requested = url("https://mcp.example/api/mcp");
        for resource in [
            "https://mcp.example/api/mcp",
            "https://mcp.example/api/mcp/",
            "https://mcp.example/api",
            "https://mcp.example",
            "https://mcp.example:443/",
        ] {
            assert!(identifies(resource, &requested), "{resource}");
        }
        for resource in [
            "https://mcp.example/ap",
            "https://mcp.example/api/mcp/more",
            "https://other.example/api/mcp",
            "http://mcp.example/api/mcp",
            "https://mcp.example:8443/api/mcp",
            "https://mcp.example/api/mcp#x",
            "not a url",
        ] {
            assert!(!identifies(resource, &requested), "{resource}");
        }
    }

    fn resource(challenge_scope: Option<&str>, supported: &[&str]) -> ProtectedResource {
        ProtectedResource {
            url: url("https://mcp.example/mcp"),
            metadata_url: url("https://mcp.example/.well-known/oauth-protected-resource"),
            metadata: ResourceMetadata {
                resource: "https://mcp.example/mcp".into(),
                authorization_servers: Vec::new(),
                scopes_supported: supported.iter().map(|s| (*s).to_owned()).collect(),
                resource_name: None,
                extra: Map::new(),
            },
            challenge_scope: challenge_scope.map(str::to_owned),
        }
    }

    #[test]
    fn the_scope_comes_from_the_challenge_then_scopes_supported_else_none() {
        assert_eq!(
            resource(Some("files:read"), &["a", "b"]).scope().as_deref(),
            Some("files:read")
        );
        assert_eq!(resource(None, &["a", "b"]).scope().as_deref(), Some("a b"));
        assert_eq!(resource(None, &[]).scope(), None);
        assert!(resource(None, &[]).issuer().is_err());
    }
}

//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that
//! tells a client which authorization servers issue tokens for this
//! resource and how to present them, and the route that serves it.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ephemera_proto::jose::ALLOWED_ALGS;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::config::IntrospectionConfig;

/// The well-known path segment of RFC 9728 §3.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata of RFC 9728 §2, the fields Ephemera fills, with anything
/// else in `extra`. Empty lists and absent values are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier: an https URL without fragment (RFC 9728
    /// §1.2), the one clients use as RFC 8707 `resource` and expect in the
    /// metadata (§3.3).
    pub resource: String,
    /// Issuers of the authorization servers whose tokens are accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// How a token may be sent; the layer reads only the header.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bearer_methods_supported: Vec<String>,
    /// A human-readable name for the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// Whether certificate-bound tokens (RFC 8705) are supported.
    #[serde(default)]
    pub tls_client_certificate_bound_access_tokens: bool,
    /// The JWS algorithms accepted for DPoP proofs (RFC 9449).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Whether every token must be DPoP-bound.
    #[serde(default)]
    pub dpop_bound_access_tokens_required: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ProtectedResourceMetadata {
    /// Metadata for `resource`, with tokens from `authorization_server`
    /// sent in the `Authorization` header.
    pub fn new(resource: impl Into<String>, authorization_server: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            authorization_servers: vec![authorization_server.into()],
            bearer_methods_supported: vec!["header".into()],
            ..Self::default()
        }
    }

    /// Metadata that says what a layer with `config` does: its issuer, its
    /// required scopes, the DPoP algorithms when DPoP is on, and
    /// certificate-bound tokens when the `Client-Cert` header is trusted
    /// (set `tls_client_certificate_bound_access_tokens` yourself when your
    /// TLS acceptor inserts [`ClientCertificate`](crate::ClientCertificate)).
    pub fn for_config(resource: impl Into<String>, config: &IntrospectionConfig) -> Self {
        let mut metadata = Self::new(resource, config.issuer.clone());
        metadata.scopes_supported = config.required_scopes.clone();
        if config.dpop_enabled() {
            metadata.dpop_signing_alg_values_supported =
                ALLOWED_ALGS.iter().map(|&alg| alg.to_owned()).collect();
        }
        metadata.tls_client_certificate_bound_access_tokens = config.trust_client_cert_header;
        metadata
    }

    /// Where this metadata lives (RFC 9728 §3.1): the well-known segment
    /// goes between the host and the resource's path, whose trailing `/`
    /// is dropped. `https://api.example/v1` ->
    /// `https://api.example/.well-known/oauth-protected-resource/v1`.
    /// `None` when `resource` is not a URL.
    pub fn metadata_url(&self) -> Option<String> {
        let mut url = Url::parse(&self.resource).ok()?;
        if url.cannot_be_a_base() {
            return None;
        }
        let path = format!("{WELL_KNOWN}{}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.set_fragment(None);
        Some(url.into())
    }

    /// The path [`router`] serves the metadata at: the path of
    /// [`metadata_url`](Self::metadata_url), or the bare well-known path
    /// when the resource is not a URL.
    pub fn well_known_path(&self) -> String {
        match Url::parse(&self.resource) {
            Ok(url) if !url.cannot_be_a_base() => {
                format!("{WELL_KNOWN}{}", url.path().trim_end_matches('/'))
            }
            _ => WELL_KNOWN.to_owned(),
        }
    }
}

impl IntoResponse for ProtectedResourceMetadata {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

/// A router answering `GET` on [`well_known_path`](ProtectedResourceMetadata::well_known_path)
/// with the metadata as JSON. Merge it into the app *after* adding the
/// [`IntrospectionLayer`](crate::IntrospectionLayer), so the metadata is
/// public: `Router::new().route(…).layer(layer).merge(router(metadata))`.
pub fn router(metadata: ProtectedResourceMetadata) -> Router {
    let path = metadata.well_known_path();
    let metadata = Arc::new(metadata);
    Router::new().route(
        &path,
        get(move || {
            let metadata = metadata.clone();
            async move { Json(ProtectedResourceMetadata::clone(&metadata)) }
        }),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_metadata_url_inserts_the_well_known_segment_before_the_path() {
        let at = |resource: &str| ProtectedResourceMetadata::new(resource, "https://as");
        assert_eq!(
            at("https://api.example").metadata_url().as_deref(),
            Some("https://api.example/.well-known/oauth-protected-resource")
        );
        assert_eq!(
            at("https://api.example/v1/").metadata_url().as_deref(),
            Some("https://api.example/.well-known/oauth-protected-resource/v1")
        );
        assert_eq!(
            at("https://api.example:8443/v1").well_known_path(),
            "/.well-known/oauth-protected-resource/v1"
        );
        assert_eq!(at("not a url").metadata_url(), None);
        assert_eq!(
            at("not a url").well_known_path(),
            "/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn the_json_leaves_out_what_is_not_set() {
        let metadata = ProtectedResourceMetadata::new("https://api.example", "https://as");
        assert_eq!(
            serde_json::to_value(&metadata).unwrap(),
            json!({
                "resource": "https://api.example",
                "authorization_servers": ["https://as"],
                "bearer_methods_supported": ["header"],
                "tls_client_certificate_bound_access_tokens": false,
                "dpop_bound_access_tokens_required": false,
            })
        );
    }

    #[test]
    fn metadata_for_a_config_says_what_the_layer_accepts() {
        let config = IntrospectionConfig::new("https://as/introspect", "rs", "s", "https://as")
            .require_scope("read")
            .public_base_url(Url::parse("https://api.example").unwrap());
        let metadata = ProtectedResourceMetadata::for_config("https://api.example", &config);
        assert_eq!(metadata.authorization_servers, ["https://as"]);
        assert_eq!(metadata.scopes_supported, ["read"]);
        assert!(metadata
            .dpop_signing_alg_values_supported
            .contains(&"ES256".to_owned()));
        assert!(!metadata.tls_client_certificate_bound_access_tokens);
    }
}

//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
//! the client model MCP uses): a `client_id` that is an https URL names a JSON
//! document of RFC 7591 client metadata, which the server fetches and checks.
//!
//! This is what the services see: a [`DocumentSource`] that turns a URL
//! `client_id` into a [`FetchedDocument`] or a [`DocumentError`]. The rules
//! are in `ephemera_proto::client_document`; the fetcher that applies them
//! over the network, with its SSRF guard, cache and limits, is the adapter
//! in [`crate::documents`].

use async_trait::async_trait;
use ephemera_proto::metadata::ClientMetadata;
use serde_json::Value;

use crate::model::Timestamp;

/// Resolves URL `client_id`s into their checked documents.
#[async_trait]
pub trait DocumentSource: Send + Sync + 'static {
    /// The document `client_id` names, checked, as of `now`.
    async fn fetch(
        &self,
        client_id: &str,
        now: Timestamp,
    ) -> Result<FetchedDocument, DocumentError>;
}

/// A metadata document that was fetched and passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedDocument {
    /// The validated metadata. An absent `token_endpoint_auth_method` means
    /// `none`, as for pushed clients: a public document can hold no secret.
    pub metadata: ClientMetadata,
    /// The document as fetched.
    pub json: Value,
    /// The URL's host, with the port when it is not 443: the origin the
    /// consent page shows as verified.
    pub host: String,
    /// The JWK Set fetched from the document's `jwks_uri`, checked.
    pub keys: Option<Value>,
}

/// Why a URL `client_id` could not be resolved. Every message is safe to show
/// the client's developer: it names nothing but what the client gave. At the
/// authorization endpoint none of these can be redirected (the redirect URIs
/// are unknown), so the user sees an error page; at back-channel endpoints
/// they are `invalid_client`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// This deployment does not accept URL `client_id`s.
    #[error("this server does not accept client ID metadata documents")]
    Disabled,
    /// The URL breaks the draft's "Client Identifier URL" rules.
    #[error("client_id is not a valid client ID metadata document URL: {0}")]
    InvalidUrl(String),
    /// The host is, or resolves only to, addresses the server never fetches.
    #[error("{0}")]
    Forbidden(String),
    /// Anything that kept the document from arriving: a connection
    /// failure, a timeout, a status other than 200, a redirect, a host name
    /// resolving only to addresses the server never fetches from, or the
    /// host's fetch limit. One description for all: which one is logged.
    #[error("{UNREACHABLE}")]
    Unreachable,
    /// The document's `jwks_uri` could not be fetched; as with the document,
    /// which failure it was is only logged.
    #[error("{KEYS_UNREACHABLE}")]
    KeysUnreachable,
    /// The document is larger than the policy allows.
    #[error("the client metadata document is too large")]
    TooLarge,
    /// The body is not a JSON object, or not acceptable client metadata.
    #[error("invalid client metadata document: {0}")]
    Invalid(String),
}

/// What the client is told when the document could not be fetched.
const UNREACHABLE: &str = "the client metadata document could not be fetched from the client_id URL: it must answer 200 OK with the document itself (no redirect), from a public address, in time";

/// What the client is told when the keys its document names could not be fetched.
const KEYS_UNREACHABLE: &str = "the keys at the client metadata document's jwks_uri could not be fetched: it must answer 200 OK with a JWK Set (no redirect), from a public address, in time";

//! Entity statements (OpenID Federation 1.0 §9, §8.1) fetched by the same
//! fetcher as metadata documents: the URL rules, the address guard (and its
//! allow-list), the extra roots, no redirects, the time bounds and the
//! per-host limit all apply. A statement is compact JWS text served as
//! `application/entity-statement+jwt`, at most [`MAX_STATEMENT_BYTES`].
//! Statements are not cached here: the resolved chain is, until its
//! earliest `exp` (`service/federation.rs`).

use async_trait::async_trait;
use ephemera_proto::federation::ENTITY_STATEMENT_MEDIA_TYPE;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;

use super::{check_client_id, fetch_error, DocumentFetcher, Download};
use crate::model::Timestamp;
use crate::service::federation::{StatementError, StatementSource};
use crate::service::metadata_document::DocumentError;

/// The largest entity statement read: policies and RSA keys make them
/// larger than metadata documents.
pub const MAX_STATEMENT_BYTES: usize = 64 * 1024;

#[async_trait]
impl StatementSource for DocumentFetcher {
    async fn fetch_statement(&self, url: &str, now: Timestamp) -> Result<String, StatementError> {
        let (parsed, _) = check_client_id(url, &self.allow_hosts).map_err(|e| match e {
            DocumentError::InvalidUrl(m) | DocumentError::Forbidden(m) => {
                StatementError::Refused(url.to_owned(), m)
            }
            _ => StatementError::Unreachable(url.to_owned()),
        })?;
        if !self.within_host_limit(&parsed, now) {
            return Err(StatementError::Unreachable(url.to_owned()));
        }
        let fetch = async {
            let mut response = self
                .client
                .get(parsed)
                .header(ACCEPT, ENTITY_STATEMENT_MEDIA_TYPE)
                .send()
                .await
                .map_err(fetch_error)?;
            if response.status() != StatusCode::OK {
                tracing::info!(url, status = %response.status(), "an entity statement URL answered a status other than 200");
                return Err(Download::Unreachable);
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let essence = content_type.split(';').next().unwrap_or_default().trim();
            if !essence.eq_ignore_ascii_case(ENTITY_STATEMENT_MEDIA_TYPE) {
                tracing::info!(
                    url,
                    content_type,
                    "an entity statement URL answered another media type"
                );
                return Err(Download::NotJsonMediaType);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
                if body.len() + chunk.len() > MAX_STATEMENT_BYTES {
                    return Err(Download::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            String::from_utf8(body)
                .map(|s| s.trim().to_owned())
                .map_err(|_| Download::NotJson)
        };
        match tokio::time::timeout(self.policy.total_timeout, fetch).await {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(Download::TooLarge)) => Err(StatementError::TooLarge(url.to_owned())),
            Ok(Err(_)) | Err(_) => Err(StatementError::Unreachable(url.to_owned())),
        }
    }
}

//! The call to the introspection endpoint (RFC 7662 §2.1).

use std::time::Duration;

use axum::http::{header, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ephemera_proto::wire::IntrospectionResponse;

use crate::config::IntrospectionConfig;

/// Why no introspection answer could be had. Logged, never sent: the
/// client sees a 503.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectionError {
    #[error("introspection request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("introspection endpoint answered HTTP {0}")]
    Status(StatusCode),
}

/// Sends tokens to the introspection endpoint as a confidential client.
pub struct Introspector {
    http: reqwest::Client,
    endpoint: String,
    authorization: String,
}

impl Introspector {
    pub fn new(http: reqwest::Client, config: &IntrospectionConfig) -> Self {
        Self {
            http,
            endpoint: config.introspection_endpoint.clone(),
            authorization: basic_authorization(&config.client_id, &config.client_secret),
        }
    }

    pub async fn introspect(
        &self,
        token: &str,
    ) -> Result<IntrospectionResponse, IntrospectionError> {
        let response = self
            .http
            .post(&self.endpoint)
            .header(header::AUTHORIZATION, &self.authorization)
            .header(header::ACCEPT, "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(IntrospectionError::Status(status));
        }
        Ok(response.json().await?)
    }
}

/// The HTTP client [`IntrospectionLayer::new`](crate::IntrospectionLayer::new)
/// uses: no redirects (credentials must not follow one) and a 10 second
/// timeout, after which the request gets a 503 rather than hanging.
pub fn default_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// `client_secret_basic`: both parts form-urlencoded before they are joined
/// (RFC 6749 §2.3.1).
fn basic_authorization(client_id: &str, secret: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_urlencoded_first() {
        assert_eq!(
            basic_authorization("rs:1", "a b"),
            format!("Basic {}", STANDARD.encode("rs%3A1:a+b"))
        );
    }
}

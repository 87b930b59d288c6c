//! A small resource server protected by Ephemera: `GET /api/whoami`
//! behind [`IntrospectionLayer`] answers with the request's
//! [`TokenContext`] as JSON, and `GET /.well-known/oauth-protected-resource`
//! (RFC 9728) tells clients which authorization server to ask.
//!
//! Configuration, from the environment:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `EPHEMERA_RS_ISSUER` | the authorization server's issuer; its introspection endpoint is discovered from RFC 8414 metadata | `http://127.0.0.1:8080` |
//! | `EPHEMERA_RS_CLIENT_ID` | this resource server's client_id at the authorization server | `rs` |
//! | `EPHEMERA_RS_CLIENT_SECRET` | its secret | required |
//! | `EPHEMERA_RS_LISTEN` | the address to listen on | `127.0.0.1:9090` |
//! | `EPHEMERA_RS_PUBLIC_URL` | the URL clients reach this server at: the RFC 9728 resource identifier and the base of DPoP `htu` | `http://<listen>` |
//! | `EPHEMERA_RS_AUDIENCE` | when set, tokens' `aud` must contain it | unset |
//! | `EPHEMERA_RS_VALIDATE_JWT` | `1`: JWT access tokens (RFC 9068) are validated here with the server's keys, not introspected (needs `EPHEMERA_RS_AUDIENCE`) | unset |
//!
//! ```text
//! EPHEMERA_RS_CLIENT_SECRET=… cargo run -p ephemera-resource --example protected_api
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:9090/api/whoami
//! ```

use std::error::Error;

use axum::routing::get;
use axum::{Json, Router};
use ephemera_proto::wire::AuthorizationServerMetadata;
use ephemera_resource::{
    metadata, IntrospectionConfig, IntrospectionLayer, ProtectedResourceMetadata, TokenContext,
};
use url::Url;

async fn whoami(ctx: TokenContext) -> Json<TokenContext> {
    Json(ctx)
}

/// The example API and the address to listen on, configured by `env`
/// (the process environment in `main`; Ephemera's end-to-end tests run this
/// same code with their own values).
pub async fn build(
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Router, String), Box<dyn Error>> {
    let var = |name: &str, default: String| env(name).filter(|v| !v.is_empty()).unwrap_or(default);
    // Read and check everything before serving (fail at start-up).
    let issuer = var("EPHEMERA_RS_ISSUER", "http://127.0.0.1:8080".into());
    let issuer = issuer.trim_end_matches('/').to_owned();
    let client_id = var("EPHEMERA_RS_CLIENT_ID", "rs".into());
    let client_secret =
        env("EPHEMERA_RS_CLIENT_SECRET").ok_or("EPHEMERA_RS_CLIENT_SECRET is required")?;
    let listen = var("EPHEMERA_RS_LISTEN", "127.0.0.1:9090".into());
    let public_url = var("EPHEMERA_RS_PUBLIC_URL", format!("http://{listen}"));
    let resource = public_url.trim_end_matches('/').to_owned();
    let public_base_url = Url::parse(&resource)
        .map_err(|e| format!("EPHEMERA_RS_PUBLIC_URL `{public_url}` is not a URL: {e}"))?;

    // RFC 8414 §3: the introspection endpoint comes from the issuer's metadata.
    let discovery = format!("{issuer}/.well-known/oauth-authorization-server");
    let server: AuthorizationServerMetadata = reqwest::get(&discovery)
        .await?
        .error_for_status()?
        .json()
        .await?;
    let introspection_endpoint = server
        .introspection_endpoint
        .ok_or_else(|| format!("{discovery} names no introspection_endpoint"))?;

    let mut config =
        IntrospectionConfig::new(introspection_endpoint, client_id, client_secret, issuer)
            .public_base_url(public_base_url);
    if let Some(audience) = env("EPHEMERA_RS_AUDIENCE") {
        config = config.audience(audience);
    }
    if env("EPHEMERA_RS_VALIDATE_JWT").as_deref() == Some("1") {
        if config.audience.is_none() {
            return Err("EPHEMERA_RS_VALIDATE_JWT needs EPHEMERA_RS_AUDIENCE: a JWT's `aud` is checked against it".into());
        }
        config = config.validate_jwt_locally();
    }
    let mut resource_metadata = ProtectedResourceMetadata::for_config(&resource, &config);
    resource_metadata.resource_name = Some("Ephemera example API".into());
    if let Some(url) = resource_metadata.metadata_url() {
        config = config.resource_metadata(url);
    }

    // The metadata route is merged after the layer, so it needs no token.
    let app = Router::new()
        .route("/api/whoami", get(whoami))
        .layer(IntrospectionLayer::new(config))
        .merge(metadata::router(resource_metadata));
    Ok((app, listen))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let (app, listen) = build(|name| std::env::var(name).ok()).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "protected API on http://{}/api/whoami",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

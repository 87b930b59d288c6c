//! The client side of Ephemera: an OAuth 2 client for Pushed Client
//! Registration (draft-richer-oauth-pushed-client-registration), with PAR
//! (RFC 9126), PKCE S256 (RFC 7636), `iss` checks (RFC 9207), refresh,
//! revocation (RFC 7009) and introspection (RFC 7662).
//!
//! | module | owns |
//! |---|---|
//! | [`error`] | [`Error`]: OAuth error bodies, HTTP failures, protocol violations |
//! | [`identity`] | [`ClientIdentity`]: pushed, public or confidential, and how each authenticates (RFC 6749 §2.3.1) |
//! | [`server`] | [`AuthorizationServer`]: discovery (RFC 8414) and every back-channel call |
//! | [`authorize`] | [`AuthorizationRequest`] -> [`PendingAuthorization`]: the PAR form, `state`, PKCE, the authorization URL and the checks on the redirect back |
//! | [`loopback`] | [`LoopbackRedirect`]: a one-shot `http://127.0.0.1:PORT/callback` listener (RFC 8252 §7.3) |
//!
//! A pushed client from start to finish:
//!
//! ```no_run
//! use ephemera_client::{AuthorizationRequest, AuthorizationServer, ClientIdentity, LoopbackRedirect};
//!
//! # async fn run() -> Result<(), ephemera_client::Error> {
//! let server = AuthorizationServer::discover("http://127.0.0.1:8080").await?;
//! let loopback = LoopbackRedirect::bind().await?;
//! let client = ClientIdentity::pushed(serde_json::json!({
//!     "client_name": "My agent",
//!     "redirect_uris": [loopback.redirect_uri()],
//!     "token_endpoint_auth_method": "none",
//! }));
//! let request = AuthorizationRequest::new(loopback.redirect_uri()).scope("read");
//! let pending = server.push(&client, request).await?;
//! println!("open {}", pending.authorization_url);
//! let callback = loopback.wait_for_callback().await?;
//! let code = pending.code_from_callback(&callback, server.issuer())?;
//! let tokens = server.exchange_code(&pending, &code).await?;
//! if let Some(refresh_token) = &tokens.refresh_token {
//!     // Refresh tokens rotate: keep the new one.
//!     let _tokens = server.refresh(&client, refresh_token, None).await?;
//! }
//! # Ok(())
//! # }
//! ```

pub mod authorize;
pub mod error;
pub mod identity;
pub mod loopback;
pub mod server;

pub use authorize::{AuthorizationRequest, PendingAuthorization};
pub use ephemera_proto::wire::{AuthorizationServerMetadata, IntrospectionResponse, TokenResponse};
pub use error::{Error, Result};
pub use identity::{ClientIdentity, SecretMethod};
pub use loopback::LoopbackRedirect;
pub use server::AuthorizationServer;
pub use url::Url;

//! The client side of Ephemera: an OAuth 2 client for Pushed Client
//! Registration (draft-richer-oauth-pushed-client-registration), with PAR
//! (RFC 9126), PKCE S256 (RFC 7636), `iss` checks (RFC 9207), DPoP
//! (RFC 9449), `private_key_jwt` (RFC 7523), mutual TLS (RFC 8705), refresh,
//! revocation (RFC 7009), introspection (RFC 7662), token exchange
//! (RFC 8693) and JWT bearer grants (RFC 7523 §2.1); and a complete MCP
//! client of any authorization server: discovery from a resource's `401`
//! (RFC 9728, RFC 8414, OpenID Connect Discovery), every MCP way to
//! register, the authorization request with or without PAR, resource
//! indicators (RFC 8707), step-up on `insufficient_scope` and tokens kept
//! per issuer and resource (see [MCP](#mcp) below), with MCP's
//! Enterprise-Managed Authorization and workload identity extensions (see
//! [token exchange and JWT bearer grants](#token-exchange-and-jwt-bearer-grants)).
//!
//! | module | owns |
//! |---|---|
//! | [`error`] | [`Error`]: OAuth error bodies, HTTP failures, key failures, protocol violations |
//! | [`identity`] | [`ClientIdentity`]: pushed, public, secret, `private_key_jwt` or `self_signed_tls_client_auth`, how each authenticates (RFC 6749 §2.3.1, RFC 7523 §2.2, RFC 8705 §2.2), and the DPoP key it proves |
//! | [`keys`] | [`ClientKey`]: the ES256 key of a `private_key_jwt` client, its `jwks` and client assertions; the signing shared with [`dpop`] |
//! | [`dpop`] | [`DpopKey`]: DPoP proofs (RFC 9449 §4) and the server's `DPoP-Nonce` (§8, §9) |
//! | [`http`] | [`http_client`] and [`HttpClientOptions`]: the rustls HTTP client every call uses, with extra roots and the client certificate of mutual TLS (RFC 8705) |
//! | [`server`] | [`AuthorizationServer`]: discovery (RFC 8414) and every back-channel call, each grant among them (the JWT bearer grant too), with DPoP proofs and the one `use_dpop_nonce` retry |
//! | [`exchange`] | [`TokenExchangeRequest`], [`TokenType`] and [`TokenExchangeResponse`]: token exchange (RFC 8693), an ID-JAG's (SEP-990) among others |
//! | [`authorize`] | [`AuthorizationRequest`] -> [`PendingAuthorization`]: the PAR form, `state`, PKCE, the authorization URL and the checks on the redirect back |
//! | [`access`] | [`AccessToken`]: presenting a token at a resource server, `Bearer` or `DPoP` (RFC 6750 §2.1, RFC 9449 §7), certificate-bound over the same mutual TLS client (RFC 8705 §3) |
//! | [`loopback`] | [`LoopbackRedirect`]: an `http://127.0.0.1:PORT/callback` listener (RFC 8252 §7.3) |
//! | [`resource`] | [`ProtectedResource`]: discovery from a resource's `401` through its metadata (RFC 9728) to the issuer; the scope to ask for |
//! | [`challenge`] | [`Challenge`]: `WWW-Authenticate` parsing (RFC 9110 §11.6.1), `insufficient_scope` and the step-up scope |
//! | [`registration`] | [`ClientRegistration`] -> [`RegisteredClient`]: pre-registered, metadata document, pushed or Dynamic Client Registration (RFC 7591), in the MCP order |
//! | [`mcp`] | [`McpSession`]: JSON-RPC over MCP's Streamable HTTP transport (the handshake, `Mcp-Session-Id`, JSON or SSE answers, the stateless draft's `_meta`), a `401`/`403` handed back |
//! | [`store`] | [`TokenStore`] and [`MemoryTokenStore`]: tokens per issuer and resource |
//!
//! **Where the keys go.** A key that authenticates the client
//! ([`ClientKey`]) and a key the tokens are bound to ([`DpopKey`]) both live
//! in the [`ClientIdentity`]. The identity that pushes the request is kept in
//! the [`PendingAuthorization`] that redeems the code and is what
//! [`refresh`](AuthorizationServer::refresh) takes, so PAR, token and
//! refresh requests all carry the same proofs without the caller repeating
//! them. The [`AuthorizationServer`] remembers the server's latest
//! `DPoP-Nonce`; an [`AccessToken`] remembers each resource server's.
//! The one exception is a client certificate (mutual TLS): it belongs to the
//! TLS connection, so it lives in the HTTP client the [`AuthorizationServer`]
//! is made with (see [mutual TLS](#mutual-tls) below).
//!
//! A pushed client with a DPoP key and its own `private_key_jwt` key, from
//! start to finish:
//!
//! ```no_run
//! use ephemera_client::{
//!     AccessToken, AuthorizationRequest, AuthorizationServer, ClientIdentity, ClientKey,
//!     DpopKey, LoopbackRedirect,
//! };
//!
//! # async fn run() -> Result<(), ephemera_client::Error> {
//! let server = AuthorizationServer::discover("http://127.0.0.1:8080").await?;
//! let loopback = LoopbackRedirect::bind().await?;
//! let dpop = DpopKey::generate();
//! // `jwks` and `token_endpoint_auth_method: private_key_jwt` are added to
//! // the metadata; `ClientIdentity::pushed` alone is a public pushed client.
//! let client = ClientIdentity::pushed_with_key(
//!     serde_json::json!({
//!         "client_name": "My agent",
//!         "redirect_uris": [loopback.redirect_uri()],
//!     }),
//!     ClientKey::generate(),
//! )
//! .with_dpop(dpop.clone());
//! let request = AuthorizationRequest::new(loopback.redirect_uri()).scope("read");
//! let pending = server.push(&client, request).await?;
//! println!("open {}", pending.authorization_url);
//! let callback = loopback.wait_for_callback().await?;
//! let code = pending.code_from_callback(&callback, server.issuer())?;
//! // `token_type` is `DPoP`: the tokens are bound to `dpop`.
//! let tokens = server.exchange_code(&pending, &code).await?;
//!
//! // At a resource server: `Authorization: DPoP …` plus a proof with `ath`.
//! let token = AccessToken::from_response(&tokens, Some(&dpop))?;
//! let response = token
//!     .send_with_nonce_retry(server.http().get("https://api.example/items"))
//!     .await?;
//! println!("{}", response.status());
//!
//! if let Some(refresh_token) = &tokens.refresh_token {
//!     // The same identity: the refresh is proved by the same keys.
//!     // Refresh tokens rotate: keep the new one.
//!     let _tokens = server.refresh(&client, refresh_token, None).await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # MCP
//!
//! An MCP client starts from nothing but the resource's URL, and meets
//! authorization servers it has never seen (MCP 2025-11-25,
//! "Authorization"). The steps, each its own call:
//!
//! 1. [`ProtectedResource::discover`]: the resource's `401` names its
//!    metadata (RFC 9728 §5.1; else the well-known URIs are tried), whose
//!    `resource` must identify the URL; the challenge's `scope`, else the
//!    metadata's `scopes_supported`, is the [`scope`](ProtectedResource::scope)
//!    to ask for.
//! 2. [`ProtectedResource::authorization_server`]: the first of
//!    `authorization_servers`, its metadata from RFC 8414 or OpenID Connect
//!    Discovery in the MCP order ([`server::metadata_urls`]), the issuer
//!    checked (RFC 8414 §3.3).
//! 3. [`ClientRegistration::register`]: a pre-registered `client_id`, else
//!    a Client ID Metadata Document URL, else Pushed Client Registration,
//!    else Dynamic Client Registration (RFC 7591), as the server allows.
//! 4. [`AuthorizationServer::begin`]: PAR where the server has it, else the
//!    whole request in the URL; PKCE S256 always (a server not listing it
//!    is refused), `resource` (RFC 8707) on it and on the token request.
//! 5. [`PendingAuthorization::code`]: `state`, and `iss` (RFC 9207) where
//!    the server promises it; then [`AuthorizationServer::exchange_code`].
//! 6. Tokens go in a [`TokenStore`] under their issuer and resource. A
//!    later `403` with `error="insufficient_scope"`
//!    ([`challenge::insufficient_scope`]) starts again at step 4 asking for
//!    [`challenge::scope_union`] of the old and the new scope.
//!
//! 7. [`McpSession`] speaks MCP's Streamable HTTP with the token and hands
//!    a `401` or `403` back for steps 1 to 6.
//!
//! `examples/mcp_login.rs` runs them all
//! (`cargo run -p ephemera-client --example mcp_login -- <mcp-url>`), and
//! the MCP conformance suite's client scenarios run it (`tests/api/conformance.rs`).
//!
//! ```no_run
//! use ephemera_client::challenge::{insufficient_scope, scope_union};
//! use ephemera_client::{
//!     AccessToken, AuthorizationRequest, ClientRegistration, LoopbackRedirect,
//!     MemoryTokenStore, ProtectedResource, StoredTokens, TokenKey, TokenStore,
//! };
//!
//! # async fn run() -> Result<(), ephemera_client::Error> {
//! let url = "https://mcp.example/mcp";
//! let http = ephemera_client::server::default_http_client();
//! let resource = ProtectedResource::discover(&http, url).await?;
//! let server = resource.authorization_server(&http).await?;
//! let loopback = LoopbackRedirect::bind().await?;
//! let client = ClientRegistration::new(serde_json::json!({
//!     "client_name": "My agent",
//!     "redirect_uris": [loopback.redirect_uri()],
//!     "grant_types": ["authorization_code", "refresh_token"],
//!     "token_endpoint_auth_method": "none",
//! }))
//! .register(&server)
//! .await?;
//! let request = AuthorizationRequest::new(loopback.redirect_uri())
//!     .maybe_scope(resource.scope())
//!     .resource(resource.resource());
//! let pending = server.begin(&client.identity, request).await?;
//! println!("open {}", pending.authorization_url);
//! let code = pending.code(&loopback.wait_for_callback().await?)?;
//! let tokens = server.exchange_code(&pending, &code).await?;
//!
//! let store = MemoryTokenStore::new();
//! let key = TokenKey::new(server.issuer(), resource.resource());
//! let now = 0; // seconds since the Unix epoch
//! store.save(&key, StoredTokens::new(&pending.client_id, tokens.clone(), pending.scope.as_deref(), now))?;
//! let response = AccessToken::from_response(&tokens, None)?
//!     .send_with_nonce_retry(http.get(url))
//!     .await?;
//! if let Some(needed) = insufficient_scope(response.status().as_u16(), response.headers()) {
//!     let scope = scope_union(pending.scope.as_deref(), &needed);
//!     // … step 4 again with `scope` …
//! #   drop(scope);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Token exchange and JWT bearer grants
//!
//! [`AuthorizationServer::token_exchange`] sends a [`TokenExchangeRequest`]
//! (RFC 8693 §2.1: the subject token and its [`TokenType`], an actor token,
//! the type asked for, `audience`, `resource`, `scope`) and reads a
//! [`TokenExchangeResponse`] (§2.2.1: what was issued, and a `token_type`
//! that is `N_A` for a token that is not an access token).
//! [`AuthorizationServer::jwt_bearer`] presents a JWT another party issued
//! as an authorization grant (RFC 7523 §2.1). Both authenticate the client
//! as every other token request does (`client_secret_basic` or `_post`,
//! `private_key_jwt`, a certificate) and send a DPoP proof when the
//! identity has a key; a refusal is an [`Error::OAuth`].
//!
//! MCP's Enterprise-Managed Authorization (SEP-990) chains them: the user's
//! ID token from the enterprise identity provider is exchanged there for
//! an ID-JAG ([`TokenExchangeRequest::id_jag`]) naming the MCP server's
//! authorization server and the MCP server, and the ID-JAG is presented at
//! that authorization server, which issues the access token:
//!
//! ```no_run
//! use ephemera_client::{
//!     AccessToken, AuthorizationServer, ClientIdentity, SecretMethod, TokenExchangeRequest,
//!     TokenType,
//! };
//!
//! # async fn run(id_token: &str) -> Result<(), ephemera_client::Error> {
//! let idp = AuthorizationServer::discover("https://idp.example").await?;
//! let server = AuthorizationServer::discover("https://as.example").await?;
//! let mcp = "https://mcp.example/mcp";
//! // The client as the identity provider knows it, then as the MCP
//! // server's authorization server knows it.
//! let at_idp = ClientIdentity::public("agent-at-idp");
//! let at_server = ClientIdentity::confidential("agent", "secret", SecretMethod::Basic);
//!
//! let request = TokenExchangeRequest::id_jag(id_token, server.issuer(), mcp);
//! let exchanged = idp.token_exchange(&at_idp, &request).await?;
//! let id_jag = exchanged.token_of_type(&TokenType::ID_JAG)?;
//! let tokens = server
//!     .jwt_bearer(&at_server, id_jag, None, &[mcp.to_owned()])
//!     .await?;
//! let token = AccessToken::from_response(&tokens, None)?;
//! # drop(token);
//! # Ok(())
//! # }
//! ```
//!
//! A workload (MCP's workload identity federation, SEP-1933) presents the
//! JWT its platform issued it the same way:
//! `server.jwt_bearer(&client, &platform_jwt, scope, &resources)`.
//!
//! A service that a user called with an access token (an MCP server, say)
//! exchanges that token for one to a resource behind it, here bound to the
//! service's own DPoP key:
//!
//! ```no_run
//! use ephemera_client::{
//!     AccessToken, AuthorizationServer, ClientIdentity, DpopKey, SecretMethod,
//!     TokenExchangeRequest, TokenType,
//! };
//!
//! # async fn run(users_token: &str) -> Result<(), ephemera_client::Error> {
//! let server = AuthorizationServer::discover("https://as.example").await?;
//! let dpop = DpopKey::generate();
//! let service = ClientIdentity::confidential("mcp-server", "secret", SecretMethod::Basic)
//!     .with_dpop(dpop.clone());
//! let request = TokenExchangeRequest::new(users_token, TokenType::ACCESS_TOKEN)
//!     .requested_token_type(TokenType::ACCESS_TOKEN)
//!     .resource("https://downstream.example/api")
//!     .scope("read");
//! let exchanged = server.token_exchange(&service, &request).await?;
//! // `token_type` is `DPoP`: present it with a proof by the same key.
//! let token = AccessToken::from_exchange(&exchanged, Some(&dpop))?;
//! let response = token
//!     .send_with_nonce_retry(server.http().get("https://downstream.example/api/items"))
//!     .await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```
//!
//! # Mutual TLS
//!
//! [`AuthorizationServer::discover`] speaks https with rustls and the
//! Mozilla roots. For mutual TLS (RFC 8705) make the HTTP client yourself
//! with [`http_client`]: it presents the client certificate on every
//! connection. A pushed client that authenticates with a self-signed
//! certificate (`self_signed_tls_client_auth`, §2.2) pushes it in its
//! `jwks` with [`ClientIdentity::pushed_with_certificate`]; with
//! `"tls_client_certificate_bound_access_tokens": true` (§3) its access
//! tokens are bound to the certificate too, and work at a resource server
//! only over the same client ([`AuthorizationServer::http`]).
//!
//! ```no_run
//! use ephemera_client::{
//!     http_client, AccessToken, AuthorizationRequest, AuthorizationServer, ClientIdentity,
//!     HttpClientOptions,
//! };
//!
//! # async fn run(
//! #     certificate_der: Vec<u8>,
//! #     public_jwk: serde_json::Value,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! // agent.pem: the self-signed certificate and its PKCS #8 private key.
//! let http = http_client(&HttpClientOptions {
//!     client_certificate_pem: Some(std::fs::read("agent.pem")?),
//!     ..HttpClientOptions::default()
//! })?;
//! let server = AuthorizationServer::discover_with(http, "https://as.example").await?;
//! // `jwks` (the JWK with the certificate as `x5c`) and
//! // `token_endpoint_auth_method: self_signed_tls_client_auth` are added;
//! // requests carry only `client_id`, the handshake proves the rest.
//! let client = ClientIdentity::pushed_with_certificate(
//!     serde_json::json!({
//!         "client_name": "My agent",
//!         "redirect_uris": ["http://127.0.0.1:8910/callback"],
//!         "tls_client_certificate_bound_access_tokens": true,
//!     }),
//!     &certificate_der,
//!     public_jwk,
//! );
//! let request = AuthorizationRequest::new("http://127.0.0.1:8910/callback");
//! let pending = server.push(&client, request).await?;
//! # let callback = String::new();
//! // … the user approves; the loopback listener gets the callback …
//! let code = pending.code_from_callback(&callback, server.issuer())?;
//! let tokens = server.exchange_code(&pending, &code).await?;
//!
//! // `token_type` stays `Bearer` (RFC 8705 §3): the binding is the
//! // connection, so use the same HTTP client at the resource server.
//! let token = AccessToken::from_response(&tokens, None)?;
//! let response = token
//!     .send_with_nonce_retry(server.http().get("https://api.example/items"))
//!     .await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```

pub mod access;
pub mod authorize;
pub mod challenge;
pub mod dpop;
pub mod error;
pub mod exchange;
pub mod http;
pub mod identity;
pub mod keys;
pub mod loopback;
pub mod mcp;
pub mod registration;
pub mod resource;
pub mod server;
pub mod store;

pub use access::AccessToken;
pub use authorize::{AuthorizationRequest, PendingAuthorization};
pub use challenge::Challenge;
pub use dpop::DpopKey;
pub use ephemera_proto::wire::{AuthorizationServerMetadata, IntrospectionResponse, TokenResponse};
pub use error::{Error, Result};
pub use exchange::{TokenExchangeRequest, TokenExchangeResponse, TokenType};
pub use http::{http_client, HttpClientOptions};
pub use identity::{ClientIdentity, SecretMethod};
pub use keys::ClientKey;
pub use loopback::LoopbackRedirect;
pub use mcp::{McpAnswer, McpSession};
pub use registration::{ClientRegistration, RegisteredClient, RegistrationMethod};
pub use resource::{ProtectedResource, ResourceMetadata};
pub use server::AuthorizationServer;
pub use store::{MemoryTokenStore, StoredTokens, TokenKey, TokenStore};
pub use url::Url;

//! The resource-server side of Ephemera: a tower [`Layer`](tower::Layer)
//! for axum that admits a request only with an access token the
//! authorization server vouches for by introspection (RFC 7662), presented
//! as its binding demands (bearer, RFC 6750; DPoP, RFC 9449; client
//! certificate, RFC 8705), and hands the handler a [`TokenContext`]; plus
//! the RFC 9728 protected resource metadata route.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | [`IntrospectionConfig`]: endpoint, credentials, issuer, audience, required scopes, cache lifetime, realm, public base URL (DPoP on), proof age and leeway, nonces, trusted `Client-Cert` header, `resource_metadata` URL, [`JwtValidation`] (local validation of JWT access tokens) |
//! | [`layer`] | [`IntrospectionLayer`] / [`IntrospectionService`]: the per-request flow |
//! | `jwt` | JWT access tokens (RFC 9068) validated here via [`ephemera_proto::access_token::verify`], to a [`TokenContext`] |
//! | `jwks` | the authorization server's keys: `jwks_uri` from its metadata, cached, fetched again for an unknown `kid` at most every `min_refetch_interval` |
//! | `authorization` | reading `Authorization: Bearer` / `DPoP` (RFC 6750 §2.1, RFC 9449 §7.1) |
//! | `dpop` | the `DPoP` header, proof verification via [`ephemera_proto::dpop::verify`], key match, replay and nonce checks |
//! | `replay` | proofs seen, by `jkt` + `jti`, for the proof window, bounded |
//! | `nonce` | server nonces: random, rotating, current and previous accepted (RFC 9449 §9) |
//! | [`certificate`] | [`ClientCertificate`], the RFC 9440 `Client-Cert` header, `x5t#S256` match (RFC 8705 §3) |
//! | `introspect` | the HTTP call to the introspection endpoint |
//! | `verdict` | introspection answer -> [`TokenContext`] or [`Rejection`]: active, `iss`, `aud`, an access token, a checkable `cnf`; scopes |
//! | `cache` | accepted tokens by SHA-256, until `min(now + ttl, exp)` |
//! | [`context`] | [`TokenContext`] and its axum extractor |
//! | [`metadata`] | [`ProtectedResourceMetadata`] and [`metadata::router`] (RFC 9728) |
//! | [`rejection`] | [`Rejection`] and ALL its mapping to status, `WWW-Authenticate` and `DPoP-Nonce` |
//!
//! What a client sees (every challenge carries `realm` and, when
//! configured, `resource_metadata="…"`; where DPoP is on, every 401 also
//! names the other scheme, and the error goes in the challenge of the
//! scheme the request used):
//!
//! | request | answer |
//! |---|---|
//! | no token | 401 `WWW-Authenticate: Bearer realm="…"` (+ `DPoP algs="…"` where DPoP is on) |
//! | malformed `Authorization` | 400 `error="invalid_request"` |
//! | inactive, other issuer, other audience, refresh token, uncheckable `cnf` | 401 `error="invalid_token"` |
//! | a JWT validated locally: not `typ: at+jwt`, not ES256, an unpublished key, a bad signature, expired, not yet valid | 401 `error="invalid_token"` |
//! | DPoP-bound token with `Bearer` | 401 `Bearer error="invalid_token"` + `DPoP algs="…"` |
//! | `DPoP` scheme: no/two/bad proof, wrong `htm`/`htu`/`ath`, stale `iat`, another key, replayed `jti` | 401 `DPoP error="invalid_dpop_proof", algs="…"` |
//! | `DPoP` scheme, nonces on, proof without the current nonce | 401 `DPoP error="use_dpop_nonce"` + `DPoP-Nonce` |
//! | unbound token with `DPoP` and a valid proof | accepted (RFC 9449 §7.2); the proof is still checked |
//! | certificate-bound token without that certificate | 401 `error="invalid_token"` |
//! | a required scope missing | 403 `error="insufficient_scope", scope="…"` |
//! | introspection endpoint failing, the authorization server's keys unavailable (never fetched), DPoP replay cache full | 503 |
//!
//! Every answer to a `DPoP` request carries `DPoP-Nonce` when nonces are on.
//!
//! # JWT access tokens
//! With [`IntrospectionConfig::validate_jwt_locally`] (and an
//! [`IntrospectionConfig::audience`]), a token that is a JWT is validated
//! here as RFC 9068 §4 says, with the keys of the authorization server's
//! `jwks_uri`, and never introspected; an opaque token still is. Such a
//! token's revocation is not seen here before it expires. A JWT with
//! another `typ`, algorithm, issuer or audience, expired, or with a bad
//! signature gets 401 `error="invalid_token"`; keys that cannot be fetched
//! a 503. Its `cnf` binds it like an introspected token's.
//!
//! # DPoP
//! Set [`IntrospectionConfig::public_base_url`] to the URL clients reach
//! this server at; a proof's `htu` must be that URL followed by the request
//! path the layer sees. Replay and nonce state lives in the process: behind
//! several instances each remembers only its own proofs.
//!
//! # Client certificates
//! The layer does not terminate TLS. The TLS acceptor inserts a
//! [`ClientCertificate`] into each request's extensions; or, behind a proxy
//! that terminates TLS, turn on
//! [`IntrospectionConfig::trust_client_cert_header`] and let the proxy set
//! `Client-Cert` (and strip any the client sent).
//!
//! # Example
//! `examples/protected_api.rs` is a complete resource server: `GET
//! /api/whoami` behind the layer, returning the [`TokenContext`] as JSON,
//! and the metadata route. Configure it with `EPHEMERA_RS_ISSUER`
//! (default `http://127.0.0.1:8080`), `EPHEMERA_RS_CLIENT_ID` (`rs`),
//! `EPHEMERA_RS_CLIENT_SECRET`, `EPHEMERA_RS_LISTEN` (`127.0.0.1:9090`),
//! `EPHEMERA_RS_PUBLIC_URL` (`http://<listen>`) and optionally
//! `EPHEMERA_RS_AUDIENCE`, then
//! `cargo run -p ephemera-resource --example protected_api`.

mod authorization;
mod cache;
pub mod certificate;
pub mod config;
pub mod context;
mod dpop;
mod introspect;
mod jwks;
mod jwt;
pub mod layer;
pub mod metadata;
mod nonce;
pub mod rejection;
mod replay;
mod verdict;

pub use certificate::ClientCertificate;
pub use config::{IntrospectionConfig, JwtValidation};
pub use context::{MissingTokenContext, TokenContext};
pub use layer::{IntrospectionLayer, IntrospectionService};
pub use metadata::ProtectedResourceMetadata;
pub use rejection::Rejection;

//! The resource-server side of Ephemera: a tower [`Layer`](tower::Layer)
//! for axum that admits a request only with a bearer access token
//! (RFC 6750) the authorization server vouches for by introspection
//! (RFC 7662), and hands the handler a [`TokenContext`].
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | [`IntrospectionConfig`]: endpoint, credentials, issuer, audience, required scopes, cache lifetime, realm |
//! | [`layer`] | [`IntrospectionLayer`] / [`IntrospectionService`]: the per-request flow |
//! | `bearer` | reading `Authorization: Bearer` (RFC 6750 §2.1) |
//! | `introspect` | the HTTP call to the introspection endpoint |
//! | `verdict` | introspection answer -> [`TokenContext`] or [`Rejection`]: active, `iss`, `aud`, not key-bound, scopes |
//! | `cache` | accepted tokens by SHA-256, until `min(now + ttl, exp)` |
//! | [`context`] | [`TokenContext`] and its axum extractor |
//! | [`rejection`] | [`Rejection`] and ALL its mapping to status and `WWW-Authenticate` (RFC 6750 §3) |
//!
//! What a client sees:
//!
//! | request | answer |
//! |---|---|
//! | no bearer token | 401 `WWW-Authenticate: Bearer realm="…"` |
//! | malformed `Authorization: Bearer` | 400 `error="invalid_request"` |
//! | inactive, other issuer, other audience, key-bound (DPoP, `cnf`) | 401 `error="invalid_token"` |
//! | a required scope missing | 403 `error="insufficient_scope", scope="…"` |
//! | introspection endpoint unreachable or failing | 503 |

mod bearer;
mod cache;
pub mod config;
pub mod context;
mod introspect;
pub mod layer;
pub mod rejection;
mod verdict;

pub use config::IntrospectionConfig;
pub use context::{MissingTokenContext, TokenContext};
pub use layer::{IntrospectionLayer, IntrospectionService};
pub use rejection::Rejection;

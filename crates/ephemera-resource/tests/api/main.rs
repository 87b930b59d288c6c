//! The one integration-test binary of `ephemera-resource`: an axum app
//! behind `IntrospectionLayer`, talking to a fake introspection endpoint
//! on 127.0.0.1:0.
//!
//! | module | holds |
//! |---|---|
//! | `support` | the fake introspection endpoint, the app under test, a client's DPoP key and proofs |
//! | `layer` | what a request with or without a good token gets |
//! | `cache` | when the layer reuses an introspection answer |
//! | `dpop` | DPoP-bound tokens: proofs, replay, nonces, the scheme's challenges (RFC 9449) |
//! | `certificate` | certificate-bound tokens: the extension and the `Client-Cert` header (RFC 8705, RFC 9440) |
//! | `metadata` | the RFC 9728 metadata route and `resource_metadata` in challenges |
//! | `jwt` | JWT access tokens (RFC 9068) validated by the layer, with a fake authorization server's keys |
//!
//! A new test goes in the module of the behavior it checks; a new fake goes
//! in `support`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cache;
mod certificate;
mod dpop;
mod jwt;
mod layer;
mod metadata;
mod support;

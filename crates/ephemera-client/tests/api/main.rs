//! The one integration-test binary of `ephemera-client`: the library
//! against a fake authorization server on 127.0.0.1:0. (The real server's
//! tests exercise it against Ephemera itself.)
//!
//! | module | holds |
//! |---|---|
//! | `support` | the fake authorization server (and a resource endpoint), over http or https with client certificates, its token exchange and JWT bearer grants in `support::grants`; `support::mcp`, a fake MCP deployment |
//! | `discovery` | RFC 8414 metadata and the issuer check |
//! | `code_flow` | PAR, callback, code exchange, refresh rotation |
//! | `back_channel` | client authentication, client_credentials, revocation, introspection, error bodies |
//! | `exchange` | token exchange (RFC 8693) and the JWT bearer grant (RFC 7523 §2.1): the request shape, ID-JAGs, DPoP, errors |
//! | `binding` | DPoP on PAR, token and refresh, `use_dpop_nonce`, `private_key_jwt` with pushed keys, tokens at a resource server |
//! | `mtls` | https issuers, mutual TLS (RFC 8705): `self_signed_tls_client_auth` and certificate-bound tokens |
//! | `conformance` | the MCP conformance suite's client scenarios (`auth/*`) against the `mcp_login` example |
//! | `mcp` | the MCP client against `support::mcp`, a fake resource and authorization server: discovery from a `401`, the well-known orders, registration, the request without PAR, `resource`, `iss`, step-up |
//!
//! A new test goes in the module of the flow it exercises; new fake
//! behavior goes in `support`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod back_channel;
mod binding;
mod code_flow;
mod conformance;
mod discovery;
mod exchange;
mod mcp;
mod mtls;
mod support;

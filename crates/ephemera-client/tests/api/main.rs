//! The one integration-test binary of `ephemera-client`: the library
//! against a fake authorization server on 127.0.0.1:0. (The real server's
//! tests exercise it against Ephemera itself.)
//!
//! | module | holds |
//! |---|---|
//! | `support` | the fake authorization server |
//! | `discovery` | RFC 8414 metadata and the issuer check |
//! | `code_flow` | PAR, callback, code exchange, refresh rotation |
//! | `back_channel` | client authentication, client_credentials, revocation, introspection, error bodies |
//!
//! A new test goes in the module of the flow it exercises; new fake
//! behavior goes in `support`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod back_channel;
mod code_flow;
mod discovery;
mod support;

//! The one integration-test binary of `ephemera-resource`: an axum app
//! behind `IntrospectionLayer`, talking to a fake introspection endpoint
//! on 127.0.0.1:0.
//!
//! | module | holds |
//! |---|---|
//! | `support` | the fake introspection endpoint and the app under test |
//! | `layer` | what a request with or without a good token gets |
//! | `cache` | when the layer reuses an introspection answer |
//!
//! A new test goes in the module of the behavior it checks; a new fake goes
//! in `support`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cache;
mod layer;
mod support;

//! Ephemera's integration tests: ONE binary. Every test starts its own server
//! on port 0 with its own SQLite file (see `helpers`) and drives it over HTTP.
//!
//! Where new tests go:
//! - a whole flow that succeeds: `pushed_flow.rs` or `registered_flow.rs`
//! - the flow as `ephemera-client` and `ephemera-resource` users run it: `libraries.rs`
//! - the flow as the official MCP TypeScript SDK runs it (Node, `tests/mcp/`): `mcp.rs`
//! - the flow as the official MCP Python SDK runs it (a venv, `tests/mcp-python/`): `mcp_python.rs`
//! - a PAR rule or bad PAR input: `par_rules.rs`
//! - the authorization endpoint, its pages and forms: `authorize_rules.rs`
//! - the token endpoint (codes, PKCE, client auth, bad bodies): `token_rules.rs`
//! - the JWT bearer grant (RFC 7523 §2.1): ID-JAGs and workloads' JWTs from trusted issuers: `assertion_grant.rs`
//! - what a client registered is what it may do (grant and response types, PKCE for every client): `capabilities.rs`
//! - refresh rotation and reuse: `refresh.rs`
//! - SPIFFE workloads as clients (draft-ietf-oauth-spiffe-client-auth): JWT-SVIDs, trust bundles and their rules: `spiffe.rs`
//! - mutual TLS (RFC 8705, RFC 9440): `mtls.rs`
//! - DPoP binding (RFC 9449): `dpop.rs`; private_key_jwt with pushed keys (RFC 7523): `private_key_jwt.rs`
//! - introspection and revocation: `introspection.rs`, `revocation.rs`
//! - erasure of pushed clients and the sweeper: `erasure.rs`
//! - several server processes on one PostgreSQL database, and races between them: `multinode.rs`
//! - Dynamic Client Registration (RFC 7591/7592): `registration.rs`
//! - Client ID Metadata Documents (URL client_ids): `metadata_document.rs`
//! - OpenID Federation (the server's Entity Configuration; clients registered automatically through a trust chain): `federation.rs`
//! - the account page and `ephemera grants`: a user's grants, one installation or all ended, the operator's by id, key or user: `account.rs`
//! - OpenID Connect (ID Tokens, `nonce`, `prompt`, `max_age`, `/userinfo`, OpenID discovery): `oidc.rs`;
//!   the same with the certified relying-party library oauth4webapi (Node, `tests/oidc-rp/`): `oidc_rp.rs`
//! - resource indicators (RFC 8707) and the resource registry: `resources.rs`
//! - JWT access tokens (RFC 9068): their claims, `ephemera-resource` validating them locally, and the
//!   `jose` npm library verifying them (Node, `tests/jose/`): `jwt_access_tokens.rs`
//! - token exchange (RFC 8693): delegation and impersonation by resource policy, the `act` chain,
//!   the downstream resource through `ephemera-resource`, ending with the user's grant: `token_exchange.rs`
//! - discovery, CORS and headers: `discovery.rs`
//! - liveness, readiness and metrics (`/healthz`, `/readyz`, `/metrics`): `operability.rs`
//! - the command line: `cli.rs`
//! - the `ephemera` process killed with SIGKILL under load and restarted: `crash.rs`
//! - the consent and account pages in headless Chromium with hostile client metadata, the account page at 360 px, upstream sign-in with passwords off (Node, `tests/browser/`): `browser.rs`
//! - rate limits and login throttling (`[limits]`): `limits.rs`
//! - signing in through upstream identity providers (node-oidc-provider from `tests/oidc-provider/`, a GitHub-shaped fake, and a fake OpenID Connect provider for bad ID Tokens): `upstream.rs`
//!
//! What tests share, in no test file of their own:
//! - a server in this process, and the steps of a flow: `helpers.rs`;
//!   DPoP and client assertion keys: `keys.rs`
//! - `support/` (`mod.rs` says when a test is skipped: without PostgreSQL,
//!   Node, Chromium or a Python venv, except on CI), one copy each of:
//!   - `support/binary.rs`: the `ephemera` binary as a process (a command, an
//!     installation's admin commands, `ephemera serve` started, waited for, killed)
//!   - `support/postgres.rs`: a PostgreSQL schema of a test's own at
//!     `EPHEMERA_TEST_DATABASE_URL`, dropped when the test ends
//!   - `support/load.rs`: load on a server, a SIGKILL in the middle of it, and
//!     what was acknowledged before
//!   - `support/node.rs`: a Node script's folder when its npm packages are
//!     installed, and the script run to its end for the JSON it prints
//!   - `support/python.rs`: a Python script's folder when its venv has the
//!     pinned PyPI packages, and the script run to its end for the JSON it prints
//!   - `support/script.rs`: a script (Node or Python) run to its end within
//!     a bound, killed if the test ends first, for the JSON it prints last
//!   - `support/cluster.rs`: several `ephemera serve` nodes on one schema
//!     (started, restarted, killed) and a flow's steps aimed at one node each
//!   - `support/fake_oidc.rs`: a fake upstream OpenID Connect provider (its own
//!     key; GitHub's shape too) whose `/authorize` can send a browser straight back
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod assertion_grant;
mod authorize_rules;
mod browser;
mod capabilities;
mod cli;
mod crash;
mod discovery;
mod dpop;
mod erasure;
mod federation;
mod helpers;
mod introspection;
mod jwt_access_tokens;
mod keys;
mod libraries;
mod limits;
mod mcp;
mod mcp_client;
mod mcp_conformance;
mod mcp_python;
mod metadata_document;
pub mod mtls;
mod multinode;
mod oidc;
mod oidc_rp;
mod operability;
mod par_rules;
mod private_key_jwt;
// The example resource server of ephemera-resource, run by `libraries.rs`, `mcp.rs` and `mcp_python.rs`.
#[allow(dead_code)]
#[path = "../../../ephemera-resource/examples/protected_api.rs"]
mod protected_api;
mod pushed_flow;
mod refresh;
mod registered_flow;
mod registration;
mod resources;
mod revocation;
mod spiffe;
mod support;
mod token_exchange;
mod token_rules;
mod upstream;

//! What the integration tests share besides `helpers.rs` (a server inside
//! the test process) and `keys.rs`: the harness of the tests that run other
//! processes. One copy of each, for every test that needs it:
//! - `binary`: the `ephemera` binary run as an operator runs it
//! - `cluster`: several nodes on one PostgreSQL schema, and a flow's steps aimed at one node each
//! - `fake_oidc`: a fake upstream OpenID Connect (and GitHub-shaped) provider on 127.0.0.1
//! - `postgres`: a PostgreSQL schema of a test's own
//! - `load`: load on a server, a SIGKILL in the middle of it, what was acknowledged
//! - `node`: Node scripts and the npm packages they need
//! - `python`: Python scripts and the venv with the PyPI packages they need
//! - `script`: a Node or Python script run to its end for the JSON it prints last
//!
//! And here, the one rule for a test that needs what Cargo does not install
//! (PostgreSQL, Node, Chromium, a Python venv): without it the test says it
//! is skipped and passes, except on CI, which must run every test.

use std::io::Write as _;

pub mod binary;
pub mod cluster;
pub mod fake_oidc;
pub mod load;
pub mod node;
pub mod postgres;
pub mod python;
pub mod script;

/// Says that `what` is skipped because `why`, or, on CI (`CI` set), fails:
/// CI is where a missing dependency must not hide a test.
pub fn skip(what: &str, why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run {what}, but {why}"
    );
    // libtest names the thread after the test. Written to stderr itself,
    // past the harness's capture of `eprintln!`, so a skip is seen.
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let _ = writeln!(std::io::stderr(), "skipping {what}: {why} ({test})");
}

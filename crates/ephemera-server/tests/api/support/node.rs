//! Node scripts run by the tests (`tests/mcp/flow.mjs` in `mcp.rs`,
//! `tests/browser/check.mjs` in `browser.rs`): a script's folder, when Node
//! and the npm packages pinned there are installed, and a script run by
//! `script.rs` for the JSON it prints last.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// `tests/<folder>` of this crate, when Node runs and the npm `package` is
/// installed there (`.ci/run` installs it); otherwise `None`, after saying
/// that `what` is skipped (a failure on CI).
pub fn folder(folder: &str, package: &str, what: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(folder);
    let node = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    let missing = match node {
        Err(e) => Some(format!("`node` cannot be run ({e})")),
        Ok(out) if !out.status.success() => Some("`node --version` failed".to_owned()),
        Ok(_) if !dir.join("node_modules").join(package).is_dir() => Some(format!(
            "{package} is not installed in {}/node_modules (run `npm ci --prefix crates/ephemera-server/tests/{folder}`)",
            dir.display()
        )),
        Ok(_) => None,
    };
    match missing {
        None => Some(dir),
        Some(why) => {
            super::skip(what, &why);
            None
        }
    }
}

/// Runs `node <script>` in `dir` with the environment variables `vars` and
/// returns the JSON it prints last; fails with the script's output when it
/// fails or has not finished within `timeout`.
pub async fn run(dir: &Path, script: &str, vars: &[(&str, &str)], timeout: Duration) -> Value {
    super::script::run(Path::new("node"), dir, script, vars, timeout).await
}

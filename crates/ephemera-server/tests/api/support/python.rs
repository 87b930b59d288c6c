//! Python scripts run by the tests (`tests/mcp-python/flow.py` in
//! `mcp_python.rs`): a script's folder, when the virtualenv beside it
//! (`.venv`) has the PyPI package pinned in its `requirements.txt` at that
//! version, and a script run by that venv's Python (through `script.rs`) for
//! the JSON it prints last.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The venv's interpreter in a script's folder.
fn python(dir: &Path) -> PathBuf {
    dir.join(".venv").join("bin").join("python")
}

/// `tests/<folder>` of this crate, when its `.venv` has `package` installed
/// at the version `requirements.txt` pins (`.ci/run` installs it); otherwise
/// `None`, after saying that `what` is skipped (a failure on CI). A venv with
/// another version is as good as none: the test would not run the SDK it
/// names.
pub fn folder(folder: &str, package: &str, what: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(folder);
    let install = format!(
        "run `python3 -m venv crates/ephemera-server/tests/{folder}/.venv && \
         crates/ephemera-server/tests/{folder}/.venv/bin/pip install -r \
         crates/ephemera-server/tests/{folder}/requirements.txt`"
    );
    let pinned = pin(&dir.join("requirements.txt"), package);
    let installed = Command::new(python(&dir))
        .args([
            "-c",
            "import importlib.metadata, sys; print(importlib.metadata.version(sys.argv[1]))",
            package,
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let missing = match installed {
        Err(e) => Some(format!(
            "{} cannot be run ({e}): {install}",
            python(&dir).display()
        )),
        Ok(out) if !out.status.success() => Some(format!(
            "{package} is not installed in {}/.venv: {install}",
            dir.display()
        )),
        Ok(out) => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (version != pinned).then(|| {
                format!(
                    "{}/.venv has {package} {version}, not the pinned {pinned}: {install}",
                    dir.display()
                )
            })
        }
    };
    match missing {
        None => Some(dir),
        Some(why) => {
            super::skip(what, &why);
            None
        }
    }
}

/// The version `requirements` pins `package` to (`package==version`).
fn pin(requirements: &Path, package: &str) -> String {
    let text = std::fs::read_to_string(requirements)
        .unwrap_or_else(|e| panic!("{}: {e}", requirements.display()));
    text.lines()
        .filter_map(|line| line.split('#').next()?.trim().split_once("=="))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case(package))
        .map(|(_, version)| version.trim().to_owned())
        .unwrap_or_else(|| panic!("{} pins no {package}", requirements.display()))
}

/// Runs `<dir>/.venv/bin/python <script>` in `dir` with the environment
/// variables `vars` and returns the JSON it prints last; fails with the
/// script's output when it fails or has not finished within `timeout`.
pub async fn run(dir: &Path, script: &str, vars: &[(&str, &str)], timeout: Duration) -> Value {
    super::script::run(&python(dir), dir, script, vars, timeout).await
}

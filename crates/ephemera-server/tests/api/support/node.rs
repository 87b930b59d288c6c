//! Node scripts run by the tests (`tests/mcp/flow.mjs` in `mcp.rs`,
//! `tests/browser/check.mjs` in `browser.rs`): a script's folder, when Node
//! and the npm packages pinned there are installed, and a script run to its
//! end, within a bound, for the JSON it prints last.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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
    // Files, not pipes: nothing has to drain them while the script runs.
    let (stdout, stderr) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
    let child = Command::new("node")
        .arg(script)
        .current_dir(dir)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().unwrap())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let status = wait(&mut running.0, timeout).await;
    let (stdout, stderr) = (read_all(stdout), read_all(stderr));
    let status = status
        .unwrap_or_else(|| panic!("{script} did not finish in {timeout:?}:\n{stderr}\n{stdout}"));
    assert!(
        status.success(),
        "{script} failed ({status}):\n{stderr}\n{stdout}"
    );
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("{script} printed nothing:\n{stderr}"));
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{script}'s last line is not JSON ({e}): {last}\n{stderr}"))
}

/// Kills the script if the test ends before it does.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The child's exit status, or `None` after `timeout`. Polls: the test
/// runtime has no process driver (tokio's `process` feature is off).
async fn wait(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read_all(mut file: File) -> String {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_string(&mut text).unwrap();
    text
}

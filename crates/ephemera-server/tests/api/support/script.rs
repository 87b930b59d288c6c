//! A script of another language (Node in `node.rs`, Python in `python.rs`)
//! run to its end, within a bound, for the JSON it prints last: its output
//! shown when it fails, and the process killed if the test ends first.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs `program <script>` in `dir` with the environment variables `vars`
/// and returns the JSON it prints last; fails with the script's output when
/// it fails or has not finished within `timeout`.
pub async fn run(
    program: &Path,
    dir: &Path,
    script: &str,
    vars: &[(&str, &str)],
    timeout: Duration,
) -> Value {
    // Files, not pipes: nothing has to drain them while the script runs.
    let (stdout, stderr) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
    let child = Command::new(program)
        .arg(script)
        .current_dir(dir)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().unwrap())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{} cannot be run: {e}", program.display()));
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

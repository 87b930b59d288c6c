//! The `ephemera` binary run as a process, as an operator runs it: a command
//! run to its end (`cli.rs`), and an installation whose administrative
//! commands must succeed and whose `ephemera serve` processes are started,
//! waited for and killed with SIGKILL (`crash.rs`, `multinode.rs`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// `ephemera args`, run in `dir`. The test run's own `EPHEMERA_CONFIG` and
/// `EPHEMERA_DATABASE` are removed: a developer's settings must not decide
/// what a test runs on.
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ephemera"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("EPHEMERA_CONFIG")
        .env_remove("EPHEMERA_DATABASE");
    command
}

/// Runs `command` to its end, `stdin` (if any) written to its standard input.
pub fn run(mut command: Command, stdin: Option<&str>) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    // Closed, so that a command reading its standard input to the end goes on.
    drop(input);
    child.wait_with_output().unwrap()
}

/// What a command said: its standard output, then its standard error.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One deployment as the command line sees it: a folder, a database, and
/// what every process gets in its environment. Each `ephemera serve` writes
/// its log to a file in the folder, shown when the test fails.
pub struct Installation {
    dir: TempDir,
    database: String,
    env: Vec<(String, String)>,
}

impl Installation {
    /// An installation in a fresh folder on `database`, every process with
    /// the settings `env` (as `EPHEMERA_*` variables).
    pub fn new(database: impl FnOnce(&Path) -> String, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            database: database(dir.path()),
            dir,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// `ephemera --database <database> args`, logging warnings and errors
    /// only.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut all = vec!["--database", self.database.as_str()];
        all.extend_from_slice(args);
        let mut command = command(self.dir.path(), &all);
        command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("EPHEMERA_LOG", "warn");
        command
    }

    /// Runs an administrative command; it must succeed.
    pub fn admin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let out = run(self.command(args), stdin);
        assert!(out.status.success(), "ephemera {args:?}: {}", text(&out));
        out
    }

    /// Starts `ephemera serve --listen <listen> args`, with `env` added to
    /// its environment and its log appended to the log file `log`.
    pub fn serve(&self, listen: &str, args: &[&str], env: &[(String, String)], log: &str) -> Serve {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(log))
            .unwrap();
        // A log of several starts says where each begins.
        writeln!(file, "--- serve on {listen} ---").unwrap();
        let mut all = vec!["serve", "--listen", listen];
        all.extend_from_slice(args);
        let child = self
            .command(&all)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Serve { child }
    }

    fn log_path(&self, log: &str) -> PathBuf {
        self.dir.path().join(log)
    }

    /// What the processes started with the log file `log` have written to it.
    pub fn log(&self, log: &str) -> String {
        std::fs::read_to_string(self.log_path(log)).unwrap_or_default()
    }

    /// Polls `url` until it answers `200`, for at most `bound`: process
    /// start-up is the one thing polled, with short sleeps. Fails with the
    /// log file `log` if the process exits first (`exited` says whether it
    /// has) or is not answering within `bound`.
    pub async fn wait_until_answering(
        &self,
        http: &reqwest::Client,
        url: &str,
        bound: Duration,
        log: &str,
        mut exited: impl FnMut() -> Option<ExitStatus>,
    ) {
        let deadline = Instant::now() + bound;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Some(status) = exited() {
                panic!("ephemera serve exited with {status}:\n{}", self.log(log));
            }
            match http.get(url).send().await {
                Ok(res) if res.status() == 200 => return,
                Ok(res) => last = format!("answered {}", res.status()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{url} did not answer 200 within {bound:?} ({last}):\n{}",
            self.log(log)
        );
    }
}

/// A running `ephemera serve`; killed on drop.
pub struct Serve {
    child: Child,
}

impl Serve {
    /// SIGKILL (what `Child::kill` sends on Unix): no graceful shutdown;
    /// requests in flight, open transactions and database connections are
    /// cut where they stand.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// How the process ended, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Crash safety: the real `ephemera` binary on a SQLite file, killed with
//! SIGKILL while tokens are being issued and revoked, then started again on
//! the same file. Everything is done as an operator and clients would: the
//! command line to set up, HTTP to load and to check; nothing here reads the
//! store, so the test holds for any SQLite store behind the same endpoints.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::watch;

use crate::helpers::RS_SECRET;

/// The confidential client whose tokens the load issues and revokes.
const SERVICE: &str = "svc";
const SERVICE_SECRET: &str = "svc-secret-0123456789abcdefghijklmnopqrstuvwxyz";
/// Concurrent tasks issuing and revoking tokens.
const WORKERS: usize = 6;
/// Token responses acknowledged before the kill: the load is under way.
const ACKS_BEFORE_KILL: usize = 150;
/// The bound of each wait: start-up, the acknowledgements, the workers to
/// stop after the kill, each request.
const BOUND: Duration = Duration::from_secs(30);

/// One `ephemera serve` process at a time on one SQLite file; killed on drop.
struct Server {
    dir: TempDir,
    child: Option<Child>,
    /// Where the running process listens, e.g. `http://127.0.0.1:40123`.
    base: String,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Server {
    /// Migrates a fresh database and adds, with the CLI, the confidential
    /// client of the load and the introspecting `rs`; does not start serving.
    fn new() -> Self {
        let server = Self {
            dir: tempfile::tempdir().unwrap(),
            child: None,
            base: String::new(),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .timeout(BOUND)
                .build()
                .unwrap(),
        };
        server.admin(&["migrate"], None);
        server.admin(
            &["client", "add", SERVICE, "--confidential", "--secret-stdin"],
            Some(SERVICE_SECRET),
        );
        server.admin(
            &[
                "client",
                "add",
                "rs",
                "--confidential",
                "--introspect",
                "--secret-stdin",
            ],
            Some(RS_SECRET),
        );
        server
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("ephemera.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn command(&self, args: &[&str]) -> Command {
        let database = format!("sqlite://{}", self.dir.path().join("crash.db").display());
        let mut command = Command::new(env!("CARGO_BIN_EXE_ephemera"));
        command
            .arg("--database")
            .arg(database)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("EPHEMERA_CONFIG")
            .env_remove("EPHEMERA_DATABASE")
            .env("EPHEMERA_LOG", "warn");
        command
    }

    /// Runs an administrative command; it must succeed.
    fn admin(&self, args: &[&str], stdin: Option<&str>) {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ephemera {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `ephemera serve` on a free port, its log appended to the log
    /// file; returns once `/readyz` answers `200`, and fails if the process
    /// exits or is not ready within [`BOUND`].
    async fn start(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        // A free port: bound by the OS, released for the server to take.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        writeln!(log, "--- serve on {listen} ---").unwrap();
        let child = self
            .command(&["serve", "--listen", &listen])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.base = format!("http://{listen}");
        self.wait_until_ready().await;
    }

    /// Polls `/readyz` (the one thing polled: process start-up), bounded.
    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + BOUND;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("ephemera serve exited with {status}:\n{}", self.log());
            }
            match self.http.get(self.url("/readyz")).send().await {
                Ok(res) if res.status() == 200 => return,
                Ok(res) => last = format!("/readyz answered {}", res.status()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("not ready within {BOUND:?} ({last}):\n{}", self.log());
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no graceful shutdown;
    /// requests in flight and open transactions are cut where they stand.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("the server is running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Whether `token` introspects active, asked as `rs`.
    async fn active(&self, token: &str) -> bool {
        let res = self
            .http
            .post(self.url("/introspect"))
            .basic_auth("rs", Some(RS_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        body["active"].as_bool().unwrap()
    }
}

/// What became of a token whose issuance was acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Never revoked: it must be active.
    Kept,
    /// Its revocation was sent but not answered in full: it may have happened.
    Unanswered,
    /// Its revocation was answered `200`: it must be inactive.
    Revoked,
}

struct Issued {
    token: String,
    fate: Fate,
}

/// A request without a complete answer.
struct Cut {
    /// Sent before the kill: it was in flight when the server died.
    sent_before_kill: bool,
    error: String,
}

/// One task of the load: tokens by client_credentials, every other one
/// revoked right away, until a request gets no answer.
struct Worker {
    http: reqwest::Client,
    base: String,
    killed: Arc<AtomicBool>,
    /// Token responses acknowledged by all workers.
    acks: Arc<watch::Sender<usize>>,
    issued: Vec<Issued>,
}

impl Worker {
    /// Returns what was acknowledged, and whether the request that got no
    /// answer was in flight at the kill.
    async fn run(mut self) -> (Vec<Issued>, bool) {
        for round in 0.. {
            if let Err(cut) = self.round(round).await {
                assert!(
                    self.killed.load(Ordering::SeqCst),
                    "a request failed before the kill: {}",
                    cut.error
                );
                return (self.issued, cut.sent_before_kill);
            }
        }
        unreachable!("the load runs until the kill")
    }

    async fn round(&mut self, round: usize) -> Result<(), Cut> {
        let issue = self
            .http
            .post(format!("{}/token", self.base))
            .basic_auth(SERVICE, Some(SERVICE_SECRET))
            .form(&[("grant_type", "client_credentials")]);
        let body = self.call(issue).await?;
        let tokens: Value = serde_json::from_str(&body).unwrap();
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        self.issued.push(Issued {
            token: token.clone(),
            fate: Fate::Kept,
        });
        self.acks.send_modify(|n| *n += 1);
        if round.is_multiple_of(2) {
            return Ok(());
        }
        let last = self.issued.len() - 1;
        self.issued[last].fate = Fate::Unanswered;
        let revoke = self
            .http
            .post(format!("{}/revoke", self.base))
            .basic_auth(SERVICE, Some(SERVICE_SECRET))
            .form(&[("token", token.as_str())]);
        self.call(revoke).await?;
        self.issued[last].fate = Fate::Revoked;
        Ok(())
    }

    /// Sends `req` and reads the whole answer, which must be `200` (the
    /// server answers in full, or, killed, not at all); returns the body.
    async fn call(&self, req: reqwest::RequestBuilder) -> Result<String, Cut> {
        let sent_before_kill = !self.killed.load(Ordering::SeqCst);
        let cut = |e: reqwest::Error| Cut {
            sent_before_kill,
            error: e.to_string(),
        };
        let res = req.send().await.map_err(cut)?;
        let status = res.status();
        let body = res.text().await.map_err(cut)?;
        assert_eq!(status, 200, "{body}");
        Ok(body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_under_load_restarts_cleanly_and_keeps_every_acknowledged_token_and_revocation(
) {
    let mut server = Server::new();
    server.start().await;
    let killed = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(watch::Sender::new(0_usize));
    let mut acked = acks.subscribe();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let worker = Worker {
            http: reqwest::Client::builder().timeout(BOUND).build().unwrap(),
            base: server.base.clone(),
            killed: killed.clone(),
            acks: acks.clone(),
            issued: Vec::new(),
        };
        workers.spawn(worker.run());
    }

    tokio::select! {
        reached = tokio::time::timeout(BOUND, acked.wait_for(|n| *n >= ACKS_BEFORE_KILL)) => {
            assert!(
                matches!(reached, Ok(Ok(_))),
                "{ACKS_BEFORE_KILL} token responses not acknowledged within {BOUND:?}"
            );
        }
        Some(stopped) = workers.join_next() => match stopped {
            Ok(_) => panic!("a worker stopped before the kill"),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        },
    }
    // Flagged first: a request that fails from here on is the kill's doing.
    killed.store(true, Ordering::SeqCst);
    server.kill();
    let stopped = tokio::time::timeout(BOUND, workers.join_all())
        .await
        .expect("workers still running after the kill");
    let mut issued = Vec::new();
    let mut in_flight = 0;
    for (acknowledged, cut_in_flight) in stopped {
        issued.extend(acknowledged);
        in_flight += usize::from(cut_in_flight);
    }
    assert!(
        in_flight > 0,
        "no request was in flight at the kill: nothing was tested"
    );
    let count = |fate| issued.iter().filter(|t| t.fate == fate).count();
    assert!(count(Fate::Kept) > 0 && count(Fate::Revoked) > 0);

    server.start().await;

    for (i, t) in issued.iter().enumerate() {
        let want = match t.fate {
            Fate::Kept => true,
            Fate::Revoked => false,
            Fate::Unanswered => continue,
        };
        assert_eq!(
            server.active(&t.token).await,
            want,
            "token {i} of {} ({:?}) after the restart:\n{}",
            issued.len(),
            t.fate,
            server.log()
        );
    }
    // And it goes on serving: a new token, active.
    let res = server
        .http
        .post(server.url("/token"))
        .basic_auth(SERVICE, Some(SERVICE_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let tokens: Value = res.json().await.unwrap();
    assert!(
        server
            .active(tokens["access_token"].as_str().unwrap())
            .await
    );
}

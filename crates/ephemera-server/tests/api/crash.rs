//! Crash safety: the real `ephemera` binary on a SQLite file, killed with
//! SIGKILL while tokens are being issued and revoked, then started again on
//! the same file. Everything is done as an operator and clients would: the
//! command line to set up, HTTP to load and to check; nothing here reads the
//! store, so the test holds for any SQLite store behind the same endpoints.

use std::time::Duration;

use reqwest::redirect::Policy;
use serde_json::Value;

use crate::helpers::RS_SECRET;
use crate::support::binary::{Installation, Serve};
use crate::support::load::{self, Cut, Load};

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
/// The log file of every start.
const LOG: &str = "ephemera.log";

/// One `ephemera serve` process at a time on one SQLite file.
struct Server {
    installation: Installation,
    child: Option<Serve>,
    /// Where the running process listens, e.g. `http://127.0.0.1:40123`.
    base: String,
    http: reqwest::Client,
}

impl Server {
    /// Migrates a fresh database and adds, with the CLI, the confidential
    /// client of the load and the introspecting `rs`; does not start serving.
    fn new() -> Self {
        let server = Self {
            installation: Installation::new(
                |dir| format!("sqlite://{}", dir.join("crash.db").display()),
                &[],
            ),
            child: None,
            base: String::new(),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .timeout(BOUND)
                .build()
                .unwrap(),
        };
        server.installation.admin(&["migrate"], None);
        server.installation.admin(
            &["client", "add", SERVICE, "--confidential", "--secret-stdin"],
            Some(SERVICE_SECRET),
        );
        server.installation.admin(
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

    fn log(&self) -> String {
        self.installation.log(LOG)
    }

    /// Starts `ephemera serve` on a free port; returns once `/readyz`
    /// answers `200`, and fails if the process exits or is not ready within
    /// [`BOUND`].
    async fn start(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        // A free port: bound by the OS, released for the server to take.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = self.installation.serve(&listen, &[], &[], LOG);
        let child = self.child.insert(child);
        self.base = format!("http://{listen}");
        let readyz = format!("{}/readyz", self.base);
        self.installation
            .wait_until_answering(&self.http, &readyz, BOUND, LOG, || child.exited())
            .await;
    }

    /// Kills the server with SIGKILL.
    fn kill(&mut self) {
        self.child.take().expect("the server is running").kill();
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

/// One task of the load: tokens by client_credentials, every other one
/// revoked right away, until a request gets no answer.
struct Worker {
    http: reqwest::Client,
    base: String,
    issued: Vec<Issued>,
}

impl load::Worker for Worker {
    type Issued = Issued;

    async fn round(&mut self, load: &Load, round: usize) -> Result<(), Cut> {
        let issue = self
            .http
            .post(format!("{}/token", self.base))
            .basic_auth(SERVICE, Some(SERVICE_SECRET))
            .form(&[("grant_type", "client_credentials")]);
        let (_, body) = load.call(issue, 200).await?;
        let tokens: Value = serde_json::from_str(&body).unwrap();
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        self.issued.push(Issued {
            token: token.clone(),
            fate: Fate::Kept,
        });
        load.acknowledged();
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
        load.call(revoke, 200).await?;
        self.issued[last].fate = Fate::Revoked;
        Ok(())
    }

    fn issued(self) -> Vec<Issued> {
        self.issued
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_under_load_restarts_cleanly_and_keeps_every_acknowledged_token_and_revocation(
) {
    let mut server = Server::new();
    server.start().await;
    let workers = (0..WORKERS)
        .map(|_| Worker {
            http: reqwest::Client::builder().timeout(BOUND).build().unwrap(),
            base: server.base.clone(),
            issued: Vec::new(),
        })
        .collect();
    let issued = load::kill_under_load(workers, ACKS_BEFORE_KILL, BOUND, || server.kill()).await;
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

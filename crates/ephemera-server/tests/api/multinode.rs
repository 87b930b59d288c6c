//! Several `ephemera serve` processes sharing one PostgreSQL database, as
//! behind a load balancer: one issuer (the public URL), any step of a flow on
//! any node, and one-time things (codes, refresh tokens, DPoP `jti`s) used
//! once however many nodes see them at the same moment.
//!
//! The nodes run in a fresh schema of the database at
//! `EPHEMERA_TEST_DATABASE_URL`, dropped afterwards. Without the variable the
//! tests say they are skipped and pass, except on CI (`CI` set), where they fail.

use std::io::Write as _;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use tokio::sync::Barrier;
use url::Url;

use crate::helpers::{
    csrf, location, query, registration, CHALLENGE, PASSWORD, REDIRECT, RS_SECRET, URN, VERIFIER,
};
use crate::keys::TestKey;
use crate::support::binary::{Installation, Serve};
use crate::support::load::{self, Cut, Load};
use crate::support::postgres::TestSchema;

const NODES: usize = 3;
/// Requests each node gets in a race: `NODES * PER_NODE` at once.
const PER_NODE: usize = 2;
/// Races per test: each round is a fresh code or refresh token.
const ROUNDS: usize = 50;
/// DPoP rounds, each with `NODES * PER_NODE` flows to race with one proof.
const DPOP_ROUNDS: usize = 10;
/// The bound of a node's start-up.
const START_BOUND: Duration = Duration::from_secs(10);

/// Three nodes on one schema; killed, and the schema dropped, on drop.
struct Cluster {
    /// The one public URL of the deployment (the first node's address).
    issuer: String,
    /// Where each node listens; requests go straight to a node.
    nodes: Vec<String>,
    /// Every node's folder and `--database` (the test schema), and
    /// `keys.encryption_key`: every node opens the signing keys in the database.
    installation: Installation,
    /// Extra environment of every node process (`start_with`).
    node_env: Vec<(String, String)>,
    /// The node processes, by node; a node can be killed and restarted
    /// while requests to the others are under way.
    children: Mutex<Vec<Serve>>,
    /// A back-channel client: follows no redirects.
    http: reqwest::Client,
    /// Dropped after the nodes are killed (see [`Drop`]).
    _schema: TestSchema,
}

impl Cluster {
    /// Migrates a fresh schema, seeds `alice` and the introspecting `rs`, and
    /// starts the nodes; `None` (after saying so) without a test database.
    async fn start() -> Option<Self> {
        Self::start_with(&[]).await
    }

    /// [`Cluster::start`], every node with the extra environment `node_env`
    /// (settings as `EPHEMERA_*` variables).
    async fn start_with(node_env: &[(&str, &str)]) -> Option<Self> {
        let schema = TestSchema::create("the multi-node tests").await?;
        // Free ports: bound by the OS, released for the nodes to take.
        let ports: Vec<u16> = (0..NODES)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect::<Vec<_>>()
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let key_encryption_key = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let cluster = Self {
            issuer: format!("http://127.0.0.1:{}", ports[0]),
            nodes: ports
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
            installation: Installation::new(
                |_| schema.url(),
                &[("EPHEMERA_KEYS__ENCRYPTION_KEY", &key_encryption_key)],
            ),
            node_env: node_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            children: Mutex::new(Vec::new()),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            _schema: schema,
        };
        cluster.admin(&["migrate"], None);
        cluster.admin(
            &["user", "add", "alice", "--password-stdin"],
            Some(PASSWORD),
        );
        cluster.admin(
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
        let children = (0..NODES).map(|i| cluster.spawn(i)).collect();
        *cluster.children.lock().unwrap() = children;
        for i in 0..NODES {
            cluster.wait_until_healthy(i).await;
        }
        Some(cluster)
    }

    /// Starts the process of `node` on its address, its log appended to the
    /// node's log file.
    fn spawn(&self, node: usize) -> Serve {
        let listen = self.nodes[node].trim_start_matches("http://");
        self.installation.serve(
            listen,
            &["--issuer", &self.issuer],
            &self.node_env,
            &log_name(node),
        )
    }

    /// Kills `node` with SIGKILL: its requests in flight and its database
    /// connections are cut where they stand.
    fn kill(&self, node: usize) {
        self.children.lock().unwrap()[node].kill();
    }

    /// Starts a killed `node` again on its address; returns once it is healthy.
    async fn restart(&self, node: usize) {
        {
            let mut children = self.children.lock().unwrap();
            assert!(
                children[node].exited().is_some(),
                "node {node} is still running"
            );
            children[node] = self.spawn(node);
        }
        self.wait_until_healthy(node).await;
    }

    /// Runs an administrative command on the shared database; it must succeed.
    fn admin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.installation.admin(args, stdin)
    }

    /// `ephemera stats --json`.
    fn stats(&self) -> Value {
        serde_json::from_slice(&self.admin(&["stats", "--json"], None).stdout).unwrap()
    }

    async fn wait_until_healthy(&self, node: usize) {
        self.installation
            .wait_until_answering(
                &self.http,
                &self.url(node, "/healthz"),
                START_BOUND,
                &log_name(node),
                || self.children.lock().unwrap()[node].exited(),
            )
            .await;
    }

    fn url(&self, node: usize, path: &str) -> String {
        format!("{}{path}", self.nodes[node % NODES])
    }

    /// What a DPoP proof's `htu` names: the issuer's endpoint, whichever node
    /// receives the request.
    fn htu(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// A browser: one cookie jar for every node (cookies ignore the port).
    fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(Policy::none())
            .cookie_store(true)
            .build()
            .unwrap()
    }

    /// A PAR of the pushed client at `node`, DPoP-bound when `proof` is given;
    /// returns the request_uri.
    async fn push(&self, node: usize, proof: Option<String>) -> String {
        let res = self.par(&self.http, node, proof).send().await.unwrap();
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        let body: Value = res.json().await.unwrap();
        body["request_uri"].as_str().unwrap().to_owned()
    }

    /// The pushed authorization request of [`Cluster::push`].
    fn par(
        &self,
        client: &reqwest::Client,
        node: usize,
        proof: Option<String>,
    ) -> reqwest::RequestBuilder {
        let registration = registration();
        let req = client.post(self.url(node, "/par")).form(&[
            ("client_id", URN),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("state", "state-123"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("client_registration", registration.as_str()),
        ]);
        match proof {
            Some(p) => req.header("DPoP", p),
            None => req,
        }
    }

    fn authorize_url(&self, node: usize, request_uri: &str) -> String {
        let mut url = Url::parse(&self.url(node, "/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", URN)
            .append_pair("request_uri", request_uri);
        url.to_string()
    }

    /// The authorization page of `request_uri` at `node`.
    async fn page(&self, browser: &reqwest::Client, node: usize, request_uri: &str) -> String {
        let res = browser
            .get(self.authorize_url(node, request_uri))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "node {node}");
        res.text().await.unwrap()
    }

    /// Shows the login page at `page_node` and submits it at `post_node`.
    async fn login(
        &self,
        browser: &reqwest::Client,
        page_node: usize,
        post_node: usize,
        request_uri: &str,
    ) {
        let html = self.page(browser, page_node, request_uri).await;
        assert!(
            html.contains("name=\"username\""),
            "not a login page: {html}"
        );
        let res = self
            .login_form(browser, post_node, request_uri, &html)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "login at node {post_node} failed");
    }

    /// alice's login, at `node`, on the login page `html`.
    fn login_form(
        &self,
        browser: &reqwest::Client,
        node: usize,
        request_uri: &str,
        html: &str,
    ) -> reqwest::RequestBuilder {
        browser.post(self.url(node, "/authorize/login")).form(&[
            ("client_id", URN),
            ("request_uri", request_uri),
            ("csrf", &csrf(html)),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
    }

    /// Approves on the consent page of a logged-in `browser` at `node`;
    /// returns the code.
    async fn approve(&self, browser: &reqwest::Client, node: usize, request_uri: &str) -> String {
        let html = self.page(browser, node, request_uri).await;
        assert!(
            html.contains("name=\"decision\""),
            "not a consent page: {html}"
        );
        let res = self
            .consent_form(browser, node, request_uri, &html)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let to = location(&res);
        // Every node speaks as the one issuer (RFC 9207).
        assert_eq!(query(&to, "iss").as_deref(), Some(self.issuer.as_str()));
        query(&to, "code").unwrap()
    }

    /// Approval, at `node`, on the consent page `html`.
    fn consent_form(
        &self,
        browser: &reqwest::Client,
        node: usize,
        request_uri: &str,
        html: &str,
    ) -> reqwest::RequestBuilder {
        browser.post(self.url(node, "/authorize/consent")).form(&[
            ("client_id", URN),
            ("request_uri", request_uri),
            ("csrf", &csrf(html)),
            ("decision", "approve"),
        ])
    }

    /// The pushed client's token request for `code` at `node`.
    fn redeem(
        &self,
        client: &reqwest::Client,
        node: usize,
        code: &str,
        proof: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let req = client.post(self.url(node, "/token")).form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", URN),
        ]);
        match proof {
            Some(p) => req.header("DPoP", p),
            None => req,
        }
    }

    fn refresh(
        &self,
        client: &reqwest::Client,
        node: usize,
        refresh_token: &str,
    ) -> reqwest::RequestBuilder {
        client.post(self.url(node, "/token")).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", URN),
        ])
    }

    /// The tokens of one request that must succeed.
    async fn tokens(&self, req: reqwest::RequestBuilder) -> Value {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        res.json().await.unwrap()
    }

    /// Introspects `token` at `node` as the resource server `rs`.
    async fn introspect(&self, node: usize, token: &str) -> Value {
        let res = self
            .http
            .post(self.url(node, "/introspect"))
            .basic_auth("rs", Some(RS_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    async fn revoke(&self, node: usize, token: &str) {
        let res = self
            .revocation(&self.http, node, token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
    }

    /// The pushed client's revocation of `token` at `node` (RFC 7009).
    fn revocation(
        &self,
        client: &reqwest::Client,
        node: usize,
        token: &str,
    ) -> reqwest::RequestBuilder {
        client
            .post(self.url(node, "/revoke"))
            .form(&[("token", token), ("client_id", URN)])
    }

    /// The `kid`s of the JWK Set `node` publishes, in its order.
    async fn published_kids(&self, node: usize) -> Vec<String> {
        let res = self.http.get(self.url(node, "/jwks")).send().await.unwrap();
        assert_eq!(res.status(), 200, "node {node}");
        let jwks: Value = res.json().await.unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// A browser logged in as alice through `request_uri`'s login page (the
    /// request itself is left unused).
    async fn logged_in(&self, request_uri: &str) -> reqwest::Client {
        let browser = self.browser();
        self.login(&browser, 0, 1, request_uri).await;
        browser
    }

    /// `NODES * PER_NODE` back-channel clients, each with a connection open
    /// to its node, so a race starts with no handshakes in it.
    async fn racers(&self) -> Vec<(usize, reqwest::Client)> {
        let mut racers = Vec::new();
        for i in 0..NODES * PER_NODE {
            let client = reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap();
            let node = i % NODES;
            let res = client.get(self.url(node, "/healthz")).send().await.unwrap();
            assert_eq!(res.status(), 200);
            racers.push((node, client));
        }
        racers
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let children = match self.children.get_mut() {
            Ok(children) => children,
            Err(poisoned) => poisoned.into_inner(),
        };
        let nodes = children.len();
        // Killed (on drop) before the logs are read, so that each is whole,
        // and before the schema goes, so that no node holds it.
        children.clear();
        if std::thread::panicking() {
            for i in 0..nodes {
                let log = self.installation.log(&log_name(i));
                let _ = writeln!(std::io::stderr(), "--- node {i} log ---\n{log}");
            }
        }
    }
}

/// The log file of `node`, across its restarts.
fn log_name(node: usize) -> String {
    format!("node{node}.log")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends every request at the same moment; returns the 200 bodies and the
/// error bodies, after checking each error is an RFC 6749 §5.2 `400` whose
/// code is one of `allowed`.
async fn race(
    requests: Vec<reqwest::RequestBuilder>,
    allowed: &[&str],
) -> (Vec<Value>, Vec<Value>) {
    let start = Arc::new(Barrier::new(requests.len()));
    let sent: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                req.send().await.unwrap()
            })
        })
        .collect();
    let (mut ok, mut errors) = (Vec::new(), Vec::new());
    for task in sent {
        let res = task.await.unwrap();
        if res.status() == 200 {
            ok.push(res.json().await.unwrap());
            continue;
        }
        let (status, headers) = (res.status(), res.headers().clone());
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 400, "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(
            allowed.contains(&body["error"].as_str().unwrap_or_default()),
            "{body}"
        );
        assert!(body["error_description"].is_string(), "{body}");
        errors.push(body);
    }
    (ok, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_flow_completes_when_each_step_lands_on_a_different_node() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    // Every order of the three nodes; step k of a flow lands on order[k % 3].
    let orders = [
        [0, 1, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
        [1, 0, 2],
        [0, 2, 1],
    ];
    for [a, b, c] in orders {
        let request_uri = cluster.push(a, None).await;
        let browser = cluster.browser();
        // The cookie set by the login page at b must reach c and then a.
        cluster.login(&browser, b, c, &request_uri).await;
        let code = cluster.approve(&browser, a, &request_uri).await;
        let tokens = cluster
            .tokens(cluster.redeem(&cluster.http, b, &code, None))
            .await;
        assert_eq!(cluster.stats()["pushed_client_grants"], 1);
        let refreshed = cluster
            .tokens(cluster.refresh(&cluster.http, c, tokens["refresh_token"].as_str().unwrap()))
            .await;
        let access = refreshed["access_token"].as_str().unwrap();
        let info = cluster.introspect(a, access).await;
        assert_eq!(info["active"], true, "order {a}{b}{c}: {info}");
        assert_eq!(info["iss"], cluster.issuer.as_str());
        assert_eq!(info["client_kind"], "pushed");
        assert_eq!(info["client_metadata"]["client_name"], "Test Agent");
        assert_eq!(info["username"], "alice");

        // RFC 7009 §2.1: revoking the refresh token ends the grant everywhere.
        cluster
            .revoke(b, refreshed["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(
            cluster.introspect(c, access).await,
            json!({"active": false})
        );
        assert_eq!(cluster.stats()["pushed_client_grants"], 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_raced_at_every_node_is_redeemed_once_and_its_replay_revokes_the_tokens() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let racers = cluster.racers().await;
    let browser = cluster.logged_in(&cluster.push(2, None).await).await;
    for round in 0..ROUNDS {
        let request_uri = cluster.push(round, None).await;
        let code = cluster.approve(&browser, round + 1, &request_uri).await;

        let requests = racers
            .iter()
            .map(|(node, client)| cluster.redeem(client, *node, &code, None))
            .collect();
        let (ok, errors) = race(requests, &["invalid_grant"]).await;

        assert_eq!(ok.len(), 1, "round {round}: {ok:?} {errors:?}");
        assert_eq!(errors.len(), NODES * PER_NODE - 1);
        // RFC 6749 §10.5: the replays revoked what the code produced.
        for token in ["access_token", "refresh_token"] {
            let info = cluster
                .introspect(round + 2, ok[0][token].as_str().unwrap())
                .await;
            assert_eq!(info, json!({"active": false}), "round {round}: {token}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_raced_at_every_node_is_rotated_once_and_its_reuse_revokes_the_grant() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let racers = cluster.racers().await;
    let browser = cluster.logged_in(&cluster.push(2, None).await).await;
    for round in 0..ROUNDS {
        let request_uri = cluster.push(round, None).await;
        let code = cluster.approve(&browser, round + 1, &request_uri).await;
        let tokens = cluster
            .tokens(cluster.redeem(&cluster.http, round + 2, &code, None))
            .await;
        let refresh_token = tokens["refresh_token"].as_str().unwrap();

        let requests = racers
            .iter()
            .map(|(node, client)| cluster.refresh(client, *node, refresh_token))
            .collect();
        let (ok, errors) = race(requests, &["invalid_grant"]).await;

        // One rotation wins; the others are reuses of a rotated token.
        assert_eq!(ok.len(), 1, "round {round}: {ok:?} {errors:?}");
        assert_eq!(errors.len(), NODES * PER_NODE - 1);
        assert_ne!(ok[0]["refresh_token"], tokens["refresh_token"]);
        // RFC 9700 §4.14.2: the reuse revoked the grant, the new pair with it.
        for token in [
            &ok[0]["access_token"],
            &ok[0]["refresh_token"],
            &tokens["access_token"],
        ] {
            let info = cluster.introspect(round, token.as_str().unwrap()).await;
            assert_eq!(info, json!({"active": false}), "round {round}: {token}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_proof_raced_at_every_node_is_accepted_once() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let racers = cluster.racers().await;
    let browser = cluster.logged_in(&cluster.push(2, None).await).await;
    for round in 0..DPOP_ROUNDS {
        // A code per racer, all bound to one key: only the proof is shared,
        // so only the replay check on its jti (RFC 9449 §11.1) stops a second
        // success.
        let key = TestKey::new();
        let mut codes = Vec::new();
        for i in 0..racers.len() {
            let proof = key.proof(&cluster.htu("/par"), unix_now());
            let request_uri = cluster.push(i, Some(proof)).await;
            codes.push(cluster.approve(&browser, i + 1, &request_uri).await);
        }
        // One proof, so one jti, sent with every code.
        let proof = key.proof(&cluster.htu("/token"), unix_now());

        let requests = racers
            .iter()
            .zip(&codes)
            .map(|((node, client), code)| cluster.redeem(client, *node, code, Some(&proof)))
            .collect();
        let (ok, errors) = race(requests, &["invalid_dpop_proof"]).await;

        assert_eq!(ok.len(), 1, "round {round}: {ok:?} {errors:?}");
        assert_eq!(ok[0]["token_type"], "DPoP");
        assert_eq!(errors.len(), NODES * PER_NODE - 1);
        for body in &errors {
            let description = body["error_description"].as_str().unwrap_or_default();
            assert!(description.contains("jti"), "round {round}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_together_on_an_empty_database_share_one_signing_key() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let mut published = Vec::new();
    for n in 0..NODES {
        let jwks: Value = cluster
            .http
            .get(cluster.url(n, "/jwks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        published.push(jwks);
    }
    assert_eq!(
        published[0]["keys"].as_array().unwrap().len(),
        1,
        "{published:?}"
    );
    assert!(
        published.iter().all(|j| j == &published[0]),
        "{published:?}"
    );
}

/// The bound of the polling for a rotation to reach every node, which
/// reloads its keys every second (`EPHEMERA_KEYS__RELOAD_INTERVAL=1`).
const ROTATION_BOUND: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_on_one_node_reaches_every_node_within_the_reload_interval() {
    let Some(cluster) = Cluster::start_with(&[("EPHEMERA_KEYS__RELOAD_INTERVAL", "1")]).await
    else {
        return;
    };
    let mut before = Vec::new();
    for n in 0..NODES {
        before.push(cluster.published_kids(n).await);
    }
    assert!(before.iter().all(|k| k == &before[0]), "{before:?}");
    let [old] = before[0].as_slice() else {
        panic!("one key before the rotation: {before:?}");
    };
    let old = old.clone();

    // Rotated from the command line, as an operator does: no node is told.
    let out = cluster.admin(&["keys", "rotate"], None);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let new = stdout
        .strip_prefix("new signing key ")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_owned();
    assert_ne!(new, old);

    // The new key signs, so it comes first; the retired one stays published
    // until what it signed has expired.
    let want = vec![new.clone(), old.clone()];
    let rotated = Instant::now();
    let mut pending: Vec<usize> = (0..NODES).collect();
    loop {
        let mut behind = Vec::new();
        for n in pending {
            let kids = cluster.published_kids(n).await;
            if kids != want {
                behind.push((n, kids));
            }
        }
        if behind.is_empty() {
            break;
        }
        assert!(
            rotated.elapsed() < ROTATION_BOUND,
            "{:?} after the rotation, (node, kids) {behind:?}; want {want:?}",
            rotated.elapsed()
        );
        pending = behind.into_iter().map(|(n, _)| n).collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut published = Vec::new();
    for n in 0..NODES {
        let jwks: Value = cluster
            .http
            .get(cluster.url(n, "/jwks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        published.push(jwks);
    }
    assert!(
        published.iter().all(|j| j == &published[0]),
        "{published:?}"
    );

    let out = cluster.admin(&["keys", "list"], None);
    let listed: Vec<(String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "{line}");
            (fields[0].to_owned(), fields[2].to_owned())
        })
        .collect();
    assert_eq!(
        listed,
        [(new, "signing".to_owned()), (old, "retired".to_owned())]
    );
}

/// The node killed under load.
const KILLED: usize = 1;
/// Workers running flows at the node to kill, all at once.
const LOAD_WORKERS: usize = 6;
/// Token responses acknowledged before the kill: the load is under way.
const ACKS_BEFORE_KILL: usize = 60;
/// The bound of each wait of the load: for the acknowledgements, for the
/// workers to stop after the kill, of each request.
const LOAD_BOUND: Duration = Duration::from_secs(10);

/// What became of the tokens of an acknowledged token response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Never revoked: both tokens are active.
    Kept,
    /// Their revocation was sent but never answered: it may have happened.
    Unanswered,
    /// The access token's revocation was acknowledged: it is inactive, the
    /// refresh token still active.
    AccessRevoked,
    /// The refresh token's revocation was acknowledged: the grant is gone,
    /// both tokens with it (RFC 7009 §2.1).
    GrantRevoked,
}

/// The tokens of a token response the node answered `200` for.
struct Issued {
    access: String,
    refresh: String,
    fate: Fate,
}

/// One worker of the load: flows at one node, in a browser of its own.
struct LoadWorker {
    cluster: Arc<Cluster>,
    node: usize,
    browser: reqwest::Client,
    issued: Vec<Issued>,
}

impl LoadWorker {
    fn new(cluster: &Arc<Cluster>, node: usize) -> Self {
        Self {
            cluster: cluster.clone(),
            node,
            browser: reqwest::Client::builder()
                .redirect(Policy::none())
                .cookie_store(true)
                .timeout(LOAD_BOUND)
                .build()
                .unwrap(),
            issued: Vec::new(),
        }
    }
}

impl load::Worker for LoadWorker {
    type Issued = Issued;

    /// PAR, login (the first time) and consent, token; then a third of the
    /// grants keep their tokens, a third revoke the access token, a third
    /// the refresh token.
    async fn round(&mut self, load: &Load, round: usize) -> Result<(), Cut> {
        let (cluster, node, browser) = (self.cluster.clone(), self.node, self.browser.clone());
        let (_, body) = load.call(cluster.par(&browser, node, None), 201).await?;
        let pushed: Value = serde_json::from_str(&body).unwrap();
        let request_uri = pushed["request_uri"].as_str().unwrap();
        let authorize = cluster.authorize_url(node, request_uri);
        let (_, mut page) = load.call(browser.get(&authorize), 200).await?;
        if page.contains("name=\"username\"") {
            let login = cluster.login_form(&browser, node, request_uri, &page);
            load.call(login, 303).await?;
            page = load.call(browser.get(&authorize), 200).await?.1;
        }
        assert!(
            page.contains("name=\"decision\""),
            "not a consent page: {page}"
        );
        let consent = cluster.consent_form(&browser, node, request_uri, &page);
        let (to, _) = load.call(consent, 303).await?;
        let code = query(&to.unwrap(), "code").unwrap();
        let (_, body) = load
            .call(cluster.redeem(&browser, node, &code, None), 200)
            .await?;
        let tokens: Value = serde_json::from_str(&body).unwrap();
        let token = |name: &str| tokens[name].as_str().unwrap().to_owned();
        self.issued.push(Issued {
            access: token("access_token"),
            refresh: token("refresh_token"),
            fate: Fate::Kept,
        });
        load.acknowledged();

        let (revoked, fate) = match round % 3 {
            0 => return Ok(()),
            1 => (token("access_token"), Fate::AccessRevoked),
            _ => (token("refresh_token"), Fate::GrantRevoked),
        };
        let last = self.issued.len() - 1;
        self.issued[last].fate = Fate::Unanswered;
        load.call(cluster.revocation(&browser, node, &revoked), 200)
            .await?;
        self.issued[last].fate = fate;
        Ok(())
    }

    fn issued(self) -> Vec<Issued> {
        self.issued
    }
}

/// Asks each of `nodes` in turn about every acknowledged token: active
/// unless its revocation was acknowledged.
async fn assert_nothing_acknowledged_lost(cluster: &Cluster, issued: &[Issued], nodes: &[usize]) {
    for (i, t) in issued.iter().enumerate() {
        let want = match t.fate {
            Fate::Kept => (true, true),
            Fate::AccessRevoked => (false, true),
            Fate::GrantRevoked => (false, false),
            Fate::Unanswered => continue,
        };
        let node = nodes[i % nodes.len()];
        let access = cluster.introspect(node, &t.access).await["active"] == true;
        let refresh = cluster.introspect(node, &t.refresh).await["active"] == true;
        assert_eq!(
            (access, refresh),
            want,
            "node {node}, token response {i} ({:?}): (access, refresh) active",
            t.fate
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_it_acknowledged() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let cluster = Arc::new(cluster);
    let workers = (0..LOAD_WORKERS)
        .map(|_| LoadWorker::new(&cluster, KILLED))
        .collect();
    let issued = load::kill_under_load(workers, ACKS_BEFORE_KILL, LOAD_BOUND, || {
        cluster.kill(KILLED)
    })
    .await;
    let count = |fate| issued.iter().filter(|t| t.fate == fate).count();
    for fate in [Fate::Kept, Fate::AccessRevoked, Fate::GrantRevoked] {
        assert!(count(fate) > 0, "no {fate:?} token response");
    }

    let others: Vec<usize> = (0..NODES).filter(|n| *n != KILLED).collect();
    assert_nothing_acknowledged_lost(&cluster, &issued, &others).await;
    // Back on its address, the killed node agrees.
    cluster.restart(KILLED).await;
    assert_nothing_acknowledged_lost(&cluster, &issued, &[KILLED]).await;
}

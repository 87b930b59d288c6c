//! A deployment of several `ephemera serve` processes on one PostgreSQL
//! schema, as `multinode.rs` runs it: starting, restarting and killing
//! nodes, and the steps of a flow aimed at one node each.

use std::io::Write as _;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::redirect::Policy;
use serde_json::Value;
use tokio::sync::Barrier;
use url::Url;

use crate::helpers::{
    csrf, location, query, registration, CHALLENGE, PASSWORD, REDIRECT, RS_SECRET, URN, VERIFIER,
};
use crate::support::binary::{Installation, Serve};
use crate::support::postgres::TestSchema;

pub const NODES: usize = 3;
/// Requests each node gets in a race: `NODES * PER_NODE` at once.
pub const PER_NODE: usize = 2;
/// The bound of a node's start-up.
pub const START_BOUND: Duration = Duration::from_secs(10);

/// Three nodes on one schema; killed, and the schema dropped, on drop.
pub struct Cluster {
    /// The one public URL of the deployment (the first node's address).
    pub issuer: String,
    /// Where each node listens; requests go straight to a node.
    pub nodes: Vec<String>,
    /// Every node's folder and `--database` (the test schema), and
    /// `keys.encryption_key`: every node opens the signing keys in the database.
    pub installation: Installation,
    /// Extra environment of every node process (`start_with`).
    pub node_env: Vec<(String, String)>,
    /// The node processes, by node; a node can be killed and restarted
    /// while requests to the others are under way.
    pub children: Mutex<Vec<Serve>>,
    /// A back-channel client: follows no redirects.
    pub http: reqwest::Client,
    /// Dropped after the nodes are killed (see [`Drop`]).
    pub _schema: TestSchema,
}

impl Cluster {
    /// Migrates a fresh schema, seeds `alice` and the introspecting `rs`, and
    /// starts the nodes; `None` (after saying so) without a test database.
    pub async fn start() -> Option<Self> {
        Self::start_with(&[]).await
    }

    /// [`Cluster::start`], every node with the extra environment `node_env`
    /// (settings as `EPHEMERA_*` variables).
    pub async fn start_with(node_env: &[(&str, &str)]) -> Option<Self> {
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
    pub fn spawn(&self, node: usize) -> Serve {
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
    pub fn kill(&self, node: usize) {
        self.children.lock().unwrap()[node].kill();
    }

    /// Starts a killed `node` again on its address; returns once it is healthy.
    pub async fn restart(&self, node: usize) {
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
    pub fn admin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.installation.admin(args, stdin)
    }

    /// `ephemera stats --json`.
    pub fn stats(&self) -> Value {
        serde_json::from_slice(&self.admin(&["stats", "--json"], None).stdout).unwrap()
    }

    pub async fn wait_until_healthy(&self, node: usize) {
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

    pub fn url(&self, node: usize, path: &str) -> String {
        format!("{}{path}", self.nodes[node % NODES])
    }

    /// What a DPoP proof's `htu` names: the issuer's endpoint, whichever node
    /// receives the request.
    pub fn htu(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// A browser: one cookie jar for every node (cookies ignore the port).
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(Policy::none())
            .cookie_store(true)
            .build()
            .unwrap()
    }

    /// A PAR of the pushed client at `node`, DPoP-bound when `proof` is given;
    /// returns the request_uri.
    pub async fn push(&self, node: usize, proof: Option<String>) -> String {
        let res = self.par(&self.http, node, proof).send().await.unwrap();
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        let body: Value = res.json().await.unwrap();
        body["request_uri"].as_str().unwrap().to_owned()
    }

    /// The pushed authorization request of [`Cluster::push`].
    pub fn par(
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

    pub fn authorize_url(&self, node: usize, request_uri: &str) -> String {
        let mut url = Url::parse(&self.url(node, "/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", URN)
            .append_pair("request_uri", request_uri);
        url.to_string()
    }

    /// The authorization page of `request_uri` at `node`.
    pub async fn page(&self, browser: &reqwest::Client, node: usize, request_uri: &str) -> String {
        let res = browser
            .get(self.authorize_url(node, request_uri))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "node {node}");
        res.text().await.unwrap()
    }

    /// Shows the login page at `page_node` and submits it at `post_node`.
    pub async fn login(
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
    pub fn login_form(
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
    pub async fn approve(
        &self,
        browser: &reqwest::Client,
        node: usize,
        request_uri: &str,
    ) -> String {
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
    pub fn consent_form(
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
    pub fn redeem(
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

    pub fn refresh(
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
    pub async fn tokens(&self, req: reqwest::RequestBuilder) -> Value {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        res.json().await.unwrap()
    }

    /// Introspects `token` at `node` as the resource server `rs`.
    pub async fn introspect(&self, node: usize, token: &str) -> Value {
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

    pub async fn revoke(&self, node: usize, token: &str) {
        let res = self
            .revocation(&self.http, node, token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
    }

    /// The pushed client's revocation of `token` at `node` (RFC 7009).
    pub fn revocation(
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
    pub async fn published_kids(&self, node: usize) -> Vec<String> {
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
    pub async fn logged_in(&self, request_uri: &str) -> reqwest::Client {
        let browser = self.browser();
        self.login(&browser, 0, 1, request_uri).await;
        browser
    }

    /// `NODES * PER_NODE` back-channel clients, each with a connection open
    /// to its node, so a race starts with no handshakes in it.
    pub async fn racers(&self) -> Vec<(usize, reqwest::Client)> {
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
pub fn log_name(node: usize) -> String {
    format!("node{node}.log")
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends every request at the same moment; returns the 200 bodies and the
/// error bodies, after checking each error is an RFC 6749 §5.2 `400` whose
/// code is one of `allowed`.
pub async fn race(
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

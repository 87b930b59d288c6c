//! Several `ephemera serve` processes sharing one PostgreSQL database, as
//! behind a load balancer: one issuer (the public URL), any step of a flow on
//! any node, and one-time things (codes, refresh tokens, DPoP `jti`s) used
//! once however many nodes see them at the same moment.
//!
//! The nodes run in a fresh schema of the database at
//! `EPHEMERA_TEST_DATABASE_URL`, dropped afterwards. Without the variable the
//! tests say they are skipped and pass, except on CI (`CI` set), where they fail.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::helpers::query;
use crate::keys::TestKey;
use crate::support::cluster::{race, unix_now, Cluster, NODES, PER_NODE};
use crate::support::load::{self, Cut, Load};

/// Races per test: each round is a fresh code or refresh token.
const ROUNDS: usize = 50;
/// DPoP rounds, each with `NODES * PER_NODE` flows to race with one proof.
const DPOP_ROUNDS: usize = 10;

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

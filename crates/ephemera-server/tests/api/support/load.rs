//! Load on a server, a SIGKILL in the middle of it, and what the server
//! acknowledged before: workers run rounds of requests until one gets no
//! answer, which must be the kill's doing, each keeping what was
//! acknowledged for the test to check afterwards. `crash.rs` kills the one
//! server on a SQLite file, `multinode.rs` one node of several on PostgreSQL.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use url::Url;

/// A request without a complete answer.
pub struct Cut {
    /// Sent before the kill: it was in flight when the server died.
    sent_before_kill: bool,
    error: String,
}

/// What the workers of one load share.
#[derive(Clone)]
pub struct Load {
    /// Set before the kill: a request that fails from then on is its doing.
    killed: Arc<AtomicBool>,
    /// Token responses acknowledged by all workers.
    acks: Arc<watch::Sender<usize>>,
}

impl Load {
    /// Sends `req` and reads the whole answer, whose status must be `want`
    /// (a server answers in full, or, killed, not at all); returns its
    /// `Location` and its body.
    pub async fn call(
        &self,
        req: reqwest::RequestBuilder,
        want: u16,
    ) -> Result<(Option<Url>, String), Cut> {
        let sent_before_kill = !self.killed.load(Ordering::SeqCst);
        let cut = |e: reqwest::Error| Cut {
            sent_before_kill,
            error: e.to_string(),
        };
        let res = req.send().await.map_err(cut)?;
        let (status, url) = (res.status(), res.url().clone());
        let to = res
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| Url::parse(l).ok());
        let body = res.text().await.map_err(cut)?;
        assert_eq!(status, want, "{url}: {body}");
        Ok((to, body))
    }

    /// Counts a token response the server acknowledged.
    pub fn acknowledged(&self) {
        self.acks.send_modify(|n| *n += 1);
    }
}

/// One worker of a load, with what it recorded of the acknowledged answers.
pub trait Worker: Send + 'static {
    type Issued: Send + 'static;

    /// The requests of round `round`, sent with [`Load::call`]; `Err` when
    /// one got no complete answer.
    fn round(&mut self, load: &Load, round: usize) -> impl Future<Output = Result<(), Cut>> + Send;

    /// What was acknowledged, once the worker has stopped.
    fn issued(self) -> Vec<Self::Issued>;
}

/// Runs `workers` until `acks_before_kill` token responses are acknowledged,
/// then flags the kill and calls `kill`; returns what the workers recorded
/// once they have all stopped. Each wait lasts at most `bound`. Fails if a
/// worker stops before the kill, or if no request was in flight at the kill,
/// since then nothing was tested.
pub async fn kill_under_load<W: Worker>(
    workers: Vec<W>,
    acks_before_kill: usize,
    bound: Duration,
    kill: impl FnOnce(),
) -> Vec<W::Issued> {
    let load = Load {
        killed: Arc::new(AtomicBool::new(false)),
        acks: Arc::new(watch::Sender::new(0_usize)),
    };
    let mut acked = load.acks.subscribe();
    let mut running = tokio::task::JoinSet::new();
    for worker in workers {
        running.spawn(run(worker, load.clone()));
    }

    tokio::select! {
        reached = tokio::time::timeout(bound, acked.wait_for(|n| *n >= acks_before_kill)) => {
            assert!(
                matches!(reached, Ok(Ok(_))),
                "{acks_before_kill} token responses not acknowledged within {bound:?}"
            );
        }
        Some(stopped) = running.join_next() => match stopped {
            Ok(_) => panic!("a worker stopped before the kill"),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        },
    }
    // Flagged first: a request that fails from here on is the kill's doing.
    load.killed.store(true, Ordering::SeqCst);
    kill();

    let stopped = tokio::time::timeout(bound, running.join_all())
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
    issued
}

/// Runs rounds until a request gets no answer, which must be the kill's
/// doing; returns what was acknowledged, and whether that last request was
/// in flight at the kill.
async fn run<W: Worker>(mut worker: W, load: Load) -> (Vec<W::Issued>, bool) {
    for round in 0.. {
        if let Err(cut) = worker.round(&load, round).await {
            assert!(
                load.killed.load(Ordering::SeqCst),
                "a request failed before the kill: {}",
                cut.error
            );
            return (worker.issued(), cut.sent_before_kill);
        }
    }
    unreachable!("the load runs until the kill")
}

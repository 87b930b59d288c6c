//! `ephemera-bench`: a load generator for Ephemera, and for node-oidc-provider
//! beside it (`--peer-target`), scenario by scenario in the same run.
//!
//! By default it starts Ephemera in-process on `127.0.0.1:0` with a fresh
//! SQLite file and seeds a user and two clients; `--target` drives a server
//! that is already running. For each scenario it runs a warm-up and then a
//! measured phase with `--concurrency` virtual clients, closed-loop (each
//! sends its next request when the last one is answered) or open-loop
//! (`--rate`: requests are due at fixed times, and latency counts from when
//! a request was due). Each virtual client has its own HTTP client
//! (keep-alive, cookie jar, no redirects followed), DPoP key and latency
//! histograms; the histograms are merged when the phase ends. See
//! `bench/README.md`.

mod embedded;
mod stats;
mod target;
mod task;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, ValueEnum};

use crate::stats::{Process, Row, Steps};
use crate::target::{Credentials, Kind, Target};
use crate::task::{Client, Task};

const DEFAULT_PASSWORD: &str = "bench-password-correct-horse";
const DEFAULT_RS_SECRET: &str = "bench-rs-secret-0123456789abcdef0123";
const DEFAULT_APP_SECRET: &str = "bench-app-secret-0123456789abcdef01";

#[derive(Parser, Debug)]
#[command(
    name = "ephemera-bench",
    about = "Measures Ephemera's throughput and latency, scenario by scenario, beside node-oidc-provider"
)]
struct Args {
    /// Base URL of an Ephemera that is already running (e.g.
    /// http://127.0.0.1:8080); by default one is started in-process with a
    /// fresh SQLite file.
    #[arg(long)]
    target: Option<String>,
    /// Base URL of node-oidc-provider as `bench/peer/server.mjs` configures
    /// it: every scenario both can run runs against it too, and the ratios
    /// are printed.
    #[arg(long)]
    peer_target: Option<String>,
    /// Process id of the Ephemera server (with --target): its CPU use over
    /// each measured phase and its resident memory are reported.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Process id of the peer server.
    #[arg(long)]
    peer_pid: Option<u32>,
    /// User who logs in (seeded in-process; must exist with --target).
    #[arg(long, default_value = "bench")]
    user: String,
    /// That user's password.
    #[arg(long, default_value = DEFAULT_PASSWORD)]
    password: String,
    /// A confidential client (client_secret_basic) allowed to introspect;
    /// also used for client_credentials.
    #[arg(long, default_value = "bench-rs")]
    rs_id: String,
    /// That client's secret.
    #[arg(long, default_value = DEFAULT_RS_SECRET)]
    rs_secret: String,
    /// A confidential client (client_secret_basic) whose redirect URI is
    /// http://127.0.0.1:9999/cb: the client of the like-for-like flows.
    #[arg(long, default_value = "bench-app")]
    app_id: String,
    /// That client's secret.
    #[arg(long, default_value = DEFAULT_APP_SECRET)]
    app_secret: String,
    /// Length of each measured phase, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Length of each warm-up phase, in seconds.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Virtual clients running at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Open loop: this many scenario units per second in all, due at fixed
    /// times spread over the virtual clients; latency counts from when each
    /// was due, so a server that falls behind shows it. Default: closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Scenarios to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    scenario: Vec<Scenario>,
    /// Grants (each with a live access and refresh token) stored before the
    /// run: into the in-process server's database, or, with
    /// --preload-into, into that database, after which the tool exits.
    #[arg(long, default_value_t = 0)]
    preload_grants: u64,
    /// The database to preload (e.g. sqlite:///tmp/x/ephemera.db), already
    /// migrated and seeded with the user and the app client.
    #[arg(long, requires = "preload_grants")]
    preload_into: Option<String>,
    /// Proves the tool and the server work end to end (CI): 1 s per
    /// scenario, no warm-up, 4 virtual clients; any error fails the run.
    #[arg(long)]
    smoke: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// GET /healthz: the same HTTP stack and middleware answering a fixed
    /// body, the ceiling every other scenario is a fraction of.
    Ceiling,
    /// GET the discovery document.
    Discovery,
    /// PAR for the registered app, client_secret_basic, no DPoP.
    ParBasic,
    /// PAR for Ephemera's pushed client: the URN, client_registration and a DPoP proof.
    Par,
    /// client_credentials with client_secret_basic.
    Token,
    /// Introspection of a live access token, with HTTP Basic.
    Introspect,
    /// Dynamic Client Registration (RFC 7591), open.
    Dcr,
    /// Refresh token rotation for the registered app, client_secret_basic.
    Refresh,
    /// PAR, authorize (session and consent already there), token, introspect, refresh: the registered app, client_secret_basic, no DPoP.
    Flow,
    /// The same flow with DPoP proofs on PAR, token and refresh.
    FlowDpop,
    /// Ephemera's pushed flow: PAR with client_registration and DPoP, authorize, consent, token, introspect, refresh.
    PushedFlow,
}

impl Scenario {
    const ALL: [Scenario; 11] = [
        Scenario::Ceiling,
        Scenario::Discovery,
        Scenario::ParBasic,
        Scenario::Par,
        Scenario::Token,
        Scenario::Introspect,
        Scenario::Dcr,
        Scenario::Refresh,
        Scenario::Flow,
        Scenario::FlowDpop,
        Scenario::PushedFlow,
    ];

    /// The peer has no pushed clients (and no `/healthz`): these are
    /// Ephemera's alone.
    fn peer_too(self) -> bool {
        !matches!(
            self,
            Scenario::Ceiling | Scenario::Par | Scenario::PushedFlow
        )
    }

    /// HTTP requests in one unit: what a unit's rate is multiplied by to
    /// compare it with the ceiling's requests.
    fn requests(self) -> f64 {
        match self {
            Scenario::Flow | Scenario::FlowDpop => 5.0,
            Scenario::PushedFlow => 6.0,
            _ => 1.0,
        }
    }

    /// Scenarios whose virtual clients need a session (and, for the
    /// registered app, remembered consent) or tokens of their own: one flow
    /// per client before the clock starts pays the login.
    fn prepared_by_a_flow(self) -> bool {
        matches!(
            self,
            Scenario::Introspect
                | Scenario::Refresh
                | Scenario::Flow
                | Scenario::FlowDpop
                | Scenario::PushedFlow
        )
    }

    /// What is compared, said beside every number.
    fn terms(self) -> &'static str {
        match self {
            Scenario::Ceiling => "GET /healthz, a fixed body through every layer (Ephemera only)",
            Scenario::Discovery => "GET metadata",
            Scenario::ParBasic => "client_secret_basic, no DPoP",
            Scenario::Par => "pushed client + DPoP (Ephemera only)",
            Scenario::Token => "client_credentials, client_secret_basic, opaque",
            Scenario::Introspect => "HTTP Basic, opaque token",
            Scenario::Dcr => "open, public client",
            Scenario::Refresh => "rotation, client_secret_basic, no DPoP",
            Scenario::Flow => "5 requests, client_secret_basic, no DPoP, opaque",
            Scenario::FlowDpop => "5 requests, client_secret_basic + DPoP, opaque",
            Scenario::PushedFlow => "6 requests, pushed client + DPoP (Ephemera only)",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::Ceiling => "ceiling",
            Scenario::Discovery => "discovery",
            Scenario::ParBasic => "par-basic",
            Scenario::Par => "par",
            Scenario::Token => "token",
            Scenario::Introspect => "introspect",
            Scenario::Dcr => "dcr",
            Scenario::Refresh => "refresh",
            Scenario::Flow => "flow",
            Scenario::FlowDpop => "flow-dpop",
            Scenario::PushedFlow => "pushed-flow",
        })
    }
}

/// Per-client preparation outside the measurement.
async fn prepare(scenario: Scenario, t: &Arc<Target>) -> Result<Task> {
    let mut task = Task::new(t.clone())?;
    if scenario.prepared_by_a_flow() {
        task.flow(Client::App, false)
            .await
            .context("the preparation flow")?;
    }
    Ok(task)
}

/// One unit of `scenario`: a request, or a whole flow.
async fn once(scenario: Scenario, task: &mut Task) -> Result<()> {
    match scenario {
        Scenario::Ceiling => task.healthz().await,
        Scenario::Discovery => task.discovery().await,
        Scenario::ParBasic => task.par(Client::App, false).await.map(drop),
        Scenario::Par => task.par(Client::Pushed, true).await.map(drop),
        Scenario::Token => task.client_credentials().await,
        Scenario::Introspect => task.introspect().await,
        Scenario::Dcr => task.register().await,
        Scenario::Refresh => task.refresh(Client::App, false).await,
        Scenario::Flow => task.flow(Client::App, false).await,
        Scenario::FlowDpop => task.flow(Client::App, true).await,
        Scenario::PushedFlow => task.flow(Client::Pushed, true).await,
    }
}

/// What one virtual client measured.
struct Tally {
    latencies: hdrhistogram::Histogram<u64>,
    steps: Steps,
    errors: u64,
    first_error: Option<String>,
}

/// When one virtual client's units are due.
struct Phase {
    start: Instant,
    warm_until: Instant,
    until: Instant,
    /// Open loop: the time between two units of this client.
    interval: Option<Duration>,
}

async fn run_task(
    scenario: Scenario,
    mut task: Task,
    phase: Arc<Phase>,
    offset: Duration,
) -> Result<Tally> {
    let mut latencies = stats::histogram()?;
    let mut errors = 0;
    let mut first_error = None;
    let mut measuring = false;
    let mut due = phase.start + offset;
    tokio::time::sleep_until(due.into()).await;
    loop {
        let began = match phase.interval {
            Some(interval) => {
                let at = due;
                due += interval;
                if Instant::now() < at {
                    // On time: the clock starts when the timer (1 ms
                    // granularity) wakes us, so its lateness is not counted.
                    tokio::time::sleep_until(at.into()).await;
                    Instant::now()
                } else {
                    // Behind, because the last unit took too long: the
                    // wait since it was due counts.
                    at
                }
            }
            None => Instant::now(),
        };
        if began >= phase.until {
            break;
        }
        if !measuring && began >= phase.warm_until {
            measuring = true;
            task.steps.reset();
        }
        let outcome = once(scenario, &mut task).await;
        if !measuring {
            continue;
        }
        match outcome {
            Ok(()) => stats::record(&mut latencies, began),
            Err(e) => {
                errors += 1;
                if first_error.is_none() {
                    first_error = Some(format!("{e:#}"));
                }
                // A refresh token spent by a failed rotation cannot be used
                // again: get a new one, outside the clock.
                if scenario == Scenario::Refresh {
                    if let Ok(mut fresh) = prepare(scenario, &task.t).await {
                        fresh.steps = std::mem::take(&mut task.steps);
                        task = fresh;
                    }
                }
            }
        }
    }
    Ok(Tally {
        latencies,
        steps: task.steps,
        errors,
        first_error,
    })
}

async fn run_scenario(
    scenario: Scenario,
    t: &Arc<Target>,
    process: Option<Process>,
    args: &Args,
) -> Result<Row> {
    let mut prepared = Vec::with_capacity(args.concurrency);
    // A few at a time, so that the logins do not all hash passwords at once.
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let t = t.clone();
        pending.spawn(async move { prepare(scenario, &t).await });
        if pending.len() >= 4 {
            if let Some(done) = pending.join_next().await {
                prepared.push(done.context("preparation task")??);
            }
        }
    }
    while let Some(done) = pending.join_next().await {
        prepared.push(done.context("preparation task")??);
    }

    let start = Instant::now() + Duration::from_millis(50);
    let warm_until = start + Duration::from_secs(args.warmup);
    let until = warm_until + Duration::from_secs(args.seconds);
    let interval = args
        .rate
        .map(|rate| Duration::from_secs_f64(args.concurrency as f64 / rate));
    let phase = Arc::new(Phase {
        start,
        warm_until,
        until,
        interval,
    });
    let n = u32::try_from(args.concurrency).unwrap_or(u32::MAX);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, task) in prepared.into_iter().enumerate() {
        // Open loop: the clients' due times are spread over one interval.
        let offset = interval
            .map(|d| d * u32::try_from(i).unwrap_or(0) / n)
            .unwrap_or_default();
        tasks.spawn(run_task(scenario, task, phase.clone(), offset));
    }
    // The server's CPU time over the measured phase.
    let cpu = process.map(|p| {
        tokio::spawn(async move {
            tokio::time::sleep_until(warm_until.into()).await;
            let (t0, c0) = (Instant::now(), p.cpu_seconds());
            tokio::time::sleep_until(until.into()).await;
            let (t1, c1) = (Instant::now(), p.cpu_seconds());
            Some((c1? - c0?) / (t1 - t0).as_secs_f64())
        })
    });
    let mut latencies = stats::histogram()?;
    let mut steps = Steps::default();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        let tally = done.context("load task")??;
        latencies.add(&tally.latencies)?;
        steps.merge(&tally.steps)?;
        errors += tally.errors;
        if first_error.is_none() {
            first_error = tally.first_error;
        }
    }
    let server_cpu = match cpu {
        Some(handle) => handle.await.ok().flatten(),
        None => None,
    };
    // Units still in flight at `until` finish a little later; the rate is
    // over the nominal measured window.
    let measured = Duration::from_secs(args.seconds).as_secs_f64();
    Ok(Row {
        target: t.kind.label(),
        scenario: scenario.to_string(),
        requests: latencies.len() + errors,
        per_second: latencies.len() as f64 / measured,
        latencies,
        errors,
        first_error,
        steps,
        server_cpu,
        server_rss: process.and_then(|p| p.mib("VmRSS")),
    })
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
}

fn print_facts(args: &Args, ours: &Target, peer: Option<&Target>, scenarios: &[Scenario]) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "unknown".into());
    println!(
        "ephemera-bench: Ephemera {} (commit {})",
        env!("CARGO_PKG_VERSION"),
        git_commit().unwrap_or_else(|| "unknown".into())
    );
    println!(
        "machine: {cores} cores, {} ({} {})",
        cpu_model().unwrap_or_else(|| "unknown CPU".into()),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let server = match &args.target {
        Some(_) => format!("server at {}", ours.base),
        None => format!(
            "in-process server at {} (SQLite in a temp dir, sharing the cores with the load generator)",
            ours.base
        ),
    };
    println!("ephemera: {server}");
    if let Some(p) = peer {
        println!("peer: node-oidc-provider at {}", p.base);
    }
    let mode = match args.rate {
        Some(rate) => format!("open loop, {rate} units/s in all"),
        None => "closed loop".into(),
    };
    println!(
        "load: {} virtual clients, {mode}, {} s warm-up + {} s measured per scenario",
        args.concurrency, args.warmup, args.seconds,
    );
    for s in scenarios {
        println!("  {:<12} {}", s.to_string(), s.terms());
    }
    println!();
}

fn credentials(args: &Args) -> Credentials {
    Credentials {
        user: args.user.clone(),
        password: args.password.clone(),
        rs_id: args.rs_id.clone(),
        rs_secret: args.rs_secret.clone(),
        app_id: args.app_id.clone(),
        app_secret: args.app_secret.clone(),
    }
}

async fn run(args: Args) -> Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    if args.rate.is_some_and(|r| !r.is_finite() || r <= 0.0) {
        bail!("--rate must be a positive number of units per second");
    }
    let creds = credentials(&args);
    if let Some(database) = &args.preload_into {
        return embedded::preload_into(database, &creds, args.preload_grants).await;
    }
    let scenarios: Vec<Scenario> = if args.scenario.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenario.clone()
    };
    let (base, embedded) = match &args.target {
        Some(url) => (url.clone(), None),
        None => {
            let (base, e) = embedded::start(&creds, args.preload_grants).await?;
            (base, Some(e))
        }
    };
    let ours = Arc::new(Target::discover(Kind::Ephemera, &base, creds.clone()).await?);
    let peer = match &args.peer_target {
        Some(url) => Some(Arc::new(Target::discover(Kind::Peer, url, creds).await?)),
        None => None,
    };
    let our_process = args.server_pid.map(Process::new);
    let peer_process = args.peer_pid.map(Process::new);
    print_facts(&args, &ours, peer.as_deref(), &scenarios);
    stats::print_header();
    let seconds = Duration::from_secs(args.seconds).as_secs_f64();
    let mut failures = Vec::new();
    let mut outcome = |t: &Target, scenario: Scenario, row: Result<Row>| match row {
        Ok(row) => {
            stats::print_row(&row, seconds);
            if let Some(e) = &row.first_error {
                failures.push(format!("{} {scenario}: first error: {e}", t.kind.label()));
            }
            Some(row)
        }
        Err(e) => {
            println!(
                "{:<9} {:<24} failed to run: {e:#}",
                t.kind.label(),
                scenario.to_string()
            );
            failures.push(format!("{} {scenario}: {e:#}", t.kind.label()));
            None
        }
    };
    let mut ceiling: Option<Row> = None;
    for scenario in scenarios {
        let row = run_scenario(scenario, &ours, our_process, &args).await;
        let ours_row = outcome(&ours, scenario, row);
        if scenario == Scenario::Ceiling {
            ceiling = ours_row;
            continue;
        }
        if let (Some(row), Some(top)) = (&ours_row, &ceiling) {
            stats::print_share_of_ceiling(row, scenario.requests(), top);
        }
        if let Some(peer) = peer.as_ref().filter(|_| scenario.peer_too()) {
            let row = run_scenario(scenario, peer, peer_process, &args).await;
            if let (Some(a), Some(b)) = (ours_row, outcome(peer, scenario, row)) {
                stats::print_ratio(&a, &b);
            }
        }
    }
    println!();
    for (label, p) in [("ephemera", our_process), ("peer", peer_process)] {
        if let Some(peak) = p.and_then(|p| p.mib("VmHWM")) {
            println!("{label} server peak RSS: {peak:.1} MiB");
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    if let Some(e) = embedded {
        e.stop().await?;
    }
    if !failures.is_empty() {
        bail!("{} scenario(s) had errors", failures.len());
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        (args.seconds, args.warmup, args.concurrency) = (1, 0, 4);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

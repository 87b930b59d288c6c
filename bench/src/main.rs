//! `ephemera-bench`: a load generator for Ephemera.
//!
//! By default it starts Ephemera in-process on `127.0.0.1:0` with a fresh
//! SQLite file, seeds a user and an introspection client, and then, for each
//! scenario, runs a warm-up followed by a measured phase with `--concurrency`
//! client tasks. Each task has its own HTTP client (keep-alive, no redirects
//! followed) and its own latency histogram; the histograms are merged at the
//! end of the phase. See `bench/README.md`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Parser, ValueEnum};
use ephemera_proto::DYNAMIC_CLIENT_ID;
use ephemera_server::config::{Config, RawConfig};
use ephemera_server::service::admin::{self, NewClient};
use ephemera_server::service::Clock;
use hdrhistogram::Histogram;
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;
use url::Url;

/// The loopback redirect URI the pushed client registers.
const REDIRECT: &str = "http://127.0.0.1:9999/cb";
/// The S256 pair of RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const DEFAULT_PASSWORD: &str = "bench-password-correct-horse";
const DEFAULT_RS_SECRET: &str = "bench-resource-server-secret-0123456789abcdef";
/// Latencies are recorded in microseconds, up to this many (60 s).
const MAX_LATENCY_US: u64 = 60_000_000;

#[derive(Parser, Debug)]
#[command(
    name = "ephemera-bench",
    about = "Measures Ephemera's throughput and latency, endpoint by endpoint"
)]
struct Args {
    /// Base URL of an already running server (e.g. http://127.0.0.1:8080);
    /// by default a server is started in-process with a fresh SQLite file.
    #[arg(long)]
    target: Option<String>,
    /// User who logs in (seeded in-process; must exist with --target).
    #[arg(long, default_value = "bench")]
    user: String,
    /// That user's password.
    #[arg(long, default_value = DEFAULT_PASSWORD)]
    password: String,
    /// A confidential registered client allowed to introspect; also used for
    /// client_credentials (seeded in-process; must exist with --target).
    #[arg(long, default_value = "bench-rs")]
    rs_id: String,
    /// That client's secret.
    #[arg(long, default_value = DEFAULT_RS_SECRET)]
    rs_secret: String,
    /// Length of each measured phase, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Length of each warm-up phase, in seconds.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Client tasks running at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Scenarios to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    scenario: Vec<Scenario>,
    /// Proves the tool and the server work end to end (CI): 1 s per
    /// scenario, no warm-up, 4 tasks; any error fails the run.
    #[arg(long)]
    smoke: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// A pushed authorization request with client_registration.
    Par,
    /// The whole pushed flow: PAR, authorize, (login once per task), consent, token.
    Flow,
    /// Refresh token rotation; each task holds its own refresh token.
    Refresh,
    /// Introspection of a live access token, with HTTP Basic.
    Introspect,
    /// client_credentials with client_secret_basic.
    Token,
}

impl Scenario {
    const ALL: [Scenario; 5] = [
        Scenario::Par,
        Scenario::Flow,
        Scenario::Refresh,
        Scenario::Introspect,
        Scenario::Token,
    ];
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::Par => "par",
            Scenario::Flow => "flow",
            Scenario::Refresh => "refresh",
            Scenario::Introspect => "introspect",
            Scenario::Token => "token",
        })
    }
}

/// Where the load goes and with which credentials.
#[derive(Debug, Clone)]
struct Target {
    base: String,
    user: String,
    password: String,
    rs_id: String,
    rs_secret: String,
    registration: String,
}

impl Target {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authorize_url(&self, request_uri: &str) -> Result<String> {
        let mut url = Url::parse(&self.url("/authorize"))?;
        url.query_pairs_mut()
            .append_pair("client_id", DYNAMIC_CLIENT_ID)
            .append_pair("request_uri", request_uri);
        Ok(url.to_string())
    }
}

/// Keeps the in-process server (and its database directory) alive.
struct Embedded {
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Embedded {
    async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.server).await??;
        Ok(())
    }
}

/// Starts Ephemera on 127.0.0.1:0 with a fresh SQLite file and seeds it.
async fn start_embedded(args: &Args) -> Result<(String, Embedded)> {
    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut raw = RawConfig {
        listen: addr.to_string(),
        database: format!("sqlite://{}", dir.path().join("bench.db").display()),
        ..RawConfig::default()
    };
    raw.scopes.supported = vec!["read".into(), "write".into()];
    raw.scopes.pushed = Some(vec!["read".into(), "write".into()]);
    // All the load comes from one address: the per-address limits would
    // measure themselves. Pending requests pile up in the `par` scenario.
    raw.limits.par_per_minute = 0;
    raw.limits.token_per_minute = 0;
    raw.limits.login_per_minute = 0;
    raw.pushed_clients.max_pending_requests = 10_000_000;
    let config = Config::from_raw(raw).map_err(|e| anyhow!("configuration: {e}"))?;
    let store = ephemera_server::open_store(&config)
        .await
        .map_err(|e| anyhow!("opening the store: {e}"))?;
    let ctx = ephemera_server::context(&config, store, Arc::new(Clock::default()))
        .await
        .map_err(|e| anyhow!("context: {e}"))?;
    let now = ctx.clock.now();
    admin::add_user(ctx.store.as_ref(), &args.user, args.password.clone(), now)
        .await
        .map_err(|e| anyhow!("adding the user: {e}"))?;
    admin::add_client(
        ctx.store.as_ref(),
        &ctx.policy,
        NewClient {
            client_id: args.rs_id.clone(),
            confidential: true,
            secret: Some(args.rs_secret.clone()),
            can_introspect: true,
            ..NewClient::default()
        },
        now,
    )
    .await
    .map_err(|e| anyhow!("adding the introspection client: {e}"))?;
    let (tx, rx) = oneshot::channel::<()>();
    let base = config.issuer.clone();
    let server = tokio::spawn(async move {
        ephemera_server::serve(&config, ctx, listener, async {
            let _ = rx.await;
        })
        .await
    });
    Ok((
        base,
        Embedded {
            shutdown: Some(tx),
            server,
            _dir: dir,
        },
    ))
}

fn registration() -> String {
    serde_json::json!({
        "client_name": "Bench Agent",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        "client_uri": "https://bench.example/",
        "software_id": "ephemera-bench",
    })
    .to_string()
}

/// One HTTP client per task: keep-alive, no redirects followed, and a cookie
/// jar (the browser session of the flow).
fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .pool_max_idle_per_host(4)
        .tcp_nodelay(true)
        .build()?)
}

async fn expect_status(res: reqwest::Response, want: StatusCode, what: &str) -> Result<String> {
    let status = res.status();
    let body = res.text().await?;
    if status != want {
        let mut short = body;
        short.truncate(200);
        bail!("{what}: HTTP {status} (wanted {want}): {short}");
    }
    Ok(body)
}

async fn expect_json(res: reqwest::Response, what: &str) -> Result<Value> {
    let body = expect_status(res, StatusCode::OK, what).await?;
    Ok(serde_json::from_str(&body)?)
}

fn csrf(html: &str) -> Result<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .ok_or_else(|| anyhow!("page has no CSRF field"))?
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("unterminated CSRF field"))
}

fn str_field(v: &Value, name: &str) -> Result<String> {
    v[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("response has no `{name}`: {v}"))
}

/// POST /par for the pushed client; returns the request_uri.
async fn push(http: &reqwest::Client, t: &Target) -> Result<String> {
    let res = http
        .post(t.url("/par"))
        .form(&[
            ("client_id", DYNAMIC_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("state", "bench-state"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("client_registration", t.registration.as_str()),
        ])
        .send()
        .await?;
    let body = expect_status(res, StatusCode::CREATED, "PAR").await?;
    str_field(&serde_json::from_str(&body)?, "request_uri")
}

/// From a pushed request to its code: the authorize page, the login form when
/// the browser has no session yet, and the consent form.
async fn authorize(http: &reqwest::Client, t: &Target, request_uri: &str) -> Result<String> {
    let mut logged_in = false;
    loop {
        let res = http.get(t.authorize_url(request_uri)?).send().await?;
        if res.status() == StatusCode::SEE_OTHER || res.status() == StatusCode::FOUND {
            return code_of(&res);
        }
        let html = expect_status(res, StatusCode::OK, "authorize").await?;
        if html.contains("name=\"username\"") {
            if logged_in {
                bail!("login page again after logging in");
            }
            let res = http
                .post(t.url("/authorize/login"))
                .form(&[
                    ("client_id", DYNAMIC_CLIENT_ID),
                    ("request_uri", request_uri),
                    ("csrf", &csrf(&html)?),
                    ("username", &t.user),
                    ("password", &t.password),
                ])
                .send()
                .await?;
            expect_status(res, StatusCode::SEE_OTHER, "login").await?;
            logged_in = true;
            continue;
        }
        if !html.contains("name=\"decision\"") {
            bail!("authorize returned neither a login nor a consent page");
        }
        let res = http
            .post(t.url("/authorize/consent"))
            .form(&[
                ("client_id", DYNAMIC_CLIENT_ID),
                ("request_uri", request_uri),
                ("csrf", &csrf(&html)?),
                ("decision", "approve"),
            ])
            .send()
            .await?;
        if res.status() != StatusCode::SEE_OTHER {
            expect_status(res, StatusCode::SEE_OTHER, "consent").await?;
            bail!("consent did not redirect");
        }
        return code_of(&res);
    }
}

fn code_of(res: &reqwest::Response) -> Result<String> {
    let loc = res
        .headers()
        .get("location")
        .ok_or_else(|| anyhow!("redirect without a Location"))?
        .to_str()?;
    let url = Url::parse(loc)?;
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| anyhow!("no code in {loc}"))
}

/// The whole pushed flow; returns the token response.
async fn flow(http: &reqwest::Client, t: &Target) -> Result<Value> {
    let request_uri = push(http, t).await?;
    let code = authorize(http, t, &request_uri).await?;
    let res = http
        .post(t.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", DYNAMIC_CLIENT_ID),
        ])
        .send()
        .await?;
    expect_json(res, "token (authorization_code)").await
}

async fn refresh(http: &reqwest::Client, t: &Target, token: &str) -> Result<String> {
    let res = http
        .post(t.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", DYNAMIC_CLIENT_ID),
        ])
        .send()
        .await?;
    str_field(
        &expect_json(res, "token (refresh_token)").await?,
        "refresh_token",
    )
}

async fn introspect(http: &reqwest::Client, t: &Target, token: &str) -> Result<()> {
    let res = http
        .post(t.url("/introspect"))
        .basic_auth(&t.rs_id, Some(&t.rs_secret))
        .form(&[("token", token)])
        .send()
        .await?;
    let body = expect_json(res, "introspect").await?;
    if body["active"] != Value::Bool(true) {
        bail!("token no longer active: {body}");
    }
    Ok(())
}

async fn client_credentials(http: &reqwest::Client, t: &Target) -> Result<()> {
    let res = http
        .post(t.url("/token"))
        .basic_auth(&t.rs_id, Some(&t.rs_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?;
    str_field(
        &expect_json(res, "token (client_credentials)").await?,
        "access_token",
    )?;
    Ok(())
}

/// What one task keeps between iterations.
struct TaskState {
    http: reqwest::Client,
    /// The refresh token this task rotates (`refresh`).
    refresh_token: String,
    /// The access token this task introspects (`introspect`).
    access_token: String,
}

/// Per-task preparation outside the measurement: the refresh and introspect
/// scenarios need a token of their own, got through one flow (the login is
/// paid here, once per task).
async fn prepare(scenario: Scenario, t: &Target) -> Result<TaskState> {
    let http = http_client()?;
    let mut state = TaskState {
        http,
        refresh_token: String::new(),
        access_token: String::new(),
    };
    if matches!(scenario, Scenario::Refresh | Scenario::Introspect) {
        let tokens = flow(&state.http, t).await?;
        state.refresh_token = str_field(&tokens, "refresh_token")?;
        state.access_token = str_field(&tokens, "access_token")?;
    }
    Ok(state)
}

/// One request (or one flow) of `scenario`.
async fn once(scenario: Scenario, t: &Target, s: &mut TaskState) -> Result<()> {
    match scenario {
        Scenario::Par => push(&s.http, t).await.map(drop),
        Scenario::Flow => flow(&s.http, t).await.map(drop),
        Scenario::Refresh => {
            s.refresh_token = refresh(&s.http, t, &s.refresh_token).await?;
            Ok(())
        }
        Scenario::Introspect => introspect(&s.http, t, &s.access_token).await,
        Scenario::Token => client_credentials(&s.http, t).await,
    }
}

/// What one task measured.
struct Tally {
    latencies: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn run_task(
    scenario: Scenario,
    t: Arc<Target>,
    mut state: TaskState,
    start: Instant,
    warm_until: Instant,
    until: Instant,
) -> Result<Tally> {
    let mut latencies = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)?;
    let mut errors = 0;
    let mut first_error = None;
    let mut measuring = false;
    tokio::time::sleep_until(start.into()).await;
    loop {
        let began = Instant::now();
        if began >= until {
            break;
        }
        if !measuring && began >= warm_until {
            measuring = true;
        }
        let outcome = once(scenario, &t, &mut state).await;
        if !measuring {
            continue;
        }
        match outcome {
            Ok(()) => {
                let us = u64::try_from(began.elapsed().as_micros()).unwrap_or(MAX_LATENCY_US);
                latencies.saturating_record(us.max(1));
            }
            Err(e) => {
                errors += 1;
                if first_error.is_none() {
                    first_error = Some(format!("{e:#}"));
                }
                // A refresh token spent by a failed rotation cannot be used
                // again: get a new one, outside the clock.
                if scenario == Scenario::Refresh {
                    if let Ok(fresh) = prepare(scenario, &t).await {
                        state = fresh;
                    }
                }
            }
        }
    }
    Ok(Tally {
        latencies,
        errors,
        first_error,
    })
}

/// One row of the results table.
struct Row {
    scenario: Scenario,
    requests: u64,
    per_second: f64,
    latencies: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn run_scenario(scenario: Scenario, t: &Arc<Target>, args: &Args) -> Result<Row> {
    let mut prepared = Vec::with_capacity(args.concurrency);
    // Preparation runs a few at a time, so that its logins do not all hash
    // passwords at once.
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
    let mut tasks = tokio::task::JoinSet::new();
    for state in prepared {
        tasks.spawn(run_task(
            scenario,
            t.clone(),
            state,
            start,
            warm_until,
            until,
        ));
    }
    let mut latencies = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)?;
    let mut errors = 0;
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        let tally = done.context("load task")??;
        latencies.add(&tally.latencies)?;
        errors += tally.errors;
        if first_error.is_none() {
            first_error = tally.first_error;
        }
    }
    // Requests still in flight at `until` finish a little later; the rate
    // is over the nominal measured window.
    let measured = Duration::from_secs(args.seconds).as_secs_f64();
    let requests = latencies.len() + errors;
    Ok(Row {
        scenario,
        requests,
        per_second: latencies.len() as f64 / measured,
        latencies,
        errors,
        first_error,
    })
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn print_header() {
    println!(
        "{:<11} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "scenario", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
    );
}

fn print_row(r: &Row) {
    let h = &r.latencies;
    println!(
        "{:<11} {:>9} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>7}",
        r.scenario.to_string(),
        r.requests,
        r.per_second,
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        r.errors
    );
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

fn print_facts(args: &Args, base: &str, scenarios: &[Scenario]) {
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
        Some(_) => format!("external server at {base}"),
        None => format!("in-process server at {base} (SQLite in a temp dir, sharing the cores with the load generator)"),
    };
    println!("server: {server}");
    let names: Vec<String> = scenarios.iter().map(ToString::to_string).collect();
    println!(
        "load: {} tasks, {} s warm-up + {} s measured per scenario; scenarios: {}",
        args.concurrency,
        args.warmup,
        args.seconds,
        names.join(",")
    );
    println!();
}

async fn run(args: Args) -> Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    let scenarios: Vec<Scenario> = if args.scenario.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenario.clone()
    };
    let (base, embedded) = match &args.target {
        Some(url) => (url.trim_end_matches('/').to_owned(), None),
        None => {
            let (base, e) = start_embedded(&args).await?;
            (base, Some(e))
        }
    };
    let target = Arc::new(Target {
        base: base.clone(),
        user: args.user.clone(),
        password: args.password.clone(),
        rs_id: args.rs_id.clone(),
        rs_secret: args.rs_secret.clone(),
        registration: registration(),
    });
    print_facts(&args, &base, &scenarios);
    print_header();
    let mut failures = Vec::new();
    for scenario in scenarios {
        match run_scenario(scenario, &target, &args).await {
            Ok(row) => {
                print_row(&row);
                if let Some(e) = row.first_error {
                    failures.push(format!("{scenario}: first error: {e}"));
                }
            }
            Err(e) => {
                println!("{:<11} failed to run: {e:#}", scenario.to_string());
                failures.push(format!("{scenario}: {e:#}"));
            }
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

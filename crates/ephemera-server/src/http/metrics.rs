//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4),
//! and [`track`], the middleware that counts every request.
//!
//! Labels hold only route templates (`/register/{client_id}`, never the raw
//! path), method names and status codes: no client data and no secret ever
//! reaches a label, and the number of series is bounded by the routes.
//! Unknown paths are all `unmatched`; unusual methods are all `other`.
//!
//! Counters are atomics. A map is write-locked only the first time a label
//! set is seen; after that, recording is a read lock and an atomic add.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::App;
use crate::service::gauges::Reading;

/// The `endpoint` label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// Upper bounds of the latency histogram: as written in `le`, and in
/// nanoseconds.
const BUCKETS: [(&str, u64); 12] = [
    ("0.0005", 500_000),
    ("0.001", 1_000_000),
    ("0.0025", 2_500_000),
    ("0.005", 5_000_000),
    ("0.01", 10_000_000),
    ("0.025", 25_000_000),
    ("0.05", 50_000_000),
    ("0.1", 100_000_000),
    ("0.25", 250_000_000),
    ("0.5", 500_000_000),
    ("1", 1_000_000_000),
    ("2.5", 2_500_000_000),
];

/// What this process has served since it started. Each node of a deployment
/// counts its own; the gauges come from the node's last recount of the
/// shared database (`service::gauges`), never from a query per scrape.
#[derive(Default)]
pub struct Metrics {
    endpoints: RwLock<HashMap<Box<str>, Endpoint>>,
    rate_limited: AtomicU64,
}

/// The series of one route template.
#[derive(Default)]
struct Endpoint {
    /// Responses by (method, status).
    responses: RwLock<HashMap<(&'static str, u16), AtomicU64>>,
    /// Requests per latency bucket, not cumulative; the last slot counts
    /// those above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A poisoned lock only means a panic elsewhere; counters stay usable.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Metrics {
    /// Counts one response of `endpoint` (a route template or
    /// [`UNMATCHED`]) that took `elapsed` to its head.
    pub fn record(
        &self,
        endpoint: &str,
        method: &'static str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let slot = BUCKETS
            .iter()
            .position(|&(_, bound)| nanos <= bound)
            .unwrap_or(BUCKETS.len());
        self.with_endpoint(endpoint, |series| {
            series.count(method, status.as_u16());
            if let Some(bucket) = series.buckets.get(slot) {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
            series.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        });
    }

    fn with_endpoint(&self, name: &str, f: impl FnOnce(&Endpoint)) {
        if let Some(series) = read(&self.endpoints).get(name) {
            return f(series);
        }
        f(write(&self.endpoints).entry(name.into()).or_default());
    }

    /// The text exposition of the counters, and of the gauges of `reading`
    /// when the last recount succeeded.
    fn render(&self, reading: Option<&Reading>) -> String {
        let stats = reading.map(|r| &r.stats);
        let mut out = String::new();
        let endpoints = read(&self.endpoints);
        // Sorted, so that scrapes read the same from one to the next.
        let sorted: BTreeMap<&str, &Endpoint> =
            endpoints.iter().map(|(k, v)| (k.as_ref(), v)).collect();

        describe(
            &mut out,
            "ephemera_http_requests_total",
            "counter",
            "HTTP responses by route template, method and status code.",
        );
        for (endpoint, series) in &sorted {
            let responses = read(&series.responses);
            let sorted: BTreeMap<_, _> = responses.iter().collect();
            for ((method, status), count) in sorted {
                let _ = writeln!(
                    out,
                    "ephemera_http_requests_total{{endpoint=\"{}\",method=\"{method}\",status=\"{status}\"}} {}",
                    escape(endpoint),
                    count.load(Ordering::Relaxed)
                );
            }
        }

        describe(
            &mut out,
            "ephemera_http_request_duration_seconds",
            "histogram",
            "Time from the request to the response head, by route template.",
        );
        for (endpoint, series) in &sorted {
            let endpoint = escape(endpoint);
            let mut cumulative = 0;
            for (i, bucket) in series.buckets.iter().enumerate() {
                cumulative += bucket.load(Ordering::Relaxed);
                let le = BUCKETS.get(i).map_or("+Inf", |&(le, _)| le);
                let _ = writeln!(
                    out,
                    "ephemera_http_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = series.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "ephemera_http_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "ephemera_http_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {cumulative}"
            );
        }
        drop(endpoints);

        describe(
            &mut out,
            "ephemera_rate_limited_total",
            "counter",
            "Responses refused with 429 Too Many Requests.",
        );
        let _ = writeln!(
            out,
            "ephemera_rate_limited_total {}",
            self.rate_limited.load(Ordering::Relaxed)
        );

        gauge(
            &mut out,
            "ephemera_database_up",
            "1 when the database answered the last recount of the gauges, else 0 (and no database gauges).",
            i64::from(stats.is_some()),
        );
        if let Some(r) = reading {
            gauge(
                &mut out,
                "ephemera_gauges_timestamp_seconds",
                "When the gauges below were recounted (Unix time); they are recounted every metrics.refresh_interval.",
                r.at,
            );
        }
        if let Some(s) = stats {
            for (name, help, value) in [
                (
                    "ephemera_grants",
                    "Grants (transactions) held: not yet ended and erased.",
                    s.grants,
                ),
                (
                    "ephemera_pushed_client_grants",
                    "Grants of pushed clients: pushed client metadata held.",
                    s.pushed_client_grants,
                ),
                (
                    "ephemera_access_tokens",
                    "Access tokens neither expired nor revoked.",
                    s.access_tokens,
                ),
                (
                    "ephemera_refresh_tokens",
                    "Refresh tokens neither expired, used nor revoked.",
                    s.refresh_tokens,
                ),
                (
                    "ephemera_codes",
                    "Authorization codes neither expired nor used.",
                    s.codes,
                ),
                (
                    "ephemera_pending_pushed_requests",
                    "Pending authorization requests (pushed, and stored from the front channel) not yet expired.",
                    s.pending_pushed_requests,
                ),
                (
                    "ephemera_sessions",
                    "Login sessions not yet expired.",
                    s.sessions,
                ),
                (
                    "ephemera_dynamic_clients",
                    "Dynamically registered clients not yet expired.",
                    s.dynamic_clients,
                ),
                (
                    "ephemera_registered_clients",
                    "Clients added by an operator.",
                    s.registered_clients,
                ),
            ] {
                gauge(&mut out, name, help, value);
            }
        }
        out
    }
}

impl Endpoint {
    fn count(&self, method: &'static str, status: u16) {
        if let Some(count) = read(&self.responses).get(&(method, status)) {
            count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        write(&self.responses)
            .entry((method, status))
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }
}

fn describe(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    describe(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value as the exposition format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `method` label: the methods a client may usefully send, else `other`,
/// so that no client-chosen string becomes a series.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// Middleware on every route: counts the response by route template, method
/// and status, times it, and counts 429s. The latency is measured with the
/// monotonic clock, not the service clock, which stands for protocol time.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let endpoint = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method().as_str());
    let start = Instant::now();
    let res = next.run(req).await;
    let endpoint = endpoint.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    metrics.record(endpoint, method, res.status(), start.elapsed());
    res
}

/// `GET /metrics`: the request counters and the gauges as last recounted,
/// from memory: a scrape runs no query. With `metrics.bearer_token`, only
/// for `Authorization: Bearer <token>` (RFC 6750 §2.1), compared in
/// constant time.
pub async fn get(State(app): State<App>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &app.metrics_token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        if !sent.is_some_and(|t| crate::secret::ct_eq(token, t)) {
            return (
                StatusCode::UNAUTHORIZED,
                [
                    (
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer realm=\"ephemera-metrics\""),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                "metrics need Authorization: Bearer <metrics.bearer_token>\n",
            )
                .into_response();
        }
    }
    let reading = app.ctx.gauges.latest();
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        app.metrics.render(reading.as_ref()),
    )
        .into_response()
}

//! Latency histograms, per-step tallies, the server process's CPU time and
//! memory, and the results table.

use std::time::Instant;

use anyhow::Result;
use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, up to this many (60 s).
pub const MAX_LATENCY_US: u64 = 60_000_000;

pub fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?)
}

pub fn record(h: &mut Histogram<u64>, since: Instant) {
    let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(MAX_LATENCY_US);
    h.saturating_record(us.max(1));
}

/// One latency histogram per named step of a scenario (the flows' PAR,
/// authorize, token, ... requests), in the order first seen.
#[derive(Default)]
pub struct Steps {
    steps: Vec<(&'static str, Histogram<u64>)>,
}

impl Steps {
    pub fn record(&mut self, name: &'static str, since: Instant) {
        if let Some((_, h)) = self.steps.iter_mut().find(|(n, _)| *n == name) {
            record(h, since);
            return;
        }
        if let Ok(mut h) = histogram() {
            record(&mut h, since);
            self.steps.push((name, h));
        }
    }

    /// Forgets the preparation and the warm-up.
    pub fn reset(&mut self) {
        self.steps.clear();
    }

    pub fn merge(&mut self, other: &Steps) -> Result<()> {
        for (name, h) in &other.steps {
            match self.steps.iter_mut().find(|(n, _)| n == name) {
                Some((_, mine)) => mine.add(h)?,
                None => self.steps.push((name, h.clone())),
            }
        }
        Ok(())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Histogram<u64>)> {
        self.steps.iter().map(|(n, h)| (*n, h))
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }
}

/// CPU time and memory of a process, from `/proc/PID/stat` and `status`.
#[derive(Debug, Clone, Copy)]
pub struct Process {
    pub pid: u32,
    ticks_per_second: f64,
}

impl Process {
    pub fn new(pid: u32) -> Self {
        let ticks_per_second = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0);
        Self {
            pid,
            ticks_per_second,
        }
    }

    /// User plus system CPU seconds used so far (threads included).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // The command name (field 2) may hold spaces; count from its `)`.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line.
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / self.ticks_per_second)
    }

    /// A `/proc/PID/status` line's value in MiB (`VmRSS`, `VmHWM`).
    pub fn mib(&self, field: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }
}

/// One row of the results table.
pub struct Row {
    pub target: &'static str,
    pub scenario: String,
    pub requests: u64,
    pub per_second: f64,
    pub latencies: Histogram<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub steps: Steps,
    /// The server's CPU use over the measured phase, in cores (1.0 = one
    /// core busy all the time), when its pid is known.
    pub server_cpu: Option<f64>,
    /// The server's resident memory at the end of the phase, MiB.
    pub server_rss: Option<f64>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub fn print_header() {
    println!(
        "{:<9} {:<24} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>8}",
        "target",
        "scenario",
        "requests",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors",
        "cpu",
        "rss MiB"
    );
}

fn latency_columns(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return format!("{:>8} {:>8} {:>8} {:>8} {:>8}", "-", "-", "-", "-", "-");
    }
    format!(
        "{:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    )
}

pub fn print_row(r: &Row, seconds: f64) {
    let cpu = r
        .server_cpu
        .map(|c| format!("{:.0}%", c * 100.0))
        .unwrap_or_else(|| "-".into());
    let rss = r
        .server_rss
        .map(|m| format!("{m:.1}"))
        .unwrap_or_else(|| "-".into());
    println!(
        "{:<9} {:<24} {:>9} {:>10.1} {} {:>7} {:>6} {:>8}",
        r.target,
        r.scenario,
        r.requests,
        r.per_second,
        latency_columns(&r.latencies),
        r.errors,
        cpu,
        rss
    );
    if r.steps.len() > 1 {
        for (name, h) in r.steps.iter() {
            println!(
                "{:<9} {:<24} {:>9} {:>10.1} {}",
                "",
                format!("  {}/{name}", r.scenario),
                h.len(),
                h.len() as f64 / seconds,
                latency_columns(h)
            );
        }
    }
}

/// Ephemera's row over the peer's: throughput, and the same per busy server
/// core (what the server would do with its core all to itself, when the
/// load generator is the one running out of CPU).
pub fn print_ratio(ours: &Row, peer: &Row) {
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.1}x", a / b)
        } else {
            "-".into()
        }
    };
    let per_core = |r: &Row| r.server_cpu.filter(|c| *c > 0.0).map(|c| r.per_second / c);
    let core_ratio = match (per_core(ours), per_core(peer)) {
        (Some(a), Some(b)) => ratio(a, b),
        _ => "-".into(),
    };
    let p99 = |r: &Row| (!r.latencies.is_empty()).then(|| r.latencies.value_at_quantile(0.99));
    let p99_ratio = match (p99(ours), p99(peer)) {
        (Some(a), Some(b)) => ratio(b as f64, a as f64),
        _ => "-".into(),
    };
    println!(
        "{:<9} {:<24} throughput {}, per busy server core {}, p99 {} lower",
        "ratio",
        ours.scenario,
        ratio(ours.per_second, peer.per_second),
        core_ratio,
        p99_ratio
    );
}

/// What share of the ceiling (`GET /healthz` through the same stack, in the
/// same run) a scenario reaches, in HTTP requests per second and per busy
/// server core: how much of its cost is the HTTP stack and how much is
/// Ephemera's own work.
pub fn print_share_of_ceiling(row: &Row, requests_per_unit: f64, ceiling: &Row) {
    let share = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.0}%", 100.0 * a / b)
        } else {
            "-".into()
        }
    };
    let per_core = |r: &Row, n: f64| {
        r.server_cpu
            .filter(|c| *c > 0.0)
            .map(|c| n * r.per_second / c)
    };
    let core_share = match (per_core(row, requests_per_unit), per_core(ceiling, 1.0)) {
        (Some(a), Some(b)) => share(a, b),
        _ => "-".into(),
    };
    println!(
        "{:<9} {:<24} requests/s {} of the ceiling, per busy server core {}",
        "ceiling",
        row.scenario,
        share(requests_per_unit * row.per_second, ceiling.per_second),
        core_share
    );
}

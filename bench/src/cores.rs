//! Which side of a measurement used the CPU: the busy time of the server's core
//! and of the client's cores over one measurement, from `/proc/stat`, divided
//! by the operations measured. With the server pinned to the last core and
//! this client (with pgbench and openssl) to the others, it tells whether a
//! figure is bound by the server, which is the same for every client, or by
//! the client. Only when the run is pinned ([`enable`]); otherwise nothing is
//! reported.

use std::sync::atomic::{AtomicBool, Ordering};

static PINNED: AtomicBool = AtomicBool::new(false);

/// Turns the accounting on: call it once the server and this process are
/// pinned as `crate::pin` does.
pub fn enable() {
    PINNED.store(true, Ordering::Relaxed);
}

/// Busy and total clock ticks of each core at one moment.
pub struct Mark(Vec<(u64, u64)>);

/// CPU seconds spent over a measurement, divided by its operations.
#[derive(Debug, Clone, Copy)]
pub struct PerOp {
    /// On the server's core (postmaster and backends; the kernel work done there).
    pub server: f64,
    /// On the client's cores (this process, pgbench, and the kernel work done there).
    pub client: f64,
    /// The share of the server core's time that was busy, 0 to 1.
    pub server_busy: f64,
}

/// Now, or `None` when the run is not pinned or `/proc/stat` cannot be read.
pub fn mark() -> Option<Mark> {
    if !PINNED.load(Ordering::Relaxed) {
        return None;
    }
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cores: Vec<(u64, u64)> = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .filter_map(|l| {
            let ticks: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|t| t.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal (guest time is
            // already counted in user): busy is all but idle, iowait and steal.
            let total: u64 = ticks.iter().take(8).sum();
            let idle = ticks.get(3)? + ticks.get(4)? + ticks.get(7).copied().unwrap_or(0);
            Some((total - idle, total))
        })
        .collect();
    (cores.len() >= 2).then_some(Mark(cores))
}

impl Mark {
    /// The CPU time since this mark, per operation of `ops`.
    pub fn per_op(&self, ops: f64) -> Option<PerOp> {
        let now = mark()?;
        let tick = 1.0 / clock_ticks_per_second();
        let delta = |i: usize| {
            let ((b0, t0), (b1, t1)) = (self.0[i], now.0[i]);
            (b1.saturating_sub(b0), t1.saturating_sub(t0))
        };
        let server_core = self.0.len() - 1;
        let (server_busy, server_total) = delta(server_core);
        let client_busy: u64 = (0..server_core).map(|i| delta(i).0).sum();
        if ops <= 0.0 || server_total == 0 {
            return None;
        }
        Some(PerOp {
            server: server_busy as f64 * tick / ops,
            client: client_busy as f64 * tick / ops,
            server_busy: server_busy as f64 / server_total as f64,
        })
    }
}

/// `/proc/stat` counts in USER_HZ, which Linux fixes at 100 for user space
/// (`getconf CLK_TCK`) whatever the kernel's own tick.
fn clock_ticks_per_second() -> f64 {
    100.0
}

/// The medians of several measurements' [`PerOp`], as the text a report row
/// adds: `CPU per connection: server 5.1 ms (core 98 % busy), client 1.2 ms`.
pub fn text(samples: &[PerOp], what: &str, unit: &str, scale: f64) -> Option<String> {
    if samples.is_empty() {
        return None;
    }
    let median = |f: fn(&PerOp) -> f64| {
        crate::report::Stats::of(&samples.iter().map(f).collect::<Vec<_>>()).median
    };
    Some(format!(
        "CPU per {what}: server {} {unit} (its core {:.0} % busy), client {} {unit}",
        crate::report::fmt_num(median(|p| p.server) * scale),
        median(|p| p.server_busy) * 100.0,
        crate::report::fmt_num(median(|p| p.client) * scale),
    ))
}

/// The figures of one contender, one per round, and the CPU split of each.
#[derive(Default)]
pub struct Samples {
    /// The figure of each round.
    pub rates: Vec<f64>,
    /// The CPU split of each round, where there is one.
    pub cpu: Vec<PerOp>,
}

impl Samples {
    /// Adds one round.
    pub fn push(&mut self, rate: f64, cpu: Option<PerOp>) {
        self.rates.push(rate);
        self.cpu.extend(cpu);
    }
}

/// A row's ratio text and its CPU text, joined by `; ` where both exist.
pub fn join(ratio: Option<String>, cpu: Option<String>) -> Option<String> {
    match (ratio, cpu) {
        (Some(r), Some(c)) => Some(format!("{r}; {c}")),
        (r, c) => r.or(c),
    }
}

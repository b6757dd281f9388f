//! Comparison 1, connection set-up: new connection, one `SELECT 1`, close;
//! connections/s, sequential and with 8 concurrent connecting tasks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::clients::{BenchResult, Contender};
use crate::cores::{self, PerOp, Samples};
use crate::report::{ratio_text, Row, Section, Target};
use crate::Scale;

/// The concurrent task count of the issue.
pub const CONCURRENCY: u32 = 8;

/// One way to connect: a Rust client in this process, or libpq through pgbench.
pub enum Way {
    /// A Rust client.
    Rust(Arc<Contender>),
    /// pgbench `-C` with this conninfo.
    Pgbench(String),
}

/// A named way to connect, with the row it is compared against.
pub struct Entry {
    /// Row name.
    pub name: String,
    /// How it connects.
    pub way: Way,
    /// The libpq row of the same key (or plaintext) for the ratio column.
    pub libpq: String,
}

/// What pgbench needs: a home without `~/.postgresql` and the one-line script.
pub struct Pgbench {
    home: PathBuf,
    script: PathBuf,
}

impl Pgbench {
    /// Writes the `SELECT 1` script into `dir`, which also serves as `HOME`.
    pub fn new(dir: &Path) -> BenchResult<Pgbench> {
        let script = dir.join("select1.sql");
        std::fs::write(&script, "SELECT 1;\n")?;
        Ok(Pgbench {
            home: dir.to_path_buf(),
            script,
        })
    }

    /// Runs pgbench with `clients` clients (one thread each, since libpq connects
    /// synchronously) and `per_client` transactions each; returns its tps. With
    /// `reconnect`, each transaction opens and closes its own connection (`-C`),
    /// and the tps includes the connection times.
    pub fn tps(
        &self,
        conninfo: &str,
        clients: u32,
        per_client: u32,
        reconnect: bool,
    ) -> BenchResult<f64> {
        let mut cmd =
            pgssl_tests::clean_command(&pgssl_tests::pg_bindir().join("pgbench"), &self.home);
        cmd.arg("-n");
        if reconnect {
            cmd.arg("-C");
        }
        let out = cmd
            .args(["-c", &clients.to_string(), "-j", &clients.to_string()])
            .args(["-t", &per_client.to_string(), "-f"])
            .arg(&self.script)
            .arg(conninfo)
            .output()?;
        let report = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "pgbench failed: {report}{}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        report
            .lines()
            .find_map(|l| l.strip_prefix("tps = "))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no tps in pgbench's report: {report}").into())
    }
}

/// Connections/s of `contender` over `total` cycles spread over `tasks` tasks.
pub async fn rust_rate(contender: &Arc<Contender>, total: u32, tasks: u32) -> BenchResult<f64> {
    let per_task = (total / tasks).max(1);
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let contender = contender.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                contender.cycle().await?;
            }
            BenchResult::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    Ok(f64::from(per_task * tasks) / start.elapsed().as_secs_f64())
}

/// Connections/s of `entry`, and the CPU each connection took on either side.
async fn rate(
    entry: &Entry,
    pgbench: &Arc<Pgbench>,
    total: u32,
    tasks: u32,
) -> BenchResult<(f64, Option<PerOp>)> {
    let mark = cores::mark();
    let rate = match &entry.way {
        Way::Rust(contender) => rust_rate(contender, total, tasks).await,
        Way::Pgbench(conninfo) => {
            let (pgbench, conninfo) = (pgbench.clone(), conninfo.clone());
            tokio::task::spawn_blocking(move || {
                pgbench.tps(&conninfo, tasks, (total / tasks).max(1), true)
            })
            .await?
        }
    };
    let rate = rate.map_err(|e| format!("connection set-up, {}: {e}", entry.name))?;
    // Both ways make (total / tasks).max(1) connections per task.
    let connections = f64::from((total / tasks).max(1) * tasks);
    Ok((rate, mark.and_then(|m| m.per_op(connections))))
}

/// `items` starting at position `round` (modulo their count), wrapping around.
pub fn rotated<T>(items: &[T], round: usize) -> impl Iterator<Item = &T> {
    let start = round % items.len().max(1);
    items[start..].iter().chain(&items[..start])
}

/// Runs every entry sequentially and with [`CONCURRENCY`] tasks, rounds interleaved.
pub async fn run(
    entries: &[Entry],
    pgbench: Arc<Pgbench>,
    scale: &Scale,
) -> BenchResult<Vec<Section>> {
    // Warm up, and fail early with the contender's name if one cannot connect.
    for entry in entries {
        rate(entry, &pgbench, 2, 1).await?;
    }
    let mut sequential: BTreeMap<&str, Samples> = BTreeMap::new();
    let mut concurrent: BTreeMap<&str, Samples> = BTreeMap::new();
    for round in 0..scale.rounds {
        eprintln!("  connection set-up, round {}/{}", round + 1, scale.rounds);
        // Each round starts with another contender, so that none always runs
        // right after the same neighbour (e.g. while the backends of the
        // previous block are still exiting).
        for entry in rotated(entries, round) {
            let (r, cpu) = rate(entry, &pgbench, scale.connections, 1).await?;
            sequential.entry(&entry.name).or_default().push(r, cpu);
        }
        for entry in rotated(entries, round) {
            let (r, cpu) = rate(entry, &pgbench, scale.connections * 2, CONCURRENCY).await?;
            concurrent.entry(&entry.name).or_default().push(r, cpu);
        }
    }
    let intro = |how: &str| {
        format!(
            "New connection, one `SELECT 1`, close; {how}. TLS rows: `verify-full` (or the \
             library's equivalent host-name and chain checks) with a client certificate of \
             the key named, `hostssl ... cert`, TLS 1.3; the server certificate (EC P-256, SANs \
             `localhost` and `127.0.0.1`, X.509 v3) and the CA are the same for all. Each Rust \
             client builds its TLS configuration once and reuses it. libpq is pgbench `-C` with \
             a one-line `SELECT 1` script and the same files (its tps includes the connection \
             times). Plaintext logs in with `trust` over TCP. Ratio: against libpq with the \
             same key (plaintext: against plaintext libpq). CPU per connection: the busy \
             time of the server's core and of the client's core over each round (from \
             `/proc/stat`, kernel work on either core included), divided by the connections \
             made, medians over the rounds; a server core near 100 % busy bounds the rate \
             whatever the client does."
        )
    };
    let seq = section(
        "1a. Connection set-up, sequential",
        &intro("one connection at a time"),
        entries,
        &sequential,
    );
    let conc = section(
        "1b. Connection set-up, 8 concurrent tasks",
        &intro("8 tasks connecting at once on the tokio runtime (pgbench: `-c 8 -j 8`)"),
        entries,
        &concurrent,
    );
    Ok(vec![seq, conc])
}

fn section(
    title: &str,
    intro: &str,
    entries: &[Entry],
    samples: &BTreeMap<&str, Samples>,
) -> Section {
    let mut s = Section::new(title, "conn/s", intro);
    for entry in entries {
        s.rows
            .push(Row::new(&entry.name, &samples[entry.name.as_str()].rates));
    }
    for entry in entries {
        let libpq = s.median(&entry.libpq);
        let mine = s.median(&entry.name);
        let cpu = cores::text(&samples[entry.name.as_str()].cpu, "connection", "ms", 1e3);
        let ratio = (entry.name != entry.libpq).then(|| ratio_text(mine, libpq, "libpq"));
        s.row_mut(&entry.name).ratio = cores::join(ratio, cpu);
    }
    // The targets are stated for EC P-256 certificates.
    let pgssl = s.median(PGSSL_EC);
    let stock = s.median(STOCK_EC);
    let libpq = s.median(LIBPQ_EC);
    s.row_mut(PGSSL_EC).targets = vec![
        Target::at_least(
            "≥ 1.0× stock tokio-postgres-rustls",
            pgssl / stock,
            1.0,
            "×",
        ),
        Target::at_least("≥ 1.5× libpq", pgssl / libpq, 1.5, "×"),
    ];
    s
}

/// Row names the targets refer to.
pub const PGSSL_EC: &str = "pgssl_client, EC P-256";
/// The stock rustls row with EC P-256, with pgssl_client's crypto provider
/// (aws-lc-rs; see `Provider::PGSSL`).
pub const STOCK_EC: &str = "tokio-postgres-rustls (stock rustls, aws-lc-rs), EC P-256";
/// The stock rustls row with EC P-256 and the other crypto provider.
pub const STOCK_EC_OTHER: &str = "tokio-postgres-rustls (stock rustls, ring), EC P-256";
/// The stock rustls row with RSA-2048.
pub const STOCK_RSA: &str = "tokio-postgres-rustls (stock rustls, aws-lc-rs), RSA-2048";
/// The libpq row with EC P-256.
pub const LIBPQ_EC: &str = "libpq (pgbench -C), EC P-256";

//! Comparison 2, steady state over one connection: simple-query round trips/s
//! and `COPY ... TO STDOUT` MB/s.

use std::collections::BTreeMap;
use std::time::Instant;

use futures_util::TryStreamExt;

use crate::clients::{BenchResult, Session};
use crate::connect::Pgbench;
use crate::cores::{self, Samples};
use crate::report::{ratio_text, Row, Section, Target};
use crate::Scale;

/// The table `COPY` reads: `rows` rows of about 250 bytes of text.
pub fn copy_table_sql(rows: u32) -> String {
    format!(
        "CREATE TABLE bench_copy AS \
         SELECT g AS id, md5(g::text) || repeat('x', 200) AS payload \
         FROM generate_series(1, {rows}) AS g"
    )
}

async fn round_trips(session: &Session, n: u32) -> BenchResult<f64> {
    let start = Instant::now();
    for _ in 0..n {
        session.client.simple_query("SELECT 1").await?;
    }
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

/// MB/s, and the MB read.
async fn copy_out(session: &Session) -> BenchResult<(f64, f64)> {
    let start = Instant::now();
    let stream = session.client.copy_out("COPY bench_copy TO STDOUT").await?;
    futures_util::pin_mut!(stream);
    let mut bytes = 0usize;
    while let Some(chunk) = stream.try_next().await? {
        bytes += chunk.len();
    }
    let mb = bytes as f64 / 1e6;
    Ok((mb / start.elapsed().as_secs_f64(), mb))
}

/// Each row's ratio against `reference`, with its CPU split appended.
fn ratios(
    section: &mut Section,
    samples: &BTreeMap<&str, Samples>,
    reference: &str,
    per: &str,
    unit: &str,
    scale: f64,
) {
    let base = section.median(reference);
    for row in &mut section.rows {
        let ratio =
            (row.name != reference).then(|| ratio_text(row.stats.median, base, "plaintext"));
        let cpu = cores::text(&samples[row.name.as_str()].cpu, per, unit, scale);
        row.ratio = cores::join(ratio, cpu);
    }
}

/// Names of the rows the ratios and targets refer to.
const PGSSL: &str = "pgssl_client (TLS)";
const OPENSSL: &str = "tokio-postgres + postgres-openssl (TLS)";
const PLAIN: &str = "tokio-postgres, plaintext";

/// Runs both measurements over one open session per client, rounds interleaved.
/// `sessions` holds (name, session) with the names above, plus any extra.
pub async fn run(
    sessions: &[(&str, Session)],
    pgbench: &Pgbench,
    libpq_conninfo: &str,
    scale: &Scale,
) -> BenchResult<Vec<Section>> {
    let mut trips: BTreeMap<&str, Samples> = BTreeMap::new();
    let mut copies: BTreeMap<&str, Samples> = BTreeMap::new();
    const LIBPQ: &str = "libpq (pgbench, one connection, TLS)";
    // Warm-up: caches, and the table into the OS page cache.
    for (name, session) in sessions {
        round_trips(session, 50)
            .await
            .map_err(|e| format!("round trips, {name}: {e}"))?;
        copy_out(session)
            .await
            .map_err(|e| format!("COPY, {name}: {e}"))?;
    }
    for round in 0..scale.rounds {
        eprintln!("  steady state, round {}/{}", round + 1, scale.rounds);
        let n = f64::from(scale.round_trips);
        for (name, session) in crate::connect::rotated(sessions, round) {
            let mark = cores::mark();
            let rate = round_trips(session, scale.round_trips).await?;
            let cpu = mark.and_then(|m| m.per_op(n));
            trips.entry(name).or_default().push(rate, cpu);
        }
        let mark = cores::mark();
        let rate = pgbench.tps(libpq_conninfo, 1, scale.round_trips, false)?;
        let cpu = mark.and_then(|m| m.per_op(n));
        trips.entry(LIBPQ).or_default().push(rate, cpu);
        for (name, session) in crate::connect::rotated(sessions, round) {
            let mark = cores::mark();
            let (rate, mb) = copy_out(session).await?;
            let cpu = mark.and_then(|m| m.per_op(mb));
            copies.entry(name).or_default().push(rate, cpu);
        }
    }

    let mut rt = Section::new(
        "2a. Steady state: simple-query round trips over one connection",
        "round trips/s",
        "`SELECT 1` with the simple-query protocol, one at a time, over one open connection. \
         TLS rows use a client certificate (EC P-256) and verify-full. libpq is pgbench \
         without `-C` (one connection, the same script). Ratio: against plaintext. CPU \
         per round trip: the busy time of the server's core and of the client's core \
         over each round (from `/proc/stat`, kernel work on either core included), \
         divided by the round trips, medians over the rounds.",
    );
    for (name, _) in sessions {
        rt.rows.push(Row::new(*name, &trips[name].rates));
    }
    rt.rows.push(Row::new(LIBPQ, &trips[LIBPQ].rates));
    let plain = rt.median(PLAIN);
    let openssl = rt.median(OPENSSL);
    ratios(&mut rt, &trips, PLAIN, "round trip", "µs", 1e6);
    let pgssl = rt.median(PGSSL);
    rt.row_mut(PGSSL).targets = vec![
        Target::at_least("≥ 0.97× plaintext", pgssl / plain, 0.97, "×"),
        Target::at_least("≥ 1.0× postgres-openssl", pgssl / openssl, 1.0, "×"),
    ];

    let mut cp = Section::new(
        "2b. Steady state: COPY TO STDOUT over one connection",
        "MB/s",
        &format!(
            "`COPY bench_copy TO STDOUT` of {} rows (about {:.0} MB of text; MB = 10⁶ bytes), \
             read as a stream, over one open connection. Ratio: against plaintext. CPU \
             per MB: as for round trips, divided by the MB read.",
            scale.copy_rows,
            f64::from(scale.copy_rows) * 250.0 / 1e6
        ),
    );
    for (name, _) in sessions {
        cp.rows.push(Row::new(*name, &copies[name].rates));
    }
    let plain = cp.median(PLAIN);
    let openssl = cp.median(OPENSSL);
    ratios(&mut cp, &copies, PLAIN, "MB", "ms", 1e3);
    let pgssl = cp.median(PGSSL);
    cp.row_mut(PGSSL).targets = vec![
        Target::at_least("≥ 1.0× postgres-openssl", pgssl / openssl, 1.0, "×"),
        Target::at_least("≥ 0.95× plaintext", pgssl / plain, 0.95, "×"),
    ];
    Ok(vec![rt, cp])
}

/// The stock rustls session with pgssl_client's crypto provider.
pub const STOCK: &str = "tokio-postgres-rustls (stock rustls, aws-lc-rs, TLS)";
/// The stock rustls session with the other crypto provider.
pub const STOCK_OTHER: &str = "tokio-postgres-rustls (stock rustls, ring, TLS)";

/// The row names `run` expects among its sessions.
pub const NAMES: [&str; 3] = [PGSSL, OPENSSL, PLAIN];

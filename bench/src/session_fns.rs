//! Comparison 3, session functions: per call in ns, over TLS with a client
//! certificate, pgssl's against contrib/sslinfo's.

use std::collections::BTreeMap;

use crate::clients::{BenchResult, Session};
use crate::memory::{self, Rss};
use crate::report::{fmt_num, ratio_text, Row, Section, Target};
use crate::Scale;

/// The expression that stands for "the same facts" as `pgssl.session_info()`:
/// one sslinfo call per fact it reports.
pub(crate) const SSLINFO_FACTS: &str = "ROW(ssl_is_used(), ssl_version(), ssl_cipher(), \
     ssl_client_cert_present(), ssl_client_serial(), ssl_client_dn(), ssl_issuer_dn())";

/// (row name, expression, counterpart row, per-call goal against it): the rows of
/// this section and of the instruction counts.
pub(crate) const CALLS: [(&str, &str, &str, f64); 9] = [
    (
        "pgssl.client_cn()",
        "pgssl.client_cn()",
        "ssl_client_dn_field('CN')",
        0.1,
    ),
    (
        "pgssl.client_dn_field('CN')",
        "pgssl.client_dn_field('CN')",
        "ssl_client_dn_field('CN')",
        0.5,
    ),
    (
        "pgssl.client_dn()",
        "pgssl.client_dn()",
        "ssl_client_dn()",
        0.5,
    ),
    (
        "pgssl.client_serial()",
        "pgssl.client_serial()",
        "ssl_client_serial()",
        0.5,
    ),
    (
        "pgssl.session_info()",
        "pgssl.session_info()",
        "sslinfo, the same facts (7 calls)",
        1.0,
    ),
    (
        "ssl_client_dn_field('CN')",
        "ssl_client_dn_field('CN')",
        "",
        0.0,
    ),
    ("ssl_client_dn()", "ssl_client_dn()", "", 0.0),
    ("ssl_client_serial()", "ssl_client_serial()", "", 0.0),
    ("sslinfo, the same facts (7 calls)", SSLINFO_FACTS, "", 0.0),
];

/// The executor's time in ms for `SELECT count(expr) FROM generate_series(1, n)`.
async fn execution_ms(session: &Session, expr: &str, n: u32) -> BenchResult<f64> {
    let sql = format!(
        "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) \
         SELECT count({expr}) FROM generate_series(1, {n})"
    );
    // The simple-query protocol returns the plan as text: no JSON decoding in the client.
    let messages = session.client.simple_query(&sql).await?;
    let text = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0),
            _ => None,
        })
        .ok_or("EXPLAIN returned no plan")?;
    let plan: serde_json::Value = serde_json::from_str(text)?;
    plan[0]["Execution Time"]
        .as_f64()
        .ok_or_else(|| format!("no Execution Time in {plan}").into())
}

/// Measures every function, and the backend's memory across a million pgssl calls.
/// Returns the timing section and the memory figures.
pub async fn run(session: &Session, scale: &Scale) -> BenchResult<(Section, memory::Growth)> {
    let pid: i32 = session
        .client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    // Every expression must work here: a TLS session with a client certificate.
    let row = session
        .client
        .query_one("SELECT pgssl.client_cn(), ssl_client_dn_field('CN')", &[])
        .await?;
    let (cn, sslinfo_cn): (Option<String>, Option<String>) = (row.get(0), row.get(1));
    if cn.is_none() || cn != sslinfo_cn {
        return Err(format!("session functions: client_cn {cn:?}, sslinfo {sslinfo_cn:?}").into());
    }
    for (name, expr, _, _) in CALLS {
        execution_ms(session, expr, 1000)
            .await
            .map_err(|e| format!("session function {name}: {e}"))?;
    }

    // Memory: a million calls of pgssl's functions, a quarter each.
    let before = Rss::of_pid(pid)?;
    let quarter = scale.memory_fn_calls / 4;
    session
        .client
        .simple_query(&format!(
            "SELECT count(pgssl.client_cn()), count(pgssl.client_dn_field('CN')), \
             count(pgssl.client_dn()), count(pgssl.session_info()) \
             FROM generate_series(1, {quarter})"
        ))
        .await?;
    let after = Rss::of_pid(pid)?;
    let growth = memory::Growth {
        what: format!(
            "backend, {} pgssl session-function calls",
            fmt_num(f64::from(quarter * 4))
        ),
        before,
        after,
        backend: true,
    };

    let n = scale.fn_calls;
    let mut per_call: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 0..scale.rounds {
        eprintln!("  session functions, round {}/{}", round + 1, scale.rounds);
        for (name, expr, _, _) in CALLS {
            // The empty loop right before each function, so that drift cancels.
            let empty = execution_ms(session, "1", n).await?;
            let full = execution_ms(session, expr, n).await?;
            per_call
                .entry(name)
                .or_default()
                .push((full - empty) * 1e6 / f64::from(n));
        }
    }

    let mut s = Section::new(
        "3. Session functions",
        "ns per call",
        &format!(
            "One session over TLS with a client certificate (EC P-256, `CN=bench`). Per call: \
             the executor's time (`EXPLAIN (ANALYZE, TIMING OFF)`) of \
             `SELECT count(f) FROM generate_series(1, {n})` minus that of `count(1)` over the \
             same series, divided by {n}. `pgssl.session_info()` returns every fact of the \
             session in one jsonb; its counterpart is one sslinfo call per fact \
             (`{SSLINFO_FACTS}`). Ratio: against the sslinfo counterpart; lower is better."
        ),
    );
    for (name, _, _, _) in CALLS {
        s.rows.push(Row::new(name, &per_call[name]));
    }
    for (name, _, counterpart, goal) in CALLS {
        if counterpart.is_empty() {
            continue;
        }
        let mine = s.median(name);
        let theirs = s.median(counterpart);
        let row = s.row_mut(name);
        row.ratio = Some(ratio_text(mine, theirs, counterpart));
        row.targets = vec![Target::at_most(
            &format!("≤ {goal}× {counterpart}"),
            mine / theirs,
            goal,
            "×",
        )];
    }
    Ok((s, growth))
}

//! `pgssl report --prometheus`: the figures a monitoring system alerts on, in
//! the Prometheus text exposition format, for node_exporter's textfile
//! collector or any scraper that reads a file. Every metric is a gauge read
//! from SQL at the time of the report:
//!
//! - `pgssl_days_left`: days until each server certificate (and chain
//!   certificate), trusted CA, pgssl CA and CRL expires (a CRL: its next
//!   update), as `pgssl.expiring()` counts them;
//! - `pgssl_sessions`: client sessions and walsenders by TLS and version
//!   (`pgssl.connections`);
//! - `pgssl_certificates_issued`, `pgssl_certificates_revoked`,
//!   `pgssl_certificates_expiring`: the registry (`pgssl.issued_certs`), the
//!   last counting unrevoked certificates expired or expiring within 30 days;
//! - `pgssl_checks`: `pgssl.check_config()` results by status.

use std::fmt::Write;

use tokio_postgres::Client;

use crate::report::sql_error;

/// Every certificate and CRL but the registry's, whatever its expiry.
const DAYS_LEFT: &str = "SELECT kind, subject, coalesce(serial, ''), source, days_left
                           FROM pgssl.expiring('100000 days') WHERE kind NOT LIKE 'issued %'";
const SESSIONS: &str = "SELECT ssl, coalesce(version, 'none'), count(*)
                          FROM pgssl.connections GROUP BY 1, 2 ORDER BY 1, 2";
const REGISTRY: &str = "SELECT count(*),
                               count(*) FILTER (WHERE revoked_at IS NOT NULL),
                               count(*) FILTER (WHERE revoked_at IS NULL
                                                  AND not_after <= pg_catalog.now() + interval '30 days')
                          FROM pgssl.issued_certs";
const CHECKS: &str = "SELECT s.status, count(c.status)
                        FROM unnest(ARRAY['ok', 'warn', 'fail']) AS s(status)
                        LEFT JOIN pgssl.check_config() c ON c.status = s.status
                       GROUP BY 1 ORDER BY 1";

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// The metrics as one text.
pub(crate) async fn gather(client: &Client) -> Result<String, String> {
    let mut out = String::new();
    header(
        &mut out,
        "pgssl_days_left",
        "Days until a server certificate, CA or CRL (its next update) expires; a started day counts as one.",
    );
    for r in client.query(DAYS_LEFT, &[]).await.map_err(sql_error)? {
        let _ = writeln!(
            out,
            "pgssl_days_left{{kind=\"{}\",subject=\"{}\",serial=\"{}\",source=\"{}\"}} {}",
            label(r.get(0)),
            label(r.get(1)),
            label(r.get(2)),
            label(r.get(3)),
            r.get::<_, i32>(4)
        );
    }
    header(
        &mut out,
        "pgssl_sessions",
        "Client sessions and walsenders, by TLS use and protocol version.",
    );
    for r in client.query(SESSIONS, &[]).await.map_err(sql_error)? {
        let _ = writeln!(
            out,
            "pgssl_sessions{{tls=\"{}\",version=\"{}\"}} {}",
            if r.get::<_, bool>(0) { "yes" } else { "no" },
            label(r.get(1)),
            r.get::<_, i64>(2)
        );
    }
    let registry = client.query_one(REGISTRY, &[]).await.map_err(sql_error)?;
    for (i, (name, help)) in [
        (
            "pgssl_certificates_issued",
            "Certificates pgssl issued (pgssl.issued_certs).",
        ),
        (
            "pgssl_certificates_revoked",
            "Certificates pgssl issued and revoked.",
        ),
        (
            "pgssl_certificates_expiring",
            "Unrevoked certificates pgssl issued that expired or expire within 30 days.",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        header(&mut out, name, help);
        let _ = writeln!(out, "{name} {}", registry.get::<_, i64>(i));
    }
    header(
        &mut out,
        "pgssl_checks",
        "Results of pgssl.check_config(), by status.",
    );
    for r in client.query(CHECKS, &[]).await.map_err(sql_error)? {
        let _ = writeln!(
            out,
            "pgssl_checks{{status=\"{}\"}} {}",
            label(r.get(0)),
            r.get::<_, i64>(1)
        );
    }
    Ok(out)
}

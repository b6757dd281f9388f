//! `pgssl report`: the server's TLS audit (`pgssl.check_config()`), who is
//! connected how (`pgssl.connections`) and what expires within 30 days
//! (`pgssl.expiring()`), as a table or as JSON; or metrics in the Prometheus
//! text format ([`crate::metrics`]).

use std::io::IsTerminal;

use serde_json::{json, Value};

use crate::session::Session;

const CHECKS: &str = "SELECT \"check\", status, detail FROM pgssl.check_config()";
const CONNECTIONS: &str = "SELECT pid, usename::text, datname::text, host(client_addr), application_name, ssl, version, cipher, bits, client_dn,
                                  source, key_exchange_group, not_after::text, fingerprint
                             FROM pgssl.connections ORDER BY ssl, pid";
const EXPIRING: &str = "SELECT kind, subject, serial, not_after::text, days_left, source, action FROM pgssl.expiring()";

/// What `pgssl report` prints.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Tables for a terminal.
    Text,
    /// One JSON object.
    Json,
    /// The Prometheus text exposition format.
    Prometheus,
}

/// A query's error, saying what `pgssl report` needs.
pub(crate) fn sql_error(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} (SQLSTATE {}); pgssl report needs the pgssl extension and a superuser",
            db.message(),
            db.code().code()
        ),
        None => e.to_string(),
    }
}

fn colour(status: &str, tty: bool) -> String {
    let code = match status {
        "ok" => "32",
        "warn" => "33",
        _ => "31",
    };
    if tty {
        format!("\x1b[{code}m{status:<4}\x1b[0m")
    } else {
        format!("{status:<4}")
    }
}

/// Prints the report; fails (exit status 1) when any check failed, except
/// in the Prometheus format, where the failed checks are a metric.
pub(crate) async fn report(arg: Option<&str>, format: Format) -> Result<(), String> {
    let (session, _) = Session::open_arg(arg).await?;
    let client = &session.client;
    if format == Format::Prometheus {
        let text = crate::metrics::gather(client).await;
        session.close().await;
        print!("{}", text?);
        return Ok(());
    }
    let as_json = format == Format::Json;
    let checks: Vec<Value> = client
        .query(CHECKS, &[])
        .await
        .map_err(sql_error)?
        .iter()
        .map(|r| json!({"check": r.get::<_, String>(0), "status": r.get::<_, String>(1), "detail": r.get::<_, String>(2)}))
        .collect();
    let connections: Vec<Value> = client
        .query(CONNECTIONS, &[])
        .await
        .map_err(sql_error)?
        .iter()
        .map(|r| {
            json!({
                "pid": r.get::<_, i32>(0), "user": r.get::<_, Option<String>>(1), "database": r.get::<_, Option<String>>(2),
                "client_addr": r.get::<_, Option<String>>(3), "application_name": r.get::<_, Option<String>>(4),
                "ssl": r.get::<_, bool>(5), "version": r.get::<_, Option<String>>(6), "cipher": r.get::<_, Option<String>>(7),
                "bits": r.get::<_, Option<i32>>(8), "client_dn": r.get::<_, Option<String>>(9),
                "source": r.get::<_, String>(10), "key_exchange_group": r.get::<_, Option<String>>(11),
                "not_after": r.get::<_, Option<String>>(12), "fingerprint": r.get::<_, Option<String>>(13),
            })
        })
        .collect();
    let expiring: Vec<Value> = client
        .query(EXPIRING, &[])
        .await
        .map_err(sql_error)?
        .iter()
        .map(|r| {
            json!({
                "kind": r.get::<_, String>(0), "subject": r.get::<_, String>(1), "serial": r.get::<_, Option<String>>(2),
                "not_after": r.get::<_, Option<String>>(3), "days_left": r.get::<_, i32>(4),
                "source": r.get::<_, String>(5), "action": r.get::<_, String>(6),
            })
        })
        .collect();
    session.close().await;

    let failed = checks.iter().filter(|c| c["status"] == "fail").count();
    if as_json {
        let report = json!({"checks": checks, "connections": connections, "expiring": expiring, "failed": failed});
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    } else {
        let tty = std::io::stdout().is_terminal();
        println!("TLS checks");
        let width = checks
            .iter()
            .filter_map(|c| c["check"].as_str())
            .map(str::len)
            .max()
            .unwrap_or(5);
        for c in &checks {
            let (name, status, detail) = (
                c["check"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or(""),
                c["detail"].as_str().unwrap_or(""),
            );
            println!("  {}  {name:<width$}  {detail}", colour(status, tty));
        }
        println!(
            "\nConnections ({} without TLS)",
            connections.iter().filter(|c| c["ssl"] == false).count()
        );
        println!(
            "  {:>7}  {:<16} {:<12} {:<15} {:<4} {:<8} client DN",
            "pid", "user", "database", "address", "tls", "version"
        );
        let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
        for c in &connections {
            let tls = if c["ssl"] == true {
                "yes"
            } else if tty {
                "\x1b[31mno\x1b[0m  "
            } else {
                "no"
            };
            println!(
                "  {:>7}  {:<16} {:<12} {:<15} {:<4} {:<8} {}",
                c["pid"],
                s(&c["user"]),
                s(&c["database"]),
                s(&c["client_addr"]),
                tls,
                s(&c["version"]),
                s(&c["client_dn"])
            );
        }
        println!("\nExpiring within 30 days ({})", expiring.len());
        for e in &expiring {
            println!(
                "  {:>5} days  {:<26} {}  (until {}, {})\n             do: {}",
                e["days_left"],
                s(&e["kind"]),
                s(&e["subject"]),
                s(&e["not_after"]),
                s(&e["source"]),
                s(&e["action"])
            );
        }
    }
    if failed > 0 {
        return Err(format!("{failed} TLS check(s) failed"));
    }
    Ok(())
}

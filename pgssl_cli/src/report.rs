//! `pgssl report`: the server's TLS audit (`pgssl.check_config()`) and who is
//! connected how (`pgssl.connections`), as a table or as JSON.

use std::io::IsTerminal;

use pgssl_client::Connector;
use serde_json::{json, Value};

use crate::config_from_arg;

const CHECKS: &str = "SELECT \"check\", status, detail FROM pgssl.check_config()";
const CONNECTIONS: &str = "SELECT pid, usename::text, datname::text, host(client_addr), application_name, ssl, version, cipher, bits, client_dn
                             FROM pgssl.connections ORDER BY ssl, pid";

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

/// Prints the report; fails (exit status 1) when any check failed.
pub(crate) async fn report(arg: Option<&str>, as_json: bool) -> Result<(), String> {
    let connector = Connector::new(config_from_arg(arg)?);
    let (client, connection) = connector.connect().await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let sql_error = |e: tokio_postgres::Error| match e.as_db_error() {
        Some(db) => format!(
            "{} (SQLSTATE {}); pgssl report needs the pgssl extension and a superuser",
            db.message(),
            db.code().code()
        ),
        None => e.to_string(),
    };
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
            })
        })
        .collect();
    drop(client);
    let _ = driver.await;

    let failed = checks.iter().filter(|c| c["status"] == "fail").count();
    if as_json {
        let report = json!({"checks": checks, "connections": connections, "failed": failed});
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
    }
    if failed > 0 {
        return Err(format!("{failed} TLS check(s) failed"));
    }
    Ok(())
}

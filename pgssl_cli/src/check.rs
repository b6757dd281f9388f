//! `pgssl check`: connect, and show how the connection is secured, from both ends.

use pgssl_client::{CertificateSummary, Config, ConnectionInfo, Connector, Endpoint, Verification};
use serde_json::{json, Value};

use crate::config_from_arg;

fn endpoint_json(e: &Endpoint) -> Value {
    match e {
        Endpoint::Tcp {
            host,
            hostaddr,
            port,
        } => json!({"host": host, "hostaddr": hostaddr.map(|a| a.to_string()), "port": port}),
        Endpoint::Unix { dir, port } => {
            json!({"socket_dir": dir.display().to_string(), "port": port})
        }
    }
}

fn cert_json(der: &[u8]) -> Value {
    let Ok(cert) = CertificateSummary::from_der(der) else {
        return json!({"error": "unparsable certificate"});
    };
    json!({
        "subject": cert.subject,
        "issuer": cert.issuer,
        "version": cert.version,
        "serial": cert.serial_hex,
        "subject_alt_names": cert.subject_alt_names,
        "not_before": cert.not_before,
        "not_after": cert.not_after,
        "expires_in_days": cert.expires_in_days,
        "signature_algorithm": cert.signature_algorithm,
    })
}

fn verification_text(v: Verification, crl: bool, host: Option<&str>) -> String {
    let chain = if crl {
        "certificate chain to a trusted root, validity dates, revocation (CRL)"
    } else {
        "certificate chain to a trusted root, validity dates (no CRL)"
    };
    match v {
        Verification::None => {
            "nothing (no root certificate; the server is not authenticated)".into()
        }
        Verification::Chain => chain.into(),
        Verification::ChainAndHostName => {
            format!("{chain}, and host name \"{}\"", host.unwrap_or(""))
        }
    }
}

pub(crate) async fn check(arg: Option<&str>, as_json: bool) -> Result<(), String> {
    let config = config_from_arg(arg)?;
    let connector = Connector::new(config);
    let (client, connection, info) = connector
        .connect_with_info()
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let report = build_report(&client, &info, connector.config()).await?;
    drop(client);
    let _ = driver.await;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    } else {
        print_report(&report);
    }
    Ok(())
}

async fn build_report(
    client: &tokio_postgres::Client,
    info: &ConnectionInfo,
    config: &Config,
) -> Result<Value, String> {
    let sql_error = |e: tokio_postgres::Error| format!("query failed: {e}");
    let who = client
        .query_one("SELECT session_user::text, current_database()::text, current_setting('server_version')", &[])
        .await
        .map_err(sql_error)?;
    let stat = client
        .query_opt(
            "SELECT ssl, version, cipher, bits, client_dn, client_serial::text, issuer_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(sql_error)?;
    let server_view = stat.map(|r| {
        json!({
            "ssl": r.get::<_, bool>(0),
            "version": r.get::<_, Option<String>>(1),
            "cipher": r.get::<_, Option<String>>(2),
            "bits": r.get::<_, Option<i32>>(3),
            "client_dn": r.get::<_, Option<String>>(4),
            "client_serial": r.get::<_, Option<String>>(5),
            "issuer_dn": r.get::<_, Option<String>>(6),
        })
    });
    let has_ext = client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'pgssl'", &[])
        .await
        .map_err(sql_error)?
        .is_some();
    let session_info = if has_ext {
        let row = client
            .query_one("SELECT pgssl.session_info()::text", &[])
            .await
            .map_err(sql_error)?;
        let text: Option<String> = row.get(0);
        text.and_then(|t| serde_json::from_str::<Value>(&t).ok())
    } else {
        None
    };
    let host = match &info.endpoint {
        Endpoint::Tcp { host, .. } => host.clone(),
        Endpoint::Unix { .. } => None,
    };
    let tls = info.tls.as_ref().map(|t| {
        json!({
            "version": t.version,
            "cipher": t.cipher,
            "verified": verification_text(t.verification, t.crl_checked, host.as_deref()),
            "client_certificate": t.client_cert.as_ref().map(|p| p.display().to_string()),
            "server_certificates": t.peer_chain.iter().map(|c| cert_json(c)).collect::<Vec<_>>(),
        })
    });
    Ok(json!({
        "endpoint": endpoint_json(&info.endpoint),
        "sslmode": info.ssl_mode.as_str(),
        "user": who.get::<_, String>(0),
        "database": who.get::<_, String>(1),
        "server_version": who.get::<_, String>(2),
        "channel_binding": config.channel_binding().as_str(),
        "tls": tls,
        "server_view": server_view,
        "pgssl_extension": has_ext,
        "session_info": session_info,
    }))
}

fn print_report(r: &Value) {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let ep = &r["endpoint"];
    let place = if ep["socket_dir"].is_string() {
        format!("socket in {} (port {})", s(&ep["socket_dir"]), ep["port"])
    } else {
        let host = if ep["host"].is_null() {
            s(&ep["hostaddr"])
        } else {
            s(&ep["host"])
        };
        format!("\"{host}\" port {}", ep["port"])
    };
    println!(
        "connected:      {place} as {} to database {} (PostgreSQL {})",
        s(&r["user"]),
        s(&r["database"]),
        s(&r["server_version"])
    );
    println!("sslmode:        {}", s(&r["sslmode"]));
    match &r["tls"] {
        Value::Null => println!("TLS:            none (plaintext connection)"),
        t => {
            println!("TLS:            {}, {}", s(&t["version"]), s(&t["cipher"]));
            println!("verified:       {}", s(&t["verified"]));
            println!("client cert:    {}", s(&t["client_certificate"]));
            println!("server certificate chain:");
            for (i, c) in t["server_certificates"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                println!("  [{i}] subject:  {}", s(&c["subject"]));
                println!("      issuer:   {}", s(&c["issuer"]));
                let sans = c["subject_alt_names"]
                    .as_array()
                    .map(|a| a.iter().map(&s).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default();
                println!(
                    "      SANs:     {}",
                    if sans.is_empty() {
                        "(none)".into()
                    } else {
                        sans
                    }
                );
                println!(
                    "      valid:    {} .. {} ({} days left)",
                    s(&c["not_before"]),
                    s(&c["not_after"]),
                    s(&c["expires_in_days"])
                );
                println!(
                    "      X.509 v{}, {}",
                    s(&c["version"]),
                    s(&c["signature_algorithm"])
                );
            }
        }
    }
    if let Value::Object(v) = &r["server_view"] {
        println!("server's view (pg_stat_ssl):");
        println!("  ssl:          {}", s(&v["ssl"]));
        if v["ssl"] == Value::Bool(true) {
            println!(
                "  version:      {}, {} ({} bits)",
                s(&v["version"]),
                s(&v["cipher"]),
                s(&v["bits"])
            );
            println!("  client DN:    {}", s(&v["client_dn"]));
            println!("  issuer DN:    {}", s(&v["issuer_dn"]));
        }
    }
    if !r["session_info"].is_null() {
        println!("pgssl.session_info():");
        println!(
            "{}",
            serde_json::to_string_pretty(&r["session_info"]).expect("JSON")
        );
    } else if r["pgssl_extension"] == Value::Bool(false) {
        println!("pgssl extension: not installed in this database");
    }
}

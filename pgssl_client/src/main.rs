//! The `pgssl` command: `pgssl check` shows how a connection is secured, from both ends;
//! `pgssl enroll` obtains a client certificate from the database's CA.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509ReqBuilder, X509};
use pgssl_client::{
    is_connection_string, name_to_string, Config, ConnectionInfo, Connector, Endpoint, Verification,
};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "pgssl",
    version,
    about = "Check and set up TLS connections to PostgreSQL the way libpq does"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect and show how the connection is secured, as the client and the server see it.
    Check {
        /// A libpq connection string or URI, or a database name (default: environment, then
        /// libpq's defaults, as psql).
        conninfo: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make a key and a CSR for the connecting user, have the server's CA sign it
    /// (pgssl.enroll), and save postgresql.crt and postgresql.key.
    Enroll {
        /// A libpq connection string or URI, or a database name, to connect with (usually a
        /// password login).
        conninfo: Option<String>,
        /// The key to make.
        #[arg(long, value_enum, default_value_t = KeyType::EcP256)]
        key_type: KeyType,
        /// Where to write postgresql.crt and postgresql.key (default ~/.postgresql).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyType {
    EcP256,
    EcP384,
    #[value(name = "rsa-2048")]
    Rsa2048,
    Ed25519,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check { conninfo, json } => check(conninfo.as_deref(), json).await,
            Command::Enroll {
                conninfo,
                key_type,
                out,
                force,
            } => enroll(conninfo.as_deref(), key_type, out, force).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("pgssl: {message}");
    ExitCode::FAILURE
}

/// psql's reading of its first argument: a connection string, or else a database name.
fn config_from_arg(arg: Option<&str>) -> Result<Config, String> {
    let result = match arg {
        Some(s) if is_connection_string(s) => Config::from_conninfo(s),
        Some(db) => Config::from_pairs(
            [("dbname", db)],
            &|k| std::env::var(k).ok(),
            home().as_deref(),
        ),
        None => Config::from_conninfo(""),
    };
    result.map_err(|e| e.to_string())
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

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
    let Ok(cert) = X509::from_der(der) else {
        return json!({"error": "unparsable certificate"});
    };
    let sans: Vec<String> = cert
        .subject_alt_names()
        .map(|s| {
            s.iter()
                .filter_map(|n| {
                    n.dnsname().map(|d| format!("DNS:{d}")).or_else(|| {
                        n.ipaddress().map(|ip| match ip.len() {
                            4 => format!(
                                "IP:{}",
                                std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])
                            ),
                            16 => {
                                let mut b = [0u8; 16];
                                b.copy_from_slice(ip);
                                format!("IP:{}", std::net::Ipv6Addr::from(b))
                            }
                            _ => "IP:?".into(),
                        })
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let expires_in_days = Asn1Time::days_from_now(0)
        .ok()
        .and_then(|now| now.diff(cert.not_after()).ok())
        .map(|d| d.days);
    json!({
        "subject": name_to_string(cert.subject_name()),
        "issuer": name_to_string(cert.issuer_name()),
        "version": cert.version() + 1,
        "serial": cert.serial_number().to_bn().ok().and_then(|b| b.to_hex_str().ok()).map(|s| s.to_string()),
        "subject_alt_names": sans,
        "not_before": cert.not_before().to_string(),
        "not_after": cert.not_after().to_string(),
        "expires_in_days": expires_in_days,
        "signature_algorithm": cert.signature_algorithm().object().nid().long_name().unwrap_or("?"),
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

async fn check(arg: Option<&str>, as_json: bool) -> Result<(), String> {
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
        "channel_binding": config.get("channel_binding"),
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

fn make_key(key_type: KeyType) -> Result<PKey<Private>, openssl::error::ErrorStack> {
    match key_type {
        KeyType::EcP256 => PKey::from_ec_key(EcKey::generate(&*EcGroup::from_curve_name(
            Nid::X9_62_PRIME256V1,
        )?)?),
        KeyType::EcP384 => PKey::from_ec_key(EcKey::generate(&*EcGroup::from_curve_name(
            Nid::SECP384R1,
        )?)?),
        KeyType::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?),
        KeyType::Ed25519 => PKey::generate_ed25519(),
    }
}

fn make_csr(
    key: &PKey<Private>,
    user: &str,
    key_type: KeyType,
) -> Result<String, openssl::error::ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, user)?;
    let name = name.build();
    let mut req = X509ReqBuilder::new()?;
    req.set_subject_name(&name)?;
    req.set_pubkey(key)?;
    let digest = match key_type {
        KeyType::Ed25519 => MessageDigest::null(),
        _ => MessageDigest::sha256(),
    };
    req.sign(key, digest)?;
    let pem = req.build().to_pem()?;
    Ok(String::from_utf8_lossy(&pem).into_owned())
}

/// Quotes a value for a libpq connection string when it needs it.
fn conninfo_value(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return v.to_string();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

async fn enroll(
    arg: Option<&str>,
    key_type: KeyType,
    out: Option<PathBuf>,
    force: bool,
) -> Result<(), String> {
    let out = match out {
        Some(d) => d,
        None => home()
            .ok_or("no home directory: give --out")?
            .join(".postgresql"),
    };
    let cert_path = out.join("postgresql.crt");
    let key_path = out.join("postgresql.key");
    if !force {
        for p in [&cert_path, &key_path] {
            if p.exists() {
                return Err(format!("{} exists; use --force to replace it", p.display()));
            }
        }
    }
    let config = config_from_arg(arg)?;
    let connector = Connector::new(config.clone());
    let (client, connection, info) = connector
        .connect_with_info()
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let user: String = client
        .query_one("SELECT session_user::text", &[])
        .await
        .map_err(|e| format!("query failed: {e}"))?
        .get(0);
    let key = make_key(key_type).map_err(|e| format!("cannot make a key: {e}"))?;
    let csr = make_csr(&key, &user, key_type).map_err(|e| format!("cannot make a CSR: {e}"))?;
    let row = client
        .query_one("SELECT pgssl.enroll($1)", &[&csr])
        .await
        .map_err(|e| match e.as_db_error() {
            Some(db) => format!(
                "pgssl.enroll refused the request: {} (SQLSTATE {})",
                db.message(),
                db.code().code()
            ),
            None => format!("pgssl.enroll failed: {e}"),
        })?;
    let cert_pem: String = row.get(0);
    drop(client);
    let _ = driver.await;
    let cert = X509::from_pem(cert_pem.as_bytes())
        .map_err(|e| format!("pgssl.enroll returned no certificate: {e}"))?;
    if !cert
        .public_key()
        .map(|k| k.public_eq(&key))
        .unwrap_or(false)
    {
        return Err("pgssl.enroll returned a certificate for another key".into());
    }
    fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let key_pem = key.private_key_to_pem_pkcs8().map_err(|e| e.to_string())?;
    write_file(&key_path, &key_pem, 0o600)?;
    write_file(&cert_path, cert_pem.as_bytes(), 0o644)?;
    println!(
        "wrote {} and {} (0600) for user {user}",
        cert_path.display(),
        key_path.display()
    );
    println!("{}", login_conninfo(&config, &info, &out, &user));
    Ok(())
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    // An existing file keeps its old mode through open(); set it explicitly.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)?;
    f.write_all(data).map_err(err)
}

/// The connection string that logs in with the new certificate.
fn login_conninfo(config: &Config, info: &ConnectionInfo, out: &Path, user: &str) -> String {
    let mut parts = Vec::new();
    match &info.endpoint {
        Endpoint::Tcp {
            host,
            hostaddr,
            port,
        } => {
            if let Some(h) = host {
                parts.push(format!("host={}", conninfo_value(h)));
            }
            if let Some(a) = hostaddr {
                parts.push(format!("hostaddr={a}"));
            }
            parts.push(format!("port={port}"));
        }
        Endpoint::Unix { dir, port } => {
            parts.push(format!(
                "host={}",
                conninfo_value(&dir.display().to_string())
            ));
            parts.push(format!("port={port}"));
        }
    }
    parts.push(format!(
        "dbname={}",
        conninfo_value(config.get("dbname").unwrap_or(user))
    ));
    parts.push(format!("user={}", conninfo_value(user)));
    let default_dir = home().map(|h| h.join(".postgresql"));
    if default_dir.as_deref() != Some(out) {
        parts.push(format!(
            "sslcert={}",
            conninfo_value(&out.join("postgresql.crt").display().to_string())
        ));
        parts.push(format!(
            "sslkey={}",
            conninfo_value(&out.join("postgresql.key").display().to_string())
        ));
    }
    if let Some(root) = config.get("sslrootcert") {
        parts.push(format!("sslrootcert={}", conninfo_value(root)));
    }
    // verify-full needs a root certificate; without one known, say require (which then
    // authenticates the client only).
    let verified = info
        .tls
        .as_ref()
        .is_some_and(|t| t.verification != Verification::None);
    let root_known = config.get("sslrootcert").is_some()
        || default_dir
            .as_ref()
            .is_some_and(|d| d.join("root.crt").exists());
    parts.push(format!(
        "sslmode={}",
        if verified || root_known {
            "verify-full"
        } else {
            "require"
        }
    ));
    parts.join(" ")
}

//! `pgssl setup`: turn TLS on for a cluster, with certificates from its own CAs,
//! in one command; `pgssl setup --rotate`: replace the server certificate while
//! the server runs.
//!
//! Everything happens over a superuser connection, through the extension's SQL
//! functions and `ALTER SYSTEM`, so it works the same from the database host or
//! from afar. Only `--edit-hba` touches a file directly, and so runs where the
//! server's `pg_hba.conf` is.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pgssl_client::{Config, Connector, Endpoint, Verification};
use serde_json::Value;
use tokio_postgres::Client;

use crate::session::Session;
use crate::{conninfo_value, write_file};

/// What `pgssl setup` was asked to do.
pub(crate) struct SetupArgs {
    pub conninfo: Option<String>,
    pub hostnames: Vec<String>,
    pub root_cert: PathBuf,
    pub days: Option<i32>,
    pub rotate: bool,
    pub edit_hba: bool,
    pub force: bool,
    pub wait: Duration,
}

/// The `pg_hba.conf` lines that refuse TCP clients without TLS. Placed first,
/// they leave every existing line in force for TLS connections and widen
/// nothing: `host` lines below them then match TLS connections only.
const HBA_LINES: &str = "\
# pgssl setup: TCP clients only over TLS; the lines below apply to TLS connections.
hostnossl all all 0.0.0.0/0 reject
hostnossl all all ::/0      reject
";

fn sql_error(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> String {
    move |e| match e.as_db_error() {
        Some(db) => format!("{doing}: {} (SQLSTATE {})", db.message(), db.code().code()),
        None => format!("{doing}: {e}"),
    }
}

async fn text(client: &Client, sql: &str, doing: &'static str) -> Result<Option<String>, String> {
    let row = client.query_one(sql, &[]).await.map_err(sql_error(doing))?;
    Ok(row.get(0))
}

/// Whether a file exists in the data directory, as the server sees it.
async fn server_file_exists(client: &Client, setting: &str) -> Result<bool, String> {
    let sql = format!(
        "SELECT pg_catalog.pg_stat_file(pg_catalog.current_setting('{setting}'), true) IS NOT NULL"
    );
    Ok(text(
        client,
        &format!("SELECT ({sql})::text"),
        "looking for the CA files",
    )
    .await?
    .as_deref()
        == Some("true"))
}

/// Makes the client CA with `pgssl.init_ca()` when neither of its files exists.
async fn ensure_client_ca(client: &Client) -> Result<bool, String> {
    let cert = server_file_exists(client, "pgssl.ca_cert_file").await?;
    let key = server_file_exists(client, "pgssl.ca_key_file").await?;
    match (cert, key) {
        (true, true) => Ok(false),
        (false, false) => {
            client.query_one("SELECT pgssl.init_ca()", &[]).await.map_err(sql_error("making the client CA"))?;
            Ok(true)
        }
        _ => Err("the client CA is half there: pgssl.ca_cert_file and pgssl.ca_key_file must both exist, or neither".into()),
    }
}

/// The `ca_key_protection` rows of `pgssl.check_config()`: whether the CA keys are
/// encrypted (they are when `pgssl.ca_key_passphrase_command` is set as the CAs are
/// made), and who else could read them if not.
async fn ca_key_protection(client: &Client) -> Result<Vec<(String, String)>, String> {
    let rows = client
        .query(
            "SELECT status, detail FROM pgssl.check_config()
              WHERE \"check\" = 'ca_key_protection' ORDER BY detail",
            &[],
        )
        .await
        .map_err(sql_error("checking the CA keys"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The names the current server certificate is for, to rotate it for the same names.
/// Adds `pgssl` to `shared_preload_libraries` with `ALTER SYSTEM`, keeping
/// the libraries already named there (or already set for the next start),
/// so the revocation worker starts with the server. Returns whether that
/// needs a restart, i.e. whether the running server does not preload it yet.
async fn ensure_preload(client: &Client) -> Result<bool, String> {
    let running = text(
        client,
        "SELECT current_setting('shared_preload_libraries')",
        "reading shared_preload_libraries",
    )
    .await?
    .unwrap_or_default();
    // What the next start will use: the last line that sets it.
    let next = text(
        client,
        "SELECT (SELECT setting FROM pg_catalog.pg_file_settings
                  WHERE name = 'shared_preload_libraries' AND error IS NULL
                  ORDER BY seqno DESC LIMIT 1)",
        "reading the configuration files",
    )
    .await?
    .unwrap_or_else(|| running.clone());
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .map(|l| l.trim().trim_matches('"').to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let preloaded_now = names(&running).iter().any(|l| l == "pgssl");
    let mut libraries = names(&next);
    if !libraries.iter().any(|l| l == "pgssl") {
        libraries.push("pgssl".into());
        let list = libraries
            .iter()
            .map(|l| format!("'{}'", l.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ");
        client
            .batch_execute(&format!(
                "ALTER SYSTEM SET shared_preload_libraries = {list}"
            ))
            .await
            .map_err(sql_error("adding pgssl to shared_preload_libraries"))?;
    }
    Ok(!preloaded_now)
}

async fn current_hostnames(client: &Client) -> Result<Vec<String>, String> {
    let info = text(
        client,
        "SELECT pgssl.server_cert()::text",
        "reading the server certificate",
    )
    .await?;
    let info: Value =
        serde_json::from_str(info.as_deref().unwrap_or("null")).map_err(|e| e.to_string())?;
    let names: Vec<String> = info["subject_alt_names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .filter_map(|n| n.strip_prefix("DNS:").or_else(|| n.strip_prefix("IP:")))
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Err(
            "the current server certificate names no host (no DNS or IP SAN): give --hostname"
                .into(),
        );
    }
    Ok(names)
}

/// Refuses to replace a root certificate file that holds something else.
fn check_root_cert_file(path: &Path, server_ca_pem: &str, force: bool) -> Result<(), String> {
    match std::fs::read_to_string(path) {
        Ok(existing) if existing.trim() == server_ca_pem.trim() || force => Ok(()),
        Ok(_) => Err(format!(
            "{} exists and holds another certificate; use --force to replace it, or --root-cert to name another file",
            path.display()
        )),
        Err(_) => Ok(()),
    }
}

/// Connects to `host` with verify-full against `root` until the TLS handshake and
/// the certificate check succeed (a refused login after that still counts: TLS
/// answered), or `wait` runs out.
async fn wait_for_tls(
    config: &Config,
    host: &str,
    port: u16,
    root: &Path,
    wait: Duration,
) -> Result<(), String> {
    let port = port.to_string();
    let root = root.display().to_string();
    let mut pairs = vec![
        ("host", host),
        ("port", port.as_str()),
        ("sslmode", "verify-full"),
        ("sslrootcert", root.as_str()),
        ("connect_timeout", "5"),
        ("user", config.user()),
        ("dbname", config.dbname()),
    ];
    if let Some(password) = config.password() {
        pairs.push(("password", password));
    }
    let cert = config.ssl_cert().map(|p| p.display().to_string());
    let key = config.ssl_key().map(|p| p.display().to_string());
    if let Some(cert) = &cert {
        pairs.push(("sslcert", cert));
    }
    if let Some(key) = &key {
        pairs.push(("sslkey", key));
    }
    let probe = Config::from_pairs(pairs, &|_| None, None).map_err(|e| e.to_string())?;
    let connector = Connector::new(probe);
    let deadline = Instant::now() + wait;
    loop {
        let error = match connector.connect().await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        // The server asking for a password we do not have, or refusing the login
        // (SQLSTATE class 28), both come after the handshake and the certificate
        // check: TLS is up.
        let asked_for_password = error.to_string().contains("password missing");
        let login_refused = error
            .as_db_error()
            .is_some_and(|db| db.code().code().starts_with("28"));
        if asked_for_password || login_refused {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "TLS did not answer on {host}:{port} within {} s: {error}",
                wait.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Adds [`HBA_LINES`] at the top of `pg_hba.conf`, after a backup copy.
///
/// `server_text` is the file as the server reads it (`pg_read_file`): the local
/// file must be the very same, so only the server's own file on this machine is
/// ever edited. Nothing is written through a symbolic link: the backup and the
/// new file are created exclusively (the new one under a random name), given
/// the file's owner and mode through their descriptors, then the new one is
/// renamed over the old.
fn edit_hba(hba_file: &Path, server_text: &str) -> Result<PathBuf, String> {
    let not_here = || {
        format!(
            "--edit-hba edits the server's pg_hba.conf on this machine, and {} here is not that file: \
             run pgssl setup on the database host, or add the lines yourself",
            hba_file.display()
        )
    };
    let meta = std::fs::symlink_metadata(hba_file).map_err(|_| not_here())?;
    if !meta.file_type().is_file() {
        return Err(format!(
            "{} is not a regular file; add the lines yourself",
            hba_file.display()
        ));
    }
    let current = std::fs::read_to_string(hba_file).map_err(|_| not_here())?;
    if current != server_text {
        return Err(not_here());
    }
    let dir = hba_file.parent().unwrap_or(Path::new("."));
    let name = hba_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let backup = dir.join(format!("{name}.pgssl-backup-{stamp}"));
    let give_back = |file: &std::fs::File, path: &Path| -> Result<(), String> {
        file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o777))
            .and_then(|()| std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid())))
            .map_err(|e| {
                format!(
                    "cannot give {} the owner and mode of {}: {e}",
                    path.display(),
                    hba_file.display()
                )
            })
    };
    let mut copy = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&backup)
        .map_err(|e| format!("cannot create the backup {}: {e}", backup.display()))?;
    give_back(&copy, &backup)?;
    copy.write_all(current.as_bytes())
        .and_then(|()| copy.sync_all())
        .map_err(|e| format!("cannot write the backup {}: {e}", backup.display()))?;

    let mut new = tempfile::Builder::new()
        .prefix(&format!(".{name}.pgssl-"))
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a file next to {}: {e}", hba_file.display()))?;
    give_back(new.as_file(), new.path())?;
    new.write_all(format!("{HBA_LINES}\n{current}").as_bytes())
        .and_then(|()| new.as_file().sync_all())
        .map_err(|e| format!("cannot write the new {}: {e}", hba_file.display()))?;
    new.persist(hba_file)
        .map_err(|e| format!("cannot replace {}: {e}", hba_file.display()))?;
    Ok(backup)
}

/// Whether this connection can be trusted to deliver the server CA that
/// clients will trust from then on: a Unix socket or a loopback address on the
/// database host, or TLS verified against a root certificate.
fn trusted_transport(info: &pgssl_client::ConnectionInfo) -> bool {
    match &info.endpoint {
        Endpoint::Unix { .. } => true,
        Endpoint::Tcp { host, hostaddr, .. } => {
            // Only verify-full authenticates the server: a chain check alone (verify-ca, or
            // require with a root.crt) accepts any certificate the CA ever issued.
            let verified = info
                .tls
                .as_ref()
                .is_some_and(|t| t.verification == Verification::ChainAndHostName);
            let loopback = match hostaddr {
                Some(ip) => ip.is_loopback(),
                None => host.as_deref().is_some_and(|h| {
                    h.eq_ignore_ascii_case("localhost")
                        || h.parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                }),
            };
            verified || loopback
        }
    }
}

pub(crate) async fn setup(args: SetupArgs) -> Result<(), String> {
    let (session, config) = Session::open_arg(args.conninfo.as_deref()).await?;
    let (client, info) = (&session.client, session.info.clone());
    let port = match &info.endpoint {
        Endpoint::Tcp { port, .. } | Endpoint::Unix { port, .. } => *port,
    };

    if !trusted_transport(&info) {
        return Err("pgssl setup writes the server CA it receives over this connection to --root-cert, for \
                    clients to trust from then on: connect over the Unix socket or a loopback address on the \
                    database host, or over TLS verified with sslmode=verify-full"
            .into());
    }
    let superuser = text(
        client,
        "SELECT rolsuper::text FROM pg_catalog.pg_roles WHERE rolname = current_user",
        "checking the role",
    )
    .await?;
    if superuser.as_deref() != Some("true") {
        return Err("pgssl setup needs a superuser connection: it makes CAs, writes files into the data directory and runs ALTER SYSTEM".into());
    }
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pgssl; LOAD 'pgssl'")
        .await
        .map_err(sql_error("creating the pgssl extension"))?;

    let hostnames = match (args.hostnames.is_empty(), args.rotate) {
        (false, _) => args.hostnames.clone(),
        (true, true) => current_hostnames(client).await?,
        (true, false) => {
            return Err("name the hosts clients connect by: --hostname NAME (repeatable)".into())
        }
    };
    if !args.rotate && !args.force {
        let configured = text(
            client,
            "SELECT current_setting('ssl_ca_file')",
            "reading ssl_ca_file",
        )
        .await?
        .unwrap_or_default();
        let ours = text(
            client,
            "SELECT current_setting('pgssl.ca_cert_file')",
            "reading pgssl.ca_cert_file",
        )
        .await?
        .unwrap_or_default();
        if !configured.is_empty() && configured != ours {
            return Err(format!(
                "ssl_ca_file is already {configured:?}: pgssl setup would replace it with the pgssl client CA \
                 ({ours:?}), and client certificates from the old CA would stop working; use --force to replace it"
            ));
        }
    }
    // The server certificate first: it checks the names and days before it
    // writes anything, so a refused setup leaves the cluster as it was.
    let issued = client
        .query_one(
            "SELECT pgssl.issue_server_cert($1::text[], coalesce($2, 397))::text",
            &[&hostnames, &args.days],
        )
        .await
        .map_err(sql_error("issuing the server certificate"))?;
    let issued: Value =
        serde_json::from_str(&issued.get::<_, String>(0)).map_err(|e| e.to_string())?;
    let client_ca_created = if args.rotate {
        false
    } else {
        ensure_client_ca(client).await?
    };
    let server_ca_pem = text(
        client,
        "SELECT pgssl.server_ca_cert()",
        "reading the server CA",
    )
    .await?
    .unwrap_or_default();
    check_root_cert_file(&args.root_cert, &server_ca_pem, args.force)?;
    let ca_key_checks = ca_key_protection(client).await?;

    let quote = |v: &str| format!("'{}'", v.replace('\'', "''"));
    let mut statements = vec![
        format!(
            "ALTER SYSTEM SET ssl_cert_file = {}",
            quote(issued["ssl_cert_file"].as_str().unwrap_or_default())
        ),
        format!(
            "ALTER SYSTEM SET ssl_key_file = {}",
            quote(issued["ssl_key_file"].as_str().unwrap_or_default())
        ),
    ];
    if !args.rotate {
        let ca_file = text(
            client,
            "SELECT current_setting('pgssl.ca_cert_file')",
            "reading pgssl.ca_cert_file",
        )
        .await?;
        statements.push(format!(
            "ALTER SYSTEM SET ssl_ca_file = {}",
            quote(ca_file.as_deref().unwrap_or_default())
        ));
        statements.push("ALTER SYSTEM SET ssl = on".into());
    }
    for statement in &statements {
        client
            .batch_execute(statement)
            .await
            .map_err(sql_error("configuring the server"))?;
    }
    let restart_for_worker = if args.rotate {
        false
    } else {
        ensure_preload(client).await?
    };
    let hba_backup = if args.edit_hba {
        let hba_file = text(
            client,
            "SELECT current_setting('hba_file')",
            "finding pg_hba.conf",
        )
        .await?
        .unwrap_or_default();
        let server_text = text(
            client,
            "SELECT pg_read_file(current_setting('hba_file'))",
            "reading pg_hba.conf",
        )
        .await?
        .unwrap_or_default();
        Some(edit_hba(Path::new(&hba_file), &server_text)?)
    } else {
        None
    };
    client
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .map_err(sql_error("reloading the configuration"))?;
    session.close().await;

    write_file(&args.root_cert, server_ca_pem.as_bytes(), 0o644)?;
    for host in &hostnames {
        wait_for_tls(&config, host, port, &args.root_cert, args.wait).await?;
    }

    let serial = issued["serial_hex"].as_str().unwrap_or_default();
    let not_after = issued["not_after"].as_str().unwrap_or_default();
    if args.rotate {
        println!("rotated the server certificate: serial {serial}, valid until {not_after}");
    } else {
        println!(
            "TLS is on: server certificate serial {serial} for {}, valid until {not_after}",
            hostnames.join(", ")
        );
        if client_ca_created {
            println!("made the client CA (pgssl.init_ca) and set ssl_ca_file to it");
        }
    }
    println!("new connections get it now; open connections keep theirs; no restart");
    for (status, detail) in &ca_key_checks {
        println!("CA key ({status}): {detail}");
    }
    if restart_for_worker {
        println!(
            "added pgssl to shared_preload_libraries for the revocation worker (it keeps the CRL \
             fresh and installed on every node): restart the server once to start it"
        );
    }
    println!(
        "wrote the server CA certificate to {} (clients' sslrootcert)",
        args.root_cert.display()
    );
    match hba_backup {
        Some(backup) => println!(
            "added lines refusing TCP clients without TLS at the top of pg_hba.conf (backup: {})",
            backup.display()
        ),
        None if !args.rotate => {
            println!("\nadd these lines at the top of pg_hba.conf, then SELECT pg_reload_conf():\n{HBA_LINES}")
        }
        None => {}
    }
    let user = config.user().to_string();
    let dbname = config.dbname().to_string();
    let root = conninfo_value(&args.root_cert.display().to_string());
    for host in &hostnames {
        let conninfo = format!(
            "host={} port={port} dbname={} user={} sslmode=verify-full sslrootcert={root}",
            conninfo_value(host),
            conninfo_value(&dbname),
            conninfo_value(&user)
        );
        println!("psql \"{conninfo}\"");
        println!("pgssl check \"{conninfo}\"");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgssl_client::{ConnectionInfo, SslMode, TlsInfo};

    fn over_tcp(verification: Verification) -> ConnectionInfo {
        ConnectionInfo {
            endpoint: Endpoint::Tcp {
                host: Some("db.example.com".into()),
                hostaddr: None,
                port: 5432,
            },
            ssl_mode: SslMode::VerifyCa,
            tls: Some(TlsInfo {
                version: "TLSv1.3".into(),
                cipher: String::new(),
                peer_chain: Vec::new(),
                verification,
                crl_checked: false,
                client_cert: None,
            }),
        }
    }

    #[test]
    fn only_verify_full_is_trusted_to_deliver_the_server_ca() {
        assert!(!trusted_transport(&over_tcp(Verification::None)));
        assert!(!trusted_transport(&over_tcp(Verification::Chain)));
        assert!(trusted_transport(&over_tcp(Verification::ChainAndHostName)));
    }

    #[test]
    fn the_root_certificate_replaces_a_link_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let root = dir.path().join("root.crt");
        std::os::unix::fs::symlink(&victim, &root).unwrap();
        write_file(&root, b"CA", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(&root)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&root).unwrap(), "CA");
        assert_eq!(std::fs::metadata(&root).unwrap().mode() & 0o777, 0o644);
    }
}

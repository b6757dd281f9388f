//! `pgssl enroll`: a key and a CSR for the connecting user, signed by `pgssl.enroll`.

use std::fs;
use std::path::{Path, PathBuf};

use pgssl_client::{home_dir, Config, ConnectionInfo, Endpoint, Verification};

use crate::conninfo_value;
use crate::credentials::{
    certificate_from_pem, check_issued, make_csr, make_key, ClientFiles, KeyType,
};
use crate::session::{refusal, Session};

pub(crate) async fn enroll(
    arg: Option<&str>,
    key_type: KeyType,
    out: Option<PathBuf>,
    force: bool,
) -> Result<(), String> {
    let out = match out {
        Some(d) => d,
        None => home_dir()
            .ok_or("no home directory: give --out")?
            .join(".postgresql"),
    };
    let cert_path = out.join("postgresql.crt");
    let key_path = out.join("postgresql.key");
    if !force {
        for p in [&cert_path, &key_path] {
            // symlink_metadata: a dangling link counts as there too.
            if p.symlink_metadata().is_ok() {
                return Err(format!("{} exists; use --force to replace it", p.display()));
            }
        }
    }
    let (session, config) = Session::open_arg(arg).await?;
    let user = session.session_user().await?;
    let key = make_key(key_type).map_err(|e| format!("cannot make a key: {e}"))?;
    let csr = make_csr(&key, &user).map_err(|e| format!("cannot make a CSR: {e}"))?;
    let row = session
        .client
        .query_one("SELECT pgssl.enroll($1)", &[&csr])
        .await
        .map_err(refusal("pgssl.enroll"))?;
    let cert_pem: String = row.get(0);
    let info = session.info.clone();
    session.close().await;
    let cert = certificate_from_pem(&cert_pem)
        .map_err(|e| format!("pgssl.enroll returned no certificate: {e}"))?;
    check_issued(&cert, &key, &user, "pgssl.enroll")?;
    fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    // The same replacement as `pgssl renew`: never a new key beside an old certificate,
    // never through a link, the key 0600 (see crate::credentials).
    let files = ClientFiles::in_dir(&out);
    files.install(files.stage(cert_pem.as_bytes(), &key)?)?;
    println!(
        "wrote {} and {} (0600) for user {user}",
        cert_path.display(),
        key_path.display()
    );
    println!("{}", login_conninfo(&config, &info, &out, &user));
    Ok(())
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
    parts.push(format!("dbname={}", conninfo_value(config.dbname())));
    parts.push(format!("user={}", conninfo_value(user)));
    let default_dir = home_dir().map(|h| h.join(".postgresql"));
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
    if let Some(root) = config.ssl_root_cert() {
        parts.push(format!(
            "sslrootcert={}",
            conninfo_value(&root.display().to_string())
        ));
    }
    // verify-full needs a root certificate; without one known, say require (which then
    // authenticates the client only).
    let verified = info
        .tls
        .as_ref()
        .is_some_and(|t| t.verification != Verification::None);
    let root_known = config.ssl_root_cert().is_some()
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

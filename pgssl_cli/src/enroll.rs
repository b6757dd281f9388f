//! `pgssl enroll`: a key and a CSR for the connecting user, signed by `pgssl.enroll`.

use std::fs;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509ReqBuilder, X509};
use pgssl_client::{Config, ConnectionInfo, Connector, Endpoint, Verification};

use pgssl_client::home_dir;

use crate::{config_from_arg, conninfo_value};

/// The key `pgssl enroll` makes.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum KeyType {
    EcP256,
    EcP384,
    #[value(name = "rsa-2048")]
    Rsa2048,
    Ed25519,
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
    // Both files are written in full under random names first, and only then
    // renamed into place (a rename replaces a link, never follows it): a failed
    // write leaves the old pair as it was, never a new key beside an old
    // certificate.
    let staged_key = stage(&out, &key_pem, 0o600)?;
    let staged_cert = stage(&out, cert_pem.as_bytes(), 0o644)?;
    staged_cert
        .persist(&cert_path)
        .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
    staged_key
        .persist(&key_path)
        .map_err(|e| format!("cannot write {}: {e}", key_path.display()))?;
    println!(
        "wrote {} and {} (0600) for user {user}",
        cert_path.display(),
        key_path.display()
    );
    println!("{}", login_conninfo(&config, &info, &out, &user));
    Ok(())
}

/// A new file in `dir` with `data` and `mode`, created exclusively under a
/// random name and flushed to disk, ready to be renamed into place.
fn stage(dir: &Path, data: &[u8], mode: u32) -> Result<tempfile::NamedTempFile, String> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let err = |e: std::io::Error| format!("cannot write a file in {}: {e}", dir.display());
    let mut file = tempfile::Builder::new()
        .prefix(".pgssl-enroll-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(err)?;
    file.write_all(data)
        .and_then(|()| file.as_file().sync_all())
        .map_err(err)?;
    Ok(file)
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

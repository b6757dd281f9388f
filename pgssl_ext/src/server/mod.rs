//! The server's own certificate: `pgssl.issue_server_cert()` signs one with
//! the server CA (made on first use) and writes it into the data directory,
//! and `pgssl.server_ca_cert()` hands clients the CA to verify it with.
//!
//! Issuing does not switch the server over: `ALTER SYSTEM` cannot run inside
//! a function, so the caller (`pgssl setup`, or a DBA) points `ssl_cert_file`
//! and `ssl_key_file` at the new files and reloads. Connections already open
//! keep the certificate they were made with.

pub mod profile;

use std::path::Path;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::json;

use crate::backend::{self, now};
use crate::ca::authority::{self, Authority, CaError, CaKeyType, CaRole};
use crate::ca::functions::{crypto, pem_text, validity_error};
use crate::ca::policy;
use crate::cert;
use crate::error::PgsslError;
use crate::gucs;
use crate::timestamps;

/// The server CA made on first use.
const SERVER_CA_NAME: &str = "pgssl server CA";
const SERVER_CA_DAYS: i32 = 3650;

/// The server CA: loaded, or made when neither of its files exists yet.
fn load_or_create_server_ca() -> Result<(Authority, bool), PgsslError> {
    let (cert_path, key_path) = (gucs::server_ca_cert_file(), gucs::server_ca_key_file());
    match authority::load_cached(&cert_path, &key_path) {
        Ok(ca) => Ok((ca, false)),
        Err(CaError::Missing { .. }) if !cert_path.exists() && !key_path.exists() => {
            let key = CaKeyType::EcP256
                .generate()
                .map_err(crypto("making the server CA key"))?;
            let cert = authority::self_signed_ca(SERVER_CA_NAME, SERVER_CA_DAYS, &key, now())
                .map_err(crypto("making the server CA certificate"))?;
            authority::create(&cert_path, &key_path, &cert, &key)
                .map_err(|e| PgsslError::ca(CaRole::Server, e))?;
            Ok((Authority { cert, key }, true))
        }
        Err(e) => Err(PgsslError::ca(CaRole::Server, e)),
    }
}

/// File names no earlier certificate used: `pgssl_server_<UTC time>_<serial>`.
fn new_file_names(serial_hex: &str) -> (String, String) {
    let stamp = timestamps::iso8601(now())
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect::<String>();
    let stem = format!(
        "pgssl_server_{stamp}_{}",
        &serial_hex[..serial_hex.len().min(8)]
    );
    (format!("{stem}.crt"), format!("{stem}.key"))
}

/// Writes the key (0600) and then the certificate, each atomically, never
/// over an existing file; when the certificate cannot be written, the key is
/// removed again.
fn write_pair(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
) -> Result<(), PgsslError> {
    let failed = |what, path: &Path, e: std::io::Error| PgsslError::FileWrite {
        what,
        path: path.into(),
        reason: e.to_string(),
    };
    for (what, path) in [
        ("server certificate", cert_path),
        ("server private key", key_path),
    ] {
        if path.symlink_metadata().is_ok() {
            return Err(PgsslError::FileExists {
                what,
                path: path.into(),
            });
        }
    }
    authority::write_atomically_with_mode(key_path, key_pem, 0o600)
        .map_err(|e| failed("server private key", key_path, e))?;
    if let Err(e) = authority::write_atomically_with_mode(cert_path, cert_pem, 0o644) {
        let _ = std::fs::remove_file(key_path);
        return Err(failed("server certificate", cert_path, e));
    }
    Ok(())
}

fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Signs a server certificate for `hostnames` with the server CA and writes
/// its key and certificate into the data directory under new names.
#[pg_extern(volatile, parallel_unsafe)]
fn issue_server_cert(
    hostnames: Vec<Option<String>>,
    valid_days: default!(i32, 397),
) -> Result<JsonB, ErrorReport> {
    Ok(JsonB(issue(&hostnames, valid_days)?))
}

fn issue(hostnames: &[Option<String>], valid_days: i32) -> Result<serde_json::Value, PgsslError> {
    backend::require_superuser("pgssl.issue_server_cert()")?;
    let hosts = profile::parse_hostnames(hostnames)?;
    // Refuse bad days before the server CA is made on first use: a refused
    // call leaves nothing behind.
    let checked_validity = |ca_not_after| {
        policy::validity(now(), valid_days, gucs::max_validity_days(), ca_not_after)
            .map_err(|e| validity_error(e, CaRole::Server, false))
    };
    checked_validity(i64::MAX)?;
    let (ca, ca_created) = load_or_create_server_ca()?;
    let validity = checked_validity(cert::unix_seconds(ca.cert.not_after()).unwrap_or(0))?;

    let key = CaKeyType::EcP256
        .generate()
        .map_err(crypto("making the server key"))?;
    let serial = policy::random_serial().map_err(crypto("drawing a serial number"))?;
    let issued =
        profile::issue_server_certificate(&hosts, &key, &ca.cert, &ca.key, &serial, validity)
            .map_err(crypto("signing the server certificate"))?;
    let serial_hex = cert::serial_hex(&issued).unwrap_or_default();
    let cert_pem = issued
        .to_pem()
        .map_err(crypto("encoding the certificate"))?;
    let key_pem = key
        .private_key_to_pem_pkcs8()
        .map_err(crypto("encoding the key"))?;

    let (cert_name, key_name) = new_file_names(&serial_hex);
    let data_dir = backend::data_directory();
    let (cert_path, key_path) = (data_dir.join(&cert_name), data_dir.join(&key_name));
    write_pair(&cert_path, &cert_pem, &key_path, &key_pem)?;

    Ok(json!({
        "ssl_cert_file": cert_name,
        "ssl_key_file": key_name,
        "cert_path": path_text(&cert_path),
        "key_path": path_text(&key_path),
        "server_ca_cert_file": path_text(&gucs::server_ca_cert_file()),
        "server_ca_created": ca_created,
        "subject": cert::name_rfc2253(issued.subject_name()),
        "subject_alt_names": cert::subject_alt_names(&issued),
        "serial_hex": serial_hex,
        "not_before": timestamps::iso8601(validity.not_before),
        "not_after": timestamps::iso8601(validity.not_after),
        "fingerprint_sha256": cert::fingerprint_sha256(&issued),
        "next_steps": [
            format!("ALTER SYSTEM SET ssl_cert_file = {}", sql_literal(&cert_name)),
            format!("ALTER SYSTEM SET ssl_key_file = {}", sql_literal(&key_name)),
            "SELECT pg_reload_conf()",
        ],
    }))
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// The server CA certificate, PEM: what clients use as `sslrootcert` to
/// verify certificates from `issue_server_cert`.
#[pg_extern(stable, parallel_restricted)]
fn server_ca_cert() -> Result<String, ErrorReport> {
    let ca = authority::load_certificate(&gucs::server_ca_cert_file())
        .map_err(|e| PgsslError::ca(CaRole::Server, e))?;
    Ok(pem_text(ca.to_pem())?)
}

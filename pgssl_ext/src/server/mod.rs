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
use crate::ca::files;
use crate::ca::functions::{create_ca_files, load_authority};
use crate::ca::issuance::{self, pem_text, Subject};
use crate::cert;
use crate::error::{internal, PgsslError};
use crate::gucs;
use crate::timestamps;

/// The server CA made on first use.
const SERVER_CA_NAME: &str = "pgssl server CA";
const SERVER_CA_DAYS: i32 = 3650;

/// The server CA: loaded, or made when neither of its files exists yet.
fn load_or_create_server_ca() -> Result<(Authority, bool), PgsslError> {
    let (cert_path, key_path) = (gucs::server_ca_cert_file(), gucs::server_ca_key_file());
    match load_authority(CaRole::Server) {
        Ok(ca) => Ok((ca, false)),
        Err(PgsslError::Ca {
            error: CaError::Missing { .. },
            ..
        }) if !cert_path.exists() && !key_path.exists() => {
            let key = CaKeyType::EcP256
                .generate()
                .map_err(internal("making the server CA key"))?;
            let cert = authority::self_signed_ca(SERVER_CA_NAME, SERVER_CA_DAYS, &key, now())
                .map_err(internal("making the server CA certificate"))?;
            create_ca_files(CaRole::Server, &cert_path, &key_path, &cert, &key)?;
            Ok((Authority { cert, key }, true))
        }
        Err(e) => Err(e),
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
    backend::require_writable("pgssl.issue_server_cert()")?;
    let hosts = profile::parse_hostnames(hostnames)?;
    // Refuse bad days before the server CA is made on first use: a refused
    // call leaves nothing behind.
    issuance::validity(valid_days, i64::MAX, CaRole::Server)?;
    let (ca, ca_created) = load_or_create_server_ca()?;
    let validity = issuance::validity_under(&ca, valid_days, CaRole::Server)?;

    let key = CaKeyType::EcP256
        .generate()
        .map_err(internal("making the server key"))?;
    let issued = issuance::issue(
        &ca,
        Subject::Server {
            hosts: &hosts,
            key: &key,
        },
        validity,
    )?;
    let key_pem = key
        .private_key_to_pem_pkcs8()
        .map_err(internal("encoding the key"))?;

    let (cert_name, key_name) = new_file_names(&issued.serial_hex);
    let data_dir = backend::data_directory();
    let (cert_path, key_path) = (data_dir.join(&cert_name), data_dir.join(&key_name));
    files::write_server_pair(&cert_path, issued.pem.as_bytes(), &key_path, &key_pem)?;

    let cert = issued.cert()?;
    Ok(json!({
        "ssl_cert_file": cert_name,
        "ssl_key_file": key_name,
        "cert_path": path_text(&cert_path),
        "key_path": path_text(&key_path),
        "server_ca_cert_file": path_text(&gucs::server_ca_cert_file()),
        "server_ca_created": ca_created,
        "subject": cert::name_rfc2253(cert.subject_name()),
        "subject_alt_names": cert::subject_alt_names(cert),
        "serial_hex": issued.serial_hex,
        "not_before": timestamps::iso8601(issued.validity.not_before),
        "not_after": timestamps::iso8601(issued.validity.not_after),
        "fingerprint_sha256": cert::fingerprint_sha256(cert),
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

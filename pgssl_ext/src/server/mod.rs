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

use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::json;

use crate::backend::{self, now};
use crate::ca::authority::{self, Authority, CaError, CaKeyType};
use crate::ca::functions::crypto;
use crate::ca::policy;
use crate::cert;
use crate::error::PgsslError;
use crate::gucs;
use crate::timestamps;

/// The server CA made on first use.
const SERVER_CA_NAME: &str = "pgssl server CA";
const SERVER_CA_DAYS: i32 = 3650;

/// The server CA: loaded, or made when neither of its files exists yet.
fn load_or_create_server_ca() -> (Authority, bool) {
    let (cert_path, key_path) = (gucs::server_ca_cert_file(), gucs::server_ca_key_file());
    match authority::load_cached(&cert_path, &key_path) {
        Ok(ca) => (ca, false),
        Err(CaError::Missing { .. }) if !cert_path.exists() && !key_path.exists() => {
            let key = CaKeyType::EcP256
                .generate()
                .unwrap_or_else(|e| crypto("making the server CA key")(e).report());
            let cert = authority::self_signed_ca(SERVER_CA_NAME, SERVER_CA_DAYS, &key, now())
                .unwrap_or_else(|e| crypto("making the server CA certificate")(e).report());
            authority::create(&cert_path, &key_path, &cert, &key)
                .unwrap_or_else(|e| PgsslError::Ca(e).report());
            (Authority { cert, key }, true)
        }
        Err(e) => PgsslError::Ca(e).report(),
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

/// Writes the key (0600) and then the certificate, each atomically; when the
/// certificate cannot be written, the key is removed again.
fn write_pair(cert_path: &Path, cert_pem: &[u8], key_path: &Path, key_pem: &[u8]) {
    let failed = |path: &Path, e: std::io::Error| {
        PgsslError::Ca(CaError::Write {
            path: path.into(),
            reason: e.to_string(),
        })
        .report()
    };
    for (file, path) in [
        (authority::CaFile::Certificate, cert_path),
        (authority::CaFile::Key, key_path),
    ] {
        if path.symlink_metadata().is_ok() {
            PgsslError::Ca(CaError::Exists {
                file,
                path: path.into(),
            })
            .report();
        }
    }
    authority::write_atomically_with_mode(key_path, key_pem, 0o600)
        .unwrap_or_else(|e| failed(key_path, e));
    if let Err(e) = authority::write_atomically_with_mode(cert_path, cert_pem, 0o644) {
        let _ = std::fs::remove_file(key_path);
        failed(cert_path, e);
    }
}

fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Signs a server certificate for `hostnames` with the server CA and writes
/// its key and certificate into the data directory under new names.
#[pg_extern(volatile, parallel_unsafe)]
fn issue_server_cert(hostnames: Vec<Option<String>>, valid_days: default!(i32, 397)) -> JsonB {
    backend::require_superuser("pgssl.issue_server_cert()").unwrap_or_else(|e| e.report());
    let hosts = profile::parse_hostnames(&hostnames).unwrap_or_else(|e| {
        PgsslError::InvalidArgument {
            message: e.to_string(),
            hint: Some(
                "Name every DNS name and IP address clients use to reach this server.".into(),
            ),
        }
        .report()
    });
    // Refuse bad days before the server CA is made on first use: a refused
    // call leaves nothing behind.
    let checked_validity = |ca_not_after| {
        policy::validity(now(), valid_days, gucs::max_validity_days(), ca_not_after).unwrap_or_else(|e| match e {
        policy::ValidityError::CaExpired => PgsslError::InvalidArgument {
            message: "the pgssl server CA certificate has expired".into(),
            hint: Some("Move pgssl.server_ca_cert_file and pgssl.server_ca_key_file away to make a new server CA.".into()),
        }
        .report(),
        other => PgsslError::InvalidArgument {
            message: other.to_string(),
            hint: Some(format!("Ask for 1 to {} days.", gucs::max_validity_days())),
        }
        .report(),
        })
    };
    checked_validity(i64::MAX);
    let (ca, ca_created) = load_or_create_server_ca();
    let validity = checked_validity(cert::unix_seconds(ca.cert.not_after()).unwrap_or(0));

    let key = CaKeyType::EcP256
        .generate()
        .unwrap_or_else(|e| crypto("making the server key")(e).report());
    let serial =
        policy::random_serial().unwrap_or_else(|e| crypto("drawing a serial number")(e).report());
    let issued =
        profile::issue_server_certificate(&hosts, &key, &ca.cert, &ca.key, &serial, validity)
            .unwrap_or_else(|e| crypto("signing the server certificate")(e).report());
    let serial_hex = cert::serial_hex(&issued).unwrap_or_default();
    let cert_pem = issued
        .to_pem()
        .unwrap_or_else(|e| crypto("encoding the certificate")(e).report());
    let key_pem = key
        .private_key_to_pem_pkcs8()
        .unwrap_or_else(|e| crypto("encoding the key")(e).report());

    let (cert_name, key_name) = new_file_names(&serial_hex);
    let data_dir = backend::data_directory();
    let (cert_path, key_path) = (data_dir.join(&cert_name), data_dir.join(&key_name));
    write_pair(&cert_path, &cert_pem, &key_path, &key_pem);

    JsonB(json!({
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
fn server_ca_cert() -> String {
    let path = gucs::server_ca_cert_file();
    let ca = authority::load_certificate(&path).unwrap_or_else(|e| PgsslError::Ca(e).report());
    let pem: Vec<u8> = ca
        .to_pem()
        .unwrap_or_else(|e| crypto("encoding the server CA certificate")(e).report());
    String::from_utf8_lossy(&pem).into_owned()
}

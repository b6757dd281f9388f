//! SQL functions that audit the server's TLS set-up: `pgssl.server_cert()`
//! and `pgssl.check_config()`.
//!
//! Both read the files and settings as they are now, which is what the server
//! will use after its next reload.

mod ca_keys;
mod checks;
pub(crate) mod expiring;
mod revocation;
mod versions;

use std::path::PathBuf;

use openssl::pkey::PKey;
use openssl::x509::X509;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

use crate::backend::{now, resolve_path, setting};
use crate::cert;
use crate::error::{FileProblem, PgsslError};
use crate::timestamps;
use checks::{Facts, HbaRule, ServerCertFacts};

/// The certificates of `ssl_cert_file`: the server's own first, then its chain.
fn read_server_chain() -> Result<(PathBuf, Vec<X509>), PgsslError> {
    let path = resolve_path(&setting("ssl_cert_file"));
    let pem = std::fs::read(&path).map_err(|e| PgsslError::ServerFile {
        path: path.clone(),
        reason: e.to_string(),
        kind: if e.kind() == std::io::ErrorKind::NotFound {
            FileProblem::Missing
        } else {
            FileProblem::Unreadable
        },
    })?;
    let certs = cert::certificates_from_pem(&pem).unwrap_or_default();
    if certs.is_empty() {
        return Err(PgsslError::ServerFile {
            path,
            reason: "it holds no PEM certificate".into(),
            kind: FileProblem::BadContents,
        });
    }
    Ok((path, certs))
}

fn describe(c: &X509, now: i64) -> Value {
    let not_after = cert::unix_seconds(c.not_after());
    let key = cert::key_info(c);
    json!({
        "subject": cert::name_rfc2253(c.subject_name()),
        "issuer": cert::name_rfc2253(c.issuer_name()),
        "subject_alt_names": cert::subject_alt_names(c),
        "serial": cert::serial_decimal(c),
        "serial_hex": cert::serial_hex(c),
        "not_before": cert::unix_seconds(c.not_before()).and_then(timestamps::iso8601),
        "not_after": not_after.and_then(timestamps::iso8601),
        "days_left": not_after.map(|t| (t - now).div_euclid(86_400)),
        "key_algorithm": key.as_ref().map(|k| k.algorithm.clone()),
        "key_bits": key.as_ref().map(|k| k.bits),
        "key_curve": key.and_then(|k| k.curve),
        "version": c.version() + 1,
        "signature_algorithm": cert::signature_algorithm(c),
        "fingerprint_sha256": cert::fingerprint_sha256(c),
    })
}

/// The certificate the server presents (`ssl_cert_file`), and the chain after it.
#[pg_extern(volatile, parallel_restricted)]
fn server_cert() -> Result<JsonB, ErrorReport> {
    let (path, certs) = read_server_chain()?;
    let now = now();
    let mut info = describe(&certs[0], now);
    info["file"] = json!(path.display().to_string());
    info["chain"] = Value::Array(certs[1..].iter().map(|c| describe(c, now)).collect());
    info["tls_settings"] = tls_settings().describe();
    Ok(JsonB(info))
}

/// The TLS settings of this server's release; one it lacks reads as empty.
fn tls_settings() -> versions::TlsSettings {
    let version_num = setting("server_version_num").parse().unwrap_or(0);
    let groups = if version_num >= versions::GROUPS_SINCE {
        "ssl_groups"
    } else {
        "ssl_ecdh_curve"
    };
    versions::TlsSettings {
        version_num,
        ssl: setting("ssl") == "on",
        groups: setting(groups),
        tls13_ciphers: setting("ssl_tls13_ciphers"),
        ciphers: setting("ssl_ciphers"),
        min_protocol: setting("ssl_min_protocol_version"),
        max_protocol: setting("ssl_max_protocol_version"),
        crl_file: setting("ssl_crl_file"),
        crl_dir: setting("ssl_crl_dir"),
    }
}

/// Whether `ssl_key_file` holds the private key of `c`. The key is only
/// compared, never kept or shown; a key behind a passphrase cannot be told.
fn key_matches(c: &X509) -> Result<bool, String> {
    let path = resolve_path(&setting("ssl_key_file"));
    let pem = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let key = PKey::private_key_from_pem_callback(&pem, |_| Ok(0))
        .map_err(|_| format!("{} is not an unencrypted PEM private key", path.display()))?;
    let public = c.public_key().map_err(|e| e.to_string())?;
    Ok(public.public_eq(&key))
}

fn hba_rules() -> Vec<HbaRule> {
    let query =
        "SELECT line_number, type, array_to_string(database, ','), array_to_string(user_name, ','),
                        address, auth_method, coalesce(options, '{}'), netmask
                   FROM pg_catalog.pg_hba_file_rules WHERE type IS NOT NULL ORDER BY line_number";
    Spi::connect(|client| {
        let rows = client.select(query, None, &[])?;
        let mut out = Vec::new();
        for row in rows {
            out.push(HbaRule {
                line: row.get::<i32>(1)?.unwrap_or(0),
                kind: row.get::<String>(2)?.unwrap_or_default(),
                database: row.get::<String>(3)?.unwrap_or_default(),
                user: row.get::<String>(4)?.unwrap_or_default(),
                address: row.get::<String>(5)?,
                method: row.get::<String>(6)?.unwrap_or_default(),
                options: row.get::<Vec<String>>(7)?.unwrap_or_default(),
                netmask: row.get::<String>(8)?,
            });
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap_or_default()
}

/// The lines the server cannot parse, so that it keeps its previous rules.
/// (A line that loads with a warning, such as a `hostssl` line while `ssl` is
/// off, has its fields filled in; a line that stops the load has none.)
fn hba_errors() -> Vec<(i32, String)> {
    let query = "SELECT coalesce(line_number, 0), error FROM pg_catalog.pg_hba_file_rules
                  WHERE error IS NOT NULL AND type IS NULL ORDER BY line_number";
    Spi::connect(|client| {
        let mut out = Vec::new();
        for row in client.select(query, None, &[])? {
            out.push((
                row.get::<i32>(1)?.unwrap_or(0),
                row.get::<String>(2)?.unwrap_or_default(),
            ));
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap_or_default()
}

fn client_ca_not_after() -> Option<i64> {
    let pem = std::fs::read(crate::gucs::ca_cert_file()).ok()?;
    let ca = X509::from_pem(&pem).ok()?;
    cert::unix_seconds(ca.not_after())
}

fn gather() -> Facts {
    let now = now();
    let chain = read_server_chain();
    let (server_cert, key_matches) = match &chain {
        Ok((_, certs)) => (
            Some(Ok(ServerCertFacts::of(&certs[0], now))),
            Some(key_matches(&certs[0])),
        ),
        Err(e) => (Some(Err(e.message())), None),
    };
    Facts {
        now,
        ssl: setting("ssl") == "on",
        min_protocol: setting("ssl_min_protocol_version"),
        cert_file: setting("ssl_cert_file"),
        server_cert,
        key_matches,
        ca_file_set: !setting("ssl_ca_file").is_empty(),
        crl_set: !setting("ssl_crl_file").is_empty() || !setting("ssl_crl_dir").is_empty(),
        hba: hba_rules(),
        hba_errors: hba_errors(),
        revoked_certs: crate::ca::registry::revoked_count(),
        client_ca_not_after: client_ca_not_after(),
    }
}

/// Audits the server's TLS set-up; one row per check, or per problem found.
#[pg_extern(volatile, parallel_restricted)]
fn check_config() -> TableIterator<
    'static,
    (
        name!(check, String),
        name!(status, String),
        name!(detail, String),
    ),
> {
    let mut rows = checks::evaluate(&gather());
    rows.extend(revocation::evaluate(&revocation::gather()));
    rows.extend(versions::evaluate(&tls_settings()));
    rows.extend(ca_keys::evaluate(&ca_keys::gather()));
    TableIterator::new(
        rows.into_iter()
            .map(|f| (f.check.to_string(), f.status.as_str().to_string(), f.detail)),
    )
}

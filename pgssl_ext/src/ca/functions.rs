//! The CA's SQL functions.
//!
//! Privileges (granted in `sql/ca.sql`): `ca_cert` to PUBLIC; `enroll`,
//! `sign_csr`, `revoke` and `crl` revoked from PUBLIC, for a DBA to grant;
//! `init_ca` and `install_crl` check for a superuser themselves. The
//! functions that write the registry are SECURITY DEFINER with
//! `search_path = pg_catalog, pg_temp`, so a caller needs no privilege on
//! `pgssl.issued_certs` and cannot redirect a name the function uses.
//!
//! Everything that signs or writes is VOLATILE and PARALLEL UNSAFE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::Spi;

use super::authority::{self, Authority, CaError, CaFile, CaKeyType, CaRole};
use super::issuance::{self, pem_text, Subject};
use super::registry::{self, CertKind};
use super::revocation::{self, RevocationReason};
use super::{csr, files};
use crate::backend::{now, require_superuser, require_writable, resolve_path, session_user};
use crate::error::{internal, PgsslError};
use crate::gucs;

/// Longest `next_update_days` of a CRL.
const MAX_CRL_DAYS: i32 = 366;

fn load_ca() -> Result<Authority, PgsslError> {
    authority::load_cached(&gucs::ca_cert_file(), &gucs::ca_key_file())
        .map_err(|e| PgsslError::ca(CaRole::Client, e))
}

/// Makes a new CA: a key of `key_type` and a self-signed CA certificate,
/// written to `pgssl.ca_key_file` (mode 0600) and `pgssl.ca_cert_file`.
/// Refuses when either file exists. Returns the certificate PEM.
#[pg_extern(volatile, strict, parallel_unsafe)]
fn init_ca(
    common_name: default!(&str, "'pgssl client CA'"),
    valid_days: default!(i32, 3650),
    key_type: default!(&str, "'ec-p256'"),
) -> Result<String, ErrorReport> {
    Ok(make_client_ca(common_name, valid_days, key_type)?)
}

fn make_client_ca(
    common_name: &str,
    valid_days: i32,
    key_type: &str,
) -> Result<String, PgsslError> {
    require_superuser("pgssl.init_ca()")?;
    require_writable("pgssl.init_ca()")?;
    csr::check_common_name(common_name)
        .map_err(|e| PgsslError::invalid(format!("invalid CA common name: {e}")))?;
    if !(1..=authority::MAX_CA_DAYS).contains(&valid_days) {
        return Err(PgsslError::invalid(format!(
            "valid_days must be between 1 and {}, not {valid_days}",
            authority::MAX_CA_DAYS
        )));
    }
    let kind = CaKeyType::from_name(key_type).ok_or_else(|| PgsslError::InvalidArgument {
        message: format!("unknown CA key type {key_type:?}"),
        hint: Some(format!("Use one of: {}.", CaKeyType::names())),
    })?;
    let (cert_path, key_path) = (gucs::ca_cert_file(), gucs::ca_key_file());
    // Refuse before spending time on an RSA key.
    for (file, path) in [(CaFile::Certificate, &cert_path), (CaFile::Key, &key_path)] {
        if path.symlink_metadata().is_ok() {
            let path = path.clone();
            return Err(PgsslError::ca(
                CaRole::Client,
                CaError::Exists { file, path },
            ));
        }
    }
    let key = kind.generate().map_err(internal("making the CA key"))?;
    let cert = authority::self_signed_ca(common_name, valid_days, &key, now())
        .map_err(internal("making the CA certificate"))?;
    files::create_ca(&cert_path, &key_path, &cert, &key)
        .map_err(|e| PgsslError::ca(CaRole::Client, e))?;
    pem_text(cert.to_pem())
}

/// The CA certificate, PEM. Public information: anyone may fetch it to
/// configure `sslrootcert`/`ssl_ca_file`.
#[pg_extern(stable, parallel_restricted)]
fn ca_cert() -> Result<String, ErrorReport> {
    let cert = authority::load_certificate(&gucs::ca_cert_file())
        .map_err(|e| PgsslError::ca(CaRole::Client, e))?;
    Ok(pem_text(cert.to_pem())?)
}

/// Self-service: signs a CSR whose CN is the session user.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enroll(
    csr: Option<&str>,
    valid_days: default!(Option<i32>, "NULL"),
) -> Result<Option<String>, ErrorReport> {
    let Some(csr) = csr else { return Ok(None) };
    Ok(Some(sign_client_csr(csr, valid_days, true)?))
}

/// For administrators: signs a CSR for any CN.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn sign_csr(
    csr: Option<&str>,
    valid_days: default!(Option<i32>, "NULL"),
) -> Result<Option<String>, ErrorReport> {
    let Some(csr) = csr else { return Ok(None) };
    Ok(Some(sign_client_csr(csr, valid_days, false)?))
}

/// Checks everything that can be refused before anything is signed, then
/// takes the one issuance path.
fn sign_client_csr(
    csr: &str,
    valid_days: Option<i32>,
    only_for_session_user: bool,
) -> Result<String, PgsslError> {
    require_writable(if only_for_session_user {
        "pgssl.enroll()"
    } else {
        "pgssl.sign_csr()"
    })?;
    let checked = csr::check_csr(csr)?;
    if only_for_session_user {
        let user = session_user();
        if checked.common_name != user {
            return Err(PgsslError::NotYourName {
                presented: checked.common_name,
                expected: user,
            });
        }
    }
    let days = valid_days.unwrap_or_else(gucs::default_validity_days);
    let ca = load_ca()?;
    let validity = issuance::validity_under(&ca, days, CaRole::Client)?;
    Ok(issuance::issue(&ca, Subject::Client(&checked), validity)?.pem)
}

/// Marks a certificate revoked. `false` when it already was.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn revoke(serial: &str, reason: default!(&str, "'unspecified'")) -> Result<bool, ErrorReport> {
    Ok(revoke_serial(serial, reason)?)
}

fn revoke_serial(serial: &str, reason: &str) -> Result<bool, PgsslError> {
    require_writable("pgssl.revoke()")?;
    let serial = revocation::normalize_serial(serial)?;
    let reason =
        RevocationReason::from_name(reason).ok_or_else(|| PgsslError::InvalidArgument {
            message: format!("unknown revocation reason {reason:?}"),
            hint: Some(format!(
                "Use an RFC 5280 reason name: {}.",
                RevocationReason::names()
            )),
        })?;
    match registry::lock_unrevoked(&serial)? {
        None => Err(PgsslError::UnknownSerial { serial }),
        Some(false) => Ok(false),
        Some(true) => {
            registry::mark_revoked(&serial, reason)?;
            Ok(true)
        }
    }
}

/// A v2 CRL of every revoked certificate in the registry, signed by the CA,
/// with the next CRL number.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn crl(next_update_days: default!(i32, 7)) -> Result<String, ErrorReport> {
    require_writable("pgssl.crl()")?;
    Ok(make_crl(next_update_days)?)
}

/// The client CA's CRL: the client certificates revoked in the registry.
fn make_crl(next_update_days: i32) -> Result<String, PgsslError> {
    if !(1..=MAX_CRL_DAYS).contains(&next_update_days) {
        return Err(PgsslError::invalid(format!(
            "next_update_days must be between 1 and {MAX_CRL_DAYS}, not {next_update_days}"
        )));
    }
    let ca = load_ca()?;
    let number = registry::next_crl_number()?;
    let entries = registry::revoked(CertKind::Client)?;
    let crl = revocation::build_crl(&ca, &entries, number, now(), next_update_days)
        .map_err(internal("signing the CRL"))?;
    pem_text(crl.to_pem())
}

/// Writes a fresh CRL to the file `ssl_crl_file` names (atomically: write,
/// then rename) and reloads the configuration, so that new connections with
/// a revoked certificate are refused. Returns the path written.
#[pg_extern(volatile, strict, parallel_unsafe)]
fn install_crl(next_update_days: default!(i32, 7)) -> Result<String, ErrorReport> {
    Ok(write_crl_file(next_update_days)?)
}

fn write_crl_file(next_update_days: i32) -> Result<String, PgsslError> {
    require_superuser("pgssl.install_crl()")?;
    require_writable("pgssl.install_crl()")?;
    let setting = crate::backend::setting("ssl_crl_file");
    if setting.trim().is_empty() {
        return Err(PgsslError::CrlFileNotSet);
    }
    let pem = make_crl(next_update_days)?;
    let path = resolve_path(&setting);
    files::write_atomically(&path, pem.as_bytes()).map_err(|e| PgsslError::FileWrite {
        what: "CRL",
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Spi::run("SELECT pg_catalog.pg_reload_conf()")
        .map_err(internal("reloading the configuration"))?;
    Ok(path.display().to_string())
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509Crl, X509NameBuilder, X509ReqBuilder, X509};
    use pgrx::prelude::*;

    /// A CA of its own in a fresh folder, so reruns on the same test
    /// cluster never meet an existing one.
    fn fresh_ca() {
        let dir = std::env::temp_dir().join(format!(
            "pgssl-pgtest-{}-{}",
            std::process::id(),
            crate::backend::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.display();
        Spi::run(&format!(
            "SET pgssl.ca_cert_file = '{dir}/ca.crt'; SET pgssl.ca_key_file = '{dir}/ca.key'"
        ))
        .unwrap();
        Spi::get_one::<String>("SELECT pgssl.init_ca('pg_test CA', 30, 'ec-p384')").unwrap();
    }

    fn csr(cn: &str) -> String {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        if !cn.is_empty() {
            name.append_entry_by_text("CN", cn).unwrap();
        }
        let mut req = X509ReqBuilder::new().unwrap();
        req.set_subject_name(&name.build()).unwrap();
        req.set_pubkey(&key).unwrap();
        req.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        String::from_utf8(req.build().to_pem().unwrap()).unwrap()
    }

    #[pg_test]
    fn sign_record_revoke_and_list_in_the_crl() {
        fresh_ca();
        let pem = Spi::get_one_with_args::<String>(
            "SELECT pgssl.sign_csr($1, 10)",
            &[csr("carol").as_str().into()],
        )
        .unwrap()
        .unwrap();
        let cert = X509::from_pem(pem.as_bytes()).unwrap();
        let serial = crate::cert::serial_hex(&cert).unwrap();
        let row = Spi::get_one_with_args::<String>(
            "SELECT common_name || '|' || (issued_by = session_user) || '|'
                    || (not_after - not_before)::text
               FROM pgssl.issued_certs WHERE serial = $1",
            &[serial.as_str().into()],
        )
        .unwrap();
        assert_eq!(row.as_deref(), Some("carol|true|10 days 00:05:00"));

        let revoked = Spi::get_one_with_args::<bool>(
            "SELECT pgssl.revoke($1, 'superseded')",
            &[serial.as_str().into()],
        );
        assert_eq!(revoked, Ok(Some(true)));
        let crl = Spi::get_one::<String>("SELECT pgssl.crl(1)")
            .unwrap()
            .unwrap();
        let crl = X509Crl::from_pem(crl.as_bytes()).unwrap();
        assert!(matches!(
            crl.get_by_serial(cert.serial_number()),
            openssl::x509::CrlStatus::Revoked(_)
        ));
    }

    #[pg_test(error = "certificate signing request has no common name (CN)")]
    fn a_csr_without_cn_is_refused() {
        fresh_ca();
        Spi::get_one_with_args::<String>("SELECT pgssl.sign_csr($1)", &[csr("").as_str().into()])
            .unwrap();
    }
}

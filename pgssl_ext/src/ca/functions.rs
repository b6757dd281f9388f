//! The CA's SQL functions.
//!
//! Privileges (granted in `sql/ca.sql`): `ca_cert` and `renew` (in
//! [`super::renewal`], which checks its own credential) to PUBLIC; `enroll`,
//! `sign_csr`, `revoke` and `crl` revoked from PUBLIC, for a DBA to grant;
//! `init_ca` and `install_crl` check for a superuser themselves. The
//! functions that write the registry are SECURITY DEFINER with
//! `search_path = pg_catalog, pg_temp`, so a caller needs no privilege on
//! `pgssl.issued_certs` and cannot redirect a name the function uses.
//!
//! Everything that signs or writes is VOLATILE and PARALLEL UNSAFE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use super::authority::{self, Authority, CaError, CaFile, CaKeyType, CaRole};
use super::issuance::{self, pem_text, Issued, Subject};
use super::registry::{self, CertKind};
use super::revocation::{self, RevocationReason};
use super::{csr, files, key_file};
use crate::backend::{now, require_superuser, require_writable, resolve_path, session_user};
use crate::error::{internal, PgsslError};
use crate::gucs;

/// Longest `next_update_days` of a CRL.
const MAX_CRL_DAYS: i32 = 366;

/// The client CA, cached.
pub(crate) fn load_ca() -> Result<Authority, PgsslError> {
    load_authority(CaRole::Client)
}

/// The CA of `role` from the files its settings name, its key decrypted
/// with `pgssl.ca_key_passphrase_command` when encrypted.
pub(crate) fn load_authority(role: CaRole) -> Result<Authority, PgsslError> {
    let (cert_path, key_path) = match role {
        CaRole::Client => (gucs::ca_cert_file(), gucs::ca_key_file()),
        CaRole::Server => (gucs::server_ca_cert_file(), gucs::server_ca_key_file()),
    };
    let command = gucs::ca_key_passphrase_command();
    authority::load_cached(&cert_path, &key_path, role, command.as_deref())
        .map_err(|e| PgsslError::ca(role, e))
}

/// Writes a new CA of `role`: its key encrypted with the passphrase from
/// `pgssl.ca_key_passphrase_command` when that is set.
pub(crate) fn create_ca_files(
    role: CaRole,
    cert_path: &std::path::Path,
    key_path: &std::path::Path,
    cert: &openssl::x509::X509,
    key: &openssl::pkey::PKeyRef<openssl::pkey::Private>,
) -> Result<(), PgsslError> {
    let command = gucs::ca_key_passphrase_command();
    let passphrase = key_file::passphrase_for_new_key(key_path, role, command.as_deref())
        .map_err(|e| PgsslError::ca(role, e))?;
    files::create_ca(
        cert_path,
        key_path,
        cert,
        key,
        passphrase.as_ref().map(|p| p.as_slice()),
    )
    .map_err(|e| PgsslError::ca(role, e))
}

/// Makes a new CA: a key of `key_type` and a self-signed CA certificate,
/// written to `pgssl.ca_key_file` (mode 0600; encrypted when
/// `pgssl.ca_key_passphrase_command` is set) and `pgssl.ca_cert_file`.
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
    create_ca_files(CaRole::Client, &cert_path, &key_path, &cert, &key)?;
    pem_text(cert.to_pem())
}

/// The client CA certificate, PEM. Public information: anyone may fetch it to configure
/// the server's `ssl_ca_file`. It verifies client certificates only: clients verify the
/// server with `pgssl.server_ca_cert()` as `sslrootcert`.
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
    Ok(Some(sign_client_csr(csr, valid_days, Signer::Enroll)?.pem))
}

/// For administrators: signs a CSR for any CN.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn sign_csr(
    csr: Option<&str>,
    valid_days: default!(Option<i32>, "NULL"),
) -> Result<Option<String>, ErrorReport> {
    let Some(csr) = csr else { return Ok(None) };
    Ok(Some(sign_client_csr(csr, valid_days, Signer::SignCsr)?.pem))
}

/// Which function signs a client CSR, and so under which rules.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signer {
    /// `pgssl.enroll()`: only for the session user, never past the role's `VALID UNTIL`.
    Enroll,
    /// `pgssl.renew()`: as `enroll`, once [`super::renewal`] accepted the session's
    /// certificate; the lifetime follows `pgssl.renew_validity` when set.
    Renew,
    /// `pgssl.sign_csr()`: an administrator's, for any name.
    SignCsr,
}

impl Signer {
    fn function(self) -> &'static str {
        match self {
            Self::Enroll => "pgssl.enroll()",
            Self::Renew => "pgssl.renew()",
            Self::SignCsr => "pgssl.sign_csr()",
        }
    }
}

/// Checks everything that can be refused before anything is signed, then
/// takes the one issuance path.
pub(crate) fn sign_client_csr(
    csr: &str,
    valid_days: Option<i32>,
    signer: Signer,
) -> Result<Issued, PgsslError> {
    let function = signer.function();
    require_writable(function)?;
    let checked = csr::check_csr(csr)?;
    let mut role_valid_until = None;
    if signer != Signer::SignCsr {
        let user = session_user();
        if checked.common_name != user {
            return Err(PgsslError::NotYourName {
                function,
                presented: checked.common_name,
                expected: user,
            });
        }
        role_valid_until = valid_until(&user)?;
    }
    let renew_validity = match signer {
        Signer::Renew => gucs::renew_validity(),
        _ => None,
    };
    // pgssl.renew_validity, when set, is the lifetime; valid_days can only shorten it.
    let days = valid_days.unwrap_or_else(|| match renew_validity {
        Some(secs) => i32::try_from((secs + 86_399) / 86_400).unwrap_or(i32::MAX),
        None => gucs::default_validity_days(),
    });
    let ca = load_ca()?;
    let mut validity = issuance::validity_under(&ca, days, CaRole::Client)?;
    if let Some(secs) = renew_validity {
        validity.not_after = validity.not_after.min(now() + secs);
    }
    // A certificate must not outlive the role's VALID UNTIL: it would let the role log in
    // with `cert` after its password login has ended.
    if let Some((until, text)) = role_valid_until {
        if until <= now() {
            return Err(PgsslError::RoleExpired {
                function,
                role: checked.common_name,
                valid_until: text,
            });
        }
        validity.not_after = validity.not_after.min(until);
    }
    issuance::issue(&ca, Subject::Client(&checked), validity)
}

/// The role's `VALID UNTIL` (`rolvaliduntil`) as Unix seconds and as PostgreSQL shows it;
/// `None` when it has none or it is `infinity`.
fn valid_until(role: &str) -> Result<Option<(i64, String)>, PgsslError> {
    let row = Spi::get_one_with_args::<String>(
        "SELECT (SELECT greatest(extract(epoch FROM rolvaliduntil), 0)::int8::text
                        || '|' || rolvaliduntil::text
                   FROM pg_catalog.pg_roles
                  WHERE rolname = $1 AND rolvaliduntil <> 'infinity')",
        &[role.into()],
    )
    .map_err(internal("reading the role's VALID UNTIL"))?;
    Ok(row.and_then(|row| {
        let (secs, text) = row.split_once('|')?;
        Some((secs.parse().ok()?, text.to_string()))
    }))
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
    let revoked = match registry::lock_unrevoked(&serial)? {
        // Not in the registry: a certificate whose issuing transaction
        // rolled back (its serial is in the server log), or a mistyped
        // serial. Either way listing it in the CRL is safe, and nothing
        // pgssl handed out stays unrevocable.
        None => revoke_unregistered(&serial, reason)?,
        Some(false) => false,
        Some(true) => {
            registry::mark_revoked(&serial, reason)?;
            true
        }
    };
    if revoked {
        crate::worker::wake_after_commit();
    }
    Ok(revoked)
}

/// Records the revocation of a serial the registry does not know, with a
/// WARNING. `false` when it was already recorded.
fn revoke_unregistered(serial: &str, reason: RevocationReason) -> Result<bool, PgsslError> {
    let recorded = registry::record_unregistered_revocation(serial, reason)?;
    if recorded {
        pgrx::warning!(
            "serial {serial} is not in pgssl.issued_certs; its revocation is recorded in \
             pgssl.unregistered_revocations and listed in the CRL (a certificate whose issuing \
             transaction rolled back is found by serial in the server log)"
        );
    }
    Ok(recorded)
}

/// A v2 CRL of every revoked certificate in the registry, signed by the CA,
/// with the next CRL number.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn crl(next_update_days: default!(i32, 7)) -> Result<String, ErrorReport> {
    require_writable("pgssl.crl()")?;
    Ok(make_crl(next_update_days)?)
}

fn check_crl_days(next_update_days: i32) -> Result<(), PgsslError> {
    if !(1..=MAX_CRL_DAYS).contains(&next_update_days) {
        return Err(PgsslError::invalid(format!(
            "next_update_days must be between 1 and {MAX_CRL_DAYS}, not {next_update_days}"
        )));
    }
    Ok(())
}

fn make_crl(next_update_days: i32) -> Result<String, PgsslError> {
    check_crl_days(next_update_days)?;
    let ca = load_ca()?;
    let number = registry::next_crl_number()?;
    let entries = registry::revoked(CertKind::Client)?;
    let crl = revocation::build_crl(
        &ca,
        &entries,
        number,
        now(),
        i64::from(next_update_days) * 86_400,
    )
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
    check_crl_days(next_update_days)?;
    let path = resolve_path(&setting);
    let stored = super::crl_store::sign_and_store(now(), i64::from(next_update_days) * 86_400)?;
    super::crl_store::install(&stored, &path)?;
    super::crl_store::reload_configuration()?;
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

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

use std::time::{SystemTime, UNIX_EPOCH};

use pgrx::prelude::*;
use pgrx::spi::Spi;

use super::authority::{self, Authority, CaKeyType};
use super::policy::{self, RevocationReason};
use super::{
    resolve, resolve_path, CA_CERT_FILE, CA_KEY_FILE, DEFAULT_VALIDITY_DAYS, MAX_VALIDITY_DAYS,
};
use crate::cert;
use crate::error::PgsslError;

/// Attempts at a serial number not yet in the registry. With 126 random bits
/// a second attempt already means something is wrong with the random source.
const SERIAL_ATTEMPTS: usize = 4;
/// Longest `next_update_days` of a CRL.
const MAX_CRL_DAYS: i32 = 366;

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn crypto(doing: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> PgsslError {
    move |e| PgsslError::Internal {
        doing,
        reason: e.to_string(),
    }
}

pub(crate) fn require_superuser(function: &'static str) {
    // SAFETY: a plain catalog lookup of the current user, valid in any
    // transaction; it raises its own ERROR if the catalog read fails.
    if !unsafe { pg_sys::superuser() } {
        PgsslError::SuperuserOnly { function }.report();
    }
}

/// ERROR 25006 on a standby or in a read-only transaction, before anything
/// is signed: these functions write the registry, files or a sequence.
fn require_writable(function: &'static str) {
    // SAFETY: RecoveryInProgress only reads shared memory state and never
    // raises an error; XactReadOnly is the backend's own flag for the current
    // transaction, read on the backend's only thread.
    let (in_recovery, read_only) = unsafe { (pg_sys::RecoveryInProgress(), pg_sys::XactReadOnly) };
    if in_recovery || read_only {
        PgsslError::ReadOnly {
            function,
            in_recovery,
        }
        .report();
    }
}

fn load_ca() -> Authority {
    authority::load_cached(&resolve(&CA_CERT_FILE), &resolve(&CA_KEY_FILE))
        .unwrap_or_else(|e| PgsslError::Ca(e).report())
}

fn session_user() -> String {
    Spi::get_one::<String>("SELECT pg_catalog.session_user()::text")
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Makes a new CA: a key of `key_type` and a self-signed CA certificate,
/// written to `pgssl.ca_key_file` (mode 0600) and `pgssl.ca_cert_file`.
/// Refuses when either file exists. Returns the certificate PEM.
#[pg_extern(volatile, strict, parallel_unsafe)]
fn init_ca(
    common_name: default!(&str, "'pgssl client CA'"),
    valid_days: default!(i32, 3650),
    key_type: default!(&str, "'ec-p256'"),
) -> String {
    require_superuser("pgssl.init_ca()");
    require_writable("pgssl.init_ca()");
    policy::check_common_name(common_name).unwrap_or_else(|e| {
        PgsslError::InvalidArgument {
            message: format!("invalid CA common name: {e}"),
            hint: None,
        }
        .report()
    });
    if !(1..=authority::MAX_CA_DAYS).contains(&valid_days) {
        PgsslError::InvalidArgument {
            message: format!(
                "valid_days must be between 1 and {}, not {valid_days}",
                authority::MAX_CA_DAYS
            ),
            hint: None,
        }
        .report();
    }
    let kind = CaKeyType::from_name(key_type).unwrap_or_else(|| {
        PgsslError::InvalidArgument {
            message: format!("unknown CA key type {key_type:?}"),
            hint: Some(format!("Use one of: {}.", CaKeyType::names())),
        }
        .report()
    });
    let (cert_path, key_path) = (resolve(&CA_CERT_FILE), resolve(&CA_KEY_FILE));
    // Refuse before spending time on an RSA key.
    for (file, path) in [
        (authority::CaFile::Certificate, &cert_path),
        (authority::CaFile::Key, &key_path),
    ] {
        if path.symlink_metadata().is_ok() {
            PgsslError::Ca(authority::CaError::Exists {
                file,
                path: path.clone(),
            })
            .report();
        }
    }
    let key = kind
        .generate()
        .unwrap_or_else(|e| crypto("making the CA key")(e).report());
    let cert = authority::self_signed_ca(common_name, valid_days, &key, now())
        .unwrap_or_else(|e| crypto("making the CA certificate")(e).report());
    authority::create(&cert_path, &key_path, &cert, &key)
        .unwrap_or_else(|e| PgsslError::Ca(e).report());
    pem_text(cert.to_pem())
}

fn pem_text(pem: Result<Vec<u8>, openssl::error::ErrorStack>) -> String {
    let pem = pem.unwrap_or_else(|e| crypto("encoding PEM")(e).report());
    String::from_utf8(pem).unwrap_or_default()
}

/// The CA certificate, PEM. Public information: anyone may fetch it to
/// configure `sslrootcert`/`ssl_ca_file`.
#[pg_extern(stable, parallel_restricted)]
fn ca_cert() -> String {
    let cert = authority::load_certificate(&resolve(&CA_CERT_FILE))
        .unwrap_or_else(|e| PgsslError::Ca(e).report());
    pem_text(cert.to_pem())
}

/// Self-service: signs a CSR whose CN is the session user.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enroll(csr: Option<&str>, valid_days: default!(Option<i32>, "NULL")) -> Option<String> {
    Some(issue(csr?, valid_days, true))
}

/// For administrators: signs a CSR for any CN.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn sign_csr(csr: Option<&str>, valid_days: default!(Option<i32>, "NULL")) -> Option<String> {
    Some(issue(csr?, valid_days, false))
}

/// Checks the CSR, signs it and records it, in this order, so that every
/// refusal happens before anything is signed; the registry row is written in
/// the caller's transaction and goes away with it on rollback.
fn issue(csr: &str, valid_days: Option<i32>, only_for_session_user: bool) -> String {
    require_writable(if only_for_session_user {
        "pgssl.enroll()"
    } else {
        "pgssl.sign_csr()"
    });
    let checked = policy::check_csr(csr).unwrap_or_else(|e| PgsslError::Csr(e).report());
    if only_for_session_user {
        let user = session_user();
        if checked.common_name != user {
            PgsslError::NotYourName {
                presented: checked.common_name,
                expected: user,
            }
            .report();
        }
    }
    let days = valid_days.unwrap_or_else(|| DEFAULT_VALIDITY_DAYS.get());
    let ca = load_ca();
    let ca_not_after = cert::unix_seconds(ca.cert.not_after()).unwrap_or(0);
    let validity = policy::validity(now(), days, MAX_VALIDITY_DAYS.get(), ca_not_after)
        .unwrap_or_else(|e| match e {
            policy::ValidityError::CaExpired => PgsslError::CaExpired.report(),
            other => PgsslError::InvalidArgument {
                message: other.to_string(),
                hint: Some(format!(
                    "Ask for 1 to {} days, or NULL for pgssl.default_validity_days ({}).",
                    MAX_VALIDITY_DAYS.get(),
                    DEFAULT_VALIDITY_DAYS.get()
                )),
            }
            .report(),
        });

    for _ in 0..SERIAL_ATTEMPTS {
        let serial =
            policy::random_serial().unwrap_or_else(|e| crypto("drawing a serial")(e).report());
        let issued =
            policy::issue_client_certificate(&checked, &ca.cert, &ca.key, &serial, validity)
                .unwrap_or_else(|e| crypto("signing the certificate")(e).report());
        let pem = pem_text(issued.to_pem());
        let recorded = Spi::get_one_with_args::<bool>(
            "INSERT INTO pgssl.issued_certs
                    (serial, common_name, not_before, not_after, fingerprint_sha256,
                     issued_by, certificate)
             VALUES ($1, $2, pg_catalog.to_timestamp($3), pg_catalog.to_timestamp($4), $5,
                     pg_catalog.session_user(), $6)
             ON CONFLICT (serial) DO NOTHING
             RETURNING true",
            &[
                cert::bignum_hex(&serial).into(),
                checked.common_name.as_str().into(),
                (validity.not_before as f64).into(),
                (validity.not_after as f64).into(),
                cert::fingerprint_sha256(&issued).unwrap_or_default().into(),
                pem.as_str().into(),
            ],
        );
        match recorded {
            Ok(Some(true)) => {
                // The server log keeps what the registry loses if the caller's
                // transaction rolls back after the certificate was handed out.
                pgrx::log!(
                    "pgssl issued certificate serial {} for CN {:?} to {:?}, valid until {}, SHA-256 {}",
                    cert::bignum_hex(&serial),
                    checked.common_name,
                    session_user(),
                    crate::timestamps::iso8601(validity.not_after).unwrap_or_default(),
                    cert::fingerprint_sha256(&issued).unwrap_or_default()
                );
                return pem;
            }
            // ON CONFLICT: that serial was issued before; draw another.
            Ok(_) | Err(pgrx::spi::SpiError::InvalidPosition) => continue,
            Err(e) => PgsslError::Internal {
                doing: "recording the certificate",
                reason: e.to_string(),
            }
            .report(),
        }
    }
    PgsslError::Internal {
        doing: "drawing a serial number",
        reason: format!("{SERIAL_ATTEMPTS} random serials were all taken"),
    }
    .report()
}

/// Marks a certificate revoked. `false` when it already was.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn revoke(serial: &str, reason: default!(&str, "'unspecified'")) -> bool {
    require_writable("pgssl.revoke()");
    let serial = policy::normalize_serial(serial).unwrap_or_else(|e| {
        PgsslError::InvalidArgument {
            message: e.to_string(),
            hint: None,
        }
        .report()
    });
    let reason = RevocationReason::from_name(reason).unwrap_or_else(|| {
        PgsslError::InvalidArgument {
            message: format!("unknown revocation reason {reason:?}"),
            hint: Some(format!(
                "Use an RFC 5280 reason name: {}.",
                RevocationReason::names()
            )),
        }
        .report()
    });
    let not_yet_revoked = match Spi::get_one_with_args::<bool>(
        "SELECT revoked_at IS NULL FROM pgssl.issued_certs WHERE serial = $1 FOR UPDATE",
        &[serial.as_str().into()],
    ) {
        Ok(found) => found,
        Err(pgrx::spi::SpiError::InvalidPosition) => None,
        Err(e) => PgsslError::Internal {
            doing: "looking up the serial",
            reason: e.to_string(),
        }
        .report(),
    };
    match not_yet_revoked {
        // Not in the registry: a certificate whose issuing transaction
        // rolled back (its serial is in the server log), or a mistyped
        // serial. Either way listing it in the CRL is safe, and nothing
        // pgssl handed out stays unrevocable.
        None => revoke_unregistered(&serial, reason),
        Some(false) => false,
        Some(true) => {
            Spi::run_with_args(
                "UPDATE pgssl.issued_certs
                    SET revoked_at = pg_catalog.now(), revocation_reason = $2
                  WHERE serial = $1",
                &[serial.as_str().into(), reason.name().into()],
            )
            .unwrap_or_else(|e| {
                PgsslError::Internal {
                    doing: "recording the revocation",
                    reason: e.to_string(),
                }
                .report()
            });
            true
        }
    }
}

/// Records the revocation of a serial the registry does not know, with a
/// WARNING. `false` when it was already recorded.
fn revoke_unregistered(serial: &str, reason: RevocationReason) -> bool {
    let recorded = Spi::get_one_with_args::<bool>(
        "INSERT INTO pgssl.unregistered_revocations (serial, revocation_reason)
         VALUES ($1, $2)
         ON CONFLICT (serial) DO NOTHING
         RETURNING true",
        &[serial.into(), reason.name().into()],
    );
    match recorded {
        Ok(Some(true)) => {
            pgrx::warning!(
                "serial {serial} is not in pgssl.issued_certs; its revocation is recorded in \
                 pgssl.unregistered_revocations and listed in the CRL (a certificate whose issuing \
                 transaction rolled back is found by serial in the server log)"
            );
            true
        }
        Ok(_) | Err(pgrx::spi::SpiError::InvalidPosition) => false,
        Err(e) => PgsslError::Internal {
            doing: "recording the revocation",
            reason: e.to_string(),
        }
        .report(),
    }
}

/// A v2 CRL of every revoked certificate in the registry, signed by the CA,
/// with the next CRL number.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn crl(next_update_days: default!(i32, 7)) -> String {
    require_writable("pgssl.crl()");
    make_crl(next_update_days)
}

fn check_crl_days(next_update_days: i32) {
    if !(1..=MAX_CRL_DAYS).contains(&next_update_days) {
        PgsslError::InvalidArgument {
            message: format!(
                "next_update_days must be between 1 and {MAX_CRL_DAYS}, not {next_update_days}"
            ),
            hint: None,
        }
        .report();
    }
}

fn make_crl(next_update_days: i32) -> String {
    check_crl_days(next_update_days);
    let ca = load_ca();
    let number = Spi::get_one::<i64>("SELECT pg_catalog.nextval('pgssl.crl_number')")
        .ok()
        .flatten()
        .unwrap_or(1);
    let entries = super::crl_store::revoked_entries().unwrap_or_else(|e| e.report());
    let crl = authority::build_crl(
        &ca,
        &entries,
        number,
        now(),
        i64::from(next_update_days) * 86_400,
    )
    .unwrap_or_else(|e| crypto("signing the CRL")(e).report());
    pem_text(crl.to_pem())
}

/// Writes a fresh CRL to the file `ssl_crl_file` names (atomically: write,
/// then rename) and reloads the configuration, so that new connections with
/// a revoked certificate are refused. Returns the path written.
#[pg_extern(volatile, strict, parallel_unsafe)]
fn install_crl(next_update_days: default!(i32, 7)) -> String {
    require_superuser("pgssl.install_crl()");
    require_writable("pgssl.install_crl()");
    let setting = Spi::get_one::<String>("SELECT pg_catalog.current_setting('ssl_crl_file')")
        .ok()
        .flatten()
        .unwrap_or_default();
    if setting.trim().is_empty() {
        PgsslError::CrlFileNotSet.report();
    }
    check_crl_days(next_update_days);
    let path = resolve_path(&setting);
    let stored = super::crl_store::sign_and_store(now(), i64::from(next_update_days) * 86_400)
        .unwrap_or_else(|e| e.report());
    super::crl_store::install(&stored, &path).unwrap_or_else(|e| e.report());
    super::crl_store::reload_configuration().unwrap_or_else(|e| e.report());
    path.display().to_string()
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
            super::now()
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

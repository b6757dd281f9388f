//! `pgssl.renew`: a new certificate for the holder of a current one.
//!
//! The credential is the session's client certificate, as the server verified it at login:
//! the session must have been authenticated by it (`pg_hba.conf` method `cert`, see
//! [`crate::port::authenticated_by_certificate`]), and it must be a certificate this
//! database's pgssl CA issued (signed by the CA, its serial and SHA-256 fingerprint in the
//! registry, as a client certificate), not revoked, not expired by the server's clock, with
//! the CN the server matched equal to `session_user`. The CSR must be for that same name;
//! its key is expected to be new. Everything after that is `enroll`'s path: the same policy,
//! registry, LOG line and errors.
//!
//! With `pgssl.renew_revokes_previous`, the session's certificate is revoked as `superseded`
//! in the same transaction: a rollback keeps both, a commit leaves only the new one.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use super::functions::{load_ca, sign_client_csr, Signer};
use super::registry;
use super::revocation::RevocationReason;
use crate::backend::{now, require_writable, session_user};
use crate::cert;
use crate::error::PgsslError;
use crate::gucs;
use crate::port;
use crate::session::SessionTls;

/// Renews the session's certificate: signs a CSR whose CN is the session user, for a session
/// authenticated with a current certificate from the pgssl CA. Returns the certificate PEM.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn renew(
    csr: Option<&str>,
    valid_days: default!(Option<i32>, "NULL"),
) -> Result<String, ErrorReport> {
    Ok(renew_session_certificate(csr, valid_days)?)
}

fn renew_session_certificate(
    csr: Option<&str>,
    valid_days: Option<i32>,
) -> Result<String, PgsslError> {
    // First, as the credential check locks the registry row (FOR UPDATE), which a standby
    // or a read-only transaction refuses.
    require_writable("pgssl.renew()")?;
    let previous = session_certificate()?;
    let csr = csr.ok_or(PgsslError::NullArgument {
        function: "pgssl.renew()",
        argument: "csr",
    })?;
    let issued = sign_client_csr(csr, valid_days, Signer::Renew)?;
    let revoke = gucs::renew_revokes_previous();
    if revoke {
        registry::mark_revoked(&previous, RevocationReason::Superseded)?;
        crate::worker::wake_after_commit();
    }
    pgrx::log!(
        "pgssl renewed certificate serial {previous} of {:?} with serial {}{}",
        session_user(),
        issued.serial_hex,
        if revoke {
            "; the previous one is revoked (superseded)"
        } else {
            ""
        }
    );
    Ok(issued.pem)
}

fn refused(reason: String) -> PgsslError {
    PgsslError::RenewRefused { reason }
}

/// The serial of the session's certificate, when it is one `pgssl.renew()` renews; else why
/// not (42501). Its registry row stays locked until the transaction ends, so that a
/// concurrent `pgssl.revoke()` of it waits and the renewal sees the outcome.
fn session_certificate() -> Result<String, PgsslError> {
    let tls = SessionTls::current();
    let Some(peer) = tls.peer else {
        return Err(refused(if tls.in_use {
            "this session presented no client certificate".into()
        } else {
            "this session does not use TLS".into()
        }));
    };
    if !tls.peer_verified() {
        return Err(refused(
            "the server did not verify this session's client certificate".into(),
        ));
    }
    if !port::authenticated_by_certificate() {
        return Err(refused(
            "this session was not authenticated by its client certificate (pg_hba.conf method \
             \"cert\"), but by another method such as a password"
                .into(),
        ));
    }
    let serial = cert::serial_hex(peer).unwrap_or_default();
    let issuer = cert::name_rfc2253(peer.issuer_name());
    let ca = load_ca()?;
    let signed_by_ca = ca
        .cert
        .public_key()
        .and_then(|key| peer.verify(&key))
        .unwrap_or(false);
    if !signed_by_ca {
        return Err(refused(format!(
            "the session's certificate (serial {serial}, issuer \"{issuer}\") was not issued \
             by the pgssl CA"
        )));
    }
    let Some(row) = registry::lock_for_renewal(&serial)? else {
        return Err(refused(format!(
            "the session's certificate (serial {serial}) is not in pgssl.issued_certs"
        )));
    };
    if Some(row.fingerprint_sha256.as_str()) != cert::fingerprint_sha256(peer).as_deref()
        || row.kind != "client"
    {
        return Err(refused(format!(
            "the session's certificate (serial {serial}) is not the client certificate \
             pgssl.issued_certs records under that serial"
        )));
    }
    if let Some(reason) = row.revocation_reason {
        return Err(refused(format!(
            "the session's certificate (serial {serial}) is revoked ({reason})"
        )));
    }
    let not_after = cert::unix_seconds(peer.not_after())
        .unwrap_or(i64::MIN)
        .min(row.not_after);
    if not_after <= now() {
        return Err(refused(format!(
            "the session's certificate (serial {serial}) expired at {}",
            crate::timestamps::iso8601(not_after).unwrap_or_default()
        )));
    }
    let user = session_user();
    let cn = tls.peer_cn().unwrap_or_default();
    if cn != user {
        return Err(refused(format!(
            "the session's certificate is for CN {cn:?}, but the session user is {user:?}"
        )));
    }
    Ok(serial)
}

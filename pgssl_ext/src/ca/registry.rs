//! The registry, `pgssl.issued_certs`, the revocations of serials it does
//! not know (`pgssl.unregistered_revocations`), and the CRL number
//! sequence: every SQL statement on them is here. The reads are read-only
//! SPI, so the worker runs them on a standby too.
//!
//! Rows are written in the caller's transaction and go away with it on
//! rollback; the server log keeps what was handed out (see [`super::issuance`]).
//!
//! Between installing a new library and `ALTER EXTENSION pgssl UPDATE`, a
//! database still has the previous release's tables. Everything here works
//! on the 0.1.0 registry too, except recording a server certificate, which
//! needs the `kind` column of 0.2.0 and says so.

use pgrx::spi::{Spi, SpiError};

use super::revocation::{RevocationReason, RevokedEntry};
use crate::error::{internal, PgsslError};

/// Which profile, and so which CA, issued a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertKind {
    /// A client certificate from the pgssl CA (`enroll`, `sign_csr`); its
    /// revocation goes into that CA's CRL.
    Client,
    /// A server certificate from the server CA (`issue_server_cert`).
    Server,
}

impl CertKind {
    /// The value of `issued_certs.kind`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
        }
    }
}

/// A certificate to record.
pub(crate) struct NewEntry<'a> {
    /// Lowercase hex, as [`crate::cert::serial_hex`] writes it.
    pub serial_hex: &'a str,
    /// The subject's common name.
    pub common_name: &'a str,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    /// Seconds since the Unix epoch.
    pub not_after: i64,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint_sha256: &'a str,
    /// The certificate, PEM.
    pub certificate_pem: &'a str,
    /// Client or server.
    pub kind: CertKind,
}

/// Whether the registry has the `kind` column (0.2.0 and later).
fn records_kind() -> Result<bool, PgsslError> {
    read_one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute
                         WHERE attrelid = 'pgssl.issued_certs'::pg_catalog.regclass
                           AND attname = 'kind' AND NOT attisdropped)",
        &[],
    )
    .map_err(internal("reading the registry's columns"))
    .map(|found| found.unwrap_or(false))
}

/// Records a certificate issued by the session user. `Ok(false)` when its
/// serial is already in the registry: the caller draws another.
pub(crate) fn record(entry: &NewEntry<'_>) -> Result<bool, PgsslError> {
    // A client row leaves kind to its default ('client'), so that it can be
    // recorded before the update too.
    let statement = match entry.kind {
        CertKind::Client => {
            "INSERT INTO pgssl.issued_certs
                    (serial, common_name, not_before, not_after, fingerprint_sha256,
                     issued_by, certificate)
             VALUES ($1, $2, pg_catalog.to_timestamp($3), pg_catalog.to_timestamp($4), $5,
                     pg_catalog.session_user(), $6)
             ON CONFLICT (serial) DO NOTHING
             RETURNING true"
        }
        CertKind::Server if !records_kind()? => {
            return Err(PgsslError::ExtensionNotUpdated {
                needs: "recording server certificates",
            })
        }
        CertKind::Server => {
            "INSERT INTO pgssl.issued_certs
                    (serial, common_name, not_before, not_after, fingerprint_sha256,
                     issued_by, certificate, kind)
             VALUES ($1, $2, pg_catalog.to_timestamp($3), pg_catalog.to_timestamp($4), $5,
                     pg_catalog.session_user(), $6, $7)
             ON CONFLICT (serial) DO NOTHING
             RETURNING true"
        }
    };
    let mut args = vec![
        entry.serial_hex.into(),
        entry.common_name.into(),
        (entry.not_before as f64).into(),
        (entry.not_after as f64).into(),
        entry.fingerprint_sha256.into(),
        entry.certificate_pem.into(),
    ];
    if entry.kind == CertKind::Server {
        args.push(entry.kind.as_str().into());
    }
    let recorded = Spi::get_one_with_args::<bool>(statement, &args);
    match recorded {
        Ok(Some(true)) => Ok(true),
        // ON CONFLICT: no row came back.
        Ok(_) | Err(SpiError::InvalidPosition) => Ok(false),
        Err(e) => Err(internal("recording the certificate")(e)),
    }
}

/// Locks the row of `serial` for update: `None` when there is none,
/// `Some(true)` when it is not revoked yet.
pub(crate) fn lock_unrevoked(serial: &str) -> Result<Option<bool>, PgsslError> {
    match Spi::get_one_with_args::<bool>(
        "SELECT revoked_at IS NULL FROM pgssl.issued_certs WHERE serial = $1 FOR UPDATE",
        &[serial.into()],
    ) {
        Ok(found) => Ok(found),
        Err(SpiError::InvalidPosition) => Ok(None),
        Err(e) => Err(internal("looking up the serial")(e)),
    }
}

/// What `pgssl.renew()` checks of the session certificate's row.
pub(crate) struct RenewalRow {
    /// SHA-256 of the certificate recorded, lowercase hex.
    pub fingerprint_sha256: String,
    /// `client` or `server`.
    pub kind: String,
    /// Why it was revoked; `None` while it is not.
    pub revocation_reason: Option<String>,
    /// Its notAfter, seconds since the Unix epoch.
    pub not_after: i64,
}

/// The row of `serial`, locked for update until the transaction ends; `None` when there is
/// none.
pub(crate) fn lock_for_renewal(serial: &str) -> Result<Option<RenewalRow>, PgsslError> {
    let row = Spi::get_three_with_args::<String, String, i64>(
        "SELECT fingerprint_sha256 || ' ' || kind, revocation_reason,
                pg_catalog.floor(pg_catalog.date_part('epoch', not_after))::bigint
           FROM pgssl.issued_certs WHERE serial = $1 FOR UPDATE",
        &[serial.into()],
    );
    match row {
        Ok((Some(found), revocation_reason, Some(not_after))) => {
            let (fingerprint, kind) = found.split_once(' ').unwrap_or((&found, ""));
            Ok(Some(RenewalRow {
                fingerprint_sha256: fingerprint.into(),
                kind: kind.into(),
                revocation_reason,
                not_after,
            }))
        }
        Ok(_) | Err(SpiError::InvalidPosition) => Ok(None),
        Err(e) => Err(internal("looking up the session's certificate")(e)),
    }
}

/// Marks `serial` revoked now, for `reason`.
pub(crate) fn mark_revoked(serial: &str, reason: RevocationReason) -> Result<(), PgsslError> {
    Spi::run_with_args(
        "UPDATE pgssl.issued_certs
            SET revoked_at = pg_catalog.now(), revocation_reason = $2
          WHERE serial = $1",
        &[serial.into(), reason.name().into()],
    )
    .map_err(internal("recording the revocation"))
}

/// Every revoked certificate of `kind`, for that CA's CRL. (Before the
/// update to 0.2.0 every row is a client certificate.)
pub(crate) fn revoked(kind: CertKind) -> Result<Vec<RevokedEntry>, PgsslError> {
    let of_kind = if records_kind()? {
        "kind = $1"
    } else {
        "$1 = 'client'"
    };
    // From 0.2.0 on (the kind column), the client CA's CRL also lists the
    // serials revoked without a registry row.
    let unregistered = if records_kind()? && kind == CertKind::Client {
        "UNION ALL
         SELECT serial,
                pg_catalog.floor(pg_catalog.date_part('epoch', revoked_at))::bigint,
                revocation_reason
           FROM pgssl.unregistered_revocations"
    } else {
        ""
    };
    let query = format!(
        "SELECT serial,
                pg_catalog.floor(pg_catalog.date_part('epoch', revoked_at))::bigint,
                revocation_reason
           FROM pgssl.issued_certs
          WHERE revoked_at IS NOT NULL AND {of_kind}
         {unregistered}
          ORDER BY 1"
    );
    Spi::connect(|client| {
        let rows = client.select(&query, None, &[kind.as_str().into()])?;
        let mut entries = Vec::new();
        for row in rows {
            let (Some(serial_hex), Some(revoked_at)) = (row.get::<String>(1)?, row.get::<i64>(2)?)
            else {
                continue;
            };
            let reason = row
                .get::<String>(3)?
                .and_then(|r| RevocationReason::from_name(&r))
                .unwrap_or(RevocationReason::Unspecified);
            entries.push(RevokedEntry {
                serial_hex,
                revoked_at,
                reason,
            });
        }
        Ok::<_, SpiError>(entries)
    })
    .map_err(internal("reading revoked certificates"))
}

/// The next CRL number. CRL numbers only grow (RFC 5280 5.2.3): without a
/// number there is no CRL, never a guessed one.
pub(crate) fn next_crl_number() -> Result<i64, PgsslError> {
    const DOING: &str = "drawing the next CRL number";
    Spi::get_one::<i64>("SELECT pg_catalog.nextval('pgssl.crl_number')")
        .map_err(internal(DOING))?
        .ok_or_else(|| PgsslError::Internal {
            doing: DOING,
            reason: "nextval returned NULL".into(),
        })
}

/// How many certificates are revoked; `None` when the registry is not there
/// (the extension's SQL not installed in this database) or cannot be read.
pub(crate) fn revoked_count() -> Option<i64> {
    let exists = read_one::<bool>(
        "SELECT pg_catalog.to_regclass('pgssl.issued_certs') IS NOT NULL",
        &[],
    )
    .ok()
    .flatten()?;
    if !exists {
        return None;
    }
    read_one::<i64>(
        "SELECT pg_catalog.count(*) FROM pgssl.issued_certs WHERE revoked_at IS NOT NULL",
        &[],
    )
    .ok()
    .flatten()
}

/// One value from a read-only query. (`Spi::get_one` assigns a transaction
/// id, which a standby refuses.)
pub(crate) fn read_one<T: pgrx::FromDatum + pgrx::IntoDatum>(
    query: &str,
    args: &[pgrx::datum::DatumWithOid],
) -> Result<Option<T>, SpiError> {
    Spi::connect(|client| client.select(query, Some(1), args)?.first().get_one::<T>())
}

/// How many client certificates are revoked, with or without a registry
/// row: the worker's cheap check for a revocation committed since the
/// newest CRL (revocations are never taken back). Needs 0.2.0.
pub(crate) fn client_revocation_count() -> Result<i64, PgsslError> {
    read_one::<i64>(
        "SELECT (SELECT pg_catalog.count(*) FROM pgssl.issued_certs
                  WHERE revoked_at IS NOT NULL AND kind = 'client')
              + (SELECT pg_catalog.count(*) FROM pgssl.unregistered_revocations)",
        &[],
    )
    .map(Option::unwrap_or_default)
    .map_err(internal("counting revocations"))
}

/// Records the revocation of a serial the registry does not know (a
/// certificate whose issuing transaction rolled back). `false` when it was
/// already recorded.
pub(crate) fn record_unregistered_revocation(
    serial: &str,
    reason: RevocationReason,
) -> Result<bool, PgsslError> {
    if !records_kind()? {
        return Err(PgsslError::ExtensionNotUpdated {
            needs: "revoking a serial that is not in the registry",
        });
    }
    match Spi::get_one_with_args::<bool>(
        "INSERT INTO pgssl.unregistered_revocations (serial, revocation_reason)
         VALUES ($1, $2)
         ON CONFLICT (serial) DO NOTHING
         RETURNING true",
        &[serial.into(), reason.name().into()],
    ) {
        Ok(Some(true)) => Ok(true),
        Ok(_) | Err(SpiError::InvalidPosition) => Ok(false),
        Err(e) => Err(internal("recording the revocation")(e)),
    }
}

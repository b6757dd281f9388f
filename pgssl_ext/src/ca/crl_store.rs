//! Signed CRLs kept in `pgssl.crls`, a replicated table, and installed from
//! there into the file `ssl_crl_file` names: on the primary right after
//! signing, on a standby from the replicated row, without the CA key.
//!
//! Used by `pgssl.install_crl()` and by the background worker; every
//! function returns `Result`, so the worker can log an error and go on.

use std::path::PathBuf;

use openssl::x509::{X509Crl, X509Name};
use pgrx::spi::Spi;

use super::authority;
use super::crl_file::{self, Installed};
use super::registry::{self, read_one as select_one, CertKind};
use super::revocation::{self, RevokedEntry};
use crate::backend::resolve_path;
use crate::error::PgsslError;

/// One row of `pgssl.crls`.
#[derive(Debug, Clone)]
pub struct StoredCrl {
    /// The CRL number.
    pub number: i64,
    /// thisUpdate, seconds since the epoch.
    pub this_update: i64,
    /// nextUpdate, seconds since the epoch.
    pub next_update: i64,
    /// How many revocations it lists.
    pub revocations: i64,
    /// The CRL, PEM.
    pub pem: String,
}

impl StoredCrl {
    /// The issuer's name, as the CRL states it.
    pub(crate) fn issuer(&self) -> Result<X509Name, PgsslError> {
        let crl = X509Crl::from_pem(self.pem.as_bytes()).map_err(|e| PgsslError::Internal {
            doing: "reading the stored CRL",
            reason: e.to_string(),
        })?;
        crl.issuer_name()
            .to_owned()
            .map_err(|e| PgsslError::Internal {
                doing: "reading the stored CRL's issuer",
                reason: e.to_string(),
            })
    }
}

fn spi_error(doing: &'static str) -> impl FnOnce(pgrx::spi::SpiError) -> PgsslError {
    move |e| PgsslError::Internal {
        doing,
        reason: e.to_string(),
    }
}

/// Every revocation the pgssl CA's CRL lists.
pub(crate) fn revoked_entries() -> Result<Vec<RevokedEntry>, PgsslError> {
    registry::revoked(CertKind::Client)
}

/// How many revocations there are now (see [`registry::client_revocation_count`]).
pub(crate) fn revocation_count() -> Result<i64, PgsslError> {
    registry::client_revocation_count()
}

/// The newest stored CRL, if any.
pub(crate) fn newest() -> Result<Option<StoredCrl>, PgsslError> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT crl_number,
                    pg_catalog.floor(pg_catalog.date_part('epoch', this_update))::bigint,
                    pg_catalog.floor(pg_catalog.date_part('epoch', next_update))::bigint,
                    revocations, crl
               FROM pgssl.crls ORDER BY crl_number DESC LIMIT 1",
            None,
            &[],
        )?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        Ok::<_, pgrx::spi::SpiError>(Some(StoredCrl {
            number: row.get::<i64>(1)?.unwrap_or_default(),
            this_update: row.get::<i64>(2)?.unwrap_or_default(),
            next_update: row.get::<i64>(3)?.unwrap_or_default(),
            revocations: row.get::<i64>(4)?.unwrap_or_default(),
            pem: row.get::<String>(5)?.unwrap_or_default(),
        }))
    })
    .map_err(spi_error("reading pgssl.crls"))
}

/// How many stored CRLs to keep: the newest and a short history.
const KEEP_CRLS: i64 = 20;

/// Signs a CRL of every revocation, valid for `validity_secs` from `now`,
/// with the next CRL number, and stores it in `pgssl.crls` (in the current
/// transaction). Needs the CA key: on the primary only.
pub(crate) fn sign_and_store(now: i64, validity_secs: i64) -> Result<StoredCrl, PgsslError> {
    let ca = super::functions::load_authority(authority::CaRole::Client)?;
    let number = registry::next_crl_number()?;
    let entries = revoked_entries()?;
    let crl = revocation::build_crl(&ca, &entries, number, now, validity_secs).map_err(|e| {
        PgsslError::Internal {
            doing: "signing the CRL",
            reason: e.to_string(),
        }
    })?;
    let pem = crl
        .to_pem()
        .ok()
        .and_then(|p| String::from_utf8(p).ok())
        .ok_or(PgsslError::Internal {
            doing: "encoding the CRL",
            reason: "PEM encoding failed".into(),
        })?;
    let stored = StoredCrl {
        number,
        this_update: now,
        next_update: now + validity_secs,
        revocations: entries.len() as i64,
        pem,
    };
    Spi::run_with_args(
        "INSERT INTO pgssl.crls (crl_number, this_update, next_update, revocations, crl)
         VALUES ($1, pg_catalog.to_timestamp($2), pg_catalog.to_timestamp($3), $4, $5)",
        &[
            stored.number.into(),
            (stored.this_update as f64).into(),
            (stored.next_update as f64).into(),
            stored.revocations.into(),
            stored.pem.as_str().into(),
        ],
    )
    .map_err(spi_error("storing the CRL in pgssl.crls"))?;
    Spi::run_with_args(
        "DELETE FROM pgssl.crls WHERE crl_number <= $1",
        &[(stored.number - KEEP_CRLS).into()],
    )
    .map_err(spi_error("pruning pgssl.crls"))?;
    Ok(stored)
}

/// `ssl_crl_file`, resolved against the data directory; `None` when unset.
pub(crate) fn crl_file_path() -> Result<Option<PathBuf>, PgsslError> {
    let setting = select_one::<String>("SELECT pg_catalog.current_setting('ssl_crl_file')", &[])
        .map_err(spi_error("reading ssl_crl_file"))?
        .unwrap_or_default();
    let setting = setting.trim();
    Ok((!setting.is_empty()).then(|| resolve_path(setting)))
}

/// Puts `crl` into `path` in place of its issuer's previous CRL, keeping
/// every other issuer's (see [`crl_file`]).
pub(crate) fn install(crl: &StoredCrl, path: &std::path::Path) -> Result<Installed, PgsslError> {
    let issuer = crl.issuer()?;
    crl_file::install(path, &crl.pem, &issuer).map_err(|e| PgsslError::FileWrite {
        what: "CRL",
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Asks the postmaster to reload the configuration, so that new
/// connections use the CRL file as it is now.
pub(crate) fn reload_configuration() -> Result<(), PgsslError> {
    select_one::<bool>("SELECT pg_catalog.pg_reload_conf()", &[])
        .map(drop)
        .map_err(spi_error("reloading the configuration"))
}

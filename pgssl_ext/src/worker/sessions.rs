//! Ending the sessions authenticated with a revoked certificate.
//!
//! PostgreSQL checks a CRL only during the handshake, so a session opened
//! before the revocation would run on. The worker matches every TLS
//! session's certificate, as `pg_stat_ssl` shows it (serial and issuer DN),
//! against the revoked serials of the pgssl CA and terminates the matches.
//!
//! A certificate revoked as `superseded` (renewed: `pgssl.renew()` with
//! `pgssl.renew_revokes_previous`) logs in no more, but its sessions stay:
//! nothing says its key is in doubt, and ending them at every renewal would
//! break each pool's open connections.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use openssl::bn::BigNum;
use openssl::x509::X509NameRef;
use pgrx::prelude::*;
use pgrx::spi::Spi;

use crate::ca::crl_store;
use crate::ca::revocation::RevocationReason;

/// `pg_stat_ssl` keeps this many bytes of a DN (`NAMEDATALEN - 1`).
const STAT_DN_BYTES: usize = 63;

/// The revoked serials (decimal, as `pg_stat_ssl.client_serial` shows
/// them, mapped to hex for messages) and the CA's name in `pg_stat_ssl`'s
/// form, as of a revocation count and CRL number.
#[derive(Default)]
pub struct RevokedSerials {
    key: Option<(i64, i64)>,
    serials: HashMap<String, String>,
    issuer_dn: String,
    /// Sessions already terminated, so a dying one is not logged twice.
    ended: HashMap<i32, Instant>,
}

/// A DN as `pg_stat_ssl` shows it: `/SN=value` per entry, in order.
pub fn stat_dn(name: &X509NameRef) -> String {
    let mut out = String::new();
    for entry in name.entries() {
        let key = entry
            .object()
            .nid()
            .short_name()
            .map(str::to_string)
            .unwrap_or_else(|_| entry.object().to_string());
        let value = entry.data().to_string().unwrap_or_default();
        out.push('/');
        out.push_str(&key);
        out.push('=');
        out.push_str(&value);
    }
    out
}

/// Whether a `pg_stat_ssl.issuer_dn` (cut at 63 bytes) is `full`.
pub fn same_stat_dn(shown: &str, full: &str) -> bool {
    shown == full || (shown.len() >= STAT_DN_BYTES - 3 && full.starts_with(shown))
}

/// Decimal of a lowercase hex serial, as `pg_stat_ssl` shows serials.
pub fn hex_to_decimal(hex: &str) -> Option<String> {
    let bn = BigNum::from_hex_str(hex).ok()?;
    bn.to_dec_str().ok().map(|s| s.to_string())
}

fn refresh(revoked: &mut RevokedSerials) -> Result<bool, String> {
    let count = crl_store::revocation_count().map_err(|e| e.message())?;
    let Some(newest) = crl_store::newest().map_err(|e| e.message())? else {
        return Ok(false);
    };
    let key = (count, newest.number);
    if revoked.key == Some(key) {
        return Ok(!revoked.serials.is_empty());
    }
    let issuer = newest.issuer().map_err(|e| e.message())?;
    revoked.issuer_dn = stat_dn(&issuer);
    revoked.serials = crl_store::revoked_entries()
        .map_err(|e| e.message())?
        .into_iter()
        .filter(|e| e.reason != RevocationReason::Superseded)
        .filter_map(|e| hex_to_decimal(&e.serial_hex).map(|d| (d, e.serial_hex)))
        .collect();
    revoked.key = Some(key);
    Ok(!revoked.serials.is_empty())
}

/// Terminates every other session whose client certificate is revoked,
/// logging pid, role and serial.
pub fn terminate_revoked(revoked: &mut RevokedSerials) -> Result<(), String> {
    if !refresh(revoked)? {
        return Ok(());
    }
    let sessions = Spi::connect(|client| {
        let rows = client.select(
            "SELECT s.pid, a.usename::text, s.client_serial::text, s.issuer_dn
               FROM pg_catalog.pg_stat_ssl s
               JOIN pg_catalog.pg_stat_activity a USING (pid)
              WHERE s.client_serial IS NOT NULL
                AND s.pid <> pg_catalog.pg_backend_pid()",
            None,
            &[],
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push((
                row.get::<i32>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<String>(4)?.unwrap_or_default(),
            ));
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })
    .map_err(|e| e.to_string())?;
    let mut done = HashSet::new();
    revoked
        .ended
        .retain(|_, at| at.elapsed() < Duration::from_secs(30));
    for (pid, role, serial, issuer) in sessions {
        let Some(hex) = revoked.serials.get(&serial) else {
            continue;
        };
        if !same_stat_dn(&issuer, &revoked.issuer_dn)
            || !done.insert(pid)
            || revoked.ended.contains_key(&pid)
        {
            continue;
        }
        let ended = crate::ca::registry::read_one::<bool>(
            "SELECT pg_catalog.pg_terminate_backend($1)",
            &[pid.into()],
        )
        .map_err(|e| e.to_string())?
        .unwrap_or(false);
        if ended {
            revoked.ended.insert(pid, Instant::now());
            log!(
                "pgssl worker: terminated session pid {pid} of role \"{role}\": its client certificate \
                 serial {hex} (issuer {}) is revoked",
                revoked.issuer_dn
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::X509NameBuilder;

    #[test]
    fn names_and_serials_as_pg_stat_ssl_shows_them() {
        let mut b = X509NameBuilder::new().unwrap();
        b.append_entry_by_text("O", "Example").unwrap();
        b.append_entry_by_text("CN", "pgssl client CA").unwrap();
        let name = b.build();
        assert_eq!(stat_dn(&name), "/O=Example/CN=pgssl client CA");
        assert_eq!(hex_to_decimal("0100").as_deref(), Some("256"));
        let long = format!("/CN={}", "x".repeat(80));
        assert!(same_stat_dn(&long[..63], &long));
        assert!(!same_stat_dn("/CN=x", &long));
        assert!(same_stat_dn("/CN=a", "/CN=a"));
    }
}

//! Every session's TLS facts, as recorded in shared memory when pgssl is
//! preloaded ([`crate::preload::slots`]); `pgssl.connections` joins them with
//! `pg_stat_activity` and `pg_stat_ssl`.

use std::collections::HashSet;

use pgrx::prelude::*;
use pgrx::AnyNumeric;

use crate::preload::slots;
use crate::timestamps;

/// The pids whose TLS details the caller may see: those `pg_stat_ssl` shows
/// them for (their own role's sessions, or every session for superusers and
/// members of `pg_read_all_stats`).
fn visible_pids() -> Result<HashSet<i32>, pgrx::spi::Error> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT pid FROM pg_catalog.pg_stat_ssl WHERE ssl IS NOT NULL",
            None,
            &[],
        )?;
        let mut pids = HashSet::new();
        for row in rows {
            if let Some(pid) = row.get::<i32>(1)? {
                pids.insert(pid);
            }
        }
        Ok(pids)
    })
}

/// The TLS facts pgssl recorded for each session the caller may see, as
/// `pg_stat_ssl` decides: no rows without preloading.
// pgrx reads the column names (`name!`) from the signature itself, so the
// row type cannot move into a type alias.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_restricted)]
fn session_slots() -> Result<
    TableIterator<
        'static,
        (
            name!(pid, i32),
            name!(version, Option<String>),
            name!(cipher, Option<String>),
            name!(key_exchange_group, Option<String>),
            name!(client_dn, Option<String>),
            name!(issuer_dn, Option<String>),
            name!(dn_truncated, bool),
            name!(client_serial, Option<AnyNumeric>),
            name!(not_after, Option<TimestampWithTimeZone>),
            name!(fingerprint, Option<String>),
        ),
    >,
    pgrx::spi::Error,
> {
    let sessions = slots::sessions();
    let visible = if sessions.is_empty() {
        HashSet::new()
    } else {
        visible_pids()?
    };
    let rows: Vec<_> = sessions
        .into_iter()
        .filter(|s| visible.contains(&s.pid))
        .map(|s| {
            let serial = s
                .serial_hex
                .as_deref()
                .and_then(|hex| openssl::bn::BigNum::from_hex_str(hex).ok())
                .and_then(|bn| bn.to_dec_str().ok().map(|d| d.to_string()))
                .and_then(|d| AnyNumeric::try_from(d.as_str()).ok());
            (
                s.pid,
                s.version,
                s.cipher,
                s.group,
                s.client_dn,
                s.issuer_dn,
                s.dn_truncated,
                serial,
                s.not_after.and_then(timestamps::from_unix),
                s.fingerprint,
            )
        })
        .collect();
    Ok(TableIterator::new(rows))
}

/// The shared-memory slots: whether pgssl is preloaded, how many slots there
/// are (`MaxBackends`), how many hold a session, each slot's size in bytes,
/// and the most bytes of a DN a slot keeps.
#[pg_extern(volatile, parallel_restricted)]
fn session_slot_usage() -> TableIterator<
    'static,
    (
        name!(preloaded, bool),
        name!(slots, i32),
        name!(in_use, i32),
        name!(slot_bytes, i32),
        name!(dn_bytes, i32),
    ),
> {
    let (total, used) = slots::usage().unwrap_or((0, 0));
    let int = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    TableIterator::once((
        slots::preloaded(),
        int(total),
        int(used),
        int(slots::SLOT_BYTES),
        int(slots::DN_BYTES),
    ))
}

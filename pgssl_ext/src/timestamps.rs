//! Certificate times as PostgreSQL timestamps.

use pgrx::datum::{TimestampWithTimeZone, ToIsoString};

/// Seconds between the Unix epoch and PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_UNIX_SECONDS: i64 = 946_684_800;

/// A `timestamptz` from seconds since the Unix epoch.
pub fn from_unix(unix_seconds: i64) -> Option<TimestampWithTimeZone> {
    let micros = (unix_seconds - POSTGRES_EPOCH_UNIX_SECONDS).checked_mul(1_000_000)?;
    TimestampWithTimeZone::try_from(micros).ok()
}

/// ISO 8601 text of seconds since the Unix epoch, as jsonb shows timestamps.
pub fn iso8601(unix_seconds: i64) -> Option<String> {
    from_unix(unix_seconds).map(|t| t.to_iso_string())
}

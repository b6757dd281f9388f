//! The worker's settings: `postgresql.conf` or `ALTER SYSTEM` plus a reload
//! (`PGC_SIGHUP`), so every backend and the worker agree on them.

use std::ffi::CString;

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Seconds in a day.
const DAY: i32 = 86_400;

static DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
static CRL_VALIDITY: GucSetting<i32> = GucSetting::<i32>::new(7 * DAY);
static CRL_REFRESH: GucSetting<i32> = GucSetting::<i32>::new(-1);
static TERMINATE_REVOKED_SESSIONS: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Registers the settings; called once from `_PG_init`.
pub fn register() {
    GucRegistry::define_string_guc(
        c"pgssl.database",
        c"Database the pgssl background worker connects to: the one holding the pgssl extension.",
        c"Read at the worker's start; a change makes it reconnect.",
        &DATABASE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgssl.crl_validity",
        c"How long a CRL the pgssl worker signs is valid (its nextUpdate).",
        c"",
        &CRL_VALIDITY,
        3600,
        366 * DAY,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"pgssl.crl_refresh",
        c"Age at which the pgssl worker re-signs the CRL; -1: half of pgssl.crl_validity.",
        c"Values at or above pgssl.crl_validity also mean half of it, so the CRL never lapses.",
        &CRL_REFRESH,
        -1,
        366 * DAY,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"pgssl.terminate_revoked_sessions",
        c"Whether the pgssl worker ends sessions authenticated with a revoked certificate.",
        c"",
        &TERMINATE_REVOKED_SESSIONS,
        GucContext::Sighup,
        GucFlags::default(),
    );
}

/// `pgssl.database`.
pub fn database() -> String {
    DATABASE
        .get()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "postgres".into())
}

/// `pgssl.crl_validity`, seconds.
pub fn crl_validity() -> i64 {
    i64::from(CRL_VALIDITY.get())
}

/// `pgssl.crl_refresh`, seconds, with `-1` and values that would let the CRL
/// lapse resolved to half of the validity.
pub fn crl_refresh() -> i64 {
    effective_refresh(i64::from(CRL_REFRESH.get()), crl_validity())
}

/// See [`crl_refresh`].
pub fn effective_refresh(refresh: i64, validity: i64) -> i64 {
    if refresh <= 0 || refresh >= validity {
        validity / 2
    } else {
        refresh
    }
}

/// `pgssl.terminate_revoked_sessions`.
pub fn terminate_revoked_sessions() -> bool {
    TERMINATE_REVOKED_SESSIONS.get()
}

#[cfg(test)]
mod tests {
    use super::effective_refresh;

    #[test]
    fn refresh_never_lets_the_crl_lapse() {
        assert_eq!(effective_refresh(-1, 7 * 86_400), 302_400);
        assert_eq!(effective_refresh(3600, 7 * 86_400), 3600);
        assert_eq!(effective_refresh(7 * 86_400, 7 * 86_400), 302_400);
        assert_eq!(effective_refresh(30 * 86_400, 7 * 86_400), 302_400);
    }
}

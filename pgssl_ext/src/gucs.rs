//! Every `pgssl.*` setting, registered once from `_PG_init`.
//!
//! The statics are private: the rest of the crate reads the settings through
//! the typed accessors below, which resolve paths against the data directory.
//! The CA settings are superuser-only (`PGC_SUSET`) and read at each call,
//! so `ALTER SYSTEM` plus a reload, or a `SET` by a superuser, takes effect
//! at once; `pgssl.ca_key_passphrase_command` and the worker's settings are
//! set in the configuration files only (`PGC_SIGHUP`), so that every backend
//! and the worker agree and no session can point them elsewhere.

use std::ffi::{CStr, CString};
use std::path::PathBuf;

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

use crate::backend;
use crate::ca::authority::MAX_CA_DAYS;

/// `pgssl.ca_cert_file`: the client CA certificate.
static CA_CERT_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pgssl_ca.crt"));
/// `pgssl.ca_key_file`: the client CA's private key.
static CA_KEY_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pgssl_ca.key"));
/// `pgssl.ca_key_passphrase_command`: prints the passphrase of encrypted CA keys.
static CA_KEY_PASSPHRASE_COMMAND: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
/// `pgssl.default_validity_days`: the lifetime when `valid_days` is NULL.
static DEFAULT_VALIDITY_DAYS: GucSetting<i32> = GucSetting::<i32>::new(90);
/// `pgssl.max_validity_days`: the longest lifetime the CA issues.
static MAX_VALIDITY_DAYS: GucSetting<i32> = GucSetting::<i32>::new(397);
/// `pgssl.renew_revokes_previous`: whether `pgssl.renew` revokes the session's certificate.
static RENEW_REVOKES_PREVIOUS: GucSetting<bool> = GucSetting::<bool>::new(false);
/// `pgssl.renew_validity`: seconds a certificate from `pgssl.renew` lives; -1: as enroll's.
static RENEW_VALIDITY: GucSetting<i32> = GucSetting::<i32>::new(-1);
/// `pgssl.server_ca_cert_file`: the CA that signs server certificates.
static SERVER_CA_CERT_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pgssl_server_ca.crt"));
/// `pgssl.server_ca_key_file`: its private key.
static SERVER_CA_KEY_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pgssl_server_ca.key"));

/// `pgssl.database`: the database the background worker connects to.
static DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
/// `pgssl.crl_validity`: seconds a CRL the worker signs is valid.
static CRL_VALIDITY: GucSetting<i32> = GucSetting::<i32>::new(7 * DAY);
/// `pgssl.crl_refresh`: age in seconds at which the worker re-signs; -1: half the validity.
static CRL_REFRESH: GucSetting<i32> = GucSetting::<i32>::new(-1);
/// `pgssl.terminate_revoked_sessions`: whether the worker ends revoked sessions.
static TERMINATE_REVOKED_SESSIONS: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Seconds in a day.
const DAY: i32 = 86_400;

/// Registers every setting; called once from `_PG_init`, whether the library
/// is preloaded or loaded at first use. A value set before that, in
/// postgresql.conf or by a superuser's `SET`, is kept.
pub(crate) fn init() {
    define_path(
        c"pgssl.ca_cert_file",
        c"CA certificate (PEM) that pgssl signs client certificates with.",
        c"A relative path resolves against the data directory.",
        &CA_CERT_FILE,
    );
    define_path(
        c"pgssl.ca_key_file",
        c"Private key (PEM, mode 0600) of the pgssl CA.",
        c"A relative path resolves against the data directory.",
        &CA_KEY_FILE,
    );
    // Like ssl_passphrase_command: from the configuration files only, and
    // shown to superusers only.
    GucRegistry::define_string_guc(
        c"pgssl.ca_key_passphrase_command",
        c"Command that prints the passphrase of encrypted pgssl CA keys.",
        c"Run with /bin/sh -c; %p is replaced by a prompt naming the CA and %% by %. \
          When set, new CA keys are written encrypted with its passphrase.",
        &CA_KEY_PASSPHRASE_COMMAND,
        GucContext::Sighup,
        GucFlags::SUPERUSER_ONLY,
    );
    define_days(
        c"pgssl.default_validity_days",
        c"Days a certificate from pgssl.enroll/pgssl.sign_csr is valid when valid_days is NULL.",
        &DEFAULT_VALIDITY_DAYS,
    );
    define_days(
        c"pgssl.max_validity_days",
        c"Longest validity, in days, of a certificate pgssl issues.",
        &MAX_VALIDITY_DAYS,
    );
    GucRegistry::define_bool_guc(
        c"pgssl.renew_revokes_previous",
        c"Whether pgssl.renew() revokes the session's certificate (reason superseded) in the same transaction.",
        c"",
        &RENEW_REVOKES_PREVIOUS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgssl.renew_validity",
        c"Lifetime of a certificate from pgssl.renew(); -1: valid_days, else pgssl.default_validity_days.",
        c"When set, valid_days can only shorten it. Values under 5 minutes count as 5 minutes, as notBefore is set 5 minutes back.",
        &RENEW_VALIDITY,
        -1,
        3650 * DAY,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    define_path(
        c"pgssl.server_ca_cert_file",
        c"CA certificate (PEM) that pgssl signs server certificates with; made on first use.",
        c"A relative path resolves against the data directory. Clients use it as sslrootcert.",
        &SERVER_CA_CERT_FILE,
    );
    define_path(
        c"pgssl.server_ca_key_file",
        c"Private key (PEM, mode 0600) of the pgssl server CA.",
        c"A relative path resolves against the data directory.",
        &SERVER_CA_KEY_FILE,
    );
    // The background worker's settings: postgresql.conf or ALTER SYSTEM
    // plus a reload (PGC_SIGHUP), so every backend and the worker agree.
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
    // PostgreSQL 15+: warn about misspelt pgssl.* settings.
    #[cfg(not(any(feature = "pg13", feature = "pg14")))]
    // SAFETY: called once while the library loads, after every pgssl.*
    // setting is defined, as PostgreSQL expects.
    unsafe {
        pgrx::pg_sys::MarkGUCPrefixReserved(c"pgssl".as_ptr());
    }
}

fn define_path(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<Option<CString>>,
) {
    GucRegistry::define_string_guc(
        name,
        short,
        long,
        setting,
        GucContext::Suset,
        GucFlags::default(),
    );
}

fn define_days(name: &'static CStr, short: &'static CStr, setting: &'static GucSetting<i32>) {
    GucRegistry::define_int_guc(
        name,
        short,
        c"",
        setting,
        1,
        MAX_CA_DAYS,
        GucContext::Suset,
        GucFlags::default(),
    );
}

fn resolved(setting: &GucSetting<Option<CString>>) -> PathBuf {
    let value = setting.get();
    let text = value
        .as_deref()
        .map(CStr::to_string_lossy)
        .unwrap_or_default()
        .into_owned();
    backend::resolve_path(&text)
}

/// `pgssl.ca_cert_file`, resolved against the data directory.
pub(crate) fn ca_cert_file() -> PathBuf {
    resolved(&CA_CERT_FILE)
}

/// `pgssl.ca_key_file`, resolved against the data directory.
pub(crate) fn ca_key_file() -> PathBuf {
    resolved(&CA_KEY_FILE)
}

/// `pgssl.server_ca_cert_file`, resolved against the data directory.
pub(crate) fn server_ca_cert_file() -> PathBuf {
    resolved(&SERVER_CA_CERT_FILE)
}

/// `pgssl.server_ca_key_file`, resolved against the data directory.
pub(crate) fn server_ca_key_file() -> PathBuf {
    resolved(&SERVER_CA_KEY_FILE)
}

/// `pgssl.ca_key_passphrase_command`; `None` when unset or empty.
pub(crate) fn ca_key_passphrase_command() -> Option<String> {
    CA_KEY_PASSPHRASE_COMMAND
        .get()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.trim().is_empty())
}

/// `pgssl.default_validity_days`.
pub(crate) fn default_validity_days() -> i32 {
    DEFAULT_VALIDITY_DAYS.get()
}

/// `pgssl.max_validity_days`.
pub(crate) fn max_validity_days() -> i32 {
    MAX_VALIDITY_DAYS.get()
}

/// `pgssl.renew_revokes_previous`.
pub(crate) fn renew_revokes_previous() -> bool {
    RENEW_REVOKES_PREVIOUS.get()
}

/// `pgssl.renew_validity`, seconds; `None` when unset (-1).
pub(crate) fn renew_validity() -> Option<i64> {
    let secs = RENEW_VALIDITY.get();
    (secs > 0).then(|| i64::from(secs.max(MIN_RENEW_VALIDITY)))
}

/// The shortest `pgssl.renew_validity` that counts: 5 minutes. Values from 0 to this are
/// read as this, since a certificate's notBefore is set 5 minutes back for clock skew.
const MIN_RENEW_VALIDITY: i32 = 300;

/// `pgssl.database`.
pub(crate) fn database() -> String {
    DATABASE
        .get()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "postgres".into())
}

/// `pgssl.crl_validity`, seconds.
pub(crate) fn crl_validity() -> i64 {
    i64::from(CRL_VALIDITY.get())
}

/// `pgssl.crl_refresh`, seconds, with `-1` and values that would let the CRL
/// lapse resolved to half of the validity.
pub(crate) fn crl_refresh() -> i64 {
    effective_refresh(i64::from(CRL_REFRESH.get()), crl_validity())
}

/// See [`crl_refresh`].
pub(crate) fn effective_refresh(refresh: i64, validity: i64) -> i64 {
    if refresh <= 0 || refresh >= validity {
        validity / 2
    } else {
        refresh
    }
}

/// `pgssl.terminate_revoked_sessions`.
pub(crate) fn terminate_revoked_sessions() -> bool {
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

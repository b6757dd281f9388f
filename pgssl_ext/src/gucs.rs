//! Every `pgssl.*` setting, registered once from `_PG_init`.
//!
//! The statics are private: the rest of the crate reads the settings through
//! the typed accessors below, which resolve paths against the data directory.
//! All are superuser-only (`PGC_SUSET`) and read at each call, so
//! `ALTER SYSTEM` plus a reload, or a `SET` by a superuser, takes effect at
//! once.

use std::ffi::{CStr, CString};
use std::path::PathBuf;

use pgrx::{pg_sys, GucContext, GucFlags, GucRegistry, GucSetting};

use crate::backend;
use crate::ca::authority::MAX_CA_DAYS;

/// `pgssl.ca_cert_file`: the client CA certificate.
static CA_CERT_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pgssl_ca.crt"));
/// `pgssl.ca_key_file`: the client CA's private key.
static CA_KEY_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pgssl_ca.key"));
/// `pgssl.default_validity_days`: the lifetime when `valid_days` is NULL.
static DEFAULT_VALIDITY_DAYS: GucSetting<i32> = GucSetting::<i32>::new(90);
/// `pgssl.max_validity_days`: the longest lifetime the CA issues.
static MAX_VALIDITY_DAYS: GucSetting<i32> = GucSetting::<i32>::new(397);
/// `pgssl.server_ca_cert_file`: the CA that signs server certificates.
static SERVER_CA_CERT_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pgssl_server_ca.crt"));
/// `pgssl.server_ca_key_file`: its private key.
static SERVER_CA_KEY_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pgssl_server_ca.key"));

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
        c"Private key (PEM, unencrypted, mode 0600) of the pgssl CA.",
        c"A relative path resolves against the data directory.",
        &CA_KEY_FILE,
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
    define_path(
        c"pgssl.server_ca_cert_file",
        c"CA certificate (PEM) that pgssl signs server certificates with; made on first use.",
        c"A relative path resolves against the data directory. Clients use it as sslrootcert.",
        &SERVER_CA_CERT_FILE,
    );
    define_path(
        c"pgssl.server_ca_key_file",
        c"Private key (PEM, unencrypted, mode 0600) of the pgssl server CA.",
        c"A relative path resolves against the data directory.",
        &SERVER_CA_KEY_FILE,
    );
    // PostgreSQL 15+: warn about misspelt pgssl.* settings.
    #[cfg(not(any(feature = "pg13", feature = "pg14")))]
    // SAFETY: called once while the library loads, after every pgssl.*
    // setting is defined, as PostgreSQL expects.
    unsafe {
        pg_sys::MarkGUCPrefixReserved(c"pgssl".as_ptr());
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

/// `pgssl.default_validity_days`.
pub(crate) fn default_validity_days() -> i32 {
    DEFAULT_VALIDITY_DAYS.get()
}

/// `pgssl.max_validity_days`.
pub(crate) fn max_validity_days() -> i32 {
    MAX_VALIDITY_DAYS.get()
}

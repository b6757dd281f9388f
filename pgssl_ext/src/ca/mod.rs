//! The in-database certificate authority: sign client CSRs from SQL under a
//! strict policy, keep a registry of what was issued, revoke and publish CRLs.
//!
//! - [`policy`]: which CSRs are signed and the certificate profile (pure);
//! - [`authority`]: making, loading and using the CA's two files (pure);
//! - [`functions`]: the SQL functions (`pgssl.init_ca`, `pgssl.enroll`, ...).
//!
//! The settings are GUCs, superuser-only (`PGC_SUSET`) and read at each call,
//! so `ALTER SYSTEM` plus a reload, or a `SET` by a superuser, takes effect at
//! once.

use std::ffi::{CStr, CString};
use std::path::PathBuf;

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

pub mod authority;
pub mod crl_file;
pub mod crl_store;
pub(crate) mod functions;
pub mod policy;

/// `pgssl.ca_cert_file`: the CA certificate, relative to the data directory.
pub static CA_CERT_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pgssl_ca.crt"));
/// `pgssl.ca_key_file`: the CA private key, relative to the data directory.
pub static CA_KEY_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pgssl_ca.key"));
/// `pgssl.default_validity_days`: the lifetime when `valid_days` is NULL.
pub static DEFAULT_VALIDITY_DAYS: GucSetting<i32> = GucSetting::<i32>::new(90);
/// `pgssl.max_validity_days`: the longest lifetime the CA issues.
pub static MAX_VALIDITY_DAYS: GucSetting<i32> = GucSetting::<i32>::new(397);

/// Registers the CA's settings; called once from `_PG_init`.
pub fn register_gucs() {
    GucRegistry::define_string_guc(
        c"pgssl.ca_cert_file",
        c"CA certificate (PEM) that pgssl signs client certificates with.",
        c"A relative path resolves against the data directory.",
        &CA_CERT_FILE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgssl.ca_key_file",
        c"Private key (PEM, unencrypted, mode 0600) of the pgssl CA.",
        c"A relative path resolves against the data directory.",
        &CA_KEY_FILE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgssl.default_validity_days",
        c"Days a certificate from pgssl.enroll/pgssl.sign_csr is valid when valid_days is NULL.",
        c"",
        &DEFAULT_VALIDITY_DAYS,
        1,
        authority::MAX_CA_DAYS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgssl.max_validity_days",
        c"Longest validity, in days, of a certificate pgssl issues.",
        c"",
        &MAX_VALIDITY_DAYS,
        1,
        authority::MAX_CA_DAYS,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// A path setting resolved against the data directory. The backend's working
/// directory is the data directory too; resolving here makes messages show
/// the full path.
pub(crate) fn resolve(setting: &GucSetting<Option<CString>>) -> PathBuf {
    let value = setting.get();
    let text = value
        .as_deref()
        .map(CStr::to_string_lossy)
        .unwrap_or_default()
        .into_owned();
    resolve_path(&text)
}

pub(crate) fn resolve_path(text: &str) -> PathBuf {
    let path = PathBuf::from(text);
    if path.is_absolute() {
        return path;
    }
    data_directory().join(path)
}

fn data_directory() -> PathBuf {
    // SAFETY: DataDir is set by the postmaster before any backend runs SQL and
    // never changes afterwards; it is a NUL-terminated C string.
    let dir = unsafe { pgrx::pg_sys::DataDir };
    if dir.is_null() {
        return PathBuf::from(".");
    }
    // SAFETY: non-null and NUL-terminated, as above.
    PathBuf::from(
        unsafe { CStr::from_ptr(dir) }
            .to_string_lossy()
            .into_owned(),
    )
}

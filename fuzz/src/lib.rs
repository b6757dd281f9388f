//! The extension's pure modules, compiled into the fuzz targets from their own source files.
//!
//! pgssl_ext links the PostgreSQL server (pgrx), so a standalone fuzz binary cannot link it;
//! the modules below use no backend types, and `#[path]` compiles those very files here.
//! A module added to this list must stay free of pgrx and of `crate::` paths other than the
//! ones mirrored here (`crate::dn`, `super::checks`, `super::files`).
#![allow(dead_code, missing_docs)]

use std::os::raw::c_int;

#[path = "../../pgssl_ext/src/dn.rs"]
pub mod dn;

#[path = "../../pgssl_ext/src/cert.rs"]
pub mod cert;

pub mod ca;
pub use ca::{crl_file, csr};

pub mod audit;

extern "C" {
    fn X509_NAME_ENTRY_set(entry: *const openssl_sys::X509_NAME_ENTRY) -> c_int;
}

/// What the extension's C shim (`port_shim.c`, compiled against the server headers) gives
/// `cert.rs`: the RDN index of a name entry, which openssl-sys does not bind.
///
/// # Safety
/// `entry` must be a valid `X509_NAME_ENTRY`.
#[no_mangle]
pub unsafe extern "C" fn pgssl_name_entry_set(entry: *const openssl_sys::X509_NAME_ENTRY) -> c_int {
    // SAFETY: the caller passes a valid entry (cert.rs borrows it from a live name).
    unsafe { X509_NAME_ENTRY_set(entry) }
}

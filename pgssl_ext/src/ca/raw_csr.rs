//! The fast path of CSR checking and certificate building, over the C shim
//! `csr_shim.c`: the request parsed with OpenSSL's own ASN.1 structure but
//! its public key decoded by a decoder built once per key type, its
//! signature checked over its own encoding as `X509_REQ_verify` does, and
//! the certificate given the request's SubjectPublicKeyInfo as it is. In
//! OpenSSL 3, `d2i_X509_REQ` and `X509_set_pubkey` build a key decoder or
//! encoder at every call, which costs several times the signature.
//!
//! [`check`] answers `None` for anything it does not accept, and the caller
//! then takes OpenSSL's plain path, which makes the same decision and says
//! why: the fast path changes the cost of a CSR that passes, never which
//! CSRs pass.

use std::ffi::c_void;
use std::os::raw::{c_int, c_long};
use std::ptr::NonNull;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private, Public};
use openssl::x509::{X509NameRef, X509Ref};

use super::csr::{single_common_name, CheckedCsr, KeyKind};
use super::profile::signing_digest;

extern "C" {
    fn pgssl_csr_d2i(der: *const u8, len: c_long) -> *mut c_void;
    fn pgssl_csr_free(req: *mut c_void);
    fn pgssl_csr_subject(req: *mut c_void) -> *mut openssl_sys::X509_NAME;
    fn pgssl_csr_spki(req: *mut c_void, buf: *mut u8, cap: c_int) -> c_int;
    fn pgssl_csr_public_key(req: *mut c_void, curve: *mut c_int) -> *mut openssl_sys::EVP_PKEY;
    fn pgssl_csr_verify(req: *mut c_void, key: *mut openssl_sys::EVP_PKEY) -> c_int;
    fn pgssl_x509_set_spki(cert: *mut openssl_sys::X509, der: *const u8, len: c_long) -> c_int;
    fn pgssl_x509_add_key_ids(
        cert: *mut openssl_sys::X509,
        issuer: *mut openssl_sys::X509,
    ) -> c_int;
}

/// Longest SubjectPublicKeyInfo kept: an RSA-16384 key's is about 2.1 KiB.
const MAX_SPKI_BYTES: usize = 4096;

/// A parsed request, freed on drop.
struct RawCsr(NonNull<c_void>);

impl Drop for RawCsr {
    fn drop(&mut self) {
        // SAFETY: the pointer came from pgssl_csr_d2i and is freed once.
        unsafe { pgssl_csr_free(self.0.as_ptr()) }
    }
}

/// Checks `der` against the whole policy on the fast path; `None` when it
/// does not pass there (the caller then decides on the plain path).
pub(crate) fn check(der: &[u8]) -> Option<CheckedCsr> {
    let result = check_inner(der);
    if result.is_none() {
        // Drop what OpenSSL queued, so it does not surface in a later call.
        drop(ErrorStack::get());
    }
    result
}

fn check_inner(der: &[u8]) -> Option<CheckedCsr> {
    let len = c_long::try_from(der.len()).ok()?;
    // SAFETY: `der` is valid for `len` bytes; the result is NULL or a request we own.
    let req = RawCsr(NonNull::new(unsafe { pgssl_csr_d2i(der.as_ptr(), len) })?);
    let mut curve: c_int = 0;
    // SAFETY: `req` is a valid request; the key returned is ours (or NULL).
    let key = unsafe { pgssl_csr_public_key(req.0.as_ptr(), &mut curve) };
    // SAFETY: a non-NULL key returned with its reference transferred to us.
    let public_key: PKey<Public> = unsafe { PKey::from_ptr(NonNull::new(key)?.as_ptr()) };
    let key_kind = KeyKind::of_curve(&public_key, Nid::from_raw(curve)).ok()?;
    // SAFETY: both are valid; the function only reads them.
    if unsafe { pgssl_csr_verify(req.0.as_ptr(), public_key.as_ptr()) } != 1 {
        return None;
    }
    // SAFETY: the subject is borrowed from `req`, which outlives its use here.
    let subject = unsafe { X509NameRef::from_ptr(pgssl_csr_subject(req.0.as_ptr())) };
    let common_name = single_common_name(subject).ok()?;
    let mut spki = vec![0u8; MAX_SPKI_BYTES];
    // SAFETY: `spki` has room for `MAX_SPKI_BYTES` bytes, which the shim never exceeds.
    let written = unsafe { pgssl_csr_spki(req.0.as_ptr(), spki.as_mut_ptr(), spki.len() as c_int) };
    spki.truncate(usize::try_from(written).ok()?);
    Some(CheckedCsr {
        common_name,
        public_key,
        key_kind,
        spki_der: Some(spki),
    })
}

/// Finishes a certificate whose subject key is `spki` (DER, as the CSR had
/// it): the key, the subject and authority key identifiers, in that order
/// after the extensions already there, and the CA's signature.
pub(crate) fn finish_certificate(
    cert: &X509Ref,
    spki: &[u8],
    ca_cert: &X509Ref,
    ca_key: &PKeyRef<Private>,
) -> Result<(), ErrorStack> {
    let len = c_long::try_from(spki.len()).map_err(|_| ErrorStack::get())?;
    // SAFETY: `cert` is a certificate we are building (not shared); `spki`
    // is valid for `len` bytes.
    if unsafe { pgssl_x509_set_spki(cert.as_ptr(), spki.as_ptr(), len) } != 1 {
        return Err(ErrorStack::get());
    }
    // SAFETY: both certificates are valid; the issuer is only read.
    if unsafe { pgssl_x509_add_key_ids(cert.as_ptr(), ca_cert.as_ptr()) } != 1 {
        return Err(ErrorStack::get());
    }
    let digest = signing_digest(ca_key);
    // SAFETY: valid certificate, key and digest; X509_sign returns the
    // signature's length, or 0 on failure.
    if unsafe { openssl_sys::X509_sign(cert.as_ptr(), ca_key.as_ptr(), digest.as_ptr()) } <= 0 {
        return Err(ErrorStack::get());
    }
    Ok(())
}

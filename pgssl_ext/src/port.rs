//! The FFI edge: the TLS state of this backend's client connection.
//!
//! Everything is read from `MyProcPort` through the C shim (`port_shim.c`),
//! which is compiled against the server's own headers. The OpenSSL objects the
//! server holds are borrowed, never freed, and live as long as the connection,
//! which outlives every SQL call made on it.

use std::ffi::{c_void, CStr};
use std::os::raw::c_char;

use foreign_types::ForeignTypeRef;
use openssl::ssl::SslRef;
use openssl::x509::X509Ref;

extern "C" {
    fn pgssl_port_ssl_in_use() -> bool;
    fn pgssl_port_ssl() -> *mut c_void;
    fn pgssl_port_peer() -> *mut c_void;
    fn pgssl_port_peer_cn() -> *const c_char;
    fn pgssl_port_peer_dn() -> *const c_char;
    fn pgssl_port_peer_cert_valid() -> bool;
    fn pgssl_authn_id() -> *const c_char;
    fn pgssl_authenticated_by_certificate() -> bool;
}

/// Whether the client connection uses TLS.
pub fn ssl_in_use() -> bool {
    // SAFETY: reads a field of MyProcPort; the shim checks it for NULL.
    unsafe { pgssl_port_ssl_in_use() }
}

/// The connection's TLS session, when it has one.
pub fn ssl() -> Option<&'static SslRef> {
    // SAFETY: the shim returns the server's live SSL* or NULL.
    let ptr = unsafe { pgssl_port_ssl() };
    // SAFETY: a non-NULL pointer is the SSL object the server keeps for the
    // whole connection; we only borrow it.
    (!ptr.is_null()).then(|| unsafe { SslRef::from_ptr(ptr.cast()) })
}

/// The client certificate the server received and verified, when there is one.
pub fn peer_certificate() -> Option<&'static X509Ref> {
    // SAFETY: the shim returns the server's X509* or NULL.
    let ptr = unsafe { pgssl_port_peer() };
    // SAFETY: a non-NULL pointer is the certificate the server keeps for the
    // whole connection; we only borrow it.
    (!ptr.is_null()).then(|| unsafe { X509Ref::from_ptr(ptr.cast()) })
}

/// The client certificate's CN as the server extracted it for `cert` authentication.
pub fn peer_cn() -> Option<String> {
    // SAFETY: NULL or a NUL-terminated string owned by the server.
    unsafe { c_string(pgssl_port_peer_cn()) }
}

/// The client certificate's DN as the server formatted it (PostgreSQL 14+).
pub fn peer_dn() -> Option<String> {
    // SAFETY: NULL or a NUL-terminated string owned by the server.
    unsafe { c_string(pgssl_port_peer_dn()) }
}

/// Whether the server verified the client certificate against `ssl_ca_file`.
pub fn peer_cert_valid() -> bool {
    // SAFETY: reads a field of MyProcPort; the shim checks it for NULL.
    unsafe { pgssl_port_peer_cert_valid() }
}

/// The identity the server authenticated for this session, if it recorded one.
pub fn authn_id() -> Option<String> {
    // SAFETY: NULL or a NUL-terminated string owned by the server.
    unsafe { c_string(pgssl_authn_id()) }
}

/// Whether the server authenticated this session by its verified client certificate
/// (the `pg_hba.conf` method `cert`); see `port_shim.c` for how this is read per release.
pub fn authenticated_by_certificate() -> bool {
    // SAFETY: reads fields of MyProcPort and MyClientConnectionInfo; the shim checks for NULL.
    unsafe { pgssl_authenticated_by_certificate() }
}

/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid for the call.
unsafe fn c_string(ptr: *const c_char) -> Option<String> {
    (!ptr.is_null()).then(|| {
        // SAFETY: non-NULL, and NUL-terminated and valid for the call as the
        // caller guarantees.
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    })
}

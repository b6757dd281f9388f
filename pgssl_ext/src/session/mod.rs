//! SQL functions that report this session's TLS state.
//!
//! All are `STABLE` (the state is fixed for the session, but not across
//! sessions) and `PARALLEL RESTRICTED` (a parallel worker has no client
//! connection), as contrib/sslinfo declares its own. Without TLS, or without
//! a client certificate, they return NULL; the two yes/no questions
//! (`ssl_is_used`, `client_cert_present`) answer `false`, as sslinfo's do.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use openssl::x509::X509Ref;

use crate::cert;
use crate::dn;
use crate::error::PgsslError;
use crate::timestamps;

mod cache;
mod datums;
mod others;
mod snapshot;
use cache::{Facts, Whose};
use datums::{CachedJsonb, CachedNumeric};
pub(crate) use snapshot::SessionTls;

fn peer() -> Option<&'static X509Ref> {
    Facts::current().tls.peer
}

fn resolve_field(field: &str) -> Result<String, PgsslError> {
    dn::lookup_field(field).ok_or_else(|| PgsslError::UnknownField {
        field: field.into(),
    })
}

/// Whether the current connection uses TLS.
#[pg_extern(stable, parallel_restricted)]
fn ssl_is_used() -> bool {
    Facts::current().tls.in_use
}

/// The TLS protocol version, e.g. `TLSv1.3`.
#[pg_extern(stable, parallel_restricted)]
fn ssl_version() -> Option<&'static str> {
    Facts::current().version
}

/// The negotiated cipher suite, e.g. `TLS_AES_256_GCM_SHA384`.
#[pg_extern(stable, parallel_restricted)]
fn ssl_cipher() -> Option<&'static str> {
    Facts::current().cipher.map(|c| c.name)
}

/// The cipher's secret key length in bits.
#[pg_extern(stable, parallel_restricted)]
fn ssl_cipher_bits() -> Option<i32> {
    Facts::current().cipher.map(|c| c.bits)
}

/// Whether the client presented a certificate.
#[pg_extern(stable, parallel_restricted)]
fn client_cert_present() -> bool {
    peer().is_some()
}

/// The client certificate's CN, in full, exactly as the server matched it for `cert` authentication.
#[pg_extern(stable, parallel_restricted)]
fn client_cn() -> Option<&'static str> {
    Facts::current().cn.as_deref()
}

/// The client certificate's subject in RFC 2253 form, never truncated.
#[pg_extern(stable, parallel_restricted)]
fn client_dn() -> Option<&'static str> {
    Facts::current().dn.as_deref()
}

/// The client certificate's issuer in RFC 2253 form, never truncated.
#[pg_extern(stable, parallel_restricted)]
fn issuer_dn() -> Option<&'static str> {
    Facts::current().issuer_dn.as_deref()
}

/// One field of the client certificate's subject, by short or long name or OID.
#[pg_extern(stable, strict, parallel_restricted)]
fn client_dn_field(field: &str) -> Result<Option<String>, ErrorReport> {
    let oid = resolve_field(field)?;
    Ok(Facts::current().field(Whose::Subject, &oid))
}

/// One field of the client certificate's issuer, by short or long name or OID.
#[pg_extern(stable, strict, parallel_restricted)]
fn issuer_field(field: &str) -> Result<Option<String>, ErrorReport> {
    let oid = resolve_field(field)?;
    Ok(Facts::current().field(Whose::Issuer, &oid))
}

/// The client certificate's serial number.
#[pg_extern(stable, parallel_restricted)]
fn client_serial() -> Option<CachedNumeric> {
    Facts::current()
        .serial_numeric(datums::numeric_bytes)
        .map(CachedNumeric)
}

/// The client certificate's serial number in lowercase hex.
#[pg_extern(stable, parallel_restricted)]
fn client_serial_hex() -> Option<&'static str> {
    Facts::current().serial_hex.as_deref()
}

/// Start of the client certificate's validity.
#[pg_extern(stable, parallel_restricted)]
fn client_cert_not_before() -> Option<TimestampWithTimeZone> {
    Facts::current().not_before.and_then(timestamps::from_unix)
}

/// End of the client certificate's validity.
#[pg_extern(stable, parallel_restricted)]
fn client_cert_not_after() -> Option<TimestampWithTimeZone> {
    Facts::current().not_after.and_then(timestamps::from_unix)
}

/// SHA-256 fingerprint of the client certificate (DER), lowercase hex.
#[pg_extern(stable, parallel_restricted)]
fn client_cert_fingerprint() -> Option<&'static str> {
    Facts::current().fingerprint.as_deref()
}

/// The client certificate in PEM.
#[pg_extern(stable, parallel_restricted)]
fn client_cert_pem() -> Option<String> {
    peer()
        .and_then(|c| c.to_pem().ok())
        .map(|pem| String::from_utf8_lossy(&pem).into_owned())
}

/// The client certificate's X.509v3 extensions.
#[pg_extern(stable, parallel_restricted)]
fn client_cert_extensions() -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(value, String),
        name!(critical, bool),
    ),
> {
    let rows = peer().map(cert::extensions).unwrap_or_default();
    TableIterator::new(rows.into_iter().map(|e| (e.name, e.value, e.critical)))
}

/// Everything above in one object, plus the identity the server authenticated
/// and the DN in the form `clientname=DN` in `pg_hba.conf` matches against.
#[pg_extern(stable, parallel_restricted)]
fn session_info() -> CachedJsonb {
    CachedJsonb(Facts::current().session_jsonb(datums::jsonb_bytes))
}

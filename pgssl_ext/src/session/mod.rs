//! SQL functions that report this session's TLS state.
//!
//! All are `STABLE` (the state is fixed for the session, but not across
//! sessions) and `PARALLEL RESTRICTED` (a parallel worker has no client
//! connection), as contrib/sslinfo declares its own. Without TLS, or without
//! a client certificate, they return NULL; the two yes/no questions
//! (`ssl_is_used`, `client_cert_present`) answer `false`, as sslinfo's do.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB};
use serde_json::{json, Value};

use openssl::x509::X509Ref;

use crate::cert;
use crate::dn;
use crate::error::PgsslError;
use crate::timestamps;

mod others;
mod snapshot;
pub(crate) use snapshot::SessionTls;

fn peer() -> Option<&'static X509Ref> {
    SessionTls::current().peer
}

fn resolve_field(field: &str) -> Result<String, PgsslError> {
    dn::lookup_field(field).ok_or_else(|| PgsslError::UnknownField {
        field: field.into(),
    })
}

/// Whether the current connection uses TLS.
#[pg_extern(stable, parallel_restricted)]
fn ssl_is_used() -> bool {
    SessionTls::current().in_use
}

/// The TLS protocol version, e.g. `TLSv1.3`.
#[pg_extern(stable, parallel_restricted)]
fn ssl_version() -> Option<&'static str> {
    SessionTls::current().version()
}

/// The negotiated cipher suite, e.g. `TLS_AES_256_GCM_SHA384`.
#[pg_extern(stable, parallel_restricted)]
fn ssl_cipher() -> Option<&'static str> {
    SessionTls::current().cipher().map(|c| c.name)
}

/// The cipher's secret key length in bits.
#[pg_extern(stable, parallel_restricted)]
fn ssl_cipher_bits() -> Option<i32> {
    SessionTls::current().cipher().map(|c| c.bits)
}

/// Whether the client presented a certificate.
#[pg_extern(stable, parallel_restricted)]
fn client_cert_present() -> bool {
    peer().is_some()
}

/// The client certificate's CN, in full, exactly as the server matched it for `cert` authentication.
#[pg_extern(stable, parallel_restricted)]
fn client_cn() -> Option<String> {
    SessionTls::current().peer_cn()
}

/// The client certificate's subject in RFC 2253 form, never truncated.
#[pg_extern(stable, parallel_restricted)]
fn client_dn() -> Option<String> {
    peer().map(|c| cert::name_rfc2253(c.subject_name()))
}

/// The client certificate's issuer in RFC 2253 form, never truncated.
#[pg_extern(stable, parallel_restricted)]
fn issuer_dn() -> Option<String> {
    peer().map(|c| cert::name_rfc2253(c.issuer_name()))
}

/// One field of the client certificate's subject, by short or long name or OID.
#[pg_extern(stable, strict, parallel_restricted)]
fn client_dn_field(field: &str) -> Result<Option<String>, ErrorReport> {
    let oid = resolve_field(field)?;
    Ok(peer().and_then(|c| cert::name_field(c.subject_name(), &oid)))
}

/// One field of the client certificate's issuer, by short or long name or OID.
#[pg_extern(stable, strict, parallel_restricted)]
fn issuer_field(field: &str) -> Result<Option<String>, ErrorReport> {
    let oid = resolve_field(field)?;
    Ok(peer().and_then(|c| cert::name_field(c.issuer_name(), &oid)))
}

/// The client certificate's serial number.
#[pg_extern(stable, parallel_restricted)]
fn client_serial() -> Option<AnyNumeric> {
    peer()
        .and_then(cert::serial_decimal)
        .and_then(|s| AnyNumeric::try_from(s.as_str()).ok())
}

/// The client certificate's serial number in lowercase hex.
#[pg_extern(stable, parallel_restricted)]
fn client_serial_hex() -> Option<String> {
    peer().and_then(cert::serial_hex)
}

/// Start of the client certificate's validity.
#[pg_extern(stable, parallel_restricted)]
fn client_cert_not_before() -> Option<TimestampWithTimeZone> {
    peer()
        .and_then(|c| cert::unix_seconds(c.not_before()))
        .and_then(timestamps::from_unix)
}

/// End of the client certificate's validity.
#[pg_extern(stable, parallel_restricted)]
fn client_cert_not_after() -> Option<TimestampWithTimeZone> {
    peer()
        .and_then(|c| cert::unix_seconds(c.not_after()))
        .and_then(timestamps::from_unix)
}

/// SHA-256 fingerprint of the client certificate (DER), lowercase hex.
#[pg_extern(stable, parallel_restricted)]
fn client_cert_fingerprint() -> Option<String> {
    peer().and_then(cert::fingerprint_sha256)
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
fn session_info() -> JsonB {
    JsonB(session_json())
}

fn session_json() -> Value {
    let tls = SessionTls::current();
    let cipher = tls.cipher();
    let peer = tls.peer;
    let time = |f: fn(&X509Ref) -> Option<i64>| -> Value {
        peer.and_then(f)
            .and_then(timestamps::iso8601)
            .map(Value::String)
            .unwrap_or(Value::Null)
    };
    json!({
        "ssl": tls.in_use,
        "version": tls.version(),
        "cipher": cipher.map(|c| c.name),
        "cipher_bits": cipher.map(|c| c.bits),
        "client_cert_present": peer.is_some(),
        "client_cert_verified": tls.peer_verified(),
        "client_cn": tls.peer_cn(),
        "client_dn": peer.map(|c| cert::name_rfc2253(c.subject_name())),
        "client_dn_as_matched": tls.peer_dn_as_matched(),
        "issuer_dn": peer.map(|c| cert::name_rfc2253(c.issuer_name())),
        "client_serial": peer.and_then(cert::serial_decimal),
        "client_serial_hex": peer.and_then(cert::serial_hex),
        "not_before": time(|c| cert::unix_seconds(c.not_before())),
        "not_after": time(|c| cert::unix_seconds(c.not_after())),
        "fingerprint_sha256": peer.and_then(cert::fingerprint_sha256),
        "subject_alt_names": peer.map(cert::subject_alt_names),
        "authn_id": tls.authn_id(),
        "alpn": tls.alpn(),
    })
}

//! [`Facts`]: this connection's TLS facts, worked out once and then served to
//! every session function from memory.
//!
//! The TLS state of a connection never changes once it is established, so
//! each fact (names, serial, fingerprint, the whole `session_info()` jsonb)
//! is computed at the first call and kept. The cache is keyed by the
//! connection ([`ConnectionKey`]: the server's SSL and peer-certificate
//! objects, the process id and the backend's start time), and the key is
//! checked at every call: a process that served another connection, or an
//! object address reused for a new one, never gets the old facts.

use std::cell::{Cell, OnceCell, RefCell};

use openssl::x509::X509Ref;
use pgrx::pg_sys;
use serde_json::{json, Value};

use super::snapshot::{Cipher, SessionTls};
use crate::cert;
use crate::timestamps;

/// Which connection a set of facts belongs to. Two connections served by
/// one process one after the other differ in their start time, and two
/// processes in their pid, even when OpenSSL hands out an SSL object at an
/// address used before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionKey {
    /// The server's `SSL*` for the connection (0 without TLS).
    pub ssl: usize,
    /// The client certificate the server holds (0 without one).
    pub peer: usize,
    /// `MyProcPid`.
    pub pid: i32,
    /// `MyStartTimestamp`: when this backend started serving the connection.
    pub started: i64,
}

impl ConnectionKey {
    /// The key of the connection this backend serves now.
    fn current(tls: &SessionTls) -> Self {
        // SAFETY: MyProcPid and MyStartTimestamp are set once when the
        // backend starts and only read here, on the backend's one thread.
        let (pid, started) = unsafe { (pg_sys::MyProcPid, pg_sys::MyStartTimestamp) };
        Self {
            ssl: tls.ssl.map_or(0, |s| std::ptr::from_ref(s) as usize),
            peer: tls.peer.map_or(0, |c| std::ptr::from_ref(c) as usize),
            pid,
            started,
        }
    }
}

/// One cached value per connection: computed by `make` when the key differs
/// from the one it was computed for. Values are leaked rather than dropped
/// so that a `&'static` handed out earlier in a call stays valid; a backend
/// serves one connection, so at most one value is ever made per process in
/// practice, and each new connection (a new key) adds one.
pub(crate) struct PerConnection<T: 'static> {
    entry: Cell<Option<(ConnectionKey, &'static T)>>,
}

impl<T: 'static> PerConnection<T> {
    pub(crate) const fn new() -> Self {
        Self {
            entry: Cell::new(None),
        }
    }

    /// The value for `key`, made with `make` unless the cached one is for `key`.
    pub(crate) fn get(&self, key: ConnectionKey, make: impl FnOnce() -> T) -> &'static T {
        if let Some((cached, value)) = self.entry.get() {
            if cached == key {
                return value;
            }
        }
        let value: &'static T = Box::leak(Box::new(make()));
        self.entry.set(Some((key, value)));
        value
    }
}

/// Whose name a field lookup reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whose {
    /// The client certificate's subject.
    Subject,
    /// Its issuer.
    Issuer,
}

/// Most distinct field lookups remembered per connection; past that they are
/// computed at each call (a query naming hundreds of fields is no hot path).
const MAX_FIELDS: usize = 32;

/// The facts of one connection. Strings are kept as SQL returns them.
pub(crate) struct Facts {
    /// The connection's TLS objects, for the functions that are not cached
    /// (PEM, extensions).
    pub tls: SessionTls,
    pub cipher: Option<Cipher>,
    pub version: Option<&'static str>,
    pub cn: Option<String>,
    pub dn: Option<String>,
    pub issuer_dn: Option<String>,
    pub serial_decimal: Option<String>,
    pub serial_hex: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub fingerprint: Option<String>,
    /// `client_serial()`'s numeric, as its varlena bytes.
    serial_numeric: OnceCell<Option<Box<[u8]>>>,
    /// `session_info()`, as jsonb varlena bytes.
    jsonb: OnceCell<Box<[u8]>>,
    /// Field lookups done so far: (whose, OID) -> value.
    fields: RefCell<Vec<(Whose, String, Option<String>)>>,
}

thread_local! {
    static FACTS: PerConnection<Facts> = const { PerConnection::new() };
}

impl Facts {
    /// The facts of the connection this backend serves.
    pub(crate) fn current() -> &'static Facts {
        let tls = SessionTls::current();
        let key = ConnectionKey::current(&tls);
        FACTS.with(|cache| cache.get(key, || Facts::of(tls)))
    }

    fn of(tls: SessionTls) -> Facts {
        let peer = tls.peer;
        let time = |f: fn(&X509Ref) -> &openssl::asn1::Asn1TimeRef| {
            peer.and_then(|c| cert::unix_seconds(f(c)))
        };
        Facts {
            cipher: tls.cipher(),
            version: tls.version(),
            cn: tls.peer_cn(),
            dn: peer.map(|c| cert::name_rfc2253(c.subject_name())),
            issuer_dn: peer.map(|c| cert::name_rfc2253(c.issuer_name())),
            serial_decimal: peer.and_then(cert::serial_decimal),
            serial_hex: peer.and_then(cert::serial_hex),
            not_before: time(X509Ref::not_before),
            not_after: time(X509Ref::not_after),
            fingerprint: peer.and_then(cert::fingerprint_sha256),
            serial_numeric: OnceCell::new(),
            jsonb: OnceCell::new(),
            fields: RefCell::new(Vec::new()),
            tls,
        }
    }

    /// The first value of the attribute `oid` in the subject or issuer name.
    pub(crate) fn field(&self, whose: Whose, oid: &str) -> Option<String> {
        let peer = self.tls.peer?;
        if let Some((_, _, value)) = self
            .fields
            .borrow()
            .iter()
            .find(|(w, o, _)| *w == whose && o == oid)
        {
            return value.clone();
        }
        let name = match whose {
            Whose::Subject => peer.subject_name(),
            Whose::Issuer => peer.issuer_name(),
        };
        let value = cert::name_field(name, oid);
        let mut fields = self.fields.borrow_mut();
        if fields.len() < MAX_FIELDS {
            fields.push((whose, oid.to_string(), value.clone()));
        }
        value
    }

    /// The serial as a numeric datum's bytes, made with `to_numeric` once.
    pub(crate) fn serial_numeric(
        &'static self,
        to_numeric: impl FnOnce(&str) -> Option<Box<[u8]>>,
    ) -> Option<&'static [u8]> {
        self.serial_numeric
            .get_or_init(|| self.serial_decimal.as_deref().and_then(to_numeric))
            .as_deref()
    }

    /// `session_info()` as jsonb bytes, made with `to_jsonb` from the JSON once.
    pub(crate) fn session_jsonb(
        &'static self,
        to_jsonb: impl FnOnce(&Value) -> Box<[u8]>,
    ) -> &'static [u8] {
        self.jsonb.get_or_init(|| to_jsonb(&self.json()))
    }

    /// Every fact in one JSON object.
    fn json(&self) -> Value {
        let tls = &self.tls;
        let peer = tls.peer;
        let time = |t: Option<i64>| t.and_then(timestamps::iso8601);
        json!({
            "ssl": tls.in_use,
            "version": self.version,
            "cipher": self.cipher.map(|c| c.name),
            "cipher_bits": self.cipher.map(|c| c.bits),
            "client_cert_present": peer.is_some(),
            "client_cert_verified": tls.peer_verified(),
            "client_cn": self.cn,
            "client_dn": self.dn,
            "client_dn_as_matched": tls.peer_dn_as_matched(),
            "issuer_dn": self.issuer_dn,
            "client_serial": self.serial_decimal,
            "client_serial_hex": self.serial_hex,
            "not_before": time(self.not_before),
            "not_after": time(self.not_after),
            "fingerprint_sha256": self.fingerprint,
            "subject_alt_names": peer.map(cert::subject_alt_names),
            "authn_id": tls.authn_id(),
            "alpn": tls.alpn(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ssl: usize, peer: usize, pid: i32, started: i64) -> ConnectionKey {
        ConnectionKey {
            ssl,
            peer,
            pid,
            started,
        }
    }

    #[test]
    fn the_same_connection_is_served_from_the_cache() {
        let cache = PerConnection::<String>::new();
        let k = key(0x1000, 0x2000, 42, 7);
        let mut made = 0;
        let first = cache.get(k, || {
            made += 1;
            "alice".to_string()
        });
        let again = cache.get(k, || {
            made += 1;
            "wrong".to_string()
        });
        assert_eq!(
            (first.as_str(), again.as_str(), made),
            ("alice", "alice", 1)
        );
        assert!(std::ptr::eq(first, again));
    }

    #[test]
    fn any_change_of_connection_makes_new_facts() {
        let cache = PerConnection::<String>::new();
        let base = key(0x1000, 0x2000, 42, 7);
        assert_eq!(cache.get(base, || "alice".into()), "alice");
        // The same SSL address reused by a later connection in this process,
        // another process with the same address, another client certificate,
        // a connection without TLS: each is a miss.
        for (changed, who) in [
            (key(0x1000, 0x2000, 42, 8), "later connection"),
            (key(0x1000, 0x2000, 43, 7), "other process"),
            (key(0x1000, 0x3000, 42, 7), "other certificate"),
            (key(0, 0, 42, 7), "no TLS"),
        ] {
            assert_eq!(cache.get(changed, || who.into()), who);
            // Going back to the first key recomputes too: only one entry is kept.
            assert_eq!(cache.get(base, || "alice again".into()), "alice again");
            assert_eq!(cache.get(base, || "stale".into()), "alice again");
            let _ = cache.get(base, || unreachable!());
            cache.entry.set(None);
            assert_eq!(cache.get(base, || "alice".into()), "alice");
        }
    }
}

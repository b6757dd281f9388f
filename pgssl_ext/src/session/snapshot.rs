//! [`SessionTls`]: the TLS facts of this backend's client connection, read
//! once from the server and shared by every session function,
//! `session_info()`, and anything else that asks who is connected.

use openssl::ssl::SslRef;
use openssl::x509::X509Ref;

use crate::port;

/// What the server knows about this session's TLS connection, read in one
/// go. Without TLS everything is `None`/`false`.
#[derive(Clone, Copy)]
pub(crate) struct SessionTls {
    /// Whether the connection uses TLS.
    pub in_use: bool,
    /// The TLS session the server keeps for the connection.
    pub ssl: Option<&'static SslRef>,
    /// The client certificate, when the client sent one.
    pub peer: Option<&'static X509Ref>,
}

/// The negotiated cipher: its name and secret key bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cipher {
    /// E.g. `TLS_AES_256_GCM_SHA384`.
    pub name: &'static str,
    /// The secret key length in bits.
    pub bits: i32,
}

impl SessionTls {
    /// The current connection's TLS state.
    pub(crate) fn current() -> Self {
        Self {
            in_use: port::ssl_in_use(),
            ssl: port::ssl(),
            peer: port::peer_certificate(),
        }
    }

    /// The protocol version, e.g. `TLSv1.3`.
    pub(crate) fn version(&self) -> Option<&'static str> {
        self.ssl.map(SslRef::version_str)
    }

    /// The negotiated cipher suite.
    pub(crate) fn cipher(&self) -> Option<Cipher> {
        self.ssl.and_then(|s| s.current_cipher()).map(|c| Cipher {
            name: c.name(),
            bits: c.bits().secret,
        })
    }

    /// The client certificate's CN as the server extracted it for `cert`
    /// authentication; `None` without a client certificate.
    pub(crate) fn peer_cn(&self) -> Option<String> {
        self.peer.and_then(|_| port::peer_cn())
    }

    /// The client certificate's DN as the server formatted it for
    /// `clientname=DN` (PostgreSQL 14+).
    pub(crate) fn peer_dn_as_matched(&self) -> Option<String> {
        self.peer.and_then(|_| port::peer_dn())
    }

    /// Whether the server verified the client certificate against `ssl_ca_file`.
    pub(crate) fn peer_verified(&self) -> bool {
        self.peer.is_some() && port::peer_cert_valid()
    }

    /// The ALPN protocol the handshake agreed on: `postgresql` when the client
    /// offered it to a server that selects it (PostgreSQL 17 and later, as
    /// direct TLS requires), else `None`.
    pub(crate) fn alpn(&self) -> Option<String> {
        self.ssl
            .and_then(SslRef::selected_alpn_protocol)
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }

    /// The identity the server authenticated for this session, if recorded.
    pub(crate) fn authn_id(&self) -> Option<String> {
        port::authn_id()
    }
}

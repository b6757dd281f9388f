//! The tokio-postgres seam: [`MakeTls`] makes a [`TlsConnector`] per host, which runs the
//! rustls handshake and yields a [`TlsStream`] with `tls-server-end-point` channel binding.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::X509;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use super::certificate::CertificateSummary;
use super::{TlsSetup, Verification};
use crate::config::Config;
use crate::error::Error;

/// What one TLS handshake settled, for reports such as `pgssl check`.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// "TLSv1.3" or "TLSv1.2".
    pub version: String,
    /// The cipher suite, as rustls names it.
    pub cipher: String,
    /// The certificates the server sent, its own first (DER).
    pub peer_chain: Vec<Vec<u8>>,
    /// What was verified about them.
    pub verification: Verification,
    /// Whether the chain was also checked against CRLs (sslcrl, sslcrldir, ~/.postgresql/root.crl).
    pub crl_checked: bool,
    /// The client certificate file sent, if any.
    pub client_cert: Option<PathBuf>,
}

impl TlsInfo {
    /// The certificates the server sent, described, its own first; `None` for one that
    /// cannot be parsed.
    pub fn server_certificates(&self) -> Vec<Option<CertificateSummary>> {
        self.peer_chain
            .iter()
            .map(|der| CertificateSummary::from_der(der).ok())
            .collect()
    }
}

/// Per-attempt record: did TLS start, and what did it settle.
#[derive(Debug, Default)]
pub(crate) struct AttemptLog {
    pub(crate) tls_started: bool,
    pub(crate) info: Option<TlsInfo>,
}

/// The tokio-postgres TLS factory with libpq's policy, built once from a [`Config`] and
/// cheap to clone. Give it to `tokio_postgres::Config::connect` or to a pool
/// (deadpool-postgres, bb8) together with [`Config::to_tokio_postgres`].
///
/// Through this seam tokio-postgres makes one attempt per host: `prefer` does not fall back
/// to plaintext after a failed handshake and `allow` behaves as `prefer`. [`crate::connect`]
/// and [`crate::Connector`] implement libpq's retries.
#[derive(Clone)]
pub struct MakeTls {
    /// `None` for plaintext-only attempts, where tokio-postgres still asks for a connector.
    setup: Option<Arc<TlsSetup>>,
    log: Option<Arc<Mutex<AttemptLog>>>,
}

impl fmt::Debug for MakeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MakeTls")
            .field("verification", &self.setup.as_ref().map(|s| s.verification))
            .finish()
    }
}

impl MakeTls {
    /// Reads the configuration's certificate files and builds the TLS configuration.
    pub fn new(config: &Config) -> Result<MakeTls, Error> {
        Ok(MakeTls {
            setup: Some(Arc::new(TlsSetup::new(config)?)),
            log: None,
        })
    }

    pub(crate) fn with_log(setup: Option<Arc<TlsSetup>>, log: Arc<Mutex<AttemptLog>>) -> MakeTls {
        MakeTls {
            setup,
            log: Some(log),
        }
    }
}

impl<S> MakeTlsConnect<S> for MakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = TlsConnector;
    type Error = Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<TlsConnector, Error> {
        Ok(TlsConnector {
            setup: self.setup.clone(),
            host: domain.to_string(),
            log: self.log.clone(),
        })
    }
}

/// One TLS handshake towards one host; made by [`MakeTls`] for tokio-postgres.
pub struct TlsConnector {
    setup: Option<Arc<TlsSetup>>,
    host: String,
    log: Option<Arc<Mutex<AttemptLog>>>,
}

/// The error a failed handshake yields: the certificate check's own error when that is what
/// failed, else rustls' description.
fn handshake_error(e: io::Error) -> Error {
    if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(o))) =
        e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
    {
        if let Some(mine) = o.0.downcast_ref::<Error>() {
            return mine.clone();
        }
    }
    Error::Tls {
        reason: e.to_string(),
    }
}

impl<S> TlsConnect<S> for TlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<TlsStream<S>, Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            if let Some(log) = &self.log {
                log.lock().expect("attempt log").tls_started = true;
            }
            let setup = self.setup.as_ref().ok_or_else(|| Error::Tls {
                reason: "TLS is not configured for this attempt".into(),
            })?;
            let (config, name) = setup.for_host(&self.host)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(handshake_error)?;
            if let Some(log) = &self.log {
                let conn = tls.get_ref().1;
                let info = TlsInfo {
                    version: match conn.protocol_version() {
                        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
                        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
                        v => format!("{v:?}"),
                    },
                    cipher: conn
                        .negotiated_cipher_suite()
                        .map(|c| format!("{:?}", c.suite()))
                        .unwrap_or_default(),
                    peer_chain: conn
                        .peer_certificates()
                        .unwrap_or(&[])
                        .iter()
                        .map(|c| c.to_vec())
                        .collect(),
                    verification: setup.verification,
                    crl_checked: setup.crl_checked,
                    client_cert: setup.client_cert.clone(),
                };
                log.lock().expect("attempt log").info = Some(info);
            }
            Ok(TlsStream(tls))
        })
    }
}

/// A TLS connection to the server, with `tls-server-end-point` channel binding.
pub struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

/// `tls-server-end-point` (RFC 5929) as libpq computes it: the server certificate hashed with
/// its signature's hash, SHA-256 for MD5 and SHA-1; none when there is no such hash (Ed25519).
pub(crate) fn tls_server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    let cert = X509::from_der(cert_der).ok()?;
    let digest_nid = cert
        .signature_algorithm()
        .object()
        .nid()
        .signature_algorithms()?
        .digest;
    let md = match digest_nid {
        Nid::MD5 | Nid::SHA1 => MessageDigest::sha256(),
        nid => MessageDigest::from_nid(nid)?,
    };
    cert.digest(md).ok().map(|d| d.to_vec())
}

impl<S> tokio_postgres::tls::TlsStream for TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        let peer = self
            .0
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first());
        match peer.and_then(|c| tls_server_end_point(c)) {
            Some(hash) => ChannelBinding::tls_server_end_point(hash),
            None => ChannelBinding::none(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

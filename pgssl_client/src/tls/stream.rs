//! The tokio-postgres seam: [`MakeTls`] makes a [`TlsConnector`] per host, which runs the
//! rustls handshake and yields a [`TlsStream`] with `tls-server-end-point` channel binding.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::X509;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use super::auth_watch::AuthWatch;
use super::certificate::CertificateSummary;
use super::reload::TlsFiles;
use super::verifier::with_failure_slot;
use super::{TlsSetup, Verification};
use crate::config::{Config, SslCertMode};
use crate::error::Error;

/// What one TLS handshake settled, for reports such as `pgssl check`; from
/// [`crate::Connector::connect_with_info`].
///
/// ```no_run
/// # async fn run() -> Result<(), pgssl_client::Error> {
/// use pgssl_client::{Config, Connector};
///
/// let connector = Connector::new(Config::from_conninfo("host=db sslmode=verify-full")?);
/// let (_client, _connection, info) = connector.connect_with_info().await?;
/// let tls = info.tls.expect("verify-full is always TLS");
/// for cert in tls.server_certificates().into_iter().flatten() {
///     println!("{} (issued by {}), {:?} days left", cert.subject, cert.issuer, cert.expires_in_days);
/// }
/// # Ok(())
/// # }
/// ```
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

/// The tokio-postgres TLS factory with libpq's policy, built from a [`Config`] and cheap to
/// clone. Give it to `tokio_postgres::Config::connect` or to a pool (deadpool-postgres, bb8)
/// together with [`Config::to_tokio_postgres`].
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use pgssl_client::{Config, MakeTls};
///
/// let config = Config::from_conninfo(
///     "host=db.example.com sslmode=verify-full sslrootcert=root.crt sslcert=app.crt sslkey=app.key",
/// )?;
/// let tls = MakeTls::new(&config)?;
/// let (client, connection) = config.to_tokio_postgres().connect(tls).await?;
/// tokio::spawn(connection);
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
///
/// # Certificates that change
///
/// Like libpq, which reads them for every connection, a `MakeTls` (and each of its clones)
/// follows its files: when `sslrootcert`, `sslcrl`, `sslcrldir`, `sslcert` or `sslkey`
/// change, the next connection uses them as they are now. A pool therefore picks up a
/// renewed client certificate or a new CRL without a restart; connections already open are
/// not touched. Checking costs one `stat` per file per connection; the files are read and
/// parsed again only when one changed. A certificate beside a key that is not its own (a
/// renewal half-way through replacing the pair) fails that connection with
/// [`crate::Error::KeyMismatch`], naming both files (tokio-postgres reports "error performing
/// TLS handshake", with this error as its `source()`); the next connection reads them again.
/// Replace each file by renaming a new one over it, not by rewriting it in place.
/// [`Config::set_reload_tls_files`] turns this off.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
/// use pgssl_client::{Config, MakeTls};
///
/// let config = Config::from_conninfo(
///     "host=db.example.com user=app sslmode=verify-full sslcert=app.crt sslkey=app.key",
/// )?;
/// let manager = Manager::from_config(
///     config.to_tokio_postgres(),
///     MakeTls::new(&config)?,
///     ManagerConfig { recycling_method: RecyclingMethod::Fast },
/// );
/// let pool = Pool::builder(manager).max_size(8).build()?;
/// // Months later, app.crt and app.key have been renewed: new connections present the new
/// // certificate, without rebuilding the pool.
/// let client = pool.get().await?;
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
///
/// Through this seam tokio-postgres makes one attempt per host: `prefer` does not fall back
/// to plaintext after a failed handshake and `allow` behaves as `prefer`. [`crate::connect`]
/// and [`crate::Connector`] implement libpq's retries.
#[derive(Clone)]
pub struct MakeTls {
    tls: Source,
    log: Option<Arc<Mutex<AttemptLog>>>,
}

/// Where a [`MakeTls`] takes the TLS setup of each connection from.
#[derive(Clone)]
enum Source {
    /// Plaintext-only attempts, where tokio-postgres still asks for a connector.
    Plaintext,
    /// One setup, for the attempts of one [`crate::Connector`] call.
    Fixed(Arc<TlsSetup>),
    /// The files, checked for changes at each connection.
    Files(Arc<TlsFiles>),
}

impl fmt::Debug for MakeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = match &self.tls {
            Source::Plaintext => "plaintext",
            Source::Fixed(_) => "one setup",
            Source::Files(_) => "from the files",
        };
        f.debug_struct("MakeTls").field("tls", &tls).finish()
    }
}

impl MakeTls {
    /// Reads the configuration's certificate files and builds the TLS configuration; the
    /// files are checked again for changes at each connection.
    ///
    /// ```
    /// use pgssl_client::{Config, Error, MakeTls};
    ///
    /// // verify-full needs a root certificate; libpq would refuse too.
    /// let config = Config::from_conninfo_with_env("sslmode=verify-full", &|_| None, None)?;
    /// assert!(matches!(MakeTls::new(&config), Err(Error::NoRootCertificate { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(config: &Config) -> Result<MakeTls, Error> {
        let files = Arc::new(TlsFiles::new(config.clone()));
        files.current()?;
        Ok(MakeTls::from_files(files, None))
    }

    /// A factory following `files`.
    pub(crate) fn from_files(files: Arc<TlsFiles>, log: Option<Arc<Mutex<AttemptLog>>>) -> MakeTls {
        MakeTls {
            tls: Source::Files(files),
            log,
        }
    }

    /// A factory for one attempt: `setup`, or plaintext only.
    pub(crate) fn with_log(setup: Option<Arc<TlsSetup>>, log: Arc<Mutex<AttemptLog>>) -> MakeTls {
        MakeTls {
            tls: setup.map_or(Source::Plaintext, Source::Fixed),
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
        let setup = match &self.tls {
            Source::Plaintext => None,
            Source::Fixed(setup) => Some(setup.clone()),
            Source::Files(files) => Some(files.current()?),
        };
        Ok(TlsConnector {
            setup,
            host: domain.to_string(),
            log: self.log.clone(),
        })
    }
}

/// One TLS handshake towards one host; made by [`MakeTls`] for tokio-postgres, which calls
/// it (applications do not).
///
/// ```
/// use pgssl_client::{Config, MakeTls, TlsConnector};
/// use tokio_postgres::tls::MakeTlsConnect;
///
/// let config = Config::from_conninfo_with_env("sslmode=require", &|_| None, None)?;
/// let mut tls = MakeTls::new(&config)?;
/// let _one: TlsConnector =
///     MakeTlsConnect::<tokio::net::TcpStream>::make_tls_connect(&mut tls, "db.example.com")?;
/// # Ok::<(), pgssl_client::Error>(())
/// ```
pub struct TlsConnector {
    setup: Option<Arc<TlsSetup>>,
    host: String,
    log: Option<Arc<Mutex<AttemptLog>>>,
}

/// The error a failed handshake yields: the certificate check's own error when that is what
/// failed, else rustls' description.
fn handshake_error(e: io::Error, verifier_error: Option<Error>) -> Error {
    if let Some(mine) = verifier_error {
        return mine;
    }
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
            let (mut config, name) = setup.for_host(&self.host)?;
            let cert_requested = Arc::new(AtomicBool::new(false));
            if setup.cert_mode == SslCertMode::Require {
                let mut c = (*config).clone();
                c.client_auth_cert_resolver = Arc::new(RecordRequest {
                    inner: c.client_auth_cert_resolver.clone(),
                    requested: cert_requested.clone(),
                });
                config = Arc::new(c);
            }
            let handshake = tokio_rustls::TlsConnector::from(config).connect(name, stream);
            let tls = match with_failure_slot(handshake).await {
                (Ok(tls), _) => tls,
                (Err(e), verifier_error) => return Err(handshake_error(e, verifier_error)),
            };
            if setup.cert_mode == SslCertMode::Require {
                // libpq checks at AuthenticationOk; the handshake already tells.
                if !cert_requested.load(Ordering::SeqCst) {
                    return Err(Error::CertificateNotExchanged {
                        reason: "server did not request an SSL certificate",
                    });
                }
                if setup.client_cert.is_none() {
                    return Err(Error::CertificateNotExchanged {
                        reason: "server accepted connection without a valid SSL certificate",
                    });
                }
            }
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
            let peer = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
            let end_point = peer.and_then(|c| tls_server_end_point(c));
            let signature_algorithm = match (&end_point, peer) {
                (None, Some(c)) => signature_algorithm_name(c),
                _ => String::new(),
            };
            Ok(TlsStream {
                inner: tls,
                end_point,
                signature_algorithm,
                auth_watch: setup.require_auth.clone().map(AuthWatch::new),
            })
        })
    }
}

/// The client certificate resolver, noting whether the server asked for a certificate
/// (`sslcertmode=require`).
#[derive(Debug)]
struct RecordRequest {
    inner: Arc<dyn rustls::client::ResolvesClientCert>,
    requested: Arc<AtomicBool>,
}

impl rustls::client::ResolvesClientCert for RecordRequest {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.requested.store(true, Ordering::SeqCst);
        self.inner.resolve(root_hint_subjects, sigschemes)
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// A TLS connection to the server, with `tls-server-end-point` channel binding; the stream
/// type of connections made through [`MakeTls`].
///
/// ```
/// use pgssl_client::{PgConnection, TlsStream};
/// use tokio_postgres::{Connection, Socket};
///
/// // What `connect` returns, spelled out.
/// fn drive(connection: Connection<Socket, TlsStream<Socket>>) -> PgConnection {
///     connection
/// }
/// # let _ = drive;
/// ```
pub struct TlsStream<S> {
    inner: tokio_rustls::client::TlsStream<S>,
    /// The server certificate's `tls-server-end-point` hash; `None` when its signature
    /// algorithm has no hash.
    end_point: Option<Vec<u8>>,
    /// That signature algorithm's name, for the error when binding is impossible.
    signature_algorithm: String,
    /// With `require_auth`, the server's authentication requests, checked as they arrive.
    auth_watch: Option<AuthWatch>,
}

/// The SCRAM mechanism with channel binding, as it opens a SASLInitialResponse.
const SCRAM_PLUS: &[u8] = b"SCRAM-SHA-256-PLUS\0";

fn signature_algorithm_name(cert_der: &[u8]) -> String {
    X509::from_der(cert_der)
        .ok()
        .and_then(|c| c.signature_algorithm().object().nid().short_name().ok())
        .unwrap_or("unknown")
        .to_string()
}

/// `tls-server-end-point` (RFC 5929) as libpq computes it: the server certificate hashed with
/// its signature's hash, SHA-256 for MD5 and SHA-1; none when there is no such hash (Ed25519).
/// For RSASSA-PSS signatures the hash is the one in the signature's parameters, as libpq
/// reads it with `X509_get_signature_info`.
pub(crate) fn tls_server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    let cert = X509::from_der(cert_der).ok()?;
    let digest_nid = match super::der::pss_signature_hash(cert_der) {
        Some(None) => Nid::SHA1,
        Some(Some(oid)) => match oid {
            [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, n] => match n {
                1 => Nid::SHA256,
                2 => Nid::SHA384,
                3 => Nid::SHA512,
                4 => Nid::SHA224,
                _ => return None,
            },
            [0x2b, 0x0e, 0x03, 0x02, 0x1a] => Nid::SHA1,
            _ => return None,
        },
        None => {
            cert.signature_algorithm()
                .object()
                .nid()
                .signature_algorithms()?
                .digest
        }
    };
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
        // Over TLS libpq never sends gs2 flag `n` unless channel_binding=disable (which
        // tokio-postgres applies itself): it sends `y` when the server offers no
        // SCRAM-SHA-256-PLUS, and refuses when it cannot hash the certificate. With no hash,
        // an empty one makes tokio-postgres do the same: `y` without PLUS, and with PLUS a
        // SASLInitialResponse that `poll_write` refuses before it leaves (the server would
        // also refuse the empty binding data).
        ChannelBinding::tls_server_end_point(self.end_point.clone().unwrap_or_default())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(watch)) = (&result, this.auth_watch.as_mut()) {
            if let Err(e) = watch.feed(&buf.filled()[before..]) {
                return Poll::Ready(Err(io::Error::other(e)));
            }
            if watch.done() {
                this.auth_watch = None;
            }
        }
        result
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.end_point.is_none() && buf.windows(SCRAM_PLUS.len()).any(|w| w == SCRAM_PLUS) {
            return Poll::Ready(Err(io::Error::other(Error::ChannelBindingUnavailable {
                signature_algorithm: this.signature_algorithm.clone(),
            })));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

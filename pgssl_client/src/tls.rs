//! The rustls side: files read as libpq reads them, one `ClientConfig` per [`Config`], and the
//! tokio-postgres TLS seam ([`MakeTls`]).

use std::fmt;
use std::fs;
use std::future::Future;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::SslFiletype;
use openssl::x509::store::{X509Lookup, X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509PurposeId, X509};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::config::{Config, SslMode, TlsVersion};
use crate::error::Error;
use crate::verify::{check_host_name, host_of, verify_chain};

/// What the client verifies about the server, decided from sslmode and the files present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Nothing: no root certificate file and sslmode below verify-ca.
    None,
    /// The chain leads to a trusted root (and is not expired, not revoked).
    Chain,
    /// The chain, and the host name against the certificate.
    ChainAndHostName,
}

/// Everything TLS needs, read from files once per [`Config`].
pub(crate) struct TlsSetup {
    config: Arc<ClientConfig>,
    verifier: Arc<LibpqVerifier>,
    resolver: Option<Arc<ClientCert>>,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    enable_sni: bool,
    alpn: bool,
    pub(crate) verification: Verification,
    pub(crate) crl_checked: bool,
    pub(crate) client_cert: Option<PathBuf>,
}

impl TlsSetup {
    /// Reads the root certificate, CRL, client certificate and key as libpq's
    /// `initialize_SSL` does, and builds the rustls configuration.
    pub(crate) fn new(config: &Config) -> Result<TlsSetup, Error> {
        let mode = config.ssl_mode;
        let (store, crl_checked) = match load_roots(config)? {
            Some((store, crl_checked)) => (Some(store), crl_checked),
            None => (None, false),
        };
        let cacheable = store.is_some() && !crl_checked;
        let verification = match (&store, mode) {
            (None, _) => Verification::None,
            (Some(_), SslMode::VerifyFull) => Verification::ChainAndHostName,
            (Some(_), _) => Verification::Chain,
        };
        let verifier = Arc::new(LibpqVerifier {
            store,
            check_host: mode == SslMode::VerifyFull,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            host_override: None,
            cache: cacheable.then(|| Mutex::new(Vec::new())),
        });
        let (resolver, client_cert) = match load_client_cert(config)? {
            Some((path, key)) => (Some(Arc::new(ClientCert(Arc::new(key)))), Some(path)),
            None => (None, None),
        };
        let min = config.min_version.unwrap_or(TlsVersion::Tls10);
        let max = config.max_version.unwrap_or(TlsVersion::Tls13);
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
            (TlsVersion::Tls12, &rustls::version::TLS12),
            (TlsVersion::Tls13, &rustls::version::TLS13),
        ]
        .into_iter()
        .filter(|(v, _)| *v >= min && *v <= max)
        .map(|(_, r)| r)
        .collect();
        if versions.is_empty() {
            return Err(Error::Unsupported {
                key: "ssl_max_protocol_version".into(),
                value: config.max_version.map_or("", TlsVersion::as_str).into(),
                reason: "rustls offers only TLSv1.2 and TLSv1.3".into(),
            });
        }
        let enable_sni = config.ssl_sni;
        let alpn = config.direct_ssl;
        let config = build_config(verifier.clone(), &resolver, &versions, enable_sni, alpn)?;
        Ok(TlsSetup {
            config,
            verifier,
            resolver,
            versions,
            enable_sni,
            alpn,
            verification,
            crl_checked,
            client_cert,
        })
    }

    fn build(&self, verifier: Arc<LibpqVerifier>) -> Result<Arc<ClientConfig>, Error> {
        build_config(
            verifier,
            &self.resolver,
            &self.versions,
            self.enable_sni,
            self.alpn,
        )
    }

    /// The configuration for one host. Hosts rustls cannot name (libpq accepts "127.1")
    /// get a configuration of their own whose verifier compares the text libpq would.
    fn for_host(&self, host: &str) -> Result<(Arc<ClientConfig>, ServerName<'static>), Error> {
        if let Ok(name) = ServerName::try_from(host.to_string()) {
            if host_of(&name) == host || !self.verifier.check_host {
                return Ok((self.config.clone(), name));
            }
        }
        let verifier = Arc::new(LibpqVerifier {
            store: self.verifier.store.clone(),
            check_host: self.verifier.check_host,
            algorithms: self.verifier.algorithms,
            host_override: Some(host.to_string()),
            cache: self.verifier.cache.as_ref().map(|_| Mutex::new(Vec::new())),
        });
        let mut config = (*self.build(verifier)?).clone();
        config.enable_sni = false;
        let fallback = ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into());
        Ok((Arc::new(config), fallback))
    }
}

fn build_config(
    verifier: Arc<LibpqVerifier>,
    resolver: &Option<Arc<ClientCert>>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    enable_sni: bool,
    alpn: bool,
) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| Error::Tls {
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut c = match resolver {
        Some(r) => builder.with_client_cert_resolver(r.clone()),
        None => builder.with_no_client_auth(),
    };
    c.enable_sni = enable_sni;
    if alpn {
        c.alpn_protocols = vec![b"postgresql".to_vec()];
    }
    Ok(Arc::new(c))
}

fn file_error(what: &'static str, path: &Path, reason: impl fmt::Display) -> Error {
    Error::File {
        what,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The root certificate store, or `None` when libpq would not verify the server; with it,
/// whether CRLs are checked.
fn load_roots(config: &Config) -> Result<Option<(Arc<X509Store>, bool)>, Error> {
    let mode = config.ssl_mode;
    let internal = |e: openssl::error::ErrorStack| Error::Tls {
        reason: format!("OpenSSL: {e}"),
    };
    let mut builder = X509StoreBuilder::new().map_err(internal)?;
    // libssl verifies the chain at the security level of the SSL context (from the system's
    // openssl.cnf; level 1 when it says nothing): weak keys and digests are refused there.
    let level = openssl::ssl::SslContext::builder(openssl::ssl::SslMethod::tls_client())
        .map(|b| b.build().security_level())
        .unwrap_or(1);
    let mut param = openssl::x509::verify::X509VerifyParam::new().map_err(internal)?;
    param.set_auth_level(i32::try_from(level).unwrap_or(1));
    builder.set_param(&param).map_err(internal)?;
    // OpenSSL verifies a server's chain for the "SSL server" purpose.
    builder
        .set_purpose(X509PurposeId::SSL_SERVER)
        .map_err(internal)?;
    if config.system_roots() {
        builder.set_default_paths().map_err(internal)?;
        return Ok(Some((Arc::new(builder.build()), false)));
    }
    let path = config.root_cert_file();
    let exists = path.as_ref().is_some_and(|p| p.exists());
    if !exists {
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
            return Err(Error::NoRootCertificate {
                path,
                sslmode: mode.as_str(),
            });
        }
        return Ok(None);
    }
    let path = path.expect("exists");
    builder
        .add_lookup(X509Lookup::file())
        .map_err(internal)?
        .load_cert_file(&path, SslFiletype::PEM)
        .map_err(|e| file_error("root certificate", &path, format!("could not read: {e}")))?;
    let crl_file = config.crl_file();
    let crl_dir = config.ssl_crl_dir.clone();
    // As libpq: CRLs that cannot be loaded are silently ignored, and only when they load is
    // CRL checking (for the whole chain) switched on.
    let mut crl_loaded = crl_file.is_some() || crl_dir.is_some();
    if let Some(f) = &crl_file {
        let ok = builder
            .add_lookup(X509Lookup::file())
            .map_err(internal)?
            .load_crl_file(f, SslFiletype::PEM)
            .is_ok();
        crl_loaded &= ok;
    }
    if crl_loaded {
        if let Some(d) = &crl_dir {
            let ok = builder
                .add_lookup(X509Lookup::hash_dir())
                .map_err(internal)?
                .add_dir(&d.to_string_lossy(), SslFiletype::PEM)
                .is_ok();
            crl_loaded &= ok;
        }
    }
    if crl_loaded {
        builder
            .set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)
            .map_err(internal)?;
    }
    Ok(Some((Arc::new(builder.build()), crl_loaded)))
}

/// PEM blocks of the given labels from a file that may have text around them, as OpenSSL's
/// PEM reader skips it.
fn pem_blocks(text: &[u8], labels: &[&str]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(end_label) = after.find("-----") else {
            break;
        };
        let label = &after[..end_label];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let block = &rest[start..start + end + end_marker.len()];
        if labels.contains(&label) {
            out.push(block.as_bytes().to_vec());
        }
        rest = &rest[start + end + end_marker.len()..];
    }
    out
}

/// The client certificate chain and key, when libpq would send one.
fn load_client_cert(config: &Config) -> Result<Option<(PathBuf, CertifiedKey)>, Error> {
    let Some(cert_path) = config.cert_file() else {
        return Ok(None);
    };
    match fs::metadata(&cert_path) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(file_error(
                "certificate",
                &cert_path,
                format!("could not open: {e}"),
            ))
        }
        Ok(_) => {}
    }
    let pem = fs::read(&cert_path)
        .map_err(|e| file_error("certificate", &cert_path, format!("could not read: {e}")))?;
    let mut chain = Vec::new();
    for block in pem_blocks(
        &pem,
        &["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"],
    ) {
        let x = X509::from_pem(&block)
            .map_err(|e| file_error("certificate", &cert_path, format!("could not read: {e}")))?;
        chain.push(x);
    }
    if chain.is_empty() {
        return Err(file_error(
            "certificate",
            &cert_path,
            "no certificate found",
        ));
    }
    let key_path = config.key_file().ok_or_else(|| Error::MissingKey {
        cert: cert_path.clone(),
        key: PathBuf::from("~/.postgresql/postgresql.key"),
    })?;
    let meta = match fs::metadata(&key_path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::MissingKey {
                cert: cert_path,
                key: key_path,
            });
        }
        Err(e) => {
            return Err(file_error(
                "private key",
                &key_path,
                format!("could not stat: {e}"),
            ))
        }
        Ok(m) => m,
    };
    if !meta.is_file() {
        return Err(file_error(
            "private key",
            &key_path,
            "is not a regular file",
        ));
    }
    let mode = meta.permissions().mode();
    let root_owned = meta.uid() == 0;
    let forbidden = if root_owned { 0o037 } else { 0o077 };
    if mode & forbidden != 0 {
        return Err(Error::KeyPermissions {
            path: key_path,
            presented_mode: mode,
            root_owned,
        });
    }
    let key = load_private_key(&key_path, config.ssl_password.as_deref())?;
    let leaf_key = chain[0]
        .public_key()
        .map_err(|e| file_error("certificate", &cert_path, e))?;
    if !leaf_key.public_eq(&key) {
        return Err(Error::KeyMismatch {
            cert: cert_path,
            key: key_path,
        });
    }
    let pkcs8 = key
        .private_key_to_pkcs8()
        .map_err(|e| file_error("private key", &key_path, e))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&PrivateKeyDer::Pkcs8(
        PrivatePkcs8KeyDer::from(pkcs8),
    ))
    .map_err(|e| {
        file_error(
            "private key",
            &key_path,
            format!("key type not supported by rustls: {e}"),
        )
    })?;
    let ders = chain
        .iter()
        .map(|c| c.to_der().map(CertificateDer::from))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error("certificate", &cert_path, e))?;
    Ok(Some((cert_path, CertifiedKey::new(ders, signing))))
}

/// A private key in PEM (PKCS#8, encrypted PKCS#8, PKCS#1, SEC1) or DER, as
/// `SSL_use_PrivateKey_file` tries PEM then ASN.1.
pub fn load_private_key(path: &Path, password: Option<&str>) -> Result<PKey<Private>, Error> {
    let bytes = fs::read(path)
        .map_err(|e| file_error("private key", path, format!("could not read: {e}")))?;
    let pass = password.unwrap_or("").as_bytes();
    if let Ok(k) = PKey::private_key_from_pem_passphrase(&bytes, pass) {
        return Ok(k);
    }
    if let Ok(k) = PKey::private_key_from_der(&bytes) {
        return Ok(k);
    }
    if let Ok(k) = PKey::private_key_from_pkcs8_passphrase(&bytes, pass) {
        return Ok(k);
    }
    let hint = if password.is_none() && String::from_utf8_lossy(&bytes).contains("ENCRYPTED") {
        " (the key is encrypted: give sslpassword)"
    } else {
        ""
    };
    Err(file_error(
        "private key",
        path,
        format!("could not load private key{hint}"),
    ))
}

/// Serves the client certificate as it is: rustls' own loader refuses X.509 v1 certificates,
/// which the openssl command line makes and libpq sends.
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The server certificate verifier: OpenSSL's chain check (what libpq runs) and libpq's
/// host-name rule; rustls' own verifier refuses v1 certificates and never reads the CN.
pub(crate) struct LibpqVerifier {
    store: Option<Arc<X509Store>>,
    check_host: bool,
    algorithms: WebPkiSupportedAlgorithms,
    host_override: Option<String>,
    /// Chains already verified (absent when CRLs are checked: a CRL can expire).
    cache: Option<Mutex<Vec<VerifiedChain>>>,
}

/// A server chain that passed, the time window in which that outcome cannot change, and the
/// host names it matched. Servers present the same chain on every connection, and OpenSSL 3
/// needs most of a millisecond to parse and verify it again.
struct VerifiedChain {
    ders: Vec<Vec<u8>>,
    valid_from: i64,
    valid_until: i64,
    hosts: Vec<String>,
}

/// How many distinct server chains one configuration remembers.
const CACHED_CHAINS: usize = 8;

impl LibpqVerifier {
    fn same_chain(
        c: &VerifiedChain,
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
    ) -> bool {
        c.ders.len() == intermediates.len() + 1
            && c.ders[0] == end_entity
            && c.ders[1..]
                .iter()
                .zip(intermediates)
                .all(|(a, b)| a.as_slice() == b.as_ref())
    }

    /// Whether this chain was verified, for this host when the host matters, and `now` is
    /// still in its window.
    fn cached(
        &self,
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
        host: &str,
        now: i64,
    ) -> bool {
        let Some(cache) = &self.cache else {
            return false;
        };
        let cache = cache.lock().expect("verifier cache");
        cache.iter().any(|c| {
            Self::same_chain(c, end_entity, intermediates)
                && c.valid_from <= now
                && now < c.valid_until
                && (!self.check_host || c.hosts.iter().any(|h| h == host))
        })
    }

    fn remember(
        &self,
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
        window: (i64, i64),
        host: &str,
    ) {
        let Some(cache) = &self.cache else { return };
        let mut cache = cache.lock().expect("verifier cache");
        if let Some(c) = cache
            .iter_mut()
            .find(|c| Self::same_chain(c, end_entity, intermediates))
        {
            (c.valid_from, c.valid_until) = window;
            if !c.hosts.iter().any(|h| h == host) {
                c.hosts.push(host.to_string());
            }
            return;
        }
        if cache.len() >= CACHED_CHAINS {
            cache.remove(0);
        }
        let mut ders = vec![end_entity.to_vec()];
        ders.extend(intermediates.iter().map(|c| c.to_vec()));
        cache.push(VerifiedChain {
            ders,
            valid_from: window.0,
            valid_until: window.1,
            hosts: vec![host.to_string()],
        });
    }
}

impl fmt::Debug for LibpqVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LibpqVerifier")
            .field("verifies_chain", &self.store.is_some())
            .field("check_host", &self.check_host)
            .finish()
    }
}

fn rejected(e: Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(e),
    )))
}

impl ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(store) = &self.store else {
            return Ok(ServerCertVerified::assertion());
        };
        let host = if self.check_host {
            self.host_override
                .clone()
                .unwrap_or_else(|| host_of(server_name))
        } else {
            String::new()
        };
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if self.cached(end_entity, intermediates, &host, now) {
            return Ok(ServerCertVerified::assertion());
        }
        let bad = |e: openssl::error::ErrorStack| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
                Arc::new(e),
            )))
        };
        let leaf = X509::from_der(end_entity).map_err(bad)?;
        let chain = intermediates
            .iter()
            .map(|c| X509::from_der(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let window = verify_chain(store, &leaf, &chain).map_err(rejected)?;
        if self.check_host {
            check_host_name(&leaf, &host).map_err(rejected)?;
        }
        self.remember(end_entity, intermediates, window, &host);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(&self.algorithms, message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(&self.algorithms, message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn supported_in_tls13(s: SignatureScheme) -> bool {
    use SignatureScheme as S;
    matches!(
        s,
        S::ECDSA_NISTP256_SHA256
            | S::ECDSA_NISTP384_SHA384
            | S::ECDSA_NISTP521_SHA512
            | S::RSA_PSS_SHA256
            | S::RSA_PSS_SHA384
            | S::RSA_PSS_SHA512
            | S::ED25519
            | S::ED448
    )
}

/// One DER element: (tag, contents, rest).
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let v = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        rest = &rest[n..];
        v
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The contents of a certificate's SubjectPublicKeyInfo, read straight from the DER: OpenSSL
/// 3's decoder takes a quarter of a millisecond per certificate, on every connection.
fn spki_of(cert: &[u8]) -> Option<&[u8]> {
    let (_, cert_body, _) = der_next(cert)?;
    let (_, tbs, _) = der_next(cert_body)?;
    let (tag, _, after_version) = der_next(tbs)?;
    // The version field ([0] EXPLICIT) is absent from X.509 v1 certificates.
    let mut rest = if tag == 0xa0 { after_version } else { tbs };
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        rest = der_next(rest)?.2;
    }
    let (tag, spki, _) = der_next(rest)?;
    (tag == 0x30).then_some(spki)
}

/// The handshake signature, checked with ring's algorithms against the certificate's key.
/// rustls' `verify_tls1x_signature` helpers parse the certificate with webpki, which refuses
/// X.509 v1; the key is taken from the SubjectPublicKeyInfo instead, as webpki itself does.
fn verify_signature(
    algs: &WebPkiSupportedAlgorithms,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    tls13: bool,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let bad_cert = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding);
    if tls13 && !supported_in_tls13(dss.scheme) {
        return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let spki_body = spki_of(cert).ok_or_else(bad_cert)?;
    let (_, alg_id, rest) = der_next(spki_body).ok_or_else(bad_cert)?;
    let (_, bits, _) = der_next(rest).ok_or_else(bad_cert)?;
    let key = bits.get(1..).ok_or_else(bad_cert)?;
    let candidates = algs
        .mapping
        .iter()
        .find(|(s, _)| *s == dss.scheme)
        .map(|(_, a)| *a)
        .ok_or(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ))?;
    let candidates = if tls13 { &candidates[..1] } else { candidates };
    for alg in candidates {
        if alg.public_key_alg_id().as_ref() != alg_id {
            continue;
        }
        return alg
            .verify_signature(key, message, dss.signature())
            .map(|_| HandshakeSignatureValid::assertion())
            .map_err(|_| {
                rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
            });
    }
    Err(rustls::Error::InvalidCertificate(
        rustls::CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
            signature_algorithm_id: Vec::new(),
            public_key_algorithm_id: alg_id.to_vec(),
        },
    ))
}

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

/// One TLS handshake towards one host; made by [`MakeTls`].
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
pub fn tls_server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    use pgssl_tests::{seed_recipe, Ca, CertSpec};

    fn config(conninfo: &str) -> Config {
        Config::from_conninfo_with_env(conninfo, &|_| None, None).unwrap()
    }

    fn roots(dir: &Path, extra: &str) -> Arc<X509Store> {
        load_roots(&config(&format!(
            "sslmode=verify-ca sslrootcert={}/root.crt {extra}",
            dir.display()
        )))
        .unwrap()
        .expect("a store")
        .0
    }

    fn chain_error(store: &X509Store, cert: &X509) -> Option<String> {
        verify_chain(store, cert, &[]).err().map(|e| e.to_string())
    }

    #[test]
    fn chains_are_checked_as_openssl_checks_them_for_libpq() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca = Ca::new("unit CA");
        // Text before the PEM block, as `openssl x509 -text` writes it.
        let mut root = b"Certificate:\n    Data: (text that OpenSSL skips)\n".to_vec();
        root.extend(ca.cert.to_pem().unwrap());
        fs::write(d.join("root.crt"), root).unwrap();
        let store = roots(d, "");

        assert_eq!(
            chain_error(&store, &ca.issue(&CertSpec::server()).cert),
            None
        );
        let expired = ca.issue(&CertSpec::server().validity(-7200, -3600)).cert;
        assert!(chain_error(&store, &expired)
            .unwrap()
            .contains("certificate has expired"));
        let future = ca.issue(&CertSpec::server().validity(3600, 7200)).cert;
        assert!(chain_error(&store, &future)
            .unwrap()
            .contains("certificate is not yet valid"));
        let stranger = Ca::new("other CA").issue(&CertSpec::server()).cert;
        let err = chain_error(&store, &stranger).unwrap();
        assert!(
            err.contains("unable to get local issuer certificate") && err.contains("depth 0"),
            "{err}"
        );
        // A client-only certificate is not a server certificate (OpenSSL's "SSL server" purpose).
        let client_only = ca.issue(&CertSpec::client(&[("CN", "x")])).cert;
        let err = chain_error(&store, &client_only);
        assert!(
            err.as_deref()
                .unwrap_or("")
                .contains("unsuitable certificate purpose"),
            "{err:?}"
        );

        // Revoked by the CRL given in sslcrl; the CRL check then covers the whole chain.
        let revoked = ca.issue(&CertSpec::server()).cert;
        fs::write(d.join("x.crl"), ca.crl(&[&revoked])).unwrap();
        let with_crl = roots(d, &format!("sslcrl={}/x.crl", d.display()));
        assert!(chain_error(&with_crl, &revoked)
            .unwrap()
            .contains("certificate revoked"));
        assert_eq!(
            chain_error(&with_crl, &ca.issue(&CertSpec::server()).cert),
            None
        );
        // The same CRL found through sslcrldir (a directory `openssl rehash` indexed).
        let crl_dir = d.join("crls");
        fs::create_dir(&crl_dir).unwrap();
        fs::write(crl_dir.join("ca.crl"), ca.crl(&[&revoked])).unwrap();
        pgssl_tests::openssl(d, &["rehash", crl_dir.to_str().unwrap()]);
        let with_dir = roots(d, &format!("sslcrldir={}", crl_dir.display()));
        assert!(chain_error(&with_dir, &revoked)
            .unwrap()
            .contains("certificate revoked"));
        // An unreadable CRL is ignored, as libpq ignores it.
        let missing_crl = roots(d, &format!("sslcrl={}/none.crl", d.display()));
        assert_eq!(chain_error(&missing_crl, &revoked), None);
    }

    #[test]
    fn weak_keys_are_refused_at_libssls_security_level() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A 512-bit RSA leaf: below security level 1 (80 bits), which libssl applies at the
        // least, so libpq's OpenSSL refuses it.
        pgssl_tests::openssl(
            d,
            &[
                "req",
                "-new",
                "-x509",
                "-days",
                "2",
                "-nodes",
                "-out",
                "root.crt",
                "-keyout",
                "ca.key",
                "-subj",
                "/CN=weak test CA",
            ],
        );
        pgssl_tests::openssl(d, &["genrsa", "-out", "weak.key", "512"]);
        pgssl_tests::openssl(
            d,
            &[
                "req", "-new", "-key", "weak.key", "-out", "weak.csr", "-subj", "/CN=weak",
            ],
        );
        pgssl_tests::openssl(
            d,
            &[
                "x509", "-req", "-in", "weak.csr", "-CA", "root.crt", "-CAkey", "ca.key", "-days",
                "1", "-out", "weak.crt",
            ],
        );
        let store = roots(d, "");
        let weak = X509::from_pem(&fs::read(d.join("weak.crt")).unwrap()).unwrap();
        let err = chain_error(&store, &weak).expect("refused");
        assert!(err.contains("key too weak"), "{err}");
    }

    #[test]
    fn the_seed_documents_v1_certificates_verify_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        seed_recipe(d);
        let store = load_roots(&config(&format!(
            "sslmode=verify-full sslrootcert={}/ca.crt",
            d.display()
        )))
        .unwrap()
        .unwrap()
        .0;
        let server = X509::from_pem(&fs::read(d.join("server.crt")).unwrap()).unwrap();
        assert_eq!(server.version(), 0, "openssl x509 -req makes X.509 v1");
        verify_chain(&store, &server, &[]).unwrap();
        check_host_name(&server, "127.0.0.1").unwrap();
        assert!(check_host_name(&server, "localhost").is_err());
        // The v1 client certificate with text before its PEM block loads (rustls' own
        // loader refuses it).
        let c = config(&format!(
            "sslcert={0}/client.crt sslkey={0}/client.key",
            d.display()
        ));
        let (path, key) = load_client_cert(&c).unwrap().expect("a client certificate");
        assert_eq!(path, d.join("client.crt"));
        assert_eq!(key.cert.len(), 1);
    }

    fn client_files(d: &Path, key_pem: &[u8], mode: u32) -> Config {
        let ca = Ca::new("client CA");
        let issued = ca.issue(&CertSpec::client(&[("CN", "u")]));
        fs::write(d.join("c.crt"), issued.cert.to_pem().unwrap()).unwrap();
        let key_pem = if key_pem.is_empty() {
            issued.key.private_key_to_pem_pkcs8().unwrap()
        } else {
            key_pem.to_vec()
        };
        fs::write(d.join("c.key"), key_pem).unwrap();
        fs::set_permissions(d.join("c.key"), fs::Permissions::from_mode(mode)).unwrap();
        config(&format!("sslcert={0}/c.crt sslkey={0}/c.key", d.display()))
    }

    #[test]
    fn client_certificate_files_follow_libpq() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // No certificate file: no certificate, not an error.
        assert!(
            load_client_cert(&config(&format!("sslcert={}/none.crt", d.display())))
                .unwrap()
                .is_none()
        );
        // A certificate without its key: an error.
        let c = client_files(d, b"", 0o600);
        fs::remove_file(d.join("c.key")).unwrap();
        assert!(matches!(
            load_client_cert(&c),
            Err(Error::MissingKey { .. })
        ));
        // Permissions: 0600 fine; group/world access refused (root-owned: up to 0640).
        let c = client_files(d, b"", 0o600);
        assert!(load_client_cert(&c).unwrap().is_some());
        let owned_by_root = fs::metadata(d.join("c.key")).unwrap().uid() == 0;
        fs::set_permissions(d.join("c.key"), fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(load_client_cert(&c).is_ok(), owned_by_root);
        fs::set_permissions(d.join("c.key"), fs::Permissions::from_mode(0o604)).unwrap();
        let err = load_client_cert(&c).expect_err("world-readable key refused");
        assert!(
            err.to_string().contains("has group or world access"),
            "{err}"
        );
        // A key of another pair.
        let other = Ca::new("x").issue(&CertSpec::client(&[("CN", "u")])).key;
        let c = client_files(d, &other.private_key_to_pem_pkcs8().unwrap(), 0o600);
        assert!(matches!(
            load_client_cert(&c),
            Err(Error::KeyMismatch { .. })
        ));
    }

    #[test]
    fn private_key_formats() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let ec = PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let ed = PKey::generate_ed25519().unwrap();
        let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
            ("PKCS#8 PEM", ed.private_key_to_pem_pkcs8().unwrap(), None),
            (
                "PKCS#1 PEM",
                rsa.rsa().unwrap().private_key_to_pem().unwrap(),
                None,
            ),
            (
                "SEC1 PEM",
                ec.ec_key().unwrap().private_key_to_pem().unwrap(),
                None,
            ),
            ("PKCS#8 DER", ec.private_key_to_pkcs8().unwrap(), None),
            ("PKCS#1 DER", rsa.private_key_to_der().unwrap(), None),
            (
                "encrypted PKCS#8 PEM",
                ec.private_key_to_pem_pkcs8_passphrase(
                    openssl::symm::Cipher::aes_256_cbc(),
                    b"secret",
                )
                .unwrap(),
                Some("secret"),
            ),
        ];
        for (what, bytes, password) in cases {
            fs::write(&p, &bytes).unwrap();
            assert!(load_private_key(&p, password).is_ok(), "{what}");
        }
        let encrypted = ec
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"secret")
            .unwrap();
        fs::write(&p, encrypted).unwrap();
        let err = load_private_key(&p, None).unwrap_err().to_string();
        assert!(err.contains("give sslpassword"), "{err}");
        assert!(load_private_key(&p, Some("wrong")).is_err());
    }

    #[test]
    fn channel_binding_hash_follows_the_signature() {
        let ec = Ca::new("ec").issue(&CertSpec::server()).cert;
        let der = ec.to_der().unwrap();
        assert_eq!(
            tls_server_end_point(&der).unwrap(),
            ec.digest(MessageDigest::sha256()).unwrap().to_vec()
        );
        let ed = Ca::with_key_type("ed", pgssl_tests::KeyType::Ed25519)
            .issue(&CertSpec::server())
            .cert;
        assert_eq!(
            tls_server_end_point(&ed.to_der().unwrap()),
            None,
            "Ed25519 has no hash: libpq cannot bind either"
        );
    }

    #[test]
    fn require_verifies_only_with_a_root_file_and_verify_modes_need_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("root.crt"), Ca::new("r").cert.to_pem().unwrap()).unwrap();
        let setup = |s: &str| {
            TlsSetup::new(&config(&format!("{s} sslcert=/nonexistent"))).map(|t| t.verification)
        };
        let root = format!("sslrootcert={}/root.crt", d.display());
        let none = format!("sslrootcert={}/none.crt", d.display());
        assert_eq!(
            setup(&format!("sslmode=require {none}")).unwrap(),
            Verification::None
        );
        assert_eq!(
            setup(&format!("sslmode=require {root}")).unwrap(),
            Verification::Chain
        );
        assert_eq!(
            setup(&format!("sslmode=prefer {root}")).unwrap(),
            Verification::Chain
        );
        assert_eq!(
            setup(&format!("sslmode=verify-ca {root}")).unwrap(),
            Verification::Chain
        );
        assert_eq!(
            setup(&format!("sslmode=verify-full {root}")).unwrap(),
            Verification::ChainAndHostName
        );
        assert!(matches!(
            setup(&format!("sslmode=verify-ca {none}")),
            Err(Error::NoRootCertificate { .. })
        ));
        assert!(matches!(
            setup("sslmode=verify-full"),
            Err(Error::NoRootCertificate { path: None, .. })
        ));
        assert!(setup(&format!("sslmode=require {root} ssl_min_protocol_version=TLSv1 ssl_max_protocol_version=TLSv1.1")).is_err());
    }

    #[test]
    fn remembered_chains_still_get_the_host_name_checked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca = Ca::new("cache CA");
        fs::write(d.join("root.crt"), ca.cert.to_pem().unwrap()).unwrap();
        let setup = TlsSetup::new(&config(&format!(
            "sslmode=verify-full sslrootcert={}/root.crt sslcert=/nonexistent",
            d.display()
        )))
        .unwrap();
        let v = &setup.verifier;
        let leaf = CertificateDer::from(ca.issue(&CertSpec::server()).cert.to_der().unwrap());
        let name = |h: &str| ServerName::try_from(h.to_string()).unwrap();
        let now = UnixTime::now();
        for _ in 0..2 {
            assert!(v
                .verify_server_cert(&leaf, &[], &name("localhost"), &[], now)
                .is_ok());
        }
        assert!(v.cached(leaf.as_ref(), &[], "localhost", now.as_secs() as i64));
        let err = v
            .verify_server_cert(&leaf, &[], &name("db.example.com"), &[], now)
            .unwrap_err();
        assert!(format!("{err:?}").contains("HostNameMismatch"), "{err}");
        // Outside the certificate's validity the remembered outcome does not apply.
        let later = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            now.as_secs() + 2 * 365 * 86_400,
        ));
        assert!(!v.cached(leaf.as_ref(), &[], "localhost", later.as_secs() as i64));
    }
}

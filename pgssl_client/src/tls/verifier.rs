//! The server certificate verifier: OpenSSL's chain check, which is what libpq runs
//! (`SSL_VERIFY_PEER` against the root certificate file and CRLs), then for `verify-full`
//! libpq's host-name rule. rustls' own verifier refuses X.509 v1 certificates and never
//! reads the CN, both of which libpq accepts.
//!
//! A refusal carries the verifier's own [`Error`], in libpq's words, to the caller.

use std::fmt;
use std::sync::Arc;

use openssl::stack::Stack;
use openssl::x509::store::X509Store;
use openssl::x509::{X509Ref, X509StoreContext, X509};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

use super::cache::ChainCache;
use super::certificate::{name_to_string, unix_seconds};
use super::der::verify_signature;
use super::hostname::{check_host_name, host_of};
use crate::error::Error;

/// The server certificate verifier of one configuration.
pub(crate) struct LibpqVerifier {
    /// `None` when libpq would not verify the server at all.
    store: Option<Arc<X509Store>>,
    check_host: bool,
    algorithms: WebPkiSupportedAlgorithms,
    /// The host text to compare, for hosts rustls cannot name (libpq accepts "127.1").
    host_override: Option<String>,
    /// Chains already accepted (absent when CRLs are checked: a CRL can expire).
    pub(super) cache: Option<ChainCache>,
}

impl LibpqVerifier {
    /// A verifier against `store` (none: accept any certificate, as libpq does without a
    /// root certificate below verify-ca), checking the host name when `check_host`.
    pub(super) fn new(store: Option<Arc<X509Store>>, check_host: bool, cache: bool) -> Self {
        LibpqVerifier {
            store,
            check_host,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            host_override: None,
            cache: cache.then(ChainCache::default),
        }
    }

    /// The same checks, comparing `host` as written rather than the name rustls was given.
    pub(super) fn for_host_text(&self, host: &str) -> Self {
        LibpqVerifier {
            store: self.store.clone(),
            check_host: self.check_host,
            algorithms: self.algorithms,
            host_override: Some(host.to_string()),
            cache: self.cache.as_ref().map(|_| ChainCache::default()),
        }
    }

    /// Whether the host name is checked (`verify-full`).
    pub(super) fn checks_host(&self) -> bool {
        self.check_host
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

/// Refuses the certificate with `error`, which the handshake's caller gets back.
fn refuse(error: Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
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
        let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let host_checked = self.check_host.then_some(host.as_str());
        if let Some(cache) = &self.cache {
            if cache.contains(end_entity, intermediates, host_checked, now_secs) {
                return Ok(ServerCertVerified::assertion());
            }
        }
        let unreadable = |e: openssl::error::ErrorStack| {
            refuse(Error::Tls {
                reason: format!("server certificate could not be parsed: {e}"),
            })
        };
        let leaf = X509::from_der(end_entity).map_err(unreadable)?;
        let chain = intermediates
            .iter()
            .map(|c| X509::from_der(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unreadable)?;
        let window = verify_chain(store, &leaf, &chain).map_err(refuse)?;
        if self.check_host {
            check_host_name(&leaf, &host).map_err(refuse)?;
        }
        if let Some(cache) = &self.cache {
            cache.remember(end_entity, intermediates, window, &host);
        }
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

/// Verifies `leaf` with the untrusted `intermediates` against `store`, as OpenSSL does for
/// libpq with `SSL_VERIFY_PEER` (purpose "SSL server", CRL flags as set on the store).
/// On success returns the window in which every certificate of the verified chain is valid
/// (latest notBefore, earliest notAfter, in Unix seconds): outside it the outcome may change.
pub(super) fn verify_chain(
    store: &X509Store,
    leaf: &X509Ref,
    intermediates: &[X509],
) -> Result<(i64, i64), Error> {
    let internal = |e: openssl::error::ErrorStack| Error::Tls {
        reason: format!("OpenSSL: {e}"),
    };
    let mut chain = Stack::new().map_err(internal)?;
    for c in intermediates {
        chain.push(c.clone()).map_err(internal)?;
    }
    let mut ctx = X509StoreContext::new().map_err(internal)?;
    let outcome = ctx
        .init(store, leaf, &chain, |c| {
            if c.verify_cert()? {
                let mut window = (i64::MIN, i64::MAX);
                for cert in c.chain().into_iter().flatten() {
                    window.0 = window
                        .0
                        .max(unix_seconds(cert.not_before()).unwrap_or(i64::MAX));
                    window.1 = window
                        .1
                        .min(unix_seconds(cert.not_after()).unwrap_or(i64::MIN));
                }
                return Ok(Ok(window));
            }
            Ok(Err(Error::UntrustedServerCertificate {
                subject: c
                    .current_cert()
                    .map(|x| name_to_string(x.subject_name()))
                    .unwrap_or_default(),
                depth: c.error_depth(),
                reason: c.error().error_string().to_string(),
            }))
        })
        .map_err(internal)?;
    outcome
}

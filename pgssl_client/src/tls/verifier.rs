//! The server certificate verifier: OpenSSL's chain check, which is what libpq runs
//! (`SSL_VERIFY_PEER` against the root certificate file and CRLs), then for `verify-full`
//! libpq's host-name rule. rustls' own verifier refuses X.509 v1 certificates and never
//! reads the CN, both of which libpq accepts.
//!
//! A refusal reaches two parties. The server gets the TLS alert OpenSSL would send for the
//! same failure (`unknown_ca`, `certificate_expired`, `certificate_revoked`, ...), because
//! rustls derives the alert from the [`CertificateError`] returned here. The caller gets the
//! verifier's own [`Error`], in libpq's words, through a slot the handshake's task carries
//! ([`with_failure_slot`]).

use std::cell::Cell;
use std::fmt;
use std::future::Future;
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
use super::der::{verify_signature, RSA_PSS_PSS};
use super::hostname::{check_host_name, host_of};
use crate::error::Error;

tokio::task_local! {
    /// The verifier's error for the handshake this task runs, for the caller.
    static FAILURE: Cell<Option<Error>>;
}

/// Runs a handshake, and returns its outcome with the verifier's own error when the
/// certificate check is what failed.
pub(super) async fn with_failure_slot<F: Future>(handshake: F) -> (F::Output, Option<Error>) {
    FAILURE
        .scope(Cell::new(None), async move {
            let outcome = handshake.await;
            (outcome, FAILURE.with(Cell::take))
        })
        .await
}

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

    /// The root certificate store, when the chain is verified.
    #[cfg(test)]
    pub(super) fn store(&self) -> Option<&X509Store> {
        self.store.as_deref()
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

/// Refuses the certificate: `kind` for rustls (and so the alert the server gets), `error`
/// for the caller.
fn refuse(kind: CertificateError, error: Error) -> rustls::Error {
    // Outside a handshake run by `with_failure_slot` (a direct call) there is no slot, and
    // the caller has rustls' error alone.
    let _ = FAILURE.try_with(|slot| slot.set(Some(error)));
    rustls::Error::InvalidCertificate(kind)
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
            refuse(
                CertificateError::BadEncoding,
                Error::Tls {
                    reason: format!("server certificate could not be parsed: {e}"),
                },
            )
        };
        let leaf = X509::from_der(end_entity).map_err(unreadable)?;
        let chain = intermediates
            .iter()
            .map(|c| X509::from_der(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unreadable)?;
        let window = match verify_chain(store, &leaf, &chain) {
            Ok(window) => window,
            Err(ChainError::Internal(e)) => {
                return Err(refuse(
                    CertificateError::Other(OtherError(Arc::new(e.clone()))),
                    e,
                ))
            }
            Err(ChainError::Refused(refusal)) => {
                return Err(refuse(refusal.certificate_error(now), refusal.into_error()))
            }
        };
        if self.check_host {
            check_host_name(&leaf, &host).map_err(|e| {
                let kind = match (&e, ServerName::try_from(host.clone())) {
                    (Error::HostNameMismatch { presented, .. }, Ok(expected)) => {
                        CertificateError::NotValidForNameContext {
                            expected,
                            presented: presented.clone(),
                        }
                    }
                    _ => CertificateError::NotValidForName,
                };
                refuse(kind, e)
            })?;
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
        let mut schemes = self.algorithms.supported_schemes();
        schemes.extend(
            RSA_PSS_PSS
                .iter()
                .map(|(code, _)| SignatureScheme::from(*code)),
        );
        schemes
    }
}

/// Why OpenSSL refused a chain.
#[derive(Debug)]
pub(super) struct ChainRefusal {
    /// OpenSSL's `X509_V_ERR_*` code.
    code: i32,
    /// OpenSSL's reason, as libpq reports it.
    reason: String,
    /// The subject of the certificate that failed.
    subject: String,
    /// Its position in the chain (0 = the server's own certificate).
    depth: u32,
    /// Its validity, Unix seconds.
    not_before: Option<i64>,
    not_after: Option<i64>,
}

/// A chain check that did not pass.
#[derive(Debug)]
pub(super) enum ChainError {
    /// OpenSSL refused the chain.
    Refused(ChainRefusal),
    /// OpenSSL could not run the check.
    Internal(Error),
}

// OpenSSL's X509_V_ERR_* codes (x509_vfy.h; the same in OpenSSL 1.1 and 3).
const UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
const UNABLE_TO_GET_CRL: i32 = 3;
const UNABLE_TO_DECRYPT_CERT_SIGNATURE: i32 = 4;
const UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: i32 = 6;
const CERT_SIGNATURE_FAILURE: i32 = 7;
const CRL_SIGNATURE_FAILURE: i32 = 8;
const CERT_NOT_YET_VALID: i32 = 9;
const CERT_HAS_EXPIRED: i32 = 10;
const CRL_HAS_EXPIRED: i32 = 12;
const ERROR_IN_CERT_NOT_BEFORE_FIELD: i32 = 13;
const ERROR_IN_CRL_NEXT_UPDATE_FIELD: i32 = 16;
const DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
const SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
const UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
const CERT_CHAIN_TOO_LONG: i32 = 22;
const CERT_REVOKED: i32 = 23;
const NO_ISSUER_PUBLIC_KEY: i32 = 24;
const PATH_LENGTH_EXCEEDED: i32 = 25;
const INVALID_PURPOSE: i32 = 26;
const UNABLE_TO_GET_CRL_ISSUER: i32 = 33;
const UNHANDLED_CRITICAL_EXTENSION: i32 = 34;
const INVALID_NON_CA: i32 = 37;
const INVALID_CA: i32 = 79;

impl ChainRefusal {
    /// The rustls error whose alert is the one OpenSSL's `ssl_verify_alarm_type` sends for
    /// the same failure: `unknown_ca` for a missing or unusable issuer, `certificate_expired`,
    /// `certificate_revoked`, `decrypt_error` for a bad signature, `unsupported_certificate`
    /// for the wrong purpose, `bad_certificate` for unreadable fields. Policy refusals
    /// (weak key or digest, ...) stay `certificate_unknown`, with the caller's error inside.
    fn certificate_error(&self, now: UnixTime) -> CertificateError {
        let time = |secs: Option<i64>| {
            secs.and_then(|s| u64::try_from(s).ok())
                .map(|s| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s)))
        };
        match self.code {
            UNABLE_TO_GET_ISSUER_CERT
            | UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            | UNABLE_TO_VERIFY_LEAF_SIGNATURE
            | DEPTH_ZERO_SELF_SIGNED_CERT
            | SELF_SIGNED_CERT_IN_CHAIN
            | CERT_CHAIN_TOO_LONG
            | PATH_LENGTH_EXCEEDED
            | NO_ISSUER_PUBLIC_KEY
            | INVALID_NON_CA
            | INVALID_CA => CertificateError::UnknownIssuer,
            UNABLE_TO_GET_CRL | UNABLE_TO_GET_CRL_ISSUER => {
                CertificateError::UnknownRevocationStatus
            }
            CERT_HAS_EXPIRED => match time(self.not_after) {
                Some(not_after) => CertificateError::ExpiredContext {
                    time: now,
                    not_after,
                },
                None => CertificateError::Expired,
            },
            CERT_NOT_YET_VALID => match time(self.not_before) {
                Some(not_before) => CertificateError::NotValidYetContext {
                    time: now,
                    not_before,
                },
                None => CertificateError::NotValidYet,
            },
            // OpenSSL answers an expired CRL with certificate_expired, where rustls' own
            // ExpiredRevocationList would send unknown_ca.
            CRL_HAS_EXPIRED => CertificateError::Expired,
            CERT_REVOKED => CertificateError::Revoked,
            CERT_SIGNATURE_FAILURE | CRL_SIGNATURE_FAILURE => CertificateError::BadSignature,
            INVALID_PURPOSE => CertificateError::InvalidPurpose,
            UNHANDLED_CRITICAL_EXTENSION => CertificateError::UnhandledCriticalExtension,
            UNABLE_TO_DECRYPT_CERT_SIGNATURE..=UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY
            | ERROR_IN_CERT_NOT_BEFORE_FIELD..=ERROR_IN_CRL_NEXT_UPDATE_FIELD => {
                CertificateError::BadEncoding
            }
            _ => CertificateError::Other(OtherError(Arc::new(self.to_error()))),
        }
    }

    fn to_error(&self) -> Error {
        Error::UntrustedServerCertificate {
            subject: self.subject.clone(),
            depth: self.depth,
            reason: self.reason.clone(),
        }
    }

    fn into_error(self) -> Error {
        Error::UntrustedServerCertificate {
            subject: self.subject,
            depth: self.depth,
            reason: self.reason,
        }
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
) -> Result<(i64, i64), ChainError> {
    let internal = |e: openssl::error::ErrorStack| {
        ChainError::Internal(Error::Tls {
            reason: format!("OpenSSL: {e}"),
        })
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
            let failed = c.current_cert();
            Ok(Err(ChainRefusal {
                code: c.error().as_raw(),
                reason: c.error().error_string().to_string(),
                subject: failed
                    .map(|x| name_to_string(x.subject_name()))
                    .unwrap_or_default(),
                depth: c.error_depth(),
                not_before: failed.and_then(|x| unix_seconds(x.not_before())),
                not_after: failed.and_then(|x| unix_seconds(x.not_after())),
            }))
        })
        .map_err(internal)?;
    outcome.map_err(ChainError::Refused)
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::Refused(r) => r.to_error().fmt(f),
            ChainError::Internal(e) => e.fmt(f),
        }
    }
}

//! The rustls side of a connection, one module per job: [`files`] reads the root
//! certificates, CRLs, client certificate and key as libpq reads them; [`verifier`] is the
//! server certificate verifier (OpenSSL's chain check, remembered in [`cache`], and libpq's
//! host-name rule from [`hostname`]); [`der`] checks handshake signatures against the keys of
//! certificates rustls' own parser refuses; [`stream`] is the tokio-postgres seam
//! ([`MakeTls`]); [`certificate`] describes certificates for reports.
//!
//! [`TlsSetup`] ties them together: one rustls `ClientConfig` per [`Config`] and version of
//! its files, which [`reload`] rebuilds when the files change.

mod auth_watch;
mod cache;
mod certificate;
mod der;
mod files;
mod hostname;
mod reload;
mod stream;
mod verifier;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use crate::config::{Config, RequireAuth, SslCertMode, SslMode, TlsVersion};
use crate::error::Error;
use files::{load_client_cert, load_roots, ClientCert};
use hostname::host_of;
use verifier::LibpqVerifier;

pub use certificate::CertificateSummary;
pub(crate) use reload::TlsFiles;
pub(crate) use stream::AttemptLog;
pub use stream::{MakeTls, TlsConnector, TlsInfo, TlsStream};

/// What the client verifies about the server, decided from sslmode and the files present;
/// reported in [`TlsInfo::verification`].
///
/// ```
/// use pgssl_client::{TlsInfo, Verification};
///
/// fn describe(tls: &TlsInfo) -> &'static str {
///     match tls.verification {
///         Verification::None => "encrypted, server not verified",
///         Verification::Chain => "server certificate from a trusted CA",
///         Verification::ChainAndHostName => "trusted CA and the host name checked",
///     }
/// }
/// # let _ = describe;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Nothing: no root certificate file and sslmode below verify-ca.
    None,
    /// The chain leads to a trusted root (and is not expired, not revoked).
    Chain,
    /// The chain, and the host name against the certificate.
    ChainAndHostName,
}

/// What the client trusts, read from `sslrootcert`, `sslcrl` and `sslcrldir`: the server
/// certificate verifier and what it checks.
#[derive(Clone)]
pub(crate) struct Trust {
    verifier: Arc<LibpqVerifier>,
    verification: Verification,
    crl_checked: bool,
}

impl Trust {
    /// Reads the root certificate and CRLs as libpq's `initialize_SSL` does.
    pub(crate) fn load(config: &Config) -> Result<Trust, Error> {
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
        let verifier = Arc::new(LibpqVerifier::new(
            store,
            mode == SslMode::VerifyFull,
            cacheable,
        ));
        Ok(Trust {
            verifier,
            verification,
            crl_checked,
        })
    }
}

/// The client certificate and key from `sslcert` and `sslkey`, when libpq would send one.
#[derive(Clone)]
pub(crate) struct Identity {
    resolver: Option<Arc<ClientCert>>,
    client_cert: Option<PathBuf>,
}

impl Identity {
    /// Reads the certificate and its key, and checks that they are a pair.
    pub(crate) fn load(config: &Config) -> Result<Identity, Error> {
        Ok(match load_client_cert(config)? {
            Some((path, key)) => Identity {
                resolver: Some(Arc::new(ClientCert(Arc::new(key)))),
                client_cert: Some(path),
            },
            None => Identity {
                resolver: None,
                client_cert: None,
            },
        })
    }
}

/// Everything TLS needs for one connection attempt, from a [`Config`] and its files.
pub(crate) struct TlsSetup {
    config: Arc<ClientConfig>,
    trust: Trust,
    identity: Identity,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    enable_sni: bool,
    alpn: bool,
    pub(crate) verification: Verification,
    pub(crate) crl_checked: bool,
    pub(crate) client_cert: Option<PathBuf>,
    cert_mode: SslCertMode,
    require_auth: Option<RequireAuth>,
}

impl TlsSetup {
    /// Reads the root certificate, CRL, client certificate and key as libpq's
    /// `initialize_SSL` does, and builds the rustls configuration.
    #[cfg(test)]
    pub(crate) fn new(config: &Config) -> Result<TlsSetup, Error> {
        let trust = Trust::load(config)?;
        let identity = Identity::load(config)?;
        TlsSetup::assemble(config, trust, identity)
    }

    /// The rustls configuration from what was read.
    pub(crate) fn assemble(
        config: &Config,
        trust: Trust,
        identity: Identity,
    ) -> Result<TlsSetup, Error> {
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
        let rustls_config = build_config(
            trust.verifier.clone(),
            &identity.resolver,
            &versions,
            enable_sni,
            alpn,
        )?;
        Ok(TlsSetup {
            config: rustls_config,
            verification: trust.verification,
            crl_checked: trust.crl_checked,
            client_cert: identity.client_cert.clone(),
            trust,
            identity,
            versions,
            enable_sni,
            alpn,
            cert_mode: config.ssl_cert_mode,
            require_auth: config.require_auth.clone(),
        })
    }

    /// What this setup trusts, to share with the next one when those files did not change.
    pub(crate) fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The client certificate, to share with the next setup when its files did not change.
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    fn build(&self, verifier: Arc<LibpqVerifier>) -> Result<Arc<ClientConfig>, Error> {
        build_config(
            verifier,
            &self.identity.resolver,
            &self.versions,
            self.enable_sni,
            self.alpn,
        )
    }

    /// The configuration for one host. Hosts rustls cannot name (libpq accepts "127.1")
    /// get a configuration of their own whose verifier compares the text libpq would.
    fn for_host(&self, host: &str) -> Result<(Arc<ClientConfig>, ServerName<'static>), Error> {
        if let Ok(name) = ServerName::try_from(host.to_string()) {
            if host_of(&name) == host || !self.trust.verifier.checks_host() {
                return Ok((self.config.clone(), name));
            }
        }
        let verifier = Arc::new(self.trust.verifier.for_host_text(host));
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

#[cfg(test)]
mod tests;

//! The files libpq reads for TLS, read as libpq (`initialize_SSL`) and OpenSSL read them:
//! the root certificates and CRLs into an OpenSSL store, the client certificate chain and
//! its private key for rustls.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::pkey::{PKey, Private};
use openssl::ssl::SslFiletype;
use openssl::x509::store::{X509Lookup, X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509PurposeId, X509};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use crate::config::{Config, SslMode};
use crate::error::Error;

fn file_error(what: &'static str, path: &Path, reason: impl fmt::Display) -> Error {
    Error::File {
        what,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The root certificate store, or `None` when libpq would not verify the server; with it,
/// whether CRLs are checked.
pub(super) fn load_roots(config: &Config) -> Result<Option<(Arc<X509Store>, bool)>, Error> {
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
        // libpq loads the file with X509_load_cert_crl_file, which succeeds when it holds
        // any certificate or CRL: a file of certificates alone still switches CRL checking
        // on (and, finding no CRL, every chain fails), and its certificates join the store.
        let lookup = builder.add_lookup(X509Lookup::file()).map_err(internal)?;
        let crls = lookup.load_crl_file(f, SslFiletype::PEM).is_ok();
        let certs = lookup.load_cert_file(f, SslFiletype::PEM).is_ok();
        crl_loaded &= crls || certs;
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
pub(super) fn load_client_cert(config: &Config) -> Result<Option<(PathBuf, CertifiedKey)>, Error> {
    if config.ssl_cert_mode == crate::config::SslCertMode::Disable {
        // libpq sends none, whatever files there are.
        return Ok(None);
    }
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
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&PrivateKeyDer::Pkcs8(
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
pub(crate) fn load_private_key(
    path: &Path,
    password: Option<&str>,
) -> Result<PKey<Private>, Error> {
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
pub(super) struct ClientCert(pub(super) Arc<CertifiedKey>);

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

//! The one issuance path. `enroll`, `sign_csr` and `issue_server_cert` check
//! their input, load their CA and work out the validity; then [`issue`]
//! draws a serial not yet in the registry, signs with the one end-entity
//! profile, records the certificate and logs it.

use openssl::pkey::{PKeyRef, Private};
use openssl::x509::X509;

use super::authority::{Authority, CaRole};
use super::csr::CheckedCsr;
use super::profile::{self, Validity, ValidityError};
use super::registry::{self, CertKind, NewEntry};
use crate::backend::{now, session_user};
use crate::cert;
use crate::error::{internal, PgsslError};
use crate::gucs;
use crate::server::profile::{issue_server_certificate, HostName};

/// Attempts at a serial number not yet in the registry. With 126 random bits
/// a second attempt already means something is wrong with the random source.
const SERIAL_ATTEMPTS: usize = 4;

/// Who the certificate is for.
#[derive(Clone, Copy)]
pub(crate) enum Subject<'a> {
    /// A client: the CN and public key of a checked CSR (clientAuth).
    Client(&'a CheckedCsr),
    /// The server: its host names (the first is the CN) and its new key
    /// (serverAuth).
    Server {
        /// DNS names and IP addresses, at least one.
        hosts: &'a [HostName],
        /// The server's key.
        key: &'a PKeyRef<Private>,
    },
}

impl Subject<'_> {
    fn kind(&self) -> CertKind {
        match self {
            Self::Client(_) => CertKind::Client,
            Self::Server { .. } => CertKind::Server,
        }
    }

    fn common_name(&self) -> String {
        match self {
            Self::Client(csr) => csr.common_name.clone(),
            Self::Server { hosts, .. } => hosts[0].to_string(),
        }
    }
}

/// A certificate signed and recorded.
pub(crate) struct Issued {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The certificate parsed, once asked for: a client certificate is built
    /// without OpenSSL decoding the subject's key, which any read of the key
    /// from that object would need, so [`Issued::cert`] parses the DER.
    parsed: std::cell::OnceCell<X509>,
    /// Its PEM.
    pub pem: String,
    /// Its serial, lowercase hex.
    pub serial_hex: String,
    /// Its validity.
    pub validity: Validity,
}

impl Issued {
    /// The certificate as OpenSSL reads it from its DER.
    pub(crate) fn cert(&self) -> Result<&X509, PgsslError> {
        if let Some(cert) = self.parsed.get() {
            return Ok(cert);
        }
        let cert = X509::from_der(&self.der).map_err(internal("reading the certificate"))?;
        Ok(self.parsed.get_or_init(|| cert))
    }
}

/// The validity of a certificate for `days` under a CA that is valid until
/// `ca_not_after` (seconds since the Unix epoch).
pub(crate) fn validity(days: i32, ca_not_after: i64, role: CaRole) -> Result<Validity, PgsslError> {
    profile::validity(now(), days, gucs::max_validity_days(), ca_not_after).map_err(|e| match e {
        ValidityError::CaExpired => PgsslError::CaExpired { role },
        other => PgsslError::InvalidArgument {
            message: other.to_string(),
            hint: Some(match role {
                CaRole::Client => format!(
                    "Ask for 1 to {} days, or NULL for pgssl.default_validity_days ({}).",
                    gucs::max_validity_days(),
                    gucs::default_validity_days()
                ),
                CaRole::Server => format!("Ask for 1 to {} days.", gucs::max_validity_days()),
            }),
        },
    })
}

/// The validity of a certificate for `days` signed by `ca`.
pub(crate) fn validity_under(
    ca: &Authority,
    days: i32,
    role: CaRole,
) -> Result<Validity, PgsslError> {
    validity(
        days,
        cert::unix_seconds(ca.cert.not_after()).unwrap_or(0),
        role,
    )
}

/// PEM bytes as text.
pub(crate) fn pem_text(
    pem: Result<Vec<u8>, openssl::error::ErrorStack>,
) -> Result<String, PgsslError> {
    let pem = pem.map_err(internal("encoding PEM"))?;
    String::from_utf8(pem).map_err(internal("encoding PEM"))
}

/// Signs a certificate for `subject` with `ca`, records it in the registry
/// in the caller's transaction, and logs it.
pub(crate) fn issue(
    ca: &Authority,
    subject: Subject<'_>,
    validity: Validity,
) -> Result<Issued, PgsslError> {
    let common_name = subject.common_name();
    for _ in 0..SERIAL_ATTEMPTS {
        let serial = profile::random_serial().map_err(internal("drawing a serial number"))?;
        let cert = match subject {
            Subject::Client(csr) => {
                profile::issue_client_certificate(csr, &ca.cert, &ca.key, &serial, validity)
            }
            Subject::Server { hosts, key } => {
                issue_server_certificate(hosts, key, &ca.cert, &ca.key, &serial, validity)
            }
        }
        .map_err(internal("signing the certificate"))?;
        // One DER encoding serves the PEM and the fingerprint.
        let der = cert
            .to_der()
            .map_err(internal("encoding the certificate"))?;
        let pem = cert::der_to_pem("CERTIFICATE", &der);
        let serial_hex = cert::bignum_hex(&serial);
        let fingerprint = crate::dn::hex_lower(&openssl::sha::sha256(&der));
        let recorded = registry::record(&NewEntry {
            serial_hex: &serial_hex,
            common_name: &common_name,
            not_before: validity.not_before,
            not_after: validity.not_after,
            fingerprint_sha256: &fingerprint,
            certificate_pem: &pem,
            kind: subject.kind(),
        })?;
        if !recorded {
            // That serial was issued before; draw another.
            continue;
        }
        // The server log keeps what the registry loses if the caller's
        // transaction rolls back after the certificate was handed out.
        let kind = match subject.kind() {
            CertKind::Client => "",
            CertKind::Server => "server ",
        };
        pgrx::log!(
            "pgssl issued {kind}certificate serial {serial_hex} for CN {common_name:?} to {:?}, valid until {}, SHA-256 {fingerprint}",
            session_user(),
            crate::timestamps::iso8601(validity.not_after).unwrap_or_default(),
        );
        // A server certificate was built with its key: keep that object.
        let parsed = std::cell::OnceCell::new();
        if subject.kind() == CertKind::Server {
            let _ = parsed.set(cert);
        }
        return Ok(Issued {
            der,
            parsed,
            pem,
            serial_hex,
            validity,
        });
    }
    Err(PgsslError::Internal {
        doing: "drawing a serial number",
        reason: format!("{SERIAL_ATTEMPTS} random serials were all taken"),
    })
}

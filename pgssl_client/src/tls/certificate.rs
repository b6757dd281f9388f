//! Certificates described for people, in the forms the pgssl extension's SQL functions use
//! (serials as lowercase hex, SANs as `DNS:name` / `IP:addr`), so that what the client
//! reports about a certificate and what the server reports about it read the same.
#![allow(deprecated)] // Asn1StringRef::as_utf8 transcodes BMP/T61 strings for display.

use std::net::{Ipv4Addr, Ipv6Addr};

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::{X509NameRef, X509};

use crate::error::Error;

/// One certificate, described: what `pgssl check` shows of each certificate the server sent
/// ([`crate::TlsInfo::peer_chain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateSummary {
    /// The subject in OpenSSL's one-line form (`CN=db, O=Example`).
    pub subject: String,
    /// The issuer, in the same form.
    pub issuer: String,
    /// The X.509 version as people count it (1 for the v1 certificates `openssl x509 -req`
    /// makes, 3 for certificates with extensions).
    pub version: i32,
    /// The serial number as lowercase hex, the bytes of its DER content (as
    /// `pgssl.client_serial_hex()` shows it).
    pub serial_hex: String,
    /// The subject alternative names, each as `DNS:name`, `IP:addr`, `email:addr` or
    /// `URI:uri`, in certificate order.
    pub subject_alt_names: Vec<String>,
    /// Start of validity, as OpenSSL prints it (`Nov 28 16:14:56 2026 GMT`).
    pub not_before: String,
    /// End of validity, as OpenSSL prints it.
    pub not_after: String,
    /// Whole days from now until the end of validity (negative once expired).
    pub expires_in_days: Option<i32>,
    /// The signature algorithm's long name (`ecdsa-with-SHA256`).
    pub signature_algorithm: String,
}

impl CertificateSummary {
    /// Describes a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertificateSummary, Error> {
        let cert = X509::from_der(der).map_err(|e| Error::Tls {
            reason: format!("unparsable certificate: {e}"),
        })?;
        let subject_alt_names = cert
            .subject_alt_names()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| {
                        if let Some(d) = n.dnsname() {
                            Some(format!("DNS:{d}"))
                        } else if let Some(ip) = n.ipaddress() {
                            Some(format!("IP:{}", ip_text(ip)))
                        } else if let Some(e) = n.email() {
                            Some(format!("email:{e}"))
                        } else {
                            n.uri().map(|u| format!("URI:{u}"))
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let expires_in_days = Asn1Time::days_from_now(0)
            .ok()
            .and_then(|now| now.diff(cert.not_after()).ok())
            .map(|d| d.days);
        let serial = cert.serial_number().to_bn().map_err(|e| Error::Tls {
            reason: format!("unreadable serial number: {e}"),
        })?;
        Ok(CertificateSummary {
            subject: name_to_string(cert.subject_name()),
            issuer: name_to_string(cert.issuer_name()),
            version: cert.version() + 1,
            serial_hex: serial_hex(&serial.to_vec(), serial.is_negative()),
            subject_alt_names,
            not_before: cert.not_before().to_string(),
            not_after: cert.not_after().to_string(),
            expires_in_days,
            signature_algorithm: cert
                .signature_algorithm()
                .object()
                .nid()
                .long_name()
                .unwrap_or("?")
                .to_string(),
        })
    }
}

/// A serial's magnitude bytes as lowercase hex (`00` for zero), `-` first when negative.
fn serial_hex(magnitude: &[u8], negative: bool) -> String {
    let digits: String = magnitude.iter().map(|b| format!("{b:02x}")).collect();
    let digits = if digits.is_empty() {
        "00".to_string()
    } else {
        digits
    };
    if negative {
        format!("-{digits}")
    } else {
        digits
    }
}

fn ip_text(ip: &[u8]) -> String {
    match ip.len() {
        4 => Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string(),
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(ip);
            Ipv6Addr::from(b).to_string()
        }
        _ => "?".into(),
    }
}

/// A distinguished name as OpenSSL's one-line form prints it ("CN=a, O=b").
pub(crate) fn name_to_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e
                .data()
                .as_utf8()
                .map(|s| s.to_string())
                .unwrap_or_else(|_| String::from_utf8_lossy(e.data().as_slice()).into_owned());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Seconds since the epoch of an ASN.1 time.
pub(crate) fn unix_seconds(t: &Asn1TimeRef) -> Option<i64> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    Some(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgssl_tests::{Ca, CertSpec};

    #[test]
    fn serials_read_as_the_extension_shows_them() {
        assert_eq!(serial_hex(&[0x0a, 0x3f], false), "0a3f");
        assert_eq!(serial_hex(&[], false), "00");
        assert_eq!(serial_hex(&[1], true), "-01");
    }

    #[test]
    fn a_server_certificate_described() {
        let cert = Ca::new("summary CA").issue(&CertSpec::server()).cert;
        let s = CertificateSummary::from_der(&cert.to_der().unwrap()).unwrap();
        assert_eq!(s.issuer, "CN=summary CA");
        assert_eq!(s.version, 3);
        assert_eq!(s.subject_alt_names, ["DNS:localhost", "IP:127.0.0.1"]);
        let bn = cert.serial_number().to_bn().unwrap();
        assert_eq!(
            s.serial_hex,
            bn.to_hex_str().unwrap().to_ascii_lowercase(),
            "{s:?}"
        );
        assert!(s.expires_in_days.is_some_and(|d| d >= 0), "{s:?}");
        assert!(CertificateSummary::from_der(b"not DER").is_err());
    }
}

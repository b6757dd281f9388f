//! The one end-entity certificate profile: validity, serial numbers,
//! signing digests, and the certificate built from a name and a public key
//! alone, for clients and for the server.
//!
//! Pure Rust over OpenSSL, no backend types.

use std::fmt;

use super::csr::CheckedCsr;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKeyRef, Private};
use openssl::rand::rand_bytes;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509NameBuilder, X509Ref, X509};

/// How far `notBefore` lies in the past, so that clients whose clocks are a
/// little behind accept a certificate issued just now.
pub const BACKDATE_SECONDS: i64 = 5 * 60;
/// Random bytes in a serial number: 16, of which the top bit is cleared (a
/// positive INTEGER) and the next set (always 16 bytes long), so 126 random bits.
pub const SERIAL_BYTES: usize = 16;

const SECONDS_PER_DAY: i64 = 86_400;

/// Why a validity period was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidityError {
    /// Zero or negative days (22023).
    NotPositive {
        /// The days asked for.
        days: i32,
    },
    /// More days than `pgssl.max_validity_days` (22023).
    TooLong {
        /// The days asked for.
        days: i32,
        /// The configured maximum.
        max: i32,
    },
    /// The CA itself has expired, or expires within the backdating window (55000).
    CaExpired,
}

impl fmt::Display for ValidityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPositive { days } => {
                write!(f, "valid_days must be at least 1, not {days}")
            }
            Self::TooLong { days, max } => write!(
                f,
                "valid_days {days} is more than pgssl.max_validity_days ({max})"
            ),
            Self::CaExpired => write!(f, "the CA certificate has expired"),
        }
    }
}

/// A certificate's validity, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// `notBefore`: now minus [`BACKDATE_SECONDS`].
    pub not_before: i64,
    /// `notAfter`: now plus the days, never past the CA's own `notAfter`.
    pub not_after: i64,
}

/// The validity of a certificate issued at `now` for `days`.
pub fn validity(
    now: i64,
    days: i32,
    max_days: i32,
    ca_not_after: i64,
) -> Result<Validity, ValidityError> {
    if days < 1 {
        return Err(ValidityError::NotPositive { days });
    }
    if days > max_days {
        return Err(ValidityError::TooLong {
            days,
            max: max_days,
        });
    }
    let not_before = now - BACKDATE_SECONDS;
    let not_after = (now + i64::from(days) * SECONDS_PER_DAY).min(ca_not_after);
    if not_after <= now {
        return Err(ValidityError::CaExpired);
    }
    Ok(Validity {
        not_before,
        not_after,
    })
}

/// A fresh random serial number: positive, [`SERIAL_BYTES`] long.
pub fn random_serial() -> Result<BigNum, ErrorStack> {
    let mut bytes = [0u8; SERIAL_BYTES];
    rand_bytes(&mut bytes)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    BigNum::from_slice(&bytes)
}

/// The digest to sign with under `key`: none for Ed25519/Ed448 (they hash
/// internally), else SHA-256, or SHA-384/512 for the larger EC curves.
pub fn signing_digest<T: HasPublic>(key: &PKeyRef<T>) -> MessageDigest {
    match key.id() {
        Id::ED25519 | Id::ED448 => MessageDigest::null(),
        Id::EC if key.bits() > 384 => MessageDigest::sha512(),
        Id::EC if key.bits() > 256 => MessageDigest::sha384(),
        _ => MessageDigest::sha256(),
    }
}

/// A name with one attribute: the common name, as UTF8String.
pub fn common_name_only(cn: &str) -> Result<openssl::x509::X509Name, ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid_with_type(Nid::COMMONNAME, cn, openssl::asn1::Asn1Type::UTF8STRING)?;
    Ok(name.build())
}

/// What an end-entity certificate is for (its extendedKeyUsage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// clientAuth: a client certificate for `cert` authentication.
    Client,
    /// serverAuth: the server's own certificate.
    Server,
}

/// The one end-entity profile both the client and the server certificates
/// follow: v3, the given serial and validity, issuer the CA's subject,
/// subject the common name alone, and exactly these extensions:
/// basicConstraints CA:FALSE (critical), keyUsage digitalSignature
/// (+ keyEncipherment for RSA) (critical), extendedKeyUsage for `purpose`,
/// the subject alternative names when given, subject and authority key
/// identifiers. Signed with the CA's key.
#[allow(clippy::too_many_arguments)]
pub fn issue_end_entity<T: HasPublic>(
    common_name: &str,
    public_key: &PKeyRef<T>,
    purpose: Purpose,
    subject_alt_names: Option<SubjectAlternativeName>,
    ca_cert: &X509Ref,
    ca_key: &PKeyRef<Private>,
    serial: &BigNum,
    validity: Validity,
) -> Result<X509, ErrorStack> {
    let mut builder = end_entity_builder(
        common_name,
        public_key.id(),
        purpose,
        ca_cert,
        serial,
        validity,
    )?;
    builder.set_pubkey(public_key)?;
    if let Some(sans) = subject_alt_names {
        let sans = sans.build(&builder.x509v3_context(Some(ca_cert), None))?;
        builder.append_extension(sans)?;
    }
    let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(Some(ca_cert), None))?;
    builder.append_extension(ski)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(false)
        .issuer(false)
        .build(&builder.x509v3_context(Some(ca_cert), None))?;
    builder.append_extension(aki)?;

    builder.sign(ca_key, signing_digest(ca_key))?;
    Ok(builder.build())
}

/// The profile's fields and first three extensions (basicConstraints,
/// keyUsage for a key of type `key_id`, extendedKeyUsage), without the
/// subject key, the names after them, or the signature.
fn end_entity_builder(
    common_name: &str,
    key_id: Id,
    purpose: Purpose,
    ca_cert: &X509Ref,
    serial: &BigNum,
    validity: Validity,
) -> Result<openssl::x509::X509Builder, ErrorStack> {
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let serial = Asn1Integer::from_bn(serial)?;
    let subject = common_name_only(common_name)?;
    let not_before = Asn1Time::from_unix(validity.not_before)?;
    let not_after = Asn1Time::from_unix(validity.not_after)?;
    builder.set_serial_number(&serial)?;
    builder.set_issuer_name(ca_cert.subject_name())?;
    builder.set_subject_name(&subject)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;

    builder.append_extension(BasicConstraints::new().critical().build()?)?;
    let mut usage = KeyUsage::new();
    usage.critical().digital_signature();
    if key_id == Id::RSA {
        usage.key_encipherment();
    }
    builder.append_extension(usage.build()?)?;
    let mut extended = ExtendedKeyUsage::new();
    match purpose {
        Purpose::Client => extended.client_auth(),
        Purpose::Server => extended.server_auth(),
    };
    builder.append_extension(extended.build()?)?;
    Ok(builder)
}

/// Builds and signs the client certificate for a checked CSR: the
/// [`issue_end_entity`] profile with clientAuth, from the CSR's CN and public
/// key alone.
pub fn issue_client_certificate(
    csr: &CheckedCsr,
    ca_cert: &X509Ref,
    ca_key: &PKeyRef<Private>,
    serial: &BigNum,
    validity: Validity,
) -> Result<X509, ErrorStack> {
    if let Some(spki) = &csr.spki_der {
        // The same profile, with the CSR's SubjectPublicKeyInfo taken as it is.
        let builder = end_entity_builder(
            &csr.common_name,
            csr.public_key.id(),
            Purpose::Client,
            ca_cert,
            serial,
            validity,
        )?;
        let cert = builder.build();
        super::raw_csr::finish_certificate(&cert, spki, ca_cert, ca_key)?;
        return Ok(cert);
    }
    issue_end_entity(
        &csr.common_name,
        &csr.public_key,
        Purpose::Client,
        None,
        ca_cert,
        ca_key,
        serial,
        validity,
    )
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::csr::check_csr;
    use crate::ca::test_support::*;
    use openssl::pkey::PKey;
    use openssl::x509::X509VerifyResult;

    #[test]
    fn validity_rules() {
        let now = 1_800_000_000;
        let far = now + 3650 * SECONDS_PER_DAY;
        assert_eq!(
            validity(now, 90, 397, far),
            Ok(Validity {
                not_before: now - 300,
                not_after: now + 90 * SECONDS_PER_DAY
            })
        );
        assert_eq!(
            validity(now, 0, 397, far),
            Err(ValidityError::NotPositive { days: 0 })
        );
        assert_eq!(
            validity(now, -5, 397, far),
            Err(ValidityError::NotPositive { days: -5 })
        );
        assert_eq!(
            validity(now, 398, 397, far),
            Err(ValidityError::TooLong {
                days: 398,
                max: 397
            })
        );
        // Capped at the CA's end.
        let soon = now + 10 * SECONDS_PER_DAY;
        assert_eq!(validity(now, 90, 397, soon).unwrap().not_after, soon);
        assert_eq!(
            validity(now, 1, 397, now - 1),
            Err(ValidityError::CaExpired)
        );
    }

    #[test]
    fn serials_are_positive_and_126_bits_random() {
        let a = random_serial().unwrap();
        let b = random_serial().unwrap();
        assert_ne!(a, b);
        for s in [a, b] {
            assert!(!s.is_negative());
            assert_eq!(s.num_bits(), 127);
        }
    }

    #[test]
    fn the_profile_ignores_every_requested_extension() {
        let (ca, ca_key) = test_ca();
        let key = rsa_key(2048);
        let checked = check_csr(&pem(&csr_with(&key, &["carol"], true))).unwrap();
        let serial = random_serial().unwrap();
        let v = validity(now(), 30, 397, now() + 3650 * SECONDS_PER_DAY).unwrap();
        let cert = issue_client_certificate(&checked, &ca, &ca_key, &serial, v).unwrap();

        assert_eq!(cert.version(), 2);
        assert_eq!(ca.issued(&cert), X509VerifyResult::OK);
        assert!(cert.verify(&ca_key).unwrap());
        assert_eq!(crate::cert::name_rfc2253(cert.subject_name()), "CN=carol");
        assert_eq!(
            cert.serial_number().to_bn().unwrap(),
            serial,
            "serial as chosen"
        );
        assert!(cert.subject_alt_names().is_none());
        let exts = crate::cert::extensions(&cert);
        let names: Vec<_> = exts.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "basicConstraints",
                "keyUsage",
                "extendedKeyUsage",
                "subjectKeyIdentifier",
                "authorityKeyIdentifier"
            ]
        );
        assert_eq!(exts[0].value, "CA:FALSE");
        assert!(exts[0].critical);
        assert_eq!(exts[1].value, "Digital Signature, Key Encipherment");
        assert!(exts[1].critical);
        assert_eq!(exts[2].value, "TLS Web Client Authentication");
        assert!(!exts[2].critical);
        assert_eq!(
            crate::cert::unix_seconds(cert.not_before()),
            Some(v.not_before)
        );
        assert_eq!(
            crate::cert::unix_seconds(cert.not_after()),
            Some(v.not_after)
        );
    }

    #[test]
    fn the_fast_path_issues_the_plain_paths_certificate() {
        // An Ed25519 CA signs deterministically: both paths must give the
        // same bytes.
        let ca_key = PKey::generate_ed25519().unwrap();
        let ca = crate::ca::authority::self_signed_ca("fast CA", 30, &ca_key, now()).unwrap();
        for key in [
            ec_key(Nid::X9_62_PRIME256V1),
            ec_key(Nid::SECP384R1),
            rsa_key(2048),
            PKey::generate_ed25519().unwrap(),
        ] {
            let fast = check_csr(&pem(&csr_with(&key, &["erin"], true))).unwrap();
            assert!(fast.spki_der.is_some());
            let plain = CheckedCsr {
                common_name: fast.common_name.clone(),
                public_key: fast.public_key.clone(),
                key_kind: fast.key_kind,
                spki_der: None,
            };
            let serial = random_serial().unwrap();
            let v = validity(now(), 30, 397, now() + 3650 * SECONDS_PER_DAY).unwrap();
            let a = issue_client_certificate(&fast, &ca, &ca_key, &serial, v).unwrap();
            let b = issue_client_certificate(&plain, &ca, &ca_key, &serial, v).unwrap();
            assert!(a.verify(&ca_key).unwrap());
            assert_eq!(ca.issued(&a), X509VerifyResult::OK);
            // OpenSSL decodes the key when it reads the certificate.
            let read = X509::from_der(&a.to_der().unwrap()).unwrap();
            assert!(read.public_key().unwrap().public_eq(&key));
            assert_eq!(a.to_der().unwrap(), b.to_der().unwrap());
        }
    }

    #[test]
    fn ec_and_ed25519_certificates_have_no_key_encipherment() {
        for key in [ec_key(Nid::SECP384R1), PKey::generate_ed25519().unwrap()] {
            let (ca, ca_key) = test_ca();
            let checked = check_csr(&csr_pem(&key, "dave")).unwrap();
            let v = validity(now(), 1, 397, now() + 86_400 * 10).unwrap();
            let cert =
                issue_client_certificate(&checked, &ca, &ca_key, &random_serial().unwrap(), v)
                    .unwrap();
            let exts = crate::cert::extensions(&cert);
            assert_eq!(exts[1].value, "Digital Signature");
        }
    }
}

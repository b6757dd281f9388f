//! Revocation: serial numbers given to SQL, the RFC 5280 reasons, and the
//! CRL the CA signs.
//!
//! Pure Rust over OpenSSL, no backend types.

use std::fmt;

use foreign_types::ForeignTypeRef;
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::BigNum;
use openssl::error::ErrorStack;
use openssl::x509::extension::{AuthorityKeyIdentifier, CrlNumber};
use openssl::x509::{X509Crl, X509CrlBuilder, X509Extension, X509RevokedBuilder, X509};

use super::authority::Authority;
use super::profile::signing_digest;

const SECONDS_PER_DAY: i64 = 86_400;

/// Why a serial number given to SQL was refused (22023).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSerial {
    /// The text as given.
    pub presented: String,
}

impl fmt::Display for BadSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "serial number {:?} is not hexadecimal: expected hex digits, optionally separated by colons",
            self.presented
        )
    }
}

/// The registry's form of a serial number given in hex: lowercase, the bytes
/// of the DER content (as [`crate::cert::serial_hex`] writes it). Accepts any
/// case, colons between bytes (`openssl x509 -serial` style is `0A3F`,
/// browsers show `0a:3f`) and surrounding white space.
pub fn normalize_serial(text: &str) -> Result<String, BadSerial> {
    let bad = || BadSerial {
        presented: text.into(),
    };
    let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let bn = BigNum::from_hex_str(&digits).map_err(|_| bad())?;
    Ok(crate::cert::bignum_hex(&bn))
}

/// The CRL reasons of RFC 5280 (section 5.3.1) that `pgssl.revoke` accepts.
/// `removeFromCRL` is left out: it only has a meaning in delta CRLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// `unspecified` (0): written as an entry without a reasonCode, as RFC 5280 asks.
    Unspecified,
    /// `keyCompromise` (1).
    KeyCompromise,
    /// `cACompromise` (2).
    CaCompromise,
    /// `affiliationChanged` (3).
    AffiliationChanged,
    /// `superseded` (4).
    Superseded,
    /// `cessationOfOperation` (5).
    CessationOfOperation,
    /// `certificateHold` (6).
    CertificateHold,
    /// `privilegeWithdrawn` (9).
    PrivilegeWithdrawn,
    /// `aACompromise` (10).
    AaCompromise,
}

impl RevocationReason {
    /// All accepted reasons, in code order.
    pub const ALL: [Self; 9] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// Looks a reason up by its RFC 5280 name, ignoring case, `_` and `-`
    /// (so `key_compromise` and `KEYCOMPROMISE` both name keyCompromise).
    pub fn from_name(name: &str) -> Option<Self> {
        let squash = |s: &str| {
            s.chars()
                .filter(|c| *c != '_' && *c != '-')
                .flat_map(char::to_lowercase)
                .collect::<String>()
        };
        let wanted = squash(name.trim());
        Self::ALL.into_iter().find(|r| squash(r.name()) == wanted)
    }

    /// The accepted names, comma-separated, for error hints.
    pub fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}
/// One revoked certificate, as the CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The serial, lowercase hex as the registry keeps it.
    pub serial_hex: String,
    /// When it was revoked, seconds since the Unix epoch.
    pub revoked_at: i64,
    /// Why.
    pub reason: RevocationReason,
}

/// A v2 CRL signed by the CA: thisUpdate `now`, nextUpdate `now` plus
/// `next_update_days`, the entries with their reason codes (none for
/// `unspecified`, as RFC 5280 asks), a CRL number and the authority key
/// identifier.
pub fn build_crl(
    ca: &Authority,
    revoked: &[RevokedEntry],
    number: i64,
    now: i64,
    next_update_days: i32,
) -> Result<X509Crl, ErrorStack> {
    let mut crl = X509CrlBuilder::new()?;
    crl.set_issuer_name(ca.cert.subject_name())?;
    let this_update = Asn1Time::from_unix(now)?;
    let next_update = Asn1Time::from_unix(now + i64::from(next_update_days) * SECONDS_PER_DAY)?;
    crl.set_last_update(&this_update)?;
    crl.set_next_update(&next_update)?;
    for entry in revoked {
        let mut item = X509RevokedBuilder::new()?;
        let serial = BigNum::from_hex_str(&entry.serial_hex)?;
        let serial = Asn1Integer::from_bn(&serial)?;
        let date = Asn1Time::from_unix(entry.revoked_at)?;
        item.set_serial_number(&serial)?;
        item.set_revocation_date(&date)?;
        let item = item.build();
        if entry.reason != RevocationReason::Unspecified {
            let ext = reason_code_extension(entry.reason)?;
            // SAFETY: both pointers are valid; X509_REVOKED_add_ext copies the
            // extension, so `ext` stays ours to free.
            let ok = unsafe { openssl_sys::X509_REVOKED_add_ext(item.as_ptr(), ext.as_ptr(), -1) };
            if ok <= 0 {
                return Err(ErrorStack::get());
            }
        }
        crl.add_revoked(item)?;
    }
    // The authority key identifier is computed from the CA certificate; the
    // openssl crate only offers that context through a certificate builder.
    let scratch = X509::builder()?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(false)
        .issuer(false)
        .build(&scratch.x509v3_context(Some(&ca.cert), None))?;
    crl.append_extension(aki)?;
    crl.append_extension(
        CrlNumber::new(BigNum::from_dec_str(&number.max(0).to_string())?)?.build()?,
    )?;
    crl.sort()?;
    crl.sign(&ca.key, signing_digest(&ca.key))?;
    crl.build()
}

/// The CRL entry extension reasonCode (2.5.29.21): an ENUMERATED.
fn reason_code_extension(reason: RevocationReason) -> Result<X509Extension, ErrorStack> {
    let oid = Asn1Object::from_str("2.5.29.21")?;
    let der = Asn1OctetString::new_from_bytes(&[0x0a, 0x01, reason.code()])?;
    X509Extension::new_from_der(&oid, false, &der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::authority::tests::{new_ca, now};
    use crate::ca::authority::CaKeyType;
    use crate::cert;

    #[test]
    fn serial_normalisation() {
        assert_eq!(normalize_serial("0A3F").unwrap(), "0a3f");
        assert_eq!(normalize_serial(" 0a:3f ").unwrap(), "0a3f");
        assert_eq!(normalize_serial("A3F").unwrap(), "0a3f");
        assert!(normalize_serial("").is_err());
        assert!(normalize_serial("xyz").is_err());
        assert!(normalize_serial("-1").is_err());
    }

    #[test]
    fn reasons_by_rfc_5280_name() {
        assert_eq!(
            RevocationReason::from_name("keyCompromise"),
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            RevocationReason::from_name("key_compromise"),
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            RevocationReason::from_name("CACOMPROMISE"),
            Some(RevocationReason::CaCompromise)
        );
        assert_eq!(RevocationReason::from_name("removeFromCRL"), None);
        assert_eq!(RevocationReason::from_name("because"), None);
        assert_eq!(RevocationReason::PrivilegeWithdrawn.code(), 9);
        for r in RevocationReason::ALL {
            assert_eq!(RevocationReason::from_name(r.name()), Some(r));
        }
    }

    #[test]
    fn crl_lists_entries_with_reasons_and_verifies() {
        for kind in [CaKeyType::EcP384, CaKeyType::Ed25519, CaKeyType::Rsa2048] {
            let ca = new_ca(kind);
            let entries = [
                RevokedEntry {
                    serial_hex: "4a3f".into(),
                    revoked_at: now() - 60,
                    reason: RevocationReason::KeyCompromise,
                },
                RevokedEntry {
                    serial_hex: "0b".into(),
                    revoked_at: now() - 30,
                    reason: RevocationReason::Unspecified,
                },
            ];
            let crl = build_crl(&ca, &entries, 7, now(), 7).unwrap();
            assert!(crl.verify(&ca.key).unwrap());
            let pem = String::from_utf8(crl.to_pem().unwrap()).unwrap();
            assert!(pem.starts_with("-----BEGIN X509 CRL-----"));
            let revoked = crl.get_revoked().unwrap();
            assert_eq!(revoked.len(), 2);
            let by_serial = |hex: &str| {
                revoked
                    .iter()
                    .find(|r| cert::bignum_hex(&r.serial_number().to_bn().unwrap()) == hex)
                    .unwrap()
            };
            let (_, code) = by_serial("4a3f")
                .extension::<openssl::x509::ReasonCode>()
                .unwrap()
                .unwrap();
            assert_eq!(code.get_i64().unwrap(), 1);
            assert!(by_serial("0b")
                .extension::<openssl::x509::ReasonCode>()
                .unwrap()
                .is_none());
            let (_, number) = crl
                .extension::<openssl::x509::CrlNumber>()
                .unwrap()
                .unwrap();
            assert_eq!(
                number.to_bn().unwrap().to_dec_str().unwrap().to_string(),
                "7"
            );
        }
    }

    #[test]
    fn empty_crl() {
        let ca = new_ca(CaKeyType::EcP256);
        let crl = build_crl(&ca, &[], 1, now(), 1).unwrap();
        assert!(crl.verify(&ca.key).unwrap());
        assert!(crl.get_revoked().is_none());
    }
}

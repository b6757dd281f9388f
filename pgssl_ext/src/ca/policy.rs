//! What the CA signs and what it issues: parsing and checking a certificate
//! signing request (CSR), and the one client-certificate profile.
//!
//! Pure Rust over OpenSSL, no backend types, so plain `#[test]`s cover every
//! rule. The rules:
//!
//! - input: PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`), any text
//!   around the one block (as `openssl req -text` writes it), at most
//!   [`MAX_CSR_BYTES`];
//! - the CSR's signature verifies with its own key (proof of possession);
//! - keys: RSA of at least [`MIN_RSA_BITS`], EC P-256 or P-384, Ed25519;
//! - exactly one common name: UTF-8, non-empty, no control characters, at most
//!   [`MAX_COMMON_NAME_CHARS`] characters;
//! - everything else in the CSR (other name attributes, requested extensions,
//!   attributes) is ignored: the certificate is built from the CN and the
//!   public key alone.

use std::fmt;

use openssl::asn1::{Asn1Integer, Asn1StringRef, Asn1Time};
use openssl::bn::BigNum;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private, Public};
use openssl::rand::rand_bytes;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509NameBuilder, X509NameRef, X509Ref, X509Req, X509};

/// Largest CSR text accepted, in bytes. A PEM CSR with an RSA-4096 key and
/// `openssl req -text` output around it is under 8 KiB.
pub const MAX_CSR_BYTES: usize = 64 * 1024;
/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: u32 = 2048;
/// Longest common name, in characters (RFC 5280's `ub-common-name`).
pub const MAX_COMMON_NAME_CHARS: usize = 64;
/// How far `notBefore` lies in the past, so that clients whose clocks are a
/// little behind accept a certificate issued just now.
pub const BACKDATE_SECONDS: i64 = 5 * 60;
/// Random bytes in a serial number: 16, of which the top bit is cleared (a
/// positive INTEGER) and the next set (always 16 bytes long), so 126 random bits.
pub const SERIAL_BYTES: usize = 16;

const SECONDS_PER_DAY: i64 = 86_400;
const CSR_LABELS: [&str; 2] = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];
const ACCEPTED_KEYS: &str = "RSA of 2048 bits or more, EC P-256, EC P-384 or Ed25519";

/// Why a CSR was refused. Every variant is bad input (SQLSTATE 22023).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsrError {
    /// The input is empty or only white space.
    Empty,
    /// The input is longer than [`MAX_CSR_BYTES`].
    TooLarge {
        /// Length of the input in bytes.
        bytes: usize,
    },
    /// The input holds a certificate but no certificate request.
    CertificateInstead,
    /// No `-----BEGIN CERTIFICATE REQUEST-----` block in the input.
    NoRequest,
    /// More than one request block in the input.
    SeveralRequests {
        /// How many blocks were found.
        count: usize,
    },
    /// A request block whose content is not a PKCS#10 request.
    Unparsable,
    /// The request's signature does not verify with its own public key.
    BadSignature,
    /// A key type or curve outside the accepted set.
    UnsupportedKey {
        /// The key as presented, e.g. `DSA`, `EC secp521r1`, `ED448`.
        presented: String,
    },
    /// An RSA key shorter than [`MIN_RSA_BITS`].
    RsaTooShort {
        /// The modulus length presented.
        bits: u32,
    },
    /// The subject has no common name.
    NoCommonName,
    /// The subject has several common names.
    SeveralCommonNames {
        /// How many.
        count: usize,
    },
    /// The common name's bytes are not a valid string of its ASN.1 type.
    CommonNameNotText,
    /// The common name is empty.
    CommonNameEmpty,
    /// The common name contains a control character (NUL, newline, ...).
    CommonNameControl {
        /// The character's code point.
        code: u32,
        /// Its position, counted in characters from 1.
        position: usize,
    },
    /// The common name is longer than [`MAX_COMMON_NAME_CHARS`].
    CommonNameTooLong {
        /// Its length in characters.
        chars: usize,
    },
}

impl fmt::Display for CsrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "certificate signing request is empty"),
            Self::TooLarge { bytes } => write!(
                f,
                "certificate signing request is too large: {bytes} bytes, at most {MAX_CSR_BYTES}"
            ),
            Self::CertificateInstead => write!(
                f,
                "input is a certificate, not a certificate signing request"
            ),
            Self::NoRequest => write!(f, "no PEM certificate signing request found in the input"),
            Self::SeveralRequests { count } => write!(
                f,
                "input holds {count} certificate signing requests, exactly one is allowed"
            ),
            Self::Unparsable => write!(
                f,
                "certificate signing request is not a valid PKCS#10 request"
            ),
            Self::BadSignature => write!(
                f,
                "certificate signing request signature does not verify with its public key"
            ),
            Self::UnsupportedKey { presented } => write!(
                f,
                "key type {presented} is not accepted: expected {ACCEPTED_KEYS}"
            ),
            Self::RsaTooShort { bits } => write!(
                f,
                "RSA key of {bits} bits is too short: at least {MIN_RSA_BITS} bits are required"
            ),
            Self::NoCommonName => write!(f, "certificate signing request has no common name (CN)"),
            Self::SeveralCommonNames { count } => write!(
                f,
                "certificate signing request has {count} common names (CN), exactly one is allowed"
            ),
            Self::CommonNameNotText => write!(f, "common name is not a valid string"),
            Self::CommonNameEmpty => write!(f, "common name is empty"),
            Self::CommonNameControl { code, position } => write!(
                f,
                "common name contains the control character U+{code:04X} at position {position}"
            ),
            Self::CommonNameTooLong { chars } => write!(
                f,
                "common name is {chars} characters long, at most {MAX_COMMON_NAME_CHARS} are allowed"
            ),
        }
    }
}

impl CsrError {
    /// What to do instead, for the SQL error's HINT.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Empty | Self::NoRequest | Self::Unparsable | Self::SeveralRequests { .. } => Some(
                "Pass one PEM block starting with -----BEGIN CERTIFICATE REQUEST-----, \
                 as \"openssl req -new\" writes it.",
            ),
            Self::CertificateInstead => Some(
                "Pass the certificate signing request (openssl req -new ...), not a signed certificate.",
            ),
            Self::BadSignature => Some(
                "The request must be signed with the private key that belongs to its public key.",
            ),
            Self::UnsupportedKey { .. } | Self::RsaTooShort { .. } => Some(
                "Make a new key, e.g. \"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256\".",
            ),
            Self::NoCommonName | Self::SeveralCommonNames { .. } => {
                Some("Set exactly one CN, e.g. openssl req -new -subj \"/CN=alice\".")
            }
            _ => None,
        }
    }
}

/// The key types the CA signs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with this many modulus bits.
    Rsa(u32),
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// Ed25519.
    Ed25519,
}

impl KeyKind {
    /// Classifies a public key, refusing what the policy does not accept.
    pub fn of<T: HasPublic>(key: &PKeyRef<T>) -> Result<Self, CsrError> {
        match key.id() {
            Id::RSA => {
                let bits = key.bits();
                if bits < MIN_RSA_BITS {
                    Err(CsrError::RsaTooShort { bits })
                } else {
                    Ok(Self::Rsa(bits))
                }
            }
            Id::EC => {
                let curve = key.ec_key().ok().and_then(|ec| ec.group().curve_name());
                match curve {
                    Some(Nid::X9_62_PRIME256V1) => Ok(Self::EcP256),
                    Some(Nid::SECP384R1) => Ok(Self::EcP384),
                    Some(nid) => Err(CsrError::UnsupportedKey {
                        presented: format!("EC {}", nid.short_name().unwrap_or("(unnamed curve)")),
                    }),
                    None => Err(CsrError::UnsupportedKey {
                        presented: "EC with explicit curve parameters".into(),
                    }),
                }
            }
            Id::ED25519 => Ok(Self::Ed25519),
            other => Err(CsrError::UnsupportedKey {
                presented: key_type_name(other),
            }),
        }
    }
}

fn key_type_name(id: Id) -> String {
    match Nid::from_raw(id.as_raw()).short_name() {
        Ok(name) => name.to_uppercase(),
        Err(_) => format!("with NID {}", id.as_raw()),
    }
}

/// A CSR that passed every check: the only two things taken from it.
pub struct CheckedCsr {
    /// The one common name, as UTF-8.
    pub common_name: String,
    /// The public key, whose possession the CSR's signature proved.
    pub public_key: PKey<Public>,
    /// What kind of key it is.
    pub key_kind: KeyKind,
}

impl fmt::Debug for CheckedCsr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedCsr")
            .field("common_name", &self.common_name)
            .field("key_kind", &self.key_kind)
            .finish_non_exhaustive()
    }
}

/// Parses and checks a CSR against the policy.
pub fn check_csr(input: &str) -> Result<CheckedCsr, CsrError> {
    if input.len() > MAX_CSR_BYTES {
        return Err(CsrError::TooLarge { bytes: input.len() });
    }
    if input.trim().is_empty() {
        return Err(CsrError::Empty);
    }
    let block = find_request_block(input)?;
    let request = X509Req::from_pem(block.as_bytes()).map_err(|_| CsrError::Unparsable)?;
    let public_key = request.public_key().map_err(|_| CsrError::Unparsable)?;
    let key_kind = KeyKind::of(&public_key)?;
    if !request.verify(&public_key).unwrap_or(false) {
        return Err(CsrError::BadSignature);
    }
    let common_name = single_common_name(request.subject_name())?;
    Ok(CheckedCsr {
        common_name,
        public_key,
        key_kind,
    })
}

/// The one request block, re-labelled `CERTIFICATE REQUEST` (OpenSSL's PEM
/// reader wants that label; `NEW CERTIFICATE REQUEST` is the older spelling).
fn find_request_block(input: &str) -> Result<String, CsrError> {
    let mut blocks = Vec::new();
    let mut rest = input;
    while let Some((label, start)) = CSR_LABELS
        .iter()
        .filter_map(|label| {
            rest.find(&format!("-----BEGIN {label}-----"))
                .map(|at| (*label, at))
        })
        // "NEW CERTIFICATE REQUEST" contains "CERTIFICATE REQUEST" only after
        // "BEGIN NEW ", so the two never match at the same place.
        .min_by_key(|(_, at)| *at)
    {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let body_start = start + begin.len();
        let Some(body_len) = rest[body_start..].find(&end) else {
            return Err(CsrError::Unparsable);
        };
        let body = &rest[body_start..body_start + body_len];
        blocks.push(format!(
            "-----BEGIN CERTIFICATE REQUEST-----{body}-----END CERTIFICATE REQUEST-----\n"
        ));
        rest = &rest[body_start + body_len + end.len()..];
    }
    match blocks.len() {
        1 => Ok(blocks.pop().unwrap_or_default()),
        0 if input.contains("-----BEGIN CERTIFICATE-----")
            || input.contains("-----BEGIN TRUSTED CERTIFICATE-----")
            || input.contains("-----BEGIN X509 CERTIFICATE-----") =>
        {
            Err(CsrError::CertificateInstead)
        }
        0 => Err(CsrError::NoRequest),
        count => Err(CsrError::SeveralRequests { count }),
    }
}

/// The subject's one common name, checked.
pub fn single_common_name(name: &X509NameRef) -> Result<String, CsrError> {
    let cns: Vec<_> = name.entries_by_nid(Nid::COMMONNAME).collect();
    match cns.len() {
        0 => return Err(CsrError::NoCommonName),
        1 => {}
        count => return Err(CsrError::SeveralCommonNames { count }),
    }
    let text = asn1_string_utf8(cns[0].data()).ok_or(CsrError::CommonNameNotText)?;
    check_common_name(&text)?;
    Ok(text)
}

/// Checks a common name: non-empty, no control characters, not too long.
pub fn check_common_name(cn: &str) -> Result<(), CsrError> {
    if cn.is_empty() {
        return Err(CsrError::CommonNameEmpty);
    }
    if let Some((index, c)) = cn.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(CsrError::CommonNameControl {
            code: u32::from(c),
            position: index + 1,
        });
    }
    let chars = cn.chars().count();
    if chars > MAX_COMMON_NAME_CHARS {
        return Err(CsrError::CommonNameTooLong { chars });
    }
    Ok(())
}

/// The string decoded from its ASN.1 type to UTF-8, all of it: OpenSSL's own
/// `as_utf8` stops at the first NUL, which would hide an embedded NUL.
fn asn1_string_utf8(s: &Asn1StringRef) -> Option<String> {
    use foreign_types::ForeignTypeRef;
    let mut out: *mut u8 = std::ptr::null_mut();
    // SAFETY: `s` is a valid ASN1_STRING; on success OpenSSL allocates `out`
    // with `len` bytes, which is freed below.
    let len = unsafe { openssl_sys::ASN1_STRING_to_UTF8(&mut out, s.as_ptr()) };
    if len < 0 || out.is_null() {
        // Drop what OpenSSL queued so it does not surface in a later call.
        drop(ErrorStack::get());
        return None;
    }
    // SAFETY: OpenSSL wrote `len` bytes at `out`.
    let bytes = unsafe { std::slice::from_raw_parts(out, len as usize) }.to_vec();
    // SAFETY: `out` came from OpenSSL's allocator and is freed once.
    unsafe { openssl_sys::CRYPTO_free(out.cast(), c"policy.rs".as_ptr(), 0) };
    String::from_utf8(bytes).ok()
}

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
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let serial = Asn1Integer::from_bn(serial)?;
    let subject = common_name_only(common_name)?;
    let not_before = Asn1Time::from_unix(validity.not_before)?;
    let not_after = Asn1Time::from_unix(validity.not_after)?;
    builder.set_serial_number(&serial)?;
    builder.set_issuer_name(ca_cert.subject_name())?;
    builder.set_subject_name(&subject)?;
    builder.set_pubkey(public_key)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;

    builder.append_extension(BasicConstraints::new().critical().build()?)?;
    let mut usage = KeyUsage::new();
    usage.critical().digital_signature();
    if public_key.id() == Id::RSA {
        usage.key_encipherment();
    }
    builder.append_extension(usage.build()?)?;
    let mut extended = ExtendedKeyUsage::new();
    match purpose {
        Purpose::Client => extended.client_auth(),
        Purpose::Server => extended.server_auth(),
    };
    builder.append_extension(extended.build()?)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::rsa::Rsa;
    use openssl::stack::Stack;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509ReqBuilder, X509VerifyResult};

    fn ec_key(curve: Nid) -> PKey<Private> {
        PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(curve).unwrap()).unwrap())
            .unwrap()
    }

    fn rsa_key(bits: u32) -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
    }

    /// A CSR with the given subject entries, signed by `key`.
    fn csr_with(key: &PKey<Private>, cns: &[&str], extras: bool) -> X509Req {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("O", "Acme").unwrap();
        for cn in cns {
            name.append_entry_by_nid_with_type(
                Nid::COMMONNAME,
                cn,
                openssl::asn1::Asn1Type::UTF8STRING,
            )
            .unwrap();
        }
        let mut b = X509ReqBuilder::new().unwrap();
        b.set_version(0).unwrap();
        b.set_subject_name(&name.build()).unwrap();
        b.set_pubkey(key).unwrap();
        if extras {
            let mut exts = Stack::new().unwrap();
            exts.push(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            exts.push(
                ExtendedKeyUsage::new()
                    .server_auth()
                    .client_auth()
                    .build()
                    .unwrap(),
            )
            .unwrap();
            exts.push(
                SubjectAlternativeName::new()
                    .dns("evil.example.com")
                    .build(&b.x509v3_context(None))
                    .unwrap(),
            )
            .unwrap();
            b.add_extensions(&exts).unwrap();
        }
        b.sign(key, signing_digest(key)).unwrap();
        b.build()
    }

    fn pem(req: &X509Req) -> String {
        String::from_utf8(req.to_pem().unwrap()).unwrap()
    }

    fn csr_pem(key: &PKey<Private>, cn: &str) -> String {
        pem(&csr_with(key, &[cn], false))
    }

    fn test_ca() -> (X509, PKey<Private>) {
        let key = ec_key(Nid::X9_62_PRIME256V1);
        let cert = crate::ca::authority::self_signed_ca("test CA", 3650, &key, now()).unwrap();
        (cert, key)
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn accepts_each_key_type() {
        for (key, kind) in [
            (ec_key(Nid::X9_62_PRIME256V1), KeyKind::EcP256),
            (ec_key(Nid::SECP384R1), KeyKind::EcP384),
            (rsa_key(2048), KeyKind::Rsa(2048)),
            (PKey::generate_ed25519().unwrap(), KeyKind::Ed25519),
        ] {
            let checked = check_csr(&csr_pem(&key, "alice")).unwrap();
            assert_eq!(checked.common_name, "alice");
            assert_eq!(checked.key_kind, kind);
            assert!(checked.public_key.public_eq(&key));
        }
    }

    #[test]
    fn accepts_text_around_the_block_and_the_old_label() {
        let key = ec_key(Nid::X9_62_PRIME256V1);
        let block = csr_pem(&key, "bob");
        let wrapped = format!("Certificate Request:\n    Data: ...\n{block}trailing words\n");
        assert_eq!(check_csr(&wrapped).unwrap().common_name, "bob");
        let old = block.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
        assert_eq!(check_csr(&old).unwrap().common_name, "bob");
    }

    #[test]
    fn refuses_empty_garbage_and_oversized_input() {
        assert_eq!(check_csr("").unwrap_err(), CsrError::Empty);
        assert_eq!(check_csr(" \n\t").unwrap_err(), CsrError::Empty);
        assert_eq!(check_csr("hello world").unwrap_err(), CsrError::NoRequest);
        assert_eq!(
            check_csr("-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n")
                .unwrap_err(),
            CsrError::Unparsable
        );
        assert_eq!(
            check_csr("-----BEGIN CERTIFICATE REQUEST-----\nMIIB").unwrap_err(),
            CsrError::Unparsable
        );
        let big = "A".repeat(2 * 1024 * 1024);
        assert_eq!(
            check_csr(&big).unwrap_err(),
            CsrError::TooLarge {
                bytes: 2 * 1024 * 1024
            }
        );
    }

    #[test]
    fn refuses_a_certificate_and_two_requests() {
        let (ca, _) = test_ca();
        let text = String::from_utf8(ca.to_pem().unwrap()).unwrap();
        assert_eq!(check_csr(&text).unwrap_err(), CsrError::CertificateInstead);
        let key = ec_key(Nid::X9_62_PRIME256V1);
        let two = format!("{}{}", csr_pem(&key, "a"), csr_pem(&key, "b"));
        assert_eq!(
            check_csr(&two).unwrap_err(),
            CsrError::SeveralRequests { count: 2 }
        );
    }

    #[test]
    fn refuses_a_request_whose_signature_does_not_verify() {
        // The subject of a signed request changed afterwards: DER-level edit
        // of one byte of the CN ("alice" -> "alicf").
        let key = ec_key(Nid::X9_62_PRIME256V1);
        let mut der = csr_with(&key, &["alice"], false).to_der().unwrap();
        let at = der.windows(5).position(|w| w == b"alice").unwrap();
        der[at + 4] = b'f';
        let tampered = X509Req::from_der(&der).unwrap();
        assert_eq!(
            check_csr(&pem(&tampered)).unwrap_err(),
            CsrError::BadSignature
        );
    }

    #[test]
    fn refuses_weak_and_unknown_keys_by_name() {
        let err = check_csr(&csr_pem(&rsa_key(1024), "a")).unwrap_err();
        assert_eq!(err, CsrError::RsaTooShort { bits: 1024 });
        assert!(err.to_string().contains("1024 bits"));
        let err = check_csr(&csr_pem(&ec_key(Nid::SECP521R1), "a")).unwrap_err();
        assert_eq!(
            err,
            CsrError::UnsupportedKey {
                presented: "EC secp521r1".into()
            }
        );
        let err = check_csr(&csr_pem(&PKey::generate_ed448().unwrap(), "a")).unwrap_err();
        assert_eq!(
            err,
            CsrError::UnsupportedKey {
                presented: "ED448".into()
            }
        );
    }

    #[test]
    fn common_name_rules() {
        let key = ec_key(Nid::X9_62_PRIME256V1);
        assert_eq!(
            check_csr(&pem(&csr_with(&key, &[], false))).unwrap_err(),
            CsrError::NoCommonName
        );
        assert_eq!(
            check_csr(&pem(&csr_with(&key, &["a", "b"], false))).unwrap_err(),
            CsrError::SeveralCommonNames { count: 2 }
        );
        assert_eq!(
            check_csr(&csr_pem(&key, "ali\0ce")).unwrap_err(),
            CsrError::CommonNameControl {
                code: 0,
                position: 4
            }
        );
        assert_eq!(
            check_csr(&csr_pem(&key, "alice\n")).unwrap_err(),
            CsrError::CommonNameControl {
                code: 10,
                position: 6
            }
        );
        assert_eq!(
            check_csr(&csr_pem(&key, &"x".repeat(65))).unwrap_err(),
            CsrError::CommonNameTooLong { chars: 65 }
        );
        // 64 characters of two bytes each: counted in characters.
        let ok = "é".repeat(64);
        assert_eq!(check_csr(&csr_pem(&key, &ok)).unwrap().common_name, ok);
        assert_eq!(check_common_name(""), Err(CsrError::CommonNameEmpty));
        assert!(check_common_name("Zoë Ångström").is_ok());
    }

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

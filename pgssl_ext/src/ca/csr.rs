//! Which certificate signing requests (CSRs) the CA signs: parsing and
//! checking them.
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

use openssl::asn1::Asn1StringRef;
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Public};
use openssl::x509::{X509NameRef, X509Req};

/// Largest CSR text accepted, in bytes. A PEM CSR with an RSA-4096 key and
/// `openssl req -text` output around it is under 8 KiB.
pub const MAX_CSR_BYTES: usize = 64 * 1024;
/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: u32 = 2048;
/// Longest common name, in characters (RFC 5280's `ub-common-name`).
pub const MAX_COMMON_NAME_CHARS: usize = 64;

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
    /// The PEM block carries headers (`Proc-Type: 4,ENCRYPTED`, `DEK-Info`): an encrypted
    /// block, which OpenSSL's PEM reader would ask a passphrase for on the server's terminal.
    PemHeaders,
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
            Self::PemHeaders => write!(
                f,
                "certificate signing request PEM block has headers (Proc-Type, DEK-Info): \
                 encrypted PEM is not accepted"
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
            Self::Empty
            | Self::NoRequest
            | Self::Unparsable
            | Self::PemHeaders
            | Self::SeveralRequests { .. } => Some(
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
        Self::classify(key, || {
            key.ec_key().ok().and_then(|ec| ec.group().curve_name())
        })
    }

    /// [`KeyKind::of`] for a key whose curve, when it is an EC key, is
    /// already known (`Nid::UNDEF` for none): asking the key for its curve
    /// costs a conversion to a legacy key in OpenSSL 3.
    pub fn of_curve<T: HasPublic>(key: &PKeyRef<T>, curve: Nid) -> Result<Self, CsrError> {
        Self::classify(key, || (curve != Nid::UNDEF).then_some(curve))
    }

    fn classify<T: HasPublic>(
        key: &PKeyRef<T>,
        curve: impl FnOnce() -> Option<Nid>,
    ) -> Result<Self, CsrError> {
        match key.id() {
            Id::RSA => {
                let bits = key.bits();
                if bits < MIN_RSA_BITS {
                    Err(CsrError::RsaTooShort { bits })
                } else {
                    Ok(Self::Rsa(bits))
                }
            }
            Id::EC => match curve() {
                Some(Nid::X9_62_PRIME256V1) => Ok(Self::EcP256),
                Some(Nid::SECP384R1) => Ok(Self::EcP384),
                Some(nid) => Err(CsrError::UnsupportedKey {
                    presented: format!("EC {}", nid.short_name().unwrap_or("(unnamed curve)")),
                }),
                None => Err(CsrError::UnsupportedKey {
                    presented: "EC with explicit curve parameters".into(),
                }),
            },
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
    /// The SubjectPublicKeyInfo as the CSR encoded it, when the fast path
    /// read it: the certificate takes it as it is.
    pub spki_der: Option<Vec<u8>>,
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
    let body = find_request_block(input)?;
    // The block is decoded here rather than by OpenSSL's PEM reader, which on an encrypted
    // block calls its default passphrase callback: a read from the backend's terminal.
    if body.contains(':') {
        return Err(CsrError::PemHeaders);
    }
    let base64: String = body.split_ascii_whitespace().collect();
    let der = openssl::base64::decode_block(&base64).map_err(|_| CsrError::Unparsable)?;
    if let Some(checked) = super::raw_csr::check(&der) {
        return Ok(checked);
    }
    let request = X509Req::from_der(&der).map_err(|_| CsrError::Unparsable)?;
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
        spki_der: None,
    })
}

/// The body (between the BEGIN and END lines) of the one request block, labelled
/// `CERTIFICATE REQUEST` or the older `NEW CERTIFICATE REQUEST`.
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
        blocks.push(body.to_string());
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::test_support::*;

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
            // Read on the fast path, which kept the key's encoding as sent.
            assert_eq!(
                checked.spki_der.as_deref(),
                Some(key.public_key_to_der().unwrap().as_slice())
            );
        }
        // Each key type twice in a row, in another order: the decoders kept
        // per key type give each CSR its own key.
        for key in [
            rsa_key(2048),
            ec_key(Nid::SECP384R1),
            ec_key(Nid::X9_62_PRIME256V1),
            PKey::generate_ed25519().unwrap(),
            ec_key(Nid::X9_62_PRIME256V1),
        ] {
            assert!(check_csr(&csr_pem(&key, "a"))
                .unwrap()
                .public_key
                .public_eq(&key));
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
    fn refuses_encrypted_pem_without_asking_for_a_passphrase() {
        let block = csr_pem(&ec_key(Nid::X9_62_PRIME256V1), "eve");
        let encrypted = block.replace(
            "-----BEGIN CERTIFICATE REQUEST-----\n",
            "-----BEGIN CERTIFICATE REQUEST-----\nProc-Type: 4,ENCRYPTED\n\
             DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n",
        );
        assert_eq!(check_csr(&encrypted).unwrap_err(), CsrError::PemHeaders);
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
}

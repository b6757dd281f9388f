//! Facts about an X.509 certificate, read through OpenSSL.
//!
//! No backend types here: the session functions, the CA and the server
//! certificate report all read certificates through these helpers.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

use foreign_types::ForeignTypeRef;
use openssl::asn1::{Asn1ObjectRef, Asn1TimeRef};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::{X509NameRef, X509Ref};

use crate::dn::{self, NameEntry, Value};

extern "C" {
    // In the C shim: openssl-sys does not bind X509_NAME_ENTRY_set().
    fn pgssl_name_entry_set(entry: *const openssl_sys::X509_NAME_ENTRY) -> c_int;
}

/// The dotted OID of an ASN.1 object.
pub fn oid_text(obj: &Asn1ObjectRef) -> String {
    let mut buf = [0 as c_char; 128];
    // SAFETY: `obj` is a valid object; OBJ_obj2txt writes at most `len` bytes,
    // NUL-terminated, and with no_name = 1 always the dotted form.
    let len =
        unsafe { openssl_sys::OBJ_obj2txt(buf.as_mut_ptr(), buf.len() as c_int, obj.as_ptr(), 1) };
    if len <= 0 {
        return String::new();
    }
    if (len as usize) < buf.len() {
        // SAFETY: OBJ_obj2txt NUL-terminated the buffer.
        return unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned();
    }
    // Longer than the buffer: ask again with room for all of it.
    let mut big = vec![0 as c_char; len as usize + 1];
    // SAFETY: as above, with a buffer of the announced length plus the NUL.
    unsafe { openssl_sys::OBJ_obj2txt(big.as_mut_ptr(), big.len() as c_int, obj.as_ptr(), 1) };
    // SAFETY: NUL-terminated by OBJ_obj2txt.
    unsafe { CStr::from_ptr(big.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The attributes of a name in encoding order, values decoded to UTF-8 where
/// they are strings.
pub fn name_entries(name: &X509NameRef) -> Vec<NameEntry> {
    name.entries()
        .map(|entry| {
            let data = entry.data();
            let value = match data.to_string() {
                Ok(s) => Value::Text(s),
                Err(_) => Value::Der(data.as_slice().to_vec()),
            };
            // SAFETY: `entry` is a valid X509_NAME_ENTRY borrowed from `name`.
            let rdn = unsafe { pgssl_name_entry_set(entry.as_ptr()) };
            NameEntry {
                oid: oid_text(entry.object()),
                value,
                rdn,
            }
        })
        .collect()
}

/// The name in RFC 2253 form (see [`dn::format_rfc2253`]).
pub fn name_rfc2253(name: &X509NameRef) -> String {
    dn::format_rfc2253(&name_entries(name))
}

/// The first value of the attribute `oid` in `name`, as text.
pub fn name_field(name: &X509NameRef, oid: &str) -> Option<String> {
    name_entries(name)
        .into_iter()
        .find(|e| e.oid == oid)
        .map(|e| match e.value {
            Value::Text(s) => s,
            Value::Der(der) => format!("#{}", dn::hex_lower(&der)),
        })
}

/// The serial number in decimal.
pub fn serial_decimal(cert: &X509Ref) -> Option<String> {
    let bn = cert.serial_number().to_bn().ok()?;
    bn.to_dec_str().ok().map(|s| s.to_string())
}

/// The serial number as lowercase hex, the bytes of its DER content (so an
/// even number of digits, e.g. `0a3f`), negative serials with a leading `-`.
pub fn serial_hex(cert: &X509Ref) -> Option<String> {
    let bn = cert.serial_number().to_bn().ok()?;
    Some(bignum_hex(&bn))
}

/// See [`serial_hex`].
pub fn bignum_hex(bn: &BigNum) -> String {
    let digits = dn::hex_lower(&bn.to_vec());
    let digits = if digits.is_empty() {
        "00".to_string()
    } else {
        digits
    };
    if bn.is_negative() {
        format!("-{digits}")
    } else {
        digits
    }
}

/// Seconds since the Unix epoch of an ASN.1 time.
pub fn unix_seconds(time: &Asn1TimeRef) -> Option<i64> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(time).ok()?;
    Some(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// SHA-256 of the DER certificate, lowercase hex.
pub fn fingerprint_sha256(cert: &X509Ref) -> Option<String> {
    cert.digest(MessageDigest::sha256())
        .ok()
        .map(|d| dn::hex_lower(&d))
}

/// DER as PEM, exactly as OpenSSL's PEM writer lays it out: the BEGIN line,
/// base64 in lines of 64 characters, the END line, each ending in `\n`.
pub fn der_to_pem(label: &str, der: &[u8]) -> String {
    let base64 = openssl::base64::encode_block(der);
    let mut pem = String::with_capacity(base64.len() + base64.len() / 64 + 2 * label.len() + 40);
    pem.push_str("-----BEGIN ");
    pem.push_str(label);
    pem.push_str("-----\n");
    for line in base64.as_bytes().chunks(64) {
        // Base64 is ASCII.
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END ");
    pem.push_str(label);
    pem.push_str("-----\n");
    pem
}

/// The subject alternative names, each as `DNS:name`, `IP:addr`, `email:addr`
/// or `URI:uri`, in certificate order.
pub fn subject_alt_names(cert: &X509Ref) -> Vec<String> {
    let Some(names) = cert.subject_alt_names() else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|name| {
            if let Some(dns) = name.dnsname() {
                Some(format!("DNS:{dns}"))
            } else if let Some(ip) = name.ipaddress() {
                format_ip(ip).map(|ip| format!("IP:{ip}"))
            } else if let Some(email) = name.email() {
                Some(format!("email:{email}"))
            } else {
                name.uri().map(|uri| format!("URI:{uri}"))
            }
        })
        .collect()
}

fn format_ip(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

/// One X.509v3 extension of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// OpenSSL's short name (`basicConstraints`), or the dotted OID.
    pub name: String,
    /// The value as `openssl x509 -text` prints it, or the hex of the raw
    /// value when OpenSSL has no printer for it.
    pub value: String,
    /// Whether the extension is marked critical.
    pub critical: bool,
}

/// The certificate's extensions in certificate order.
pub fn extensions(cert: &X509Ref) -> Vec<Extension> {
    let x = cert.as_ptr();
    // SAFETY: `x` is a valid certificate for the whole function; every pointer
    // taken from it is borrowed (get0 semantics) and not freed here.
    let count = unsafe { openssl_sys::X509_get_ext_count(x) };
    (0..count)
        .filter_map(|i| {
            // SAFETY: 0 <= i < count.
            let ext = unsafe { openssl_sys::X509_get_ext(x, i) };
            if ext.is_null() {
                return None;
            }
            // SAFETY: `ext` is a valid extension borrowed from `x`.
            let (obj, critical) = unsafe {
                (
                    Asn1ObjectRef::from_ptr(openssl_sys::X509_EXTENSION_get_object(ext)),
                    openssl_sys::X509_EXTENSION_get_critical(ext) > 0,
                )
            };
            let name = match obj.nid() {
                Nid::UNDEF => oid_text(obj),
                nid => nid
                    .short_name()
                    .map(str::to_string)
                    .unwrap_or_else(|_| oid_text(obj)),
            };
            let value = print_extension(ext).unwrap_or_else(|| {
                // SAFETY: `ext` is valid; the data is borrowed.
                let data = unsafe { openssl_sys::X509_EXTENSION_get_data(ext) };
                // SAFETY: ASN1_OCTET_STRING is an ASN1_STRING.
                let bytes =
                    unsafe { openssl::asn1::Asn1StringRef::from_ptr(data as *mut _) }.as_slice();
                dn::hex_lower(bytes)
            });
            Some(Extension {
                name,
                value,
                critical,
            })
        })
        .collect()
}

/// `X509V3_EXT_print` into memory; lines joined with `; `.
fn print_extension(ext: *mut openssl_sys::X509_EXTENSION) -> Option<String> {
    // SAFETY: a fresh memory BIO, freed below on every path.
    let bio = unsafe { openssl_sys::BIO_new(openssl_sys::BIO_s_mem()) };
    if bio.is_null() {
        return None;
    }
    // SAFETY: `bio` and `ext` are valid; flag 0 and indent 0 are plain text.
    let ok = unsafe { openssl_sys::X509V3_EXT_print(bio, ext, 0, 0) } > 0;
    let text = ok.then(|| {
        let mut ptr: *mut c_char = std::ptr::null_mut();
        // SAFETY: BIO_get_mem_data points `ptr` at the BIO's own buffer.
        let len = unsafe { openssl_sys::BIO_get_mem_data(bio, &mut ptr) };
        if ptr.is_null() || len <= 0 {
            return String::new();
        }
        // SAFETY: `ptr` holds `len` bytes owned by `bio`, which is alive here.
        let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) };
        String::from_utf8_lossy(bytes)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    });
    // SAFETY: `bio` came from BIO_new and is freed once.
    unsafe { openssl_sys::BIO_free_all(bio) };
    text
}

/// A certificate's public key, as a DBA describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// `RSA`, `EC`, `Ed25519`, `Ed448`, or OpenSSL's name for anything else.
    pub algorithm: String,
    /// Size in bits.
    pub bits: u32,
    /// The named curve of an EC key (`prime256v1`, `secp384r1`).
    pub curve: Option<String>,
}

/// The certificate's public key algorithm and size.
pub fn key_info(cert: &X509Ref) -> Option<KeyInfo> {
    use openssl::pkey::Id;
    let key = cert.public_key().ok()?;
    let (algorithm, curve) = match key.id() {
        Id::RSA => ("RSA".to_string(), None),
        Id::EC => {
            let curve = key
                .ec_key()
                .ok()
                .and_then(|ec| ec.group().curve_name())
                .and_then(|nid| nid.short_name().ok());
            ("EC".to_string(), curve.map(str::to_string))
        }
        Id::ED25519 => ("Ed25519".to_string(), None),
        Id::ED448 => ("Ed448".to_string(), None),
        Id::DSA => ("DSA".to_string(), None),
        other => (
            Nid::from_raw(other.as_raw())
                .short_name()
                .unwrap_or("unknown")
                .to_string(),
            None,
        ),
    };
    Some(KeyInfo {
        algorithm,
        bits: key.bits(),
        curve,
    })
}

/// The signature algorithm's name as `openssl x509 -text` prints it
/// (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`, `ED25519`).
pub fn signature_algorithm(cert: &X509Ref) -> String {
    let obj = cert.signature_algorithm().object();
    match obj.nid() {
        Nid::UNDEF => oid_text(obj),
        nid => nid
            .long_name()
            .map(str::to_string)
            .unwrap_or_else(|_| oid_text(obj)),
    }
}

/// Every certificate in a PEM file, in order, ignoring any text around the
/// blocks (as `openssl x509 -text` writes it).
pub fn certificates_from_pem(
    pem: &[u8],
) -> Result<Vec<openssl::x509::X509>, openssl::error::ErrorStack> {
    openssl::x509::X509::stack_from_pem(pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::{Asn1Integer, Asn1Time};
    use openssl::ec::{EcGroup, EcKey};
    use openssl::pkey::PKey;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};

    fn cert(serial_hex: &str) -> X509 {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("C", "SE").unwrap();
        name.append_entry_by_text("O", "Acme, Inc.").unwrap();
        name.append_entry_by_text("CN", "Zoë Ångström").unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial = BigNum::from_hex_str(serial_hex).unwrap();
        b.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(1_700_000_000).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_unix(1_800_000_000).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().build().unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .dns("db.example.com")
            .ip("127.0.0.1")
            .ip("::1")
            .email("zoe@example.com")
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    #[test]
    fn pem_and_fingerprint_from_one_der_match_openssl() {
        let c = cert("0a3f");
        let der = c.to_der().unwrap();
        assert_eq!(
            der_to_pem("CERTIFICATE", &der).as_bytes(),
            c.to_pem().unwrap().as_slice()
        );
        assert_eq!(
            Some(dn::hex_lower(&openssl::sha::sha256(&der))),
            fingerprint_sha256(&c)
        );
        // A length that is a multiple of 48 bytes ends on a full line.
        let pem = der_to_pem("X", &[0u8; 96]);
        assert_eq!(pem.lines().count(), 4);
    }

    #[test]
    fn reads_names_in_rfc2253_with_utf8() {
        let c = cert("01");
        assert_eq!(
            name_rfc2253(c.subject_name()),
            "CN=Zoë Ångström,O=Acme\\, Inc.,C=SE"
        );
        assert_eq!(
            name_field(c.subject_name(), "2.5.4.3").as_deref(),
            Some("Zoë Ångström")
        );
        assert_eq!(
            name_field(c.subject_name(), "2.5.4.10").as_deref(),
            Some("Acme, Inc.")
        );
        assert_eq!(name_field(c.subject_name(), "2.5.4.11"), None);
    }

    #[test]
    fn serial_in_decimal_and_hex() {
        let c = cert("0A3F");
        assert_eq!(serial_decimal(&c).as_deref(), Some("2623"));
        assert_eq!(serial_hex(&c).as_deref(), Some("0a3f"));
        let c = cert("7FFFFFFFFFFFFFFFFF");
        assert_eq!(
            serial_decimal(&c).as_deref(),
            Some("2361183241434822606847")
        );
        assert_eq!(serial_hex(&c).as_deref(), Some("7fffffffffffffffff"));
    }

    #[test]
    fn validity_and_fingerprint() {
        let c = cert("01");
        assert_eq!(unix_seconds(c.not_before()), Some(1_700_000_000));
        assert_eq!(unix_seconds(c.not_after()), Some(1_800_000_000));
        let fp = fingerprint_sha256(&c).unwrap();
        assert_eq!(fp.len(), 64);
        assert!(fp
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn sans_and_extensions() {
        let c = cert("01");
        assert_eq!(
            subject_alt_names(&c),
            [
                "DNS:db.example.com",
                "IP:127.0.0.1",
                "IP:::1",
                "email:zoe@example.com"
            ]
        );
        let exts = extensions(&c);
        assert_eq!(exts.len(), 2);
        assert_eq!(
            exts[0],
            Extension {
                name: "basicConstraints".into(),
                value: "CA:FALSE".into(),
                critical: true
            }
        );
        assert_eq!(exts[1].name, "subjectAltName");
        assert!(!exts[1].critical);
        assert!(
            exts[1].value.contains("DNS:db.example.com"),
            "{}",
            exts[1].value
        );
    }
}

//! Distinguished names as the session functions show them: field-name lookup
//! (`ssl_client_dn_field('CN')`), RFC 2253 formatting of a DER name, and escaping.
//!
//! The input is a field name, a NUL, then a DER `Name` (or bytes the target turns into
//! name entries when they do not parse as one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use openssl::x509::X509Name;
use pgssl_fuzz::{cert, dn};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (field, der) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let field = String::from_utf8_lossy(field);

    let oid = dn::lookup_field(&field);
    if let Some(oid) = &oid {
        // Only known names and well-formed dotted OIDs resolve.
        assert!(dn::ATTRIBUTES.iter().any(|a| a.oid == oid) || oid.as_str() == field.trim());
        assert!(oid.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    }
    let escaped = dn::escape_value(&field);
    assert!(!escaped.chars().any(char::is_control));

    if let Ok(name) = X509Name::from_der(der) {
        let formatted = cert::name_rfc2253(&name);
        assert!(!formatted.chars().any(char::is_control));
        if let Some(oid) = &oid {
            let _ = cert::name_field(&name, oid);
        }
        for entry in cert::name_entries(&name) {
            let _ = cert::name_field(&name, &entry.oid);
            let _ = dn::short_name(&entry.oid);
        }
    } else {
        // Arbitrary entries: OID and RDN index from the bytes, text or DER values.
        let entries: Vec<dn::NameEntry> = der
            .chunks(8)
            .enumerate()
            .map(|(i, chunk)| dn::NameEntry {
                oid: dn::ATTRIBUTES[usize::from(chunk[0]) % dn::ATTRIBUTES.len()]
                    .oid
                    .to_string(),
                value: if chunk[0] & 0x80 == 0 {
                    dn::Value::Text(String::from_utf8_lossy(&chunk[1..]).into_owned())
                } else {
                    dn::Value::Der(chunk[1..].to_vec())
                },
                rdn: (i as i32) - i32::from(chunk[0] & 1),
            })
            .collect();
        let formatted = dn::format_rfc2253(&entries);
        assert!(!formatted.chars().any(char::is_control));
    }
});

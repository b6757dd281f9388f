//! Distinguished names: RFC 4514 / RFC 2253 formatting and attribute-name lookup.
//!
//! Pure code, no backend and no OpenSSL: the caller turns a certificate's name
//! into [`NameEntry`] values and this module decides how they read.

use std::fmt::Write;

/// A name attribute type that pgssl knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    /// Dotted object identifier, e.g. `2.5.4.3`.
    pub oid: &'static str,
    /// The short name OpenSSL prints (`CN`), used when formatting.
    pub short_name: &'static str,
    /// The long name (`commonName`).
    pub long_name: &'static str,
}

macro_rules! attributes {
    ($(($oid:literal, $short:literal, $long:literal)),* $(,)?) => {
        /// Every attribute type accepted by name, with OpenSSL's short and long names.
        pub const ATTRIBUTES: &[Attribute] = &[
            $(Attribute { oid: $oid, short_name: $short, long_name: $long }),*
        ];
    };
}

attributes![
    ("2.5.4.3", "CN", "commonName"),
    ("2.5.4.4", "SN", "surname"),
    ("2.5.4.5", "serialNumber", "serialNumber"),
    ("2.5.4.6", "C", "countryName"),
    ("2.5.4.7", "L", "localityName"),
    ("2.5.4.8", "ST", "stateOrProvinceName"),
    ("2.5.4.9", "street", "streetAddress"),
    ("2.5.4.10", "O", "organizationName"),
    ("2.5.4.11", "OU", "organizationalUnitName"),
    ("2.5.4.12", "title", "title"),
    ("2.5.4.13", "description", "description"),
    ("2.5.4.15", "businessCategory", "businessCategory"),
    ("2.5.4.17", "postalCode", "postalCode"),
    ("2.5.4.41", "name", "name"),
    ("2.5.4.42", "GN", "givenName"),
    ("2.5.4.43", "initials", "initials"),
    ("2.5.4.44", "generationQualifier", "generationQualifier"),
    ("2.5.4.45", "x500UniqueIdentifier", "x500UniqueIdentifier"),
    ("2.5.4.46", "dnQualifier", "dnQualifier"),
    ("2.5.4.65", "pseudonym", "pseudonym"),
    (
        "2.5.4.97",
        "organizationIdentifier",
        "organizationIdentifier"
    ),
    ("1.2.840.113549.1.9.1", "emailAddress", "emailAddress"),
    ("0.9.2342.19200300.100.1.1", "UID", "userId"),
    ("0.9.2342.19200300.100.1.25", "DC", "domainComponent"),
    (
        "1.3.6.1.4.1.311.60.2.1.1",
        "jurisdictionL",
        "jurisdictionLocalityName"
    ),
    (
        "1.3.6.1.4.1.311.60.2.1.2",
        "jurisdictionST",
        "jurisdictionStateOrProvinceName"
    ),
    (
        "1.3.6.1.4.1.311.60.2.1.3",
        "jurisdictionC",
        "jurisdictionCountryName"
    ),
];

/// Resolves a field name as a DBA writes it: a short name (`CN`, `O`), a long
/// name (`commonName`), either in any case, or a dotted OID (`2.5.4.3`).
///
/// Returns the dotted OID, or `None` when the name means nothing.
pub fn lookup_field(name: &str) -> Option<String> {
    let name = name.trim();
    if let Some(attr) = ATTRIBUTES
        .iter()
        .find(|a| a.short_name.eq_ignore_ascii_case(name) || a.long_name.eq_ignore_ascii_case(name))
    {
        return Some(attr.oid.to_string());
    }
    is_dotted_oid(name).then(|| name.to_string())
}

/// The short name for an OID, as used in formatted DNs; unknown OIDs print dotted.
pub fn short_name(oid: &str) -> Option<&'static str> {
    ATTRIBUTES
        .iter()
        .find(|a| a.oid == oid)
        .map(|a| a.short_name)
}

/// A syntactically valid dotted OID: at least two arcs, the first 0, 1 or 2,
/// no empty arc and no leading zero.
fn is_dotted_oid(s: &str) -> bool {
    let arcs: Vec<&str> = s.split('.').collect();
    arcs.len() >= 2
        && matches!(arcs[0], "0" | "1" | "2")
        && arcs.iter().all(|arc| {
            !arc.is_empty()
                && arc.bytes().all(|b| b.is_ascii_digit())
                && (arc.len() == 1 || !arc.starts_with('0'))
        })
}

/// The value of one name attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string type (UTF8String, PrintableString, BMPString, ...), decoded to UTF-8.
    Text(String),
    /// Anything else: the raw DER of the value, printed as `#hex` (RFC 4514, 2.4).
    Der(Vec<u8>),
}

/// One attribute of a name, in the order the certificate encodes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    /// Dotted OID of the attribute type.
    pub oid: String,
    /// The value.
    pub value: Value,
    /// Index of the RDN (SET) the entry belongs to; equal indexes make a
    /// multi-valued RDN, printed joined with `+`.
    pub rdn: i32,
}

/// Formats a name as RFC 4514 (RFC 2253) does: RDNs from the last encoded to
/// the first, separated by `,`, multi-valued RDNs joined with `+`, with short
/// names and the escapes the RFC requires.
///
/// Unlike OpenSSL's `XN_FLAG_RFC2253`, characters outside ASCII are kept as
/// UTF-8 (RFC 4514 allows it) rather than escaped byte by byte, so a CN such as
/// `Zoë` reads as written. For ASCII names the result is the same as the
/// server's own `peer_dn`.
pub fn format_rfc2253(entries: &[NameEntry]) -> String {
    let mut out = String::new();
    let mut previous_rdn = None;
    for entry in entries.iter().rev() {
        match previous_rdn {
            None => {}
            Some(rdn) if rdn == entry.rdn => out.push('+'),
            Some(_) => out.push(','),
        }
        previous_rdn = Some(entry.rdn);
        match short_name(&entry.oid) {
            Some(name) => out.push_str(name),
            None => out.push_str(&entry.oid),
        }
        out.push('=');
        match &entry.value {
            Value::Text(text) => out.push_str(&escape_value(text)),
            Value::Der(der) => {
                out.push('#');
                out.push_str(&hex_lower(der));
            }
        }
    }
    out
}

/// Escapes an attribute value per RFC 4514, 2.4: the special characters
/// anywhere, `#` and space at the start, space at the end, and control
/// characters as `\XX`.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\{b:02X}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Lowercase hex without separators.
pub fn hex_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(oid: &str, value: &str, rdn: i32) -> NameEntry {
        NameEntry {
            oid: oid.into(),
            value: Value::Text(value.into()),
            rdn,
        }
    }

    #[test]
    fn lookup_accepts_short_long_any_case_and_oids() {
        assert_eq!(lookup_field("CN").as_deref(), Some("2.5.4.3"));
        assert_eq!(lookup_field("commonName").as_deref(), Some("2.5.4.3"));
        assert_eq!(lookup_field("cn").as_deref(), Some("2.5.4.3"));
        assert_eq!(lookup_field("COMMONNAME").as_deref(), Some("2.5.4.3"));
        assert_eq!(lookup_field("O").as_deref(), Some("2.5.4.10"));
        assert_eq!(
            lookup_field("emailAddress").as_deref(),
            Some("1.2.840.113549.1.9.1")
        );
        assert_eq!(
            lookup_field("UID").as_deref(),
            Some("0.9.2342.19200300.100.1.1")
        );
        assert_eq!(
            lookup_field("userId").as_deref(),
            Some("0.9.2342.19200300.100.1.1")
        );
        assert_eq!(lookup_field("2.5.4.3").as_deref(), Some("2.5.4.3"));
        assert_eq!(
            lookup_field("1.3.6.1.4.1.99999.1").as_deref(),
            Some("1.3.6.1.4.1.99999.1")
        );
    }

    #[test]
    fn lookup_refuses_unknown_names_and_bad_oids() {
        for bad in [
            "",
            "X",
            "common name",
            "CN=",
            "3.1",
            "1",
            "1..2",
            "1.02",
            "1.2.a",
            "2.5.4.3.",
        ] {
            assert_eq!(lookup_field(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_attribute_is_unique() {
        for (i, a) in ATTRIBUTES.iter().enumerate() {
            assert!(is_dotted_oid(a.oid), "{}", a.oid);
            for b in &ATTRIBUTES[i + 1..] {
                assert_ne!(a.oid, b.oid);
                assert!(
                    !a.short_name.eq_ignore_ascii_case(b.short_name),
                    "{}",
                    a.short_name
                );
                assert!(
                    !a.long_name.eq_ignore_ascii_case(b.long_name),
                    "{}",
                    a.long_name
                );
            }
        }
    }

    #[test]
    fn formats_in_reverse_order_with_short_names() {
        let name = [
            text("2.5.4.6", "FR", 0),
            text("2.5.4.10", "Acme", 1),
            text("2.5.4.3", "alice", 2),
        ];
        assert_eq!(format_rfc2253(&name), "CN=alice,O=Acme,C=FR");
    }

    #[test]
    fn multi_valued_rdns_join_with_plus() {
        let name = [
            text("2.5.4.10", "Acme", 0),
            text("2.5.4.3", "alice", 1),
            text("0.9.2342.19200300.100.1.1", "42", 1),
        ];
        assert_eq!(format_rfc2253(&name), "UID=42+CN=alice,O=Acme");
    }

    #[test]
    fn unknown_types_print_as_oids_and_binary_values_as_hex() {
        let name = [
            text("1.3.6.1.4.1.99999.7", "x", 0),
            NameEntry {
                oid: "2.5.4.45".into(),
                value: Value::Der(vec![0x03, 0x02, 0x00, 0xff]),
                rdn: 1,
            },
        ];
        assert_eq!(
            format_rfc2253(&name),
            "x500UniqueIdentifier=#030200ff,1.3.6.1.4.1.99999.7=x"
        );
    }

    #[test]
    fn escapes_what_rfc_4514_requires() {
        assert_eq!(
            escape_value("a,b+c\"d\\e<f>g;h"),
            "a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h"
        );
        assert_eq!(escape_value("#x#"), "\\#x#");
        assert_eq!(escape_value(" x "), "\\ x\\ ");
        assert_eq!(escape_value(" "), "\\ ");
        assert_eq!(escape_value("a\nb\0"), "a\\0Ab\\00");
        assert_eq!(escape_value("a=b"), "a=b");
        assert_eq!(escape_value(""), "");
    }

    #[test]
    fn keeps_utf8_as_written() {
        let name = [text("2.5.4.3", "Zoë Ångström", 0)];
        assert_eq!(format_rfc2253(&name), "CN=Zoë Ångström");
    }

    #[test]
    fn empty_name_formats_empty() {
        assert_eq!(format_rfc2253(&[]), "");
    }
}

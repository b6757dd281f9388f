//! What a server certificate says: the host names clients reach the server
//! by, checked, and the one server-certificate profile.
//!
//! Pure Rust over OpenSSL, no backend types.

use std::fmt;
use std::net::IpAddr;

use openssl::bn::BigNum;
use openssl::error::ErrorStack;
use openssl::pkey::{PKeyRef, Private};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509Ref, X509};

use crate::ca::profile::{self as ca_profile, Validity};

/// Most names one certificate carries.
pub const MAX_HOSTNAMES: usize = 100;

/// One name clients connect to the server by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostName {
    /// A DNS name, lowercase; a leading `*.` makes it a wildcard.
    Dns(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostName::Dns(name) => f.write_str(name),
            HostName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Why a host-name list was refused (22023).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostError {
    /// No names at all.
    Empty,
    /// More than [`MAX_HOSTNAMES`].
    TooMany {
        /// How many were given.
        count: usize,
    },
    /// A NULL element.
    Null {
        /// Its 1-based position.
        position: usize,
    },
    /// Not a valid DNS name or IP address.
    Invalid {
        /// The name as given.
        presented: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Empty => {
                f.write_str("hostnames is empty: name at least one host name or IP address")
            }
            HostError::TooMany { count } => {
                write!(
                    f,
                    "{count} host names are more than the {MAX_HOSTNAMES} one certificate carries"
                )
            }
            HostError::Null { position } => write!(f, "host name {position} is NULL"),
            HostError::Invalid { presented, reason } => {
                write!(f, "invalid host name {presented:?}: {reason}")
            }
        }
    }
}

/// Checks and normalises the names a server certificate is for: each a DNS
/// name (RFC 1123 labels of letters, digits and hyphens, at most 63
/// characters each and 253 in all; `*` only as the whole leftmost label) or
/// an IP address. Duplicates (case-insensitive) are dropped; the order is kept.
pub fn parse_hostnames(names: &[Option<String>]) -> Result<Vec<HostName>, HostError> {
    if names.is_empty() {
        return Err(HostError::Empty);
    }
    if names.len() > MAX_HOSTNAMES {
        return Err(HostError::TooMany { count: names.len() });
    }
    let mut out: Vec<HostName> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let name = name.as_deref().ok_or(HostError::Null { position: i + 1 })?;
        let host = parse_hostname(name)?;
        if !out.contains(&host) {
            out.push(host);
        }
    }
    Ok(out)
}

fn parse_hostname(name: &str) -> Result<HostName, HostError> {
    let invalid = |reason| HostError::Invalid {
        presented: name.into(),
        reason,
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(HostName::Ip(ip));
    }
    let dns = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if dns.is_empty() {
        return Err(invalid("it is empty"));
    }
    if dns.len() > 253 {
        return Err(invalid("longer than 253 characters"));
    }
    let labels: Vec<&str> = dns.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if *label == "*" {
            if i != 0 || labels.len() < 3 {
                return Err(invalid("a wildcard is only the whole leftmost label of a name with at least three labels"));
            }
            continue;
        }
        if label.is_empty() {
            return Err(invalid("it has an empty label"));
        }
        if label.len() > 63 {
            return Err(invalid("a label is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid("only letters, digits, hyphens and dots are allowed (use punycode for other scripts)"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label starts or ends with a hyphen"));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid(
            "the last label is all digits, but it is not an IP address",
        ));
    }
    Ok(HostName::Dns(dns))
}

/// Builds and signs a server certificate: the CA's one end-entity profile
/// ([`ca_profile::issue_end_entity`]) with serverAuth, subject `CN=<first name>`,
/// and a SAN for every name (dNSName or iPAddress).
pub fn issue_server_certificate(
    hosts: &[HostName],
    key: &PKeyRef<Private>,
    ca_cert: &X509Ref,
    ca_key: &PKeyRef<Private>,
    serial: &BigNum,
    validity: Validity,
) -> Result<X509, ErrorStack> {
    let mut sans = SubjectAlternativeName::new();
    for host in hosts {
        match host {
            HostName::Dns(name) => sans.dns(name),
            HostName::Ip(ip) => sans.ip(&ip.to_string()),
        };
    }
    ca_profile::issue_end_entity(
        &hosts[0].to_string(),
        key,
        ca_profile::Purpose::Server,
        Some(sans),
        ca_cert,
        ca_key,
        serial,
        validity,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::authority::{self_signed_ca, CaKeyType};
    use crate::cert;

    fn names(list: &[&str]) -> Vec<Option<String>> {
        list.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn accepts_dns_names_ips_and_wildcards() {
        let hosts = parse_hostnames(&names(&[
            "DB.Example.com.",
            "127.0.0.1",
            "::1",
            "*.db.example.com",
            "localhost",
        ]))
        .unwrap();
        assert_eq!(
            hosts,
            [
                HostName::Dns("db.example.com".into()),
                HostName::Ip("127.0.0.1".parse().unwrap()),
                HostName::Ip("::1".parse().unwrap()),
                HostName::Dns("*.db.example.com".into()),
                HostName::Dns("localhost".into()),
            ]
        );
    }

    #[test]
    fn drops_duplicates_keeping_order() {
        let hosts = parse_hostnames(&names(&[
            "b.example",
            "A.example",
            "b.EXAMPLE",
            "a.example",
        ]))
        .unwrap();
        assert_eq!(
            hosts,
            [
                HostName::Dns("b.example".into()),
                HostName::Dns("a.example".into())
            ]
        );
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(parse_hostnames(&[]), Err(HostError::Empty));
        assert_eq!(
            parse_hostnames(&[Some("a".into()), None]),
            Err(HostError::Null { position: 2 })
        );
        let too_many: Vec<Option<String>> =
            (0..101).map(|i| Some(format!("h{i}.example"))).collect();
        assert_eq!(
            parse_hostnames(&too_many),
            Err(HostError::TooMany { count: 101 })
        );
        let long_label = "a".repeat(64);
        let long_name = format!("{}.example", ["abcdefghij"; 25].join("."));
        for bad in [
            "",
            ".",
            "a..b",
            "-a.example",
            "a-.example",
            "a b",
            "a_b.example",
            "zoë.example",
            "*.example",
            "a.*.example",
            "x*.example.com",
            "1.2.3",
            "300.1.1.1",
            long_label.as_str(),
            long_name.as_str(),
            "a;b",
            "a\nb",
        ] {
            assert!(
                matches!(parse_hostname(bad), Err(HostError::Invalid { .. })),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn issues_a_server_certificate_with_every_name() {
        let ca_key = CaKeyType::EcP256.generate().unwrap();
        let ca = self_signed_ca("test server CA", 30, &ca_key, 1_800_000_000).unwrap();
        let key = CaKeyType::EcP256.generate().unwrap();
        let hosts = parse_hostnames(&names(&["localhost", "127.0.0.1", "db.example.com"])).unwrap();
        let serial = ca_profile::random_serial().unwrap();
        let validity = Validity {
            not_before: 1_800_000_000,
            not_after: 1_800_086_400,
        };
        let c = issue_server_certificate(&hosts, &key, &ca, &ca_key, &serial, validity).unwrap();
        assert_eq!(c.version(), 2);
        assert_eq!(cert::name_rfc2253(c.subject_name()), "CN=localhost");
        assert_eq!(cert::name_rfc2253(c.issuer_name()), "CN=test server CA");
        assert_eq!(
            cert::subject_alt_names(&c),
            ["DNS:localhost", "IP:127.0.0.1", "DNS:db.example.com"]
        );
        let exts = cert::extensions(&c);
        let find = |n: &str| exts.iter().find(|e| e.name == n).unwrap().clone();
        assert_eq!(
            (
                find("basicConstraints").value.as_str(),
                find("basicConstraints").critical
            ),
            ("CA:FALSE", true)
        );
        assert_eq!(
            (find("keyUsage").value.as_str(), find("keyUsage").critical),
            ("Digital Signature", true)
        );
        assert_eq!(
            find("extendedKeyUsage").value,
            "TLS Web Server Authentication"
        );
        assert!(c.verify(&ca.public_key().unwrap()).unwrap());
        assert_eq!(cert::unix_seconds(c.not_after()), Some(1_800_086_400));
    }
}

//! libpq's `verify-full` host-name rule (PostgreSQL 15
//! `pgtls_verify_peer_name_matches_certificate_guts`): which names of the server's certificate
//! are compared to the host, and how.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use openssl::nid::Nid;
use openssl::x509::X509Ref;

use crate::error::Error;

/// glibc's `inet_aton`: the IPv4 forms libpq accepts as an address ("127.1", "0x7f.0.0.1",
/// "017.0.0.1"); anything after the first whitespace is ignored, as glibc does.
pub(crate) fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let s = s.split(|c: char| c.is_ascii_whitespace()).next()?;
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(4);
    for p in &parts {
        let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X"))
        {
            (h, 16)
        } else if p.len() > 1 && p.starts_with('0') {
            (&p[1..], 8)
        } else {
            (*p, 10)
        };
        // glibc accepts "0x" alone as 0.
        let n = if digits.is_empty() && radix == 16 {
            0
        } else {
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            u64::from_str_radix(digits, radix).ok()?
        };
        nums.push(n);
    }
    let last = *nums.last()?;
    let head = &nums[..nums.len() - 1];
    if head.iter().any(|n| *n > 255) {
        return None;
    }
    let last_max: u64 = match head.len() {
        0 => 0xffff_ffff,
        1 => 0xff_ffff,
        2 => 0xffff,
        _ => 0xff,
    };
    if last > last_max {
        return None;
    }
    let mut v: u32 = 0;
    for (i, n) in head.iter().enumerate() {
        v |= (*n as u32) << (24 - 8 * i);
    }
    Some(Ipv4Addr::from(v | last as u32))
}

/// libpq's `is_ip_address`: `inet_aton` or an IPv6 literal.
pub(crate) fn is_ip_address(host: &str) -> bool {
    inet_aton(host).is_some() || host.parse::<Ipv6Addr>().is_ok()
}

/// libpq's `wildcard_certificate_match`: `*.` must be the whole leftmost label and match
/// exactly one label of the host.
fn wildcard_match(pattern: &str, host: &str) -> bool {
    let (p, h) = (pattern.as_bytes(), host.as_bytes());
    if p.len() < 3 || p[0] != b'*' || p[1] != b'.' || p.len() > h.len() {
        return false;
    }
    let start = h.len() - p.len() + 1;
    if !p[1..].eq_ignore_ascii_case(&h[start..]) {
        return false;
    }
    // No dot may come before the part the pattern's suffix matched.
    match h.iter().position(|&c| c == b'.') {
        Some(first_dot) => first_dot >= start - 1,
        None => false,
    }
}

/// One name from the certificate compared to the host (libpq's
/// `pq_verify_peer_name_matches_certificate_name`).
fn name_matches(name: &[u8], host: &str) -> Result<bool, Error> {
    if name.contains(&0) {
        return Err(Error::BadCertificateName {
            reason: "SSL certificate's name contains embedded null".into(),
        });
    }
    let name = String::from_utf8_lossy(name);
    Ok(name.eq_ignore_ascii_case(host) || wildcard_match(&name, host))
}

/// An iPAddress SAN compared to the host (libpq's `pq_verify_peer_name_matches_certificate_ip`).
fn ip_matches(ip: &[u8], host: &str) -> Result<(bool, String), Error> {
    match ip.len() {
        4 => {
            let a = Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]);
            Ok((inet_aton(host) == Some(a), a.to_string()))
        }
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(ip);
            let a = Ipv6Addr::from(b);
            Ok((host.parse::<Ipv6Addr>().ok() == Some(a), a.to_string()))
        }
        n => Err(Error::BadCertificateName {
            reason: format!("certificate contains IP address with invalid length {n}"),
        }),
    }
}

/// libpq's `verify-full` host-name check of the server's certificate.
///
/// DNS and IP subjectAltNames are compared in order; the subject CN is compared only when no
/// SAN of the host's kind (DNS for a name, IP for an address) exists and no SAN matched.
pub(crate) fn check_host_name(cert: &X509Ref, host: &str) -> Result<(), Error> {
    let host_is_ip = is_ip_address(host);
    let mut presented = Vec::new();
    let mut check_cn = true;
    let mut matched = false;
    if let Some(sans) = cert.subject_alt_names() {
        for san in &sans {
            let (is_dns, is_ip) = (san.dnsname().is_some(), san.ipaddress().is_some());
            if (is_dns && !host_is_ip) || (is_ip && host_is_ip) {
                check_cn = false;
            }
            if let Some(dns) = san.dnsname() {
                presented.push(dns.to_string());
                if name_matches(dns.as_bytes(), host)? {
                    matched = true;
                }
            } else if let Some(ip) = san.ipaddress() {
                let (ok, text) = ip_matches(ip, host)?;
                presented.push(text);
                if ok {
                    matched = true;
                }
            }
            if matched {
                return Ok(());
            }
        }
    }
    if check_cn {
        if let Some(cn) = cert.subject_name().entries_by_nid(Nid::COMMONNAME).next() {
            let raw = cn.data().as_slice();
            presented.push(String::from_utf8_lossy(raw).into_owned());
            if name_matches(raw, host)? {
                return Ok(());
            }
        }
    }
    Err(Error::HostNameMismatch {
        expected: host.to_string(),
        presented,
    })
}

/// The host text libpq would compare, recovered from the name rustls was given.
pub(crate) fn host_of(name: &rustls::pki_types::ServerName<'_>) -> String {
    match name {
        rustls::pki_types::ServerName::DnsName(d) => d.as_ref().to_string(),
        rustls::pki_types::ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_aton_accepts_what_glibc_accepts() {
        assert_eq!(inet_aton("127.0.0.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("127.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("017.0.0.1"), Some(Ipv4Addr::new(15, 0, 0, 1)));
        assert_eq!(inet_aton("2130706433"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(
            inet_aton("127.0.0.1 trailing"),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(inet_aton("256.0.0.1"), None);
        assert_eq!(inet_aton("localhost"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("08.0.0.1"), None);
        assert!(is_ip_address("::1"));
        assert!(!is_ip_address("db.example.com"));
    }

    use openssl::x509::X509;
    use pgssl_tests::{Ca, CertSpec};

    /// A server certificate from a throwaway CA with this CN and these SANs.
    fn cert(cn: Option<&str>, dns: &[&str], ips: &[&str]) -> X509 {
        let ca = Ca::new("name test CA");
        let mut spec = CertSpec::server();
        spec.subject = cn
            .map(|c| vec![("CN".to_string(), c.to_string())])
            .unwrap_or_else(|| vec![("O".into(), "no CN".into())]);
        spec.dns = dns.iter().map(|d| d.to_string()).collect();
        spec.ips = ips.iter().map(|i| i.parse().unwrap()).collect();
        ca.issue(&spec).cert
    }

    fn ok(c: &X509, host: &str) -> bool {
        check_host_name(c, host).is_ok()
    }

    #[test]
    fn host_names_follow_libpq_15() {
        let both = cert(Some("localhost"), &["localhost"], &["127.0.0.1"]);
        assert!(ok(&both, "localhost"));
        assert!(ok(&both, "LocalHost"), "case-insensitive");
        assert!(ok(&both, "127.0.0.1"));
        assert!(
            ok(&both, "127.1"),
            "inet_aton's short form is the same address"
        );
        match check_host_name(&both, "db.example.com") {
            Err(Error::HostNameMismatch {
                expected,
                presented,
            }) => {
                assert_eq!(expected, "db.example.com");
                assert_eq!(presented, ["localhost", "127.0.0.1"]);
            }
            other => panic!("{other:?}"),
        }

        // A DNS SAN hides the CN from a name, but not from an address (libpq's NSS-like rule).
        let dns_only = cert(Some("127.0.0.1"), &["db.example.com"], &[]);
        assert!(ok(&dns_only, "127.0.0.1"));
        let dns_only_named = cert(Some("other.example.com"), &["db.example.com"], &[]);
        assert!(!ok(&dns_only_named, "other.example.com"));
        assert!(ok(&dns_only_named, "db.example.com"));

        // An IP SAN hides the CN from an address, but not from a name.
        let ip_only = cert(Some("db.example.com"), &[], &["10.0.0.1"]);
        assert!(ok(&ip_only, "db.example.com"));
        assert!(ok(&ip_only, "10.0.0.1"));
        let ip_only_cn_ip = cert(Some("127.0.0.1"), &[], &["10.0.0.1"]);
        assert!(!ok(&ip_only_cn_ip, "127.0.0.1"));

        // An address is also compared, as text, to DNS SANs.
        assert!(ok(&cert(None, &["127.0.0.1"], &[]), "127.0.0.1"));

        // Wildcards: the whole leftmost label only.
        let wild = cert(None, &["*.example.com"], &[]);
        assert!(ok(&wild, "db.example.com"));
        assert!(!ok(&wild, "a.b.example.com"));
        assert!(!ok(&wild, "example.com"));
        assert!(!ok(
            &cert(None, &["db*.example.com"], &[]),
            "db1.example.com"
        ));

        // CN only (what `openssl req -subj /CN=...` makes).
        let cn_only = cert(Some("db.example.com"), &[], &[]);
        assert!(ok(&cn_only, "DB.example.COM"));
        assert!(!ok(&cn_only, "example.com"));

        // IPv6, in any spelling.
        let v6 = cert(None, &[], &["::1"]);
        assert!(ok(&v6, "::1"));
        assert!(ok(&v6, "0:0::1"));
        assert!(!ok(&v6, "127.0.0.1"));

        // No name at all.
        let nameless = cert(None, &[], &[]);
        let err = check_host_name(&nameless, "localhost").unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not get server's host name from server certificate (expected \"localhost\")"
        );
    }

    #[test]
    fn wildcards_follow_libpq() {
        assert!(wildcard_match("*.example.com", "db.example.com"));
        assert!(wildcard_match("*.EXAMPLE.com", "DB.example.COM"));
        assert!(!wildcard_match("*.example.com", "a.b.example.com"));
        assert!(!wildcard_match("*.example.com", "example.com"));
        assert!(!wildcard_match("*.example.com", ".example.com"));
        assert!(!wildcard_match("db*.example.com", "db1.example.com"));
        assert!(!wildcard_match("*", "localhost"));
        assert!(!wildcard_match("*.", "a."));
        assert!(name_matches(b"LocalHost", "localhost").unwrap());
        assert!(name_matches(b"a\0b", "a").is_err());
    }
}

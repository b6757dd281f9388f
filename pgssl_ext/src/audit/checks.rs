//! The TLS configuration audit behind `pgssl.check_config()`, as a pure
//! function of facts the SQL layer gathers (settings, certificate facts,
//! `pg_hba_file_rules`), so every rule is unit-tested without a server.

/// Days before a server certificate's expiry from which it is a warning.
pub const SERVER_CERT_WARN_DAYS: i64 = 30;
/// Days before the pgssl client CA's expiry from which it is a warning.
pub const CLIENT_CA_WARN_DAYS: i64 = 90;
/// The smallest RSA key that is not weak.
pub const MIN_RSA_BITS: u32 = 2048;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Nothing to change.
    Ok,
    /// Works, but something should change.
    Warn,
    /// Broken or unsafe: change it.
    Fail,
}

impl Status {
    /// `ok`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One row of `check_config()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The check's stable name.
    pub check: &'static str,
    /// Its outcome.
    pub status: Status,
    /// What was found, and what to change.
    pub detail: String,
}

/// What the audit needs to know about the server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCertFacts {
    /// Seconds since the epoch of `notAfter`.
    pub not_after: i64,
    /// How many SAN entries (DNS or IP) it has.
    pub san_count: usize,
    /// X.509 version (1 or 3).
    pub version: i32,
    /// `RSA`, `EC`, `Ed25519`, ...
    pub key_algorithm: String,
    /// Key size in bits.
    pub key_bits: u32,
}

impl ServerCertFacts {
    /// The facts of certificate `c`; `now` stands in for an unreadable `notAfter`.
    pub fn of(c: &openssl::x509::X509Ref, now: i64) -> ServerCertFacts {
        let key = crate::cert::key_info(c);
        let sans = crate::cert::subject_alt_names(c)
            .iter()
            .filter(|s| s.starts_with("DNS:") || s.starts_with("IP:"))
            .count();
        ServerCertFacts {
            not_after: crate::cert::unix_seconds(c.not_after()).unwrap_or(now),
            san_count: sans,
            version: c.version() + 1,
            key_algorithm: key
                .as_ref()
                .map(|k| k.algorithm.clone())
                .unwrap_or_default(),
            key_bits: key.map(|k| k.bits).unwrap_or(0),
        }
    }
}

/// One line of `pg_hba.conf`, as `pg_hba_file_rules` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HbaRule {
    /// `line_number`.
    pub line: i32,
    /// `type`: `local`, `host`, `hostssl`, `hostnossl`, ...
    pub kind: String,
    /// `auth_method`.
    pub method: String,
    /// `options`, e.g. `clientcert=verify-full`.
    pub options: Vec<String>,
    /// `address`, when the line has one (`all`, an IP address, a host name).
    pub address: Option<String>,
    /// `netmask`, when the address had one.
    pub netmask: Option<String>,
    /// `database`, joined with `,`.
    pub database: String,
    /// `user_name`, joined with `,`.
    pub user: String,
}

/// Everything the audit looks at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// Now, in seconds since the epoch.
    pub now: i64,
    /// `ssl`.
    pub ssl: bool,
    /// `ssl_min_protocol_version` (`TLSv1`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`, or empty).
    pub min_protocol: String,
    /// `ssl_cert_file`, for messages.
    pub cert_file: String,
    /// The server certificate, or why it could not be read.
    pub server_cert: Option<Result<ServerCertFacts, String>>,
    /// Whether `ssl_key_file` holds the certificate's key, or why that could
    /// not be told; `None` when the certificate could not be read.
    pub key_matches: Option<Result<bool, String>>,
    /// `ssl_ca_file` is set.
    pub ca_file_set: bool,
    /// `ssl_crl_file` or `ssl_crl_dir` is set.
    pub crl_set: bool,
    /// The rules of `pg_hba.conf`.
    pub hba: Vec<HbaRule>,
    /// The lines of `pg_hba.conf` the server cannot parse, with why.
    pub hba_errors: Vec<(i32, String)>,
    /// Revoked certificates in `pgssl.issued_certs`, when the registry exists.
    pub revoked_certs: Option<i64>,
    /// The pgssl client CA's `notAfter`, when one is configured and readable.
    pub client_ca_not_after: Option<i64>,
}

fn finding(check: &'static str, status: Status, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        status,
        detail: detail.into(),
    }
}

fn days(seconds: i64) -> i64 {
    seconds.div_euclid(86_400)
}

/// Runs every check. Each check yields at least one row: `ok` with what it
/// verified, or one `warn`/`fail` row per problem.
pub fn evaluate(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();

    out.push(if f.ssl {
        finding("ssl", Status::Ok, "ssl is on")
    } else {
        finding(
            "ssl",
            Status::Fail,
            "ssl is off: clients cannot use TLS. Set ssl = on with ssl_cert_file and ssl_key_file, then reload.",
        )
    });

    out.push(match f.min_protocol.as_str() {
        "TLSv1.2" | "TLSv1.3" => finding(
            "ssl_min_protocol_version",
            Status::Ok,
            format!("ssl_min_protocol_version is {}", f.min_protocol),
        ),
        other => finding(
            "ssl_min_protocol_version",
            Status::Warn,
            format!(
                "ssl_min_protocol_version is {}: TLS below 1.2 is deprecated (RFC 8996). Set ssl_min_protocol_version = 'TLSv1.2'.",
                if other.is_empty() { "unset (any version)" } else { other }
            ),
        ),
    });

    server_cert_checks(f, &mut out);
    hba_checks(f, &mut out);

    if let Some(revoked) = f.revoked_certs {
        out.push(if revoked > 0 && !f.crl_set {
            finding(
                "crl_for_revoked_certs",
                Status::Fail,
                format!(
                    "{revoked} certificate(s) revoked in pgssl.issued_certs, but neither ssl_crl_file nor ssl_crl_dir is set: \
                     the server still accepts them. Set ssl_crl_file and run SELECT pgssl.install_crl()."
                ),
            )
        } else {
            finding("crl_for_revoked_certs", Status::Ok, format!("{revoked} revoked certificate(s); a CRL is configured or none is needed"))
        });
    }

    if let Some(not_after) = f.client_ca_not_after {
        let left = days(not_after - f.now);
        out.push(if left < CLIENT_CA_WARN_DAYS {
            finding(
                "client_ca_expiry",
                if left < 0 { Status::Fail } else { Status::Warn },
                format!(
                    "the pgssl client CA expires in {left} day(s): certificates it issues end with it. Create a new CA and add it to ssl_ca_file before then."
                ),
            )
        } else {
            finding("client_ca_expiry", Status::Ok, format!("the pgssl client CA is valid for {left} more days"))
        });
    }
    out
}

fn server_cert_checks(f: &Facts, out: &mut Vec<Finding>) {
    let cert = match &f.server_cert {
        None => return,
        Some(Err(why)) => {
            out.push(finding(
                "server_cert_readable",
                if f.ssl { Status::Fail } else { Status::Warn },
                format!("cannot read the server certificate {}: {why}", f.cert_file),
            ));
            return;
        }
        Some(Ok(cert)) => cert,
    };

    let left = cert.not_after - f.now;
    out.push(if left < 0 {
        finding(
            "server_cert_expiry",
            Status::Fail,
            format!("the server certificate expired {} day(s) ago: verifying clients refuse it. Issue a new one.", days(-left).max(1)),
        )
    } else if days(left) < SERVER_CERT_WARN_DAYS {
        finding(
            "server_cert_expiry",
            Status::Warn,
            format!("the server certificate expires in {} day(s). Issue a new one and reload.", days(left)),
        )
    } else {
        finding("server_cert_expiry", Status::Ok, format!("the server certificate is valid for {} more days", days(left)))
    });

    out.push(if cert.san_count == 0 {
        finding(
            "server_cert_san",
            Status::Warn,
            "the server certificate has no subject alternative names: RFC 6125 clients and rustls-based clients \
             refuse it under verify-full. Issue one with SANs for every host name and IP clients use.",
        )
    } else {
        finding("server_cert_san", Status::Ok, format!("{} subject alternative name(s)", cert.san_count))
    });

    out.push(if cert.version < 3 {
        finding(
            "server_cert_version",
            Status::Warn,
            format!(
                "the server certificate is X.509 v{}: it cannot carry extensions (SANs, key usage) and rustls-based clients refuse it. \
                 Issue an X.509 v3 certificate.",
                cert.version
            ),
        )
    } else {
        finding("server_cert_version", Status::Ok, "X.509 v3")
    });

    out.push(if cert.key_algorithm == "RSA" && cert.key_bits < MIN_RSA_BITS {
        finding(
            "server_key_strength",
            Status::Fail,
            format!("the server key is RSA-{}: below {MIN_RSA_BITS} bits it is breakable. Use RSA-2048 or more, or EC P-256.", cert.key_bits),
        )
    } else {
        finding("server_key_strength", Status::Ok, format!("{}-{}", cert.key_algorithm, cert.key_bits))
    });

    match &f.key_matches {
        None => {}
        Some(Ok(true)) => out.push(finding("server_key_match", Status::Ok, "ssl_key_file holds the certificate's key")),
        Some(Ok(false)) => out.push(finding(
            "server_key_match",
            Status::Fail,
            "ssl_key_file does not hold the private key of ssl_cert_file: the server cannot load them on reload or restart. \
             Install the key that belongs to the certificate.",
        )),
        Some(Err(why)) => out.push(finding(
            "server_key_match",
            Status::Warn,
            format!("could not compare ssl_key_file with the certificate: {why}"),
        )),
    }
}

/// Which address families a line's address covers entirely: `(IPv4, IPv6)`.
fn covers_all(rule: &HbaRule) -> (bool, bool) {
    let zero_mask = |m: &Option<String>| m.as_deref().is_some_and(|m| m == "0.0.0.0" || m == "::");
    match rule.address.as_deref() {
        Some("all") => (true, true),
        Some("0.0.0.0") if zero_mask(&rule.netmask) => (true, false),
        Some("::") if zero_mask(&rule.netmask) => (false, true),
        _ => (false, false),
    }
}

/// Which address families a line's address may match: `(IPv4, IPv6)`.
fn families(rule: &HbaRule) -> (bool, bool) {
    match rule
        .address
        .as_deref()
        .map(|a| a.parse::<std::net::IpAddr>())
    {
        Some(Ok(std::net::IpAddr::V4(_))) => (true, false),
        Some(Ok(std::net::IpAddr::V6(_))) => (false, true),
        _ => (true, true),
    }
}

fn hba_checks(f: &Facts, out: &mut Vec<Finding>) {
    out.push(if f.hba_errors.is_empty() {
        finding("hba_file_valid", Status::Ok, "pg_hba.conf parses")
    } else {
        finding(
            "hba_file_valid",
            Status::Fail,
            format!(
                "pg_hba.conf has errors ({}): the server refuses to load it and keeps its previous rules, \
                 so what this audit reads is not what the server enforces. Fix the file and reload.",
                f.hba_errors.iter().map(|(line, e)| format!("line {line}: {e}")).collect::<Vec<_>>().join("; ")
            ),
        )
    });
    let mut plaintext = Vec::new();
    let mut cert_lines = Vec::new();
    // Families for which an earlier `hostnossl all all <everything> reject`
    // already refuses every TCP client without TLS.
    let (mut refused_v4, mut refused_v6) = (false, false);
    for rule in &f.hba {
        if rule.kind == "hostnossl"
            && rule.method == "reject"
            && rule.database == "all"
            && rule.user == "all"
        {
            let (v4, v6) = covers_all(rule);
            refused_v4 |= v4;
            refused_v6 |= v6;
            continue;
        }
        let (v4, v6) = families(rule);
        let already_refused = (!v4 || refused_v4) && (!v6 || refused_v6);
        let tcp_without_tls = matches!(rule.kind.as_str(), "host" | "hostnossl")
            && rule.method != "reject"
            && !already_refused;
        if tcp_without_tls {
            let status = if rule.method == "trust" {
                Status::Fail
            } else {
                Status::Warn
            };
            let what = if rule.kind == "host" {
                "accepts TCP clients with or without TLS"
            } else {
                "accepts TCP clients only without TLS"
            };
            plaintext.push(finding(
                "hba_plaintext_tcp",
                status,
                format!(
                    "pg_hba.conf line {} ({} {} {} {} {}) {what}{}. Use hostssl instead{}.",
                    rule.line,
                    rule.kind,
                    rule.database,
                    rule.user,
                    rule.address.as_deref().unwrap_or("all"),
                    rule.method,
                    if rule.method == "trust" {
                        ", and trusts them without a password"
                    } else {
                        ""
                    },
                    if rule.kind == "host" {
                        " of host"
                    } else {
                        ", or reject"
                    },
                ),
            ));
        }
        let wants_client_cert = rule.method == "cert"
            || rule
                .options
                .iter()
                .any(|o| o.starts_with("clientcert=") && o != "clientcert=no-verify");
        if wants_client_cert {
            cert_lines.push(rule.line);
        }
    }
    if plaintext.is_empty() {
        out.push(finding(
            "hba_plaintext_tcp",
            Status::Ok,
            "no pg_hba.conf line lets TCP clients in without TLS",
        ));
    }
    out.extend(plaintext);

    out.push(if !cert_lines.is_empty() && !f.ca_file_set {
        finding(
            "hba_cert_without_ca",
            Status::Fail,
            format!(
                "pg_hba.conf line(s) {} require client certificates, but ssl_ca_file is unset: no client certificate can verify. \
                 Set ssl_ca_file to the CA that signs client certificates.",
                cert_lines.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
            ),
        )
    } else if cert_lines.is_empty() {
        finding("hba_cert_without_ca", Status::Ok, "no pg_hba.conf line requires client certificates")
    } else {
        finding("hba_cert_without_ca", Status::Ok, "ssl_ca_file is set for the lines that require client certificates")
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn good() -> Facts {
        Facts {
            now: NOW,
            ssl: true,
            min_protocol: "TLSv1.2".into(),
            cert_file: "server.crt".into(),
            server_cert: Some(Ok(ServerCertFacts {
                not_after: NOW + 300 * DAY,
                san_count: 2,
                version: 3,
                key_algorithm: "EC".into(),
                key_bits: 256,
            })),
            key_matches: Some(Ok(true)),
            ca_file_set: true,
            crl_set: true,
            hba: vec![
                HbaRule {
                    line: 1,
                    kind: "local".into(),
                    method: "peer".into(),
                    ..Default::default()
                },
                HbaRule {
                    line: 2,
                    kind: "hostssl".into(),
                    method: "cert".into(),
                    address: Some("0.0.0.0/0".into()),
                    ..Default::default()
                },
            ],
            hba_errors: vec![],
            revoked_certs: Some(1),
            client_ca_not_after: Some(NOW + 1000 * DAY),
        }
    }

    fn problems(f: &Facts) -> Vec<(&'static str, Status)> {
        evaluate(f)
            .into_iter()
            .filter(|x| x.status != Status::Ok)
            .map(|x| (x.check, x.status))
            .collect()
    }

    fn cert(f: &mut Facts) -> &mut ServerCertFacts {
        f.server_cert.as_mut().unwrap().as_mut().unwrap()
    }

    #[test]
    fn a_good_configuration_has_no_problems() {
        assert_eq!(problems(&good()), []);
        let names: Vec<_> = evaluate(&good()).iter().map(|x| x.check).collect();
        assert_eq!(
            names,
            [
                "ssl",
                "ssl_min_protocol_version",
                "server_cert_expiry",
                "server_cert_san",
                "server_cert_version",
                "server_key_strength",
                "server_key_match",
                "hba_file_valid",
                "hba_plaintext_tcp",
                "hba_cert_without_ca",
                "crl_for_revoked_certs",
                "client_ca_expiry"
            ]
        );
    }

    #[test]
    fn each_misconfiguration_gets_its_check_and_status() {
        type Case = (fn(&mut Facts), (&'static str, Status));
        let cases: Vec<Case> = vec![
            (|f| f.ssl = false, ("ssl", Status::Fail)),
            (
                |f| f.min_protocol = "TLSv1".into(),
                ("ssl_min_protocol_version", Status::Warn),
            ),
            (
                |f| f.min_protocol = "TLSv1.1".into(),
                ("ssl_min_protocol_version", Status::Warn),
            ),
            (
                |f| f.min_protocol = "".into(),
                ("ssl_min_protocol_version", Status::Warn),
            ),
            (
                |f| cert(f).not_after = NOW - 1,
                ("server_cert_expiry", Status::Fail),
            ),
            (
                |f| cert(f).not_after = NOW + 29 * DAY,
                ("server_cert_expiry", Status::Warn),
            ),
            (|f| cert(f).san_count = 0, ("server_cert_san", Status::Warn)),
            (
                |f| cert(f).version = 1,
                ("server_cert_version", Status::Warn),
            ),
            (
                |f| {
                    cert(f).key_algorithm = "RSA".into();
                    cert(f).key_bits = 1024;
                },
                ("server_key_strength", Status::Fail),
            ),
            (
                |f| f.key_matches = Some(Ok(false)),
                ("server_key_match", Status::Fail),
            ),
            (
                |f| f.key_matches = Some(Err("encrypted".into())),
                ("server_key_match", Status::Warn),
            ),
            (
                |f| f.server_cert = Some(Err("no such file".into())),
                ("server_cert_readable", Status::Fail),
            ),
            (
                |f| {
                    f.hba.push(HbaRule {
                        line: 9,
                        kind: "host".into(),
                        method: "scram-sha-256".into(),
                        ..Default::default()
                    })
                },
                ("hba_plaintext_tcp", Status::Warn),
            ),
            (
                |f| {
                    f.hba.push(HbaRule {
                        line: 9,
                        kind: "hostnossl".into(),
                        method: "md5".into(),
                        ..Default::default()
                    })
                },
                ("hba_plaintext_tcp", Status::Warn),
            ),
            (
                |f| {
                    f.hba.push(HbaRule {
                        line: 9,
                        kind: "host".into(),
                        method: "trust".into(),
                        ..Default::default()
                    })
                },
                ("hba_plaintext_tcp", Status::Fail),
            ),
            (
                |f| f.ca_file_set = false,
                ("hba_cert_without_ca", Status::Fail),
            ),
            (
                |f| f.crl_set = false,
                ("crl_for_revoked_certs", Status::Fail),
            ),
            (
                |f| f.client_ca_not_after = Some(NOW + 89 * DAY),
                ("client_ca_expiry", Status::Warn),
            ),
        ];
        for (i, (break_it, expected)) in cases.into_iter().enumerate() {
            let mut f = good();
            break_it(&mut f);
            assert_eq!(problems(&f), [expected], "case {i}");
        }
    }

    #[test]
    fn clientcert_option_also_needs_a_ca() {
        let mut f = good();
        f.hba[1].method = "scram-sha-256".into();
        f.hba[1].options = vec!["clientcert=verify-full".into()];
        f.ca_file_set = false;
        assert_eq!(problems(&f), [("hba_cert_without_ca", Status::Fail)]);
        f.hba[1].options = vec!["clientcert=no-verify".into()];
        assert_eq!(problems(&f), []);
    }

    #[test]
    fn host_lines_after_a_plaintext_reject_for_every_address_are_fine() {
        let reject = |line, address: &str, netmask: &str| HbaRule {
            line,
            kind: "hostnossl".into(),
            method: "reject".into(),
            database: "all".into(),
            user: "all".into(),
            address: Some(address.into()),
            netmask: Some(netmask.into()),
            ..Default::default()
        };
        let host = |line, address: &str| HbaRule {
            line,
            kind: "host".into(),
            method: "scram-sha-256".into(),
            address: Some(address.into()),
            ..Default::default()
        };
        let mut f = good();
        f.hba.push(reject(3, "0.0.0.0", "0.0.0.0"));
        f.hba.push(host(4, "10.0.0.0"));
        assert_eq!(problems(&f), []);
        // IPv6 and host names are still open until ::/0 is refused too.
        f.hba.push(host(5, "::1"));
        f.hba.push(host(6, "db.example.com"));
        assert_eq!(
            problems(&f),
            [
                ("hba_plaintext_tcp", Status::Warn),
                ("hba_plaintext_tcp", Status::Warn)
            ]
        );
        f.hba.insert(3, reject(3, "::", "::"));
        assert_eq!(problems(&f), []);
        // A reject for one database, or for one network, covers nothing else.
        let mut f = good();
        f.hba.push(HbaRule {
            database: "app".into(),
            ..reject(3, "0.0.0.0", "0.0.0.0")
        });
        f.hba.push(reject(4, "10.0.0.0", "255.0.0.0"));
        f.hba.push(host(5, "10.0.0.0"));
        assert_eq!(problems(&f), [("hba_plaintext_tcp", Status::Warn)]);
    }

    #[test]
    fn an_hba_file_with_errors_fails() {
        let mut f = good();
        f.hba_errors
            .push((7, "invalid authentication method \"scram\"".into()));
        assert_eq!(problems(&f), [("hba_file_valid", Status::Fail)]);
    }

    #[test]
    fn reject_lines_and_gss_are_not_plaintext() {
        let mut f = good();
        f.hba.push(HbaRule {
            line: 5,
            kind: "host".into(),
            method: "reject".into(),
            ..Default::default()
        });
        f.hba.push(HbaRule {
            line: 6,
            kind: "hostgssenc".into(),
            method: "gss".into(),
            ..Default::default()
        });
        assert_eq!(problems(&f), []);
    }

    #[test]
    fn every_plaintext_line_is_reported_with_its_number() {
        let mut f = good();
        for line in [7, 8] {
            f.hba.push(HbaRule {
                line,
                kind: "host".into(),
                method: "md5".into(),
                ..Default::default()
            });
        }
        let rows: Vec<_> = evaluate(&f)
            .into_iter()
            .filter(|x| x.check == "hba_plaintext_tcp")
            .collect();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].detail.contains("line 7"), "{}", rows[0].detail);
        assert!(rows[1].detail.contains("line 8"), "{}", rows[1].detail);
    }

    #[test]
    fn no_registry_and_no_client_ca_means_no_such_rows() {
        let mut f = good();
        f.revoked_certs = None;
        f.client_ca_not_after = None;
        let names: Vec<_> = evaluate(&f).iter().map(|x| x.check).collect();
        assert!(!names.contains(&"crl_for_revoked_certs") && !names.contains(&"client_ca_expiry"));
    }
}

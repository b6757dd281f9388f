//! What each PostgreSQL release lets a DBA set for TLS, as pure functions of
//! the settings, so `check_config()` and `server_cert()` speak of the settings
//! the running server has (and of none it lacks) and every rule is unit-tested
//! without a server.
//!
//! | setting | releases |
//! |---|---|
//! | `ssl_ecdh_curve` (one curve) | 13 to 17 |
//! | `ssl_groups` (a list, X25519 in the default) | 18 and later |
//! | `ssl_tls13_ciphers` | 18 and later |
//! | `ssl_crl_dir` | 14 and later |
//! | direct TLS (`sslnegotiation=direct`, ALPN `postgresql`) | 17 and later |

use serde_json::{json, Value};

use super::checks::{Finding, Status};

/// The first release with `ssl_crl_dir`.
pub const CRL_DIR_SINCE: i32 = 140_000;
/// The first release that accepts direct TLS connections.
pub const DIRECT_TLS_SINCE: i32 = 170_000;
/// The first release with `ssl_groups` and `ssl_tls13_ciphers`.
pub const GROUPS_SINCE: i32 = 180_000;

/// Curves smaller than 256 bits: below the 128-bit security level.
const WEAK_GROUPS: [&str; 8] = [
    "prime192v1",
    "prime192v2",
    "prime192v3",
    "prime239v1",
    "prime239v2",
    "prime239v3",
    "secp192r1",
    "secp224r1",
];

/// The TLS settings of one running server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// `server_version_num`, e.g. `180001`.
    pub version_num: i32,
    /// `ssl`.
    pub ssl: bool,
    /// `ssl_groups` from 18, `ssl_ecdh_curve` before.
    pub groups: String,
    /// `ssl_tls13_ciphers` (18 and later; empty means OpenSSL's defaults).
    pub tls13_ciphers: String,
    /// `ssl_ciphers` (TLS 1.2 and below).
    pub ciphers: String,
    /// `ssl_min_protocol_version`.
    pub min_protocol: String,
    /// `ssl_max_protocol_version` (empty: the newest OpenSSL offers).
    pub max_protocol: String,
    /// `ssl_crl_file`.
    pub crl_file: String,
    /// `ssl_crl_dir` (14 and later).
    pub crl_dir: String,
}

impl TlsSettings {
    /// The major release, e.g. `18`.
    pub fn major(&self) -> i32 {
        self.version_num / 10_000
    }

    /// The setting that chooses the key exchange groups on this release.
    pub fn groups_setting(&self) -> &'static str {
        if self.version_num >= GROUPS_SINCE {
            "ssl_groups"
        } else {
            "ssl_ecdh_curve"
        }
    }

    /// The settings each release reads, in one object for `server_cert()`;
    /// a setting the release does not have is `null`.
    pub fn describe(&self) -> Value {
        let since =
            |first: i32, value: &str| (self.version_num >= first).then(|| value.to_string());
        json!({
            "server_version_num": self.version_num,
            "groups_setting": self.groups_setting(),
            "groups": self.groups,
            "tls13_ciphers": since(GROUPS_SINCE, &self.tls13_ciphers),
            "ciphers": self.ciphers,
            "min_protocol": self.min_protocol,
            "max_protocol": self.max_protocol,
            "crl_file": self.crl_file,
            "crl_dir": since(CRL_DIR_SINCE, &self.crl_dir),
            "direct_tls": self.ssl && self.version_num >= DIRECT_TLS_SINCE,
        })
    }
}

fn finding(check: &'static str, status: Status, detail: String) -> Finding {
    Finding {
        check,
        status,
        detail,
    }
}

/// The checks that differ by release: key exchange groups, TLS 1.3 cipher
/// suites and direct TLS. One row each.
pub fn evaluate(s: &TlsSettings) -> Vec<Finding> {
    vec![groups(s), tls13_ciphers(s), direct_tls(s)]
}

fn groups(s: &TlsSettings) -> Finding {
    let setting = s.groups_setting();
    let weak: Vec<&str> = s
        .groups
        .split(':')
        .map(str::trim)
        .filter(|g| WEAK_GROUPS.iter().any(|w| w.eq_ignore_ascii_case(g)))
        .collect();
    if !weak.is_empty() {
        return finding(
            "key_exchange_groups",
            Status::Warn,
            format!(
                "{setting} is '{}': {} below 256 bits. Set {setting} = '{}'.",
                s.groups,
                weak.join(", "),
                if s.version_num >= GROUPS_SINCE {
                    "X25519:prime256v1"
                } else {
                    "prime256v1"
                }
            ),
        );
    }
    let detail = if s.version_num >= GROUPS_SINCE {
        format!("ssl_groups is '{}'", s.groups)
    } else {
        format!(
            "ssl_ecdh_curve is '{}' (PostgreSQL {} offers one curve; 18 replaces it with ssl_groups, X25519 first)",
            s.groups,
            s.major()
        )
    };
    finding("key_exchange_groups", Status::Ok, detail)
}

fn tls13_ciphers(s: &TlsSettings) -> Finding {
    let detail = if s.version_num < GROUPS_SINCE {
        format!(
            "PostgreSQL {} cannot choose TLS 1.3 cipher suites (ssl_ciphers covers TLS 1.2 and below; 18 adds ssl_tls13_ciphers): OpenSSL's defaults apply",
            s.major()
        )
    } else if s.tls13_ciphers.is_empty() {
        "ssl_tls13_ciphers is empty: OpenSSL's default TLS 1.3 suites apply".into()
    } else if s.tls13_ciphers.contains("CCM_8") {
        return finding(
            "tls13_ciphers",
            Status::Warn,
            format!(
                "ssl_tls13_ciphers is '{}': the CCM_8 suites have a 64-bit tag. Remove them.",
                s.tls13_ciphers
            ),
        );
    } else {
        format!("ssl_tls13_ciphers is '{}'", s.tls13_ciphers)
    };
    finding("tls13_ciphers", Status::Ok, detail)
}

fn direct_tls(s: &TlsSettings) -> Finding {
    let detail = if s.version_num < DIRECT_TLS_SINCE {
        format!(
            "PostgreSQL {} has no direct TLS: clients use sslnegotiation=postgres (the default); 17 and later also accept sslnegotiation=direct",
            s.major()
        )
    } else if s.ssl {
        "clients may use sslnegotiation=direct (TLS from the first byte, ALPN postgresql)".into()
    } else {
        "direct TLS needs ssl = on".into()
    };
    finding("direct_tls", Status::Ok, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(version_num: i32, groups: &str) -> TlsSettings {
        TlsSettings {
            version_num,
            ssl: true,
            groups: groups.into(),
            min_protocol: "TLSv1.2".into(),
            ..Default::default()
        }
    }

    fn row(rows: &[Finding], check: &str) -> Finding {
        rows.iter().find(|f| f.check == check).unwrap().clone()
    }

    #[test]
    fn each_release_names_its_own_group_setting() {
        for (num, groups, setting) in [
            (130_020, "prime256v1", "ssl_ecdh_curve"),
            (150_010, "prime256v1", "ssl_ecdh_curve"),
            (170_005, "prime256v1", "ssl_ecdh_curve"),
            (180_001, "X25519:prime256v1", "ssl_groups"),
        ] {
            let s = on(num, groups);
            let r = row(&evaluate(&s), "key_exchange_groups");
            assert_eq!(r.status, Status::Ok, "{num}");
            assert!(r.detail.starts_with(setting), "{num}: {}", r.detail);
            assert_eq!(s.describe()["groups_setting"], setting);
        }
    }

    #[test]
    fn a_small_curve_is_a_warning_naming_the_release_setting() {
        let r = row(&evaluate(&on(150_000, "secp224r1")), "key_exchange_groups");
        assert_eq!(r.status, Status::Warn);
        assert!(
            r.detail.contains("ssl_ecdh_curve = 'prime256v1'"),
            "{}",
            r.detail
        );
        let r = row(
            &evaluate(&on(180_000, "X25519:prime192v1")),
            "key_exchange_groups",
        );
        assert_eq!(r.status, Status::Warn);
        assert!(
            r.detail.contains("prime192v1 below 256 bits"),
            "{}",
            r.detail
        );
        assert!(
            r.detail.contains("ssl_groups = 'X25519:prime256v1'"),
            "{}",
            r.detail
        );
    }

    #[test]
    fn tls13_ciphers_exist_from_18() {
        let before = on(170_000, "prime256v1");
        assert!(row(&evaluate(&before), "tls13_ciphers")
            .detail
            .contains("18 adds ssl_tls13_ciphers"));
        assert_eq!(before.describe()["tls13_ciphers"], Value::Null);
        let mut s = on(180_000, "X25519");
        s.tls13_ciphers = "TLS_AES_256_GCM_SHA384".into();
        assert_eq!(row(&evaluate(&s), "tls13_ciphers").status, Status::Ok);
        assert_eq!(s.describe()["tls13_ciphers"], "TLS_AES_256_GCM_SHA384");
        s.tls13_ciphers = "TLS_AES_128_CCM_8_SHA256".into();
        assert_eq!(row(&evaluate(&s), "tls13_ciphers").status, Status::Warn);
    }

    #[test]
    fn direct_tls_from_17_with_ssl_on() {
        let r = |num: i32, ssl: bool| {
            let mut s = on(num, "prime256v1");
            s.ssl = ssl;
            (
                row(&evaluate(&s), "direct_tls").detail,
                s.describe()["direct_tls"].clone(),
            )
        };
        let (detail, flag) = r(150_000, true);
        assert!(
            detail.contains("PostgreSQL 15 has no direct TLS"),
            "{detail}"
        );
        assert_eq!(flag, false);
        let (detail, flag) = r(170_000, true);
        assert!(detail.contains("sslnegotiation=direct"), "{detail}");
        assert_eq!(flag, true);
        assert_eq!(r(180_000, false).1, false);
    }

    #[test]
    fn crl_dir_is_null_before_14() {
        let mut s = on(130_000, "prime256v1");
        assert_eq!(s.describe()["crl_dir"], Value::Null);
        s.version_num = 140_000;
        assert_eq!(s.describe()["crl_dir"], "");
    }

    #[test]
    fn no_release_gets_a_failure_from_these_checks() {
        for num in [130_000, 140_000, 150_000, 160_000, 170_000, 180_000] {
            for ssl in [true, false] {
                let mut s = on(num, "prime256v1");
                s.ssl = ssl;
                assert!(evaluate(&s).iter().all(|f| f.status != Status::Fail));
            }
        }
    }
}

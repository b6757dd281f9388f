//! The revocation checks of `pgssl.check_config()`: is the worker there,
//! does every trusted CA have a CRL, is every CRL current, and does the
//! installed CRL (the file the server reads, not the registry) list every
//! revoked serial. Each is `fail` where logins would break or a revoked
//! certificate would still be accepted.
//!
//! [`gather`] reads the settings and files; [`evaluate`] is pure.

use std::collections::BTreeSet;
use std::path::Path;

use openssl::x509::{X509Crl, X509};

use super::checks::{Finding, Status};
use crate::backend::{now, resolve_path};
use crate::ca::crl_file;
use crate::ca::crl_store;
use crate::ca::registry::read_one as select_one;
use crate::cert;
use crate::gucs;

/// A CRL that makes a failure of its own only this close to its nextUpdate.
pub const CRL_DUE_SECONDS: i64 = 86_400;

/// One CRL the server reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlFacts {
    /// Its issuer, RFC 2253.
    pub issuer: String,
    /// nextUpdate, seconds since the epoch; `None` when it has none.
    pub next_update: Option<i64>,
}

/// What the revocation checks look at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RevocationFacts {
    /// Now, seconds since the epoch.
    pub now: i64,
    /// `pgssl` is in `shared_preload_libraries`.
    pub preloaded: bool,
    /// The pgssl worker runs (`pg_stat_activity`).
    pub worker_running: bool,
    /// `ssl_crl_file` or `ssl_crl_dir` is set: the server checks CRLs.
    pub crl_checking: bool,
    /// Why the CRLs could not be read, if so.
    pub crl_read_error: Option<String>,
    /// Every CRL in `ssl_crl_file` and `ssl_crl_dir`.
    pub crls: Vec<CrlFacts>,
    /// Each CA in `ssl_ca_file` (RFC 2253) and whether a CRL of it is installed.
    pub cas: Vec<(String, bool)>,
    /// Revoked serials (registry and unregistered), hex; `None` without a registry.
    pub revoked: Option<Vec<String>>,
    /// The serials the installed CRL of the pgssl CA lists; `None` when
    /// none of its CRLs is installed.
    pub pgssl_crl_serials: Option<BTreeSet<String>>,
}

fn finding(check: &'static str, status: Status, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        status,
        detail: detail.into(),
    }
}

/// Runs the revocation checks.
pub fn evaluate(f: &RevocationFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let revoked = f.revoked.as_ref().map_or(0, Vec::len);
    let in_use = revoked > 0 || f.pgssl_crl_serials.is_some();

    out.push(if f.worker_running {
        finding("crl_worker", Status::Ok, "the pgssl worker is running: it re-signs and installs the CRL and ends revoked sessions")
    } else {
        let why = if f.preloaded {
            "pgssl is in shared_preload_libraries but its worker is not running (see the server log)"
        } else {
            "pgssl is not in shared_preload_libraries, so no worker re-signs the CRL, installs it on standbys or ends revoked sessions"
        };
        if in_use {
            finding(
                "crl_worker",
                Status::Fail,
                format!("{why}: revocation is in use, and the installed CRL lapses at its next update, which locks out every certificate login. Add pgssl to shared_preload_libraries and restart."),
            )
        } else {
            finding(
                "crl_worker",
                Status::Warn,
                format!("{why}. Add pgssl to shared_preload_libraries and restart before revoking certificates."),
            )
        }
    });

    if !f.crl_checking {
        return out;
    }
    if let Some(e) = &f.crl_read_error {
        out.push(finding(
            "crl_expiry",
            Status::Fail,
            format!("the CRLs the server reads cannot be read: {e}"),
        ));
        return out;
    }

    let uncovered: Vec<_> = f.cas.iter().filter(|(_, has)| !has).collect();
    if uncovered.is_empty() {
        out.push(finding(
            "crl_coverage",
            Status::Ok,
            format!("each of the {} CA(s) in ssl_ca_file has a CRL", f.cas.len()),
        ));
    }
    for (ca, _) in uncovered {
        out.push(finding(
            "crl_coverage",
            Status::Fail,
            format!(
                "CA \"{ca}\" in ssl_ca_file has no CRL in ssl_crl_file or ssl_crl_dir: with CRL checking on, \
                 the server refuses every client certificate it issued. Add a CRL of that CA \
                 (pgssl keeps other CAs' CRLs in ssl_crl_file when it installs its own)."
            ),
        ));
    }

    let mut current = 0;
    for crl in &f.crls {
        match crl.next_update {
            Some(t) if t <= f.now => out.push(finding(
                "crl_expiry",
                Status::Fail,
                format!("the CRL of \"{}\" expired {} day(s) ago: every client certificate of that CA is refused", crl.issuer, (f.now - t).div_euclid(86_400)),
            )),
            Some(t) if t - f.now < CRL_DUE_SECONDS => out.push(finding(
                "crl_expiry",
                Status::Fail,
                format!("the CRL of \"{}\" expires in {} hour(s): renew it, or every client certificate of that CA is refused", crl.issuer, (t - f.now) / 3600),
            )),
            _ => current += 1,
        }
    }
    if current == f.crls.len() {
        out.push(finding(
            "crl_expiry",
            Status::Ok,
            format!("{current} CRL(s), none expired or due within a day"),
        ));
    }

    if revoked > 0 {
        match &f.pgssl_crl_serials {
            None => out.push(finding(
                "crl_lists_revoked",
                Status::Fail,
                format!("{revoked} certificate(s) are revoked, but no CRL of the pgssl CA is installed: the server still accepts them"),
            )),
            Some(listed) => {
                let missing: Vec<_> = f
                    .revoked
                    .iter()
                    .flatten()
                    .filter(|s| !listed.contains(*s))
                    .collect();
                out.push(if missing.is_empty() {
                    finding("crl_lists_revoked", Status::Ok, format!("the installed CRL lists all {revoked} revoked certificate(s)"))
                } else {
                    let shown: Vec<_> = missing.iter().take(5).map(|s| s.as_str()).collect();
                    finding(
                        "crl_lists_revoked",
                        Status::Fail,
                        format!(
                            "{} revoked certificate(s) are missing from the installed CRL, so the server still accepts them (e.g. {}). \
                             The pgssl worker installs a fresh CRL; without it run SELECT pgssl.install_crl().",
                            missing.len(),
                            shown.join(", ")
                        ),
                    )
                });
            }
        }
    }
    out
}

fn read_crls(file: &str, dir: &str) -> Result<Vec<X509Crl>, String> {
    let mut crls = Vec::new();
    if !file.is_empty() {
        let path = resolve_path(file);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let parsed = crl_file::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        crls.extend(parsed.into_iter().map(|(_, crl)| crl));
    }
    if !dir.is_empty() {
        let dir = resolve_path(dir);
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            if is_hashed_crl_name(&entry.file_name().to_string_lossy()) {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let parsed = crl_file::parse(&text)
                    .map_err(|e| format!("{}: {e}", entry.path().display()))?;
                crls.extend(parsed.into_iter().map(|(_, crl)| crl));
            }
        }
    }
    Ok(crls)
}

/// `0123abcd.r0`: the names OpenSSL looks up in a CRL directory.
fn is_hashed_crl_name(name: &str) -> bool {
    let Some((hash, suffix)) = name.split_once(".r") else {
        return false;
    };
    hash.len() == 8
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
        && !suffix.is_empty()
        && suffix.bytes().all(|b| b.is_ascii_digit())
}

fn show(name: &openssl::x509::X509NameRef) -> String {
    cert::name_rfc2253(name)
}

fn pgssl_ca() -> Option<X509> {
    let path = gucs::ca_cert_file();
    X509::from_pem(&std::fs::read(Path::new(&path)).ok()?).ok()
}

fn text_setting(name: &str) -> String {
    select_one::<String>(
        "SELECT pg_catalog.current_setting($1, true)",
        &[name.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_default()
}

/// Reads what the checks need; read-only, so it works on a standby too.
pub fn gather() -> RevocationFacts {
    let preloaded = text_setting("shared_preload_libraries")
        .split(',')
        .any(|lib| lib.trim().trim_matches('"') == "pgssl");
    let worker_running = select_one::<bool>(
        "SELECT count(*) > 0 FROM pg_catalog.pg_stat_activity WHERE backend_type = $1",
        &[crate::worker::WORKER_TYPE.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false);
    let revoked = select_one::<bool>(
        "SELECT pg_catalog.to_regclass('pgssl.unregistered_revocations') IS NOT NULL",
        &[],
    )
    .ok()
    .flatten()
    .filter(|exists| *exists)
    .and_then(|_| crl_store::revoked_entries().ok())
    .map(|entries| entries.into_iter().map(|e| e.serial_hex).collect());
    let (file, dir) = (text_setting("ssl_crl_file"), text_setting("ssl_crl_dir"));
    let mut facts = RevocationFacts {
        now: now(),
        preloaded,
        worker_running,
        crl_checking: !file.trim().is_empty() || !dir.trim().is_empty(),
        revoked,
        ..RevocationFacts::default()
    };
    let crls = match read_crls(file.trim(), dir.trim()) {
        Ok(crls) => crls,
        Err(e) => {
            facts.crl_read_error = Some(e);
            Vec::new()
        }
    };
    facts.crls = crls
        .iter()
        .map(|c| CrlFacts {
            issuer: show(c.issuer_name()),
            next_update: c.next_update().and_then(cert::unix_seconds),
        })
        .collect();
    let covered = |name: &openssl::x509::X509NameRef| {
        crls.iter()
            .any(|c| crl_file::same_name(c.issuer_name(), name))
    };
    let ca_file = text_setting("ssl_ca_file");
    if !ca_file.trim().is_empty() {
        let pem = std::fs::read(resolve_path(ca_file.trim())).unwrap_or_default();
        facts.cas = X509::stack_from_pem(&pem)
            .unwrap_or_default()
            .iter()
            .map(|ca| (show(ca.subject_name()), covered(ca.subject_name())))
            .collect();
    }
    if let Some(ca) = pgssl_ca() {
        facts.pgssl_crl_serials = crls
            .iter()
            .find(|c| crl_file::same_name(c.issuer_name(), ca.subject_name()))
            .map(|c| {
                c.get_revoked()
                    .map(|list| {
                        list.iter()
                            .filter_map(|r| r.serial_number().to_bn().ok())
                            .map(|bn| cert::bignum_hex(&bn))
                            .collect()
                    })
                    .unwrap_or_default()
            });
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RevocationFacts {
        RevocationFacts {
            now: 1_000_000,
            preloaded: true,
            worker_running: true,
            crl_checking: true,
            crls: vec![CrlFacts {
                issuer: "CN=pgssl".into(),
                next_update: Some(1_000_000 + 7 * 86_400),
            }],
            cas: vec![("CN=pgssl".into(), true)],
            revoked: Some(vec!["0a".into()]),
            pgssl_crl_serials: Some(["0a".to_string()].into()),
            ..RevocationFacts::default()
        }
    }

    fn status_of(f: &RevocationFacts, check: &str) -> Vec<Status> {
        evaluate(f)
            .into_iter()
            .filter(|x| x.check == check)
            .map(|x| x.status)
            .collect()
    }

    #[test]
    fn a_sound_set_up_is_ok() {
        for check in [
            "crl_worker",
            "crl_coverage",
            "crl_expiry",
            "crl_lists_revoked",
        ] {
            assert_eq!(status_of(&base(), check), vec![Status::Ok], "{check}");
        }
    }

    #[test]
    fn no_worker_is_a_warning_until_revocation_is_in_use() {
        let mut f = base();
        f.worker_running = false;
        assert_eq!(status_of(&f, "crl_worker"), vec![Status::Fail]);
        f.revoked = Some(vec![]);
        f.pgssl_crl_serials = None;
        assert_eq!(status_of(&f, "crl_worker"), vec![Status::Warn]);
    }

    #[test]
    fn each_broken_set_up_fails() {
        let mut f = base();
        f.cas.push(("CN=root-client-ca".into(), false));
        assert_eq!(status_of(&f, "crl_coverage"), vec![Status::Fail]);

        let mut f = base();
        f.crls[0].next_update = Some(f.now + 3600);
        assert_eq!(status_of(&f, "crl_expiry"), vec![Status::Fail]);
        f.crls[0].next_update = Some(f.now - 3600);
        assert_eq!(status_of(&f, "crl_expiry"), vec![Status::Fail]);

        let mut f = base();
        f.revoked = Some(vec!["0a".into(), "0b".into()]);
        let rows = evaluate(&f);
        let row = rows
            .iter()
            .find(|x| x.check == "crl_lists_revoked")
            .unwrap();
        assert_eq!(row.status, Status::Fail);
        assert!(row.detail.contains("0b"), "{}", row.detail);
        f.pgssl_crl_serials = None;
        assert_eq!(status_of(&f, "crl_lists_revoked"), vec![Status::Fail]);
    }

    #[test]
    fn hashed_crl_names() {
        assert!(is_hashed_crl_name("0a1b2c3d.r0"));
        assert!(!is_hashed_crl_name("0a1b2c3d.0"));
        assert!(!is_hashed_crl_name("pgssl.crl"));
    }
}

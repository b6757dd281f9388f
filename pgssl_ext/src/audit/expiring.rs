//! `pgssl.expiring()`: one inventory of what expires, and when: the server
//! certificate and its chain, the CAs in `ssl_ca_file`, the pgssl client and
//! server CAs, the CRLs the server loads (their next update) and the
//! registry's unrevoked certificates, each with what to run about it.

use std::collections::HashSet;
use std::path::Path;

use openssl::x509::{X509Crl, X509};
use pgrx::datum::Interval;
use pgrx::prelude::*;

use crate::backend::{now, resolve_path, setting};
use crate::ca::crl_file;
use crate::cert;
use crate::gucs;
use crate::timestamps;

/// One thing that expires.
struct Item {
    kind: &'static str,
    subject: String,
    serial: Option<String>,
    not_after: i64,
    source: String,
    action: String,
    fingerprint: Option<String>,
}

fn certificates(path: &Path) -> Vec<X509> {
    std::fs::read(path)
        .ok()
        .and_then(|pem| cert::certificates_from_pem(&pem).ok())
        .unwrap_or_default()
}

fn certificate_item(c: &X509, kind: &'static str, path: &Path, action: String) -> Option<Item> {
    Some(Item {
        kind,
        subject: cert::name_rfc2253(c.subject_name()),
        serial: cert::serial_hex(c),
        not_after: cert::unix_seconds(c.not_after())?,
        source: path.display().to_string(),
        action,
        fingerprint: cert::fingerprint_sha256(c),
    })
}

/// `ssl_cert_file`: the server's certificate, then each certificate of its chain.
fn server_chain(items: &mut Vec<Item>, issued_by_pgssl: &HashSet<String>) {
    let file = setting("ssl_cert_file");
    if file.is_empty() {
        return;
    }
    let path = resolve_path(&file);
    for (i, c) in certificates(&path).iter().enumerate() {
        let ours = cert::fingerprint_sha256(c).is_some_and(|f| issued_by_pgssl.contains(&f));
        let (kind, action) = match (i, ours) {
            (0, true) => (
                "server certificate",
                "SELECT pgssl.issue_server_cert(ARRAY['<host name>', ...]); then point ssl_cert_file/ssl_key_file at the new files and SELECT pg_reload_conf()".to_string(),
            ),
            (0, false) => (
                "server certificate",
                format!("renew it with its issuer, replace {}, then SELECT pg_reload_conf()", path.display()),
            ),
            _ => (
                "server chain",
                format!("renew this intermediate CA with its issuer, replace it in {}, then SELECT pg_reload_conf()", path.display()),
            ),
        };
        items.extend(certificate_item(c, kind, &path, action));
    }
}

/// Each CA in `ssl_ca_file`, and the pgssl client and server CAs.
fn authorities(items: &mut Vec<Item>) {
    let file = setting("ssl_ca_file");
    if !file.is_empty() {
        let path = resolve_path(&file);
        for c in certificates(&path) {
            let action = format!(
                "add the CA's renewed certificate to {}, then SELECT pg_reload_conf()",
                path.display()
            );
            items.extend(certificate_item(&c, "trusted CA", &path, action));
        }
    }
    let ours = [
        (
            gucs::ca_cert_file(),
            "pgssl client CA",
            "SELECT pgssl.init_ca(...) with new pgssl.ca_cert_file/pgssl.ca_key_file, add the new CA to ssl_ca_file, then re-enroll every client (pgssl enroll)",
        ),
        (
            gucs::server_ca_cert_file(),
            "pgssl server CA",
            "create a new server CA (pgssl.server_ca_cert_file/pgssl.server_ca_key_file), give clients its certificate (pgssl.server_ca_cert()), then SELECT pgssl.issue_server_cert(...)",
        ),
    ];
    for (path, kind, action) in ours {
        if let Some(c) = certificates(&path).first() {
            items.extend(certificate_item(c, kind, &path, action.to_string()));
        }
    }
}

fn crl_item(crl: &X509Crl, path: &Path, pgssl_ca: Option<&X509>) -> Option<Item> {
    let next_update = cert::unix_seconds(crl.next_update()?)?;
    let ours = pgssl_ca.is_some_and(|ca| crl_file::same_name(ca.subject_name(), crl.issuer_name()));
    let action = if ours {
        "SELECT pgssl.install_crl() (the pgssl worker re-signs it when preloaded)".to_string()
    } else {
        format!(
            "fetch a fresh CRL from its issuer into {}, then SELECT pg_reload_conf()",
            path.display()
        )
    };
    Some(Item {
        kind: "CRL",
        subject: cert::name_rfc2253(crl.issuer_name()),
        serial: None,
        not_after: next_update,
        source: path.display().to_string(),
        action,
        fingerprint: None,
    })
}

/// Each CRL in `ssl_crl_file` and in the files of `ssl_crl_dir`.
fn crls(items: &mut Vec<Item>) {
    let pgssl_ca = certificates(&gucs::ca_cert_file()).into_iter().next();
    let mut files = Vec::new();
    let file = setting("ssl_crl_file");
    if !file.is_empty() {
        files.push(resolve_path(&file));
    }
    let dir = setting("ssl_crl_dir");
    if !dir.is_empty() {
        if let Ok(entries) = std::fs::read_dir(resolve_path(&dir)) {
            let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            files.extend(paths.into_iter().filter(|p| p.is_file()));
        }
    }
    for path in files {
        let text = crl_file::read(&path).unwrap_or_default();
        for (_, crl) in crl_file::parse(&text).unwrap_or_default() {
            items.extend(crl_item(&crl, &path, pgssl_ca.as_ref()));
        }
    }
}

/// The registry's unrevoked certificates, but those already listed from a file.
fn registry(items: &mut Vec<Item>) -> Result<(), pgrx::spi::Error> {
    let listed: HashSet<String> = items.iter().filter_map(|i| i.fingerprint.clone()).collect();
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT serial, common_name, extract(epoch FROM not_after)::bigint, kind, fingerprint_sha256
               FROM pgssl.issued_certs WHERE revoked_at IS NULL",
            None,
            &[],
        )?;
        for row in rows {
            let (Some(serial), Some(cn), Some(not_after), Some(kind), Some(fp)) = (
                row.get::<String>(1)?,
                row.get::<String>(2)?,
                row.get::<i64>(3)?,
                row.get::<String>(4)?,
                row.get::<String>(5)?,
            ) else {
                continue;
            };
            if listed.contains(&fp) {
                continue;
            }
            let (kind, action) = if kind == "server" {
                (
                    "issued server certificate",
                    "SELECT pgssl.issue_server_cert(ARRAY['<host name>', ...])".to_string(),
                )
            } else {
                (
                    "issued client certificate",
                    format!("as role {cn}: pgssl enroll (or SELECT pgssl.sign_csr(...) for it)"),
                )
            };
            items.push(Item {
                kind,
                subject: format!("CN={cn}"),
                serial: Some(serial),
                not_after,
                source: "pgssl.issued_certs".into(),
                action,
                fingerprint: Some(fp),
            });
        }
        Ok(())
    })
}

/// The registry's fingerprints of server certificates, to tell one pgssl
/// issued from another in `ssl_cert_file`.
fn pgssl_server_fingerprints() -> Result<HashSet<String>, pgrx::spi::Error> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT fingerprint_sha256 FROM pgssl.issued_certs WHERE kind = 'server'",
            None,
            &[],
        )?;
        let mut out = HashSet::new();
        for row in rows {
            if let Some(fp) = row.get::<String>(1)? {
                out.insert(fp);
            }
        }
        Ok(out)
    })
}

/// Seconds in an interval, months counted as 30 days.
fn interval_seconds(i: &Interval) -> i64 {
    let days = i64::from(i.months()) * 30 + i64::from(i.days());
    days * 86_400 + i.micros().div_euclid(1_000_000)
}

/// Everything that expires (or whose CRL is due) within `within` from now,
/// or already has, sorted by `not_after`. `days_left` counts the days left,
/// a started day as one (a certificate issued for 10 days has 10 left); 0 or
/// less once expired.
// pgrx reads the column names (`name!`) from the signature itself, so the
// row type cannot move into a type alias.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_restricted)]
fn expiring(
    within: default!(Interval, "'30 days'"),
) -> Result<
    TableIterator<
        'static,
        (
            name!(kind, String),
            name!(subject, String),
            name!(serial, Option<String>),
            name!(not_after, Option<TimestampWithTimeZone>),
            name!(days_left, i32),
            name!(source, String),
            name!(action, String),
        ),
    >,
    pgrx::spi::Error,
> {
    let now = now();
    let horizon = now.saturating_add(interval_seconds(&within));
    let mut items = Vec::new();
    server_chain(&mut items, &pgssl_server_fingerprints()?);
    authorities(&mut items);
    crls(&mut items);
    registry(&mut items)?;
    items.retain(|i| i.not_after <= horizon);
    items.sort_by(|a, b| (a.not_after, a.kind, &a.subject).cmp(&(b.not_after, b.kind, &b.subject)));
    let rows: Vec<_> = items
        .into_iter()
        .map(|i| {
            let days = -(now - i.not_after).div_euclid(86_400);
            (
                i.kind.to_string(),
                i.subject,
                i.serial,
                timestamps::from_unix(i.not_after),
                i32::try_from(days).unwrap_or(if days < 0 { i32::MIN } else { i32::MAX }),
                i.source,
                i.action,
            )
        })
        .collect();
    Ok(TableIterator::new(rows))
}

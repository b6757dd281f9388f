//! `pgssl renew`: log in with the current client certificate, have `pgssl.renew` sign a CSR
//! for a new key, and replace both files (see [`crate::credentials`] for how). With
//! `--daemon`, again and again: at a fraction of each certificate's lifetime, plus jitter,
//! with retries and backoff, until the certificate has expired without a renewal.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use openssl::x509::X509;
use pgssl_client::Config;

use crate::config_from_arg;
use crate::credentials::{
    certificate_from_pem, check_issued, iso8601, make_csr, make_key, now, serial_hex, unix_seconds,
    ClientFiles, KeyType,
};
use crate::session::{refusal, Session};

/// The first wait after a failed attempt; it doubles up to [`max_backoff`].
const FIRST_BACKOFF_SECS: i64 = 2;

/// What `pgssl renew` was asked to do.
pub(crate) struct RenewArgs {
    /// The connection string (or database name), as psql reads it.
    pub conninfo: Option<String>,
    /// The new key's type; `None`: the current key's type, else `ec-p256`.
    pub key_type: Option<KeyType>,
    /// Keep renewing.
    pub daemon: bool,
    /// The fraction of the lifetime after which to renew.
    pub at: f64,
    /// A shell command to run after each renewal.
    pub exec: Option<String>,
}

/// A certificate in place: its serial and validity.
struct Current {
    serial: String,
    not_before: i64,
    not_after: i64,
    key_type: Option<KeyType>,
}

impl Current {
    fn of(cert: &X509, name: &Path) -> Result<Current, String> {
        let time = |t| unix_seconds(t).ok_or_else(|| format!("{}: bad validity", name.display()));
        Ok(Current {
            serial: serial_hex(cert),
            not_before: time(cert.not_before())?,
            not_after: time(cert.not_after())?,
            key_type: cert.public_key().ok().and_then(|k| KeyType::of(&k)),
        })
    }
}

fn current(files: &ClientFiles) -> Result<Current, String> {
    Current::of(&files.read_cert()?, &files.cert)
}

/// A `--at` value: a fraction strictly between 0 and 1, as a decimal (`0.75`) or a ratio
/// (`2/3`).
pub(crate) fn parse_fraction(text: &str) -> Result<f64, String> {
    let value = match text.split_once('/') {
        Some((n, d)) => {
            let (n, d): (f64, f64) = (
                n.trim()
                    .parse()
                    .map_err(|_| format!("not a number: {n:?}"))?,
                d.trim()
                    .parse()
                    .map_err(|_| format!("not a number: {d:?}"))?,
            );
            n / d
        }
        None => text
            .trim()
            .parse()
            .map_err(|_| format!("not a fraction: {text:?}"))?,
    };
    if value.is_finite() && value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(format!(
            "{text:?} is not between 0 and 1 (exclusive): give e.g. 0.75 or 2/3"
        ))
    }
}

/// Logs one step, with the time, on standard output.
fn log(message: &str) {
    println!("{} pgssl renew: {message}", iso8601(now()));
}

pub(crate) async fn renew(args: RenewArgs) -> Result<(), String> {
    let config = config_from_arg(args.conninfo.as_deref())?;
    let files = ClientFiles::of(&config)?;
    if !args.daemon {
        let before = complete_and_read(&files)?;
        let renewed = renew_once(&config, &files, args.key_type.or(before.key_type)).await?;
        println!(
            "renewed certificate serial {} (was {}), valid until {}",
            renewed.serial,
            before.serial,
            iso8601(renewed.not_after)
        );
        println!(
            "wrote {} and {} (0600)",
            files.cert.display(),
            files.key.display()
        );
        if let Some(cmd) = &args.exec {
            run_exec(cmd, &files);
        }
        return Ok(());
    }
    daemon(&config, &files, &args).await
}

/// Completes an interrupted replacement, then reads the certificate in place.
fn complete_and_read(files: &ClientFiles) -> Result<Current, String> {
    if files.complete_interrupted()? {
        log(&format!(
            "completed an interrupted replacement: {} now matches {}",
            files.key.display(),
            files.cert.display()
        ));
    }
    current(files)
}

/// One renewal: connect with the files in place, sign a CSR for a new key with
/// `pgssl.renew`, and replace the files. The pair is staged on disk before the transaction
/// commits, so that a certificate revoked by `pgssl.renew_revokes_previous` is never
/// replaced by one that could not be written.
async fn renew_once(
    config: &Config,
    files: &ClientFiles,
    key_type: Option<KeyType>,
) -> Result<Current, String> {
    let mut session = Session::open(config).await?;
    let user = session.session_user().await?;
    let key = make_key(key_type.unwrap_or(KeyType::EcP256))
        .map_err(|e| format!("cannot make a key: {e}"))?;
    let csr = make_csr(&key, &user).map_err(|e| format!("cannot make a CSR: {e}"))?;
    let transaction = session
        .client
        .transaction()
        .await
        .map_err(|e| format!("cannot begin a transaction: {e}"))?;
    let cert_pem: String = transaction
        .query_one("SELECT pgssl.renew($1)", &[&csr])
        .await
        .map_err(refusal("pgssl.renew"))?
        .get(0);
    let cert = certificate_from_pem(&cert_pem)
        .map_err(|e| format!("pgssl.renew returned no certificate: {e}"))?;
    check_issued(&cert, &key, &user, "pgssl.renew")?;
    let staged = files.stage(cert_pem.as_bytes(), &key)?;
    transaction
        .commit()
        .await
        .map_err(|e| format!("pgssl.renew could not commit: {e}"))?;
    session.close().await;
    files.install(staged)?;
    Current::of(&cert, &files.cert)
}

/// Runs `--exec` through the shell, with `PGSSL_CERT` and `PGSSL_KEY` naming the files;
/// logs how it ended. A failure is logged, not fatal: the files are in place.
fn run_exec(cmd: &str, files: &ClientFiles) {
    log(&format!("running {cmd:?}"));
    let status = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("PGSSL_CERT", &files.cert)
        .env("PGSSL_KEY", &files.key)
        .status();
    match status {
        Ok(s) if s.success() => log("the command succeeded"),
        Ok(s) => log(&format!("the command failed: {s}")),
        Err(e) => log(&format!("cannot run the command: {e}")),
    }
}

/// A uniform random fraction in [0, 1), from OpenSSL's generator.
fn random_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

/// When to renew a certificate valid from `not_before` to `not_after`: after the fraction `at`
/// of its lifetime, plus a jitter of up to a tenth of the time left after that, so that many
/// clients issued together do not all come back in the same second.
pub(crate) fn renewal_time(not_before: i64, not_after: i64, at: f64, random: f64) -> i64 {
    let lifetime = (not_after - not_before).max(0) as f64;
    let due = not_before as f64 + at * lifetime;
    let jitter = (1.0 - at) * lifetime / 10.0 * random;
    (due + jitter) as i64
}

/// The longest wait between two failed attempts: a thirtieth of the lifetime, between 10
/// seconds and 10 minutes.
fn max_backoff(current: &Current) -> i64 {
    ((current.not_after - current.not_before) / 30).clamp(10, 600)
}

async fn sleep_until(when: i64) {
    let secs = when - now();
    if secs > 0 {
        tokio::time::sleep(Duration::from_secs(secs as u64)).await;
    }
}

async fn daemon(config: &Config, files: &ClientFiles, args: &RenewArgs) -> Result<(), String> {
    log(&format!(
        "watching {} and {}",
        files.cert.display(),
        files.key.display()
    ));
    // Read once; after that, each renewal knows the certificate it wrote.
    let mut cert = complete_and_read(files)?;
    loop {
        let when = renewal_time(cert.not_before, cert.not_after, args.at, random_fraction());
        log(&format!(
            "certificate serial {} is valid until {}; renewing at {}",
            cert.serial,
            iso8601(cert.not_after),
            iso8601(when)
        ));
        sleep_until(when).await;
        let mut backoff = FIRST_BACKOFF_SECS;
        loop {
            log(&format!("renewing certificate serial {}", cert.serial));
            let key_type = args.key_type.or(cert.key_type);
            match renew_once(config, files, key_type).await {
                Ok(renewed) => {
                    log(&format!(
                        "renewed: serial {}, valid until {}",
                        renewed.serial,
                        iso8601(renewed.not_after)
                    ));
                    if let Some(cmd) = &args.exec {
                        run_exec(cmd, files);
                    }
                    cert = renewed;
                    break;
                }
                Err(e) if now() >= cert.not_after => {
                    return Err(format!(
                        "certificate serial {} expired at {} and could not be renewed: {e}",
                        cert.serial,
                        iso8601(cert.not_after)
                    ));
                }
                Err(e) => {
                    // The last attempt is made just after the end of the lifetime, so that the
                    // daemon gives up only once nothing can work any more.
                    let wait = backoff.min(cert.not_after + 1 - now()).max(1);
                    log(&format!("renewal failed: {e}; retrying in {wait} s"));
                    tokio::time::sleep(Duration::from_secs(wait as u64)).await;
                    backoff = (backoff * 2).min(max_backoff(&cert));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default `--at`.
    const DEFAULT_AT: f64 = 2.0 / 3.0;

    #[test]
    fn fractions_as_decimals_and_ratios() {
        assert_eq!(parse_fraction("0.5"), Ok(0.5));
        assert!((parse_fraction("2/3").unwrap() - DEFAULT_AT).abs() < 1e-12);
        for bad in ["0", "1", "1.5", "-0.1", "x", "1/0", "NaN", "3/2"] {
            assert!(parse_fraction(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renewal_scales_with_the_lifetime_and_jitter_stays_before_the_end() {
        // 90 days: two thirds is day 60; the jitter adds at most a tenth of the 30 days left.
        let day = 86_400;
        assert_eq!(renewal_time(0, 90 * day, DEFAULT_AT, 0.0), 60 * day);
        let latest = renewal_time(0, 90 * day, DEFAULT_AT, 0.999_999);
        assert!(latest > 62 * day && latest <= 63 * day, "{latest}");
        // Ten minutes: at 0.55, after 330 s, plus at most 27 s.
        assert_eq!(renewal_time(1000, 1600, 0.55, 0.0), 1330);
        assert!(renewal_time(1000, 1600, 0.55, 0.999_999) <= 1357);
    }
}

//! A client's credentials: the key and CSR `pgssl enroll` and `pgssl renew` make, the
//! certificate the server returns, and the pair of files they live in.
//!
//! # Replacing the pair
//!
//! Two files cannot be renamed in one step, so [`ClientFiles::install`] orders the steps so that
//! nothing is lost at any point and a crash can be completed afterwards:
//!
//! 1. the new certificate is written in full under a random name, and the new key under the
//!    fixed name `<key>.pgssl-next` (mode 0600, created exclusively: never through a link),
//!    both flushed to disk;
//! 2. the certificate is renamed over the old one, then the key over the old key, and the
//!    folder is flushed.
//!
//! A new key never sits beside the old certificate. Between the two renames (a few
//! microseconds) the folder holds the new certificate and the old key; a crash there leaves
//! `<key>.pgssl-next`, which matches the certificate, and [`ClientFiles::complete_interrupted`]
//! (run by every `pgssl renew` before it reads the files) renames it into place. A client that
//! reads the two files while they are replaced can get a mismatched pair: libpq refuses it
//! ("certificate does not match private key") and pgssl_client does too, and the next attempt
//! reads the matching pair. A rename replaces a symbolic link at either path; it never writes
//! through one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Private, Public};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509ReqBuilder, X509};
use pgssl_client::Config;

/// The key `pgssl enroll` and `pgssl renew` make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyType {
    EcP256,
    EcP384,
    #[value(name = "rsa-2048")]
    Rsa2048,
    Ed25519,
}

impl KeyType {
    /// The type of an existing key, when it is one of these (RSA of any size counts as
    /// `rsa-2048`, the one RSA size offered).
    pub(crate) fn of(key: &PKeyRef<Public>) -> Option<KeyType> {
        match key.id() {
            Id::EC => match key.ec_key().ok()?.group().curve_name()? {
                Nid::X9_62_PRIME256V1 => Some(KeyType::EcP256),
                Nid::SECP384R1 => Some(KeyType::EcP384),
                _ => None,
            },
            Id::RSA => Some(KeyType::Rsa2048),
            Id::ED25519 => Some(KeyType::Ed25519),
            _ => None,
        }
    }
}

/// A new private key.
pub(crate) fn make_key(key_type: KeyType) -> Result<PKey<Private>, openssl::error::ErrorStack> {
    match key_type {
        KeyType::EcP256 => PKey::from_ec_key(EcKey::generate(&*EcGroup::from_curve_name(
            Nid::X9_62_PRIME256V1,
        )?)?),
        KeyType::EcP384 => PKey::from_ec_key(EcKey::generate(&*EcGroup::from_curve_name(
            Nid::SECP384R1,
        )?)?),
        KeyType::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?),
        KeyType::Ed25519 => PKey::generate_ed25519(),
    }
}

/// A PEM CSR for `CN=<user>` signed with `key`.
pub(crate) fn make_csr(
    key: &PKey<Private>,
    user: &str,
) -> Result<String, openssl::error::ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, user)?;
    let name = name.build();
    let mut req = X509ReqBuilder::new()?;
    req.set_subject_name(&name)?;
    req.set_pubkey(key)?;
    let digest = match key.id() {
        Id::ED25519 => MessageDigest::null(),
        _ => MessageDigest::sha256(),
    };
    req.sign(key, digest)?;
    let pem = req.build().to_pem()?;
    Ok(String::from_utf8_lossy(&pem).into_owned())
}

/// The one certificate in `pem`, decoded here rather than by OpenSSL's PEM reader: on a block
/// with encryption headers (`Proc-Type: 4,ENCRYPTED`) that reader asks for a passphrase on
/// the terminal, and neither what the server returns nor a file on disk must get to do that.
pub(crate) fn certificate_from_pem(pem: &str) -> Result<X509, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN).ok_or("no PEM certificate block")? + BEGIN.len();
    let len = pem[start..]
        .find(END)
        .ok_or("unterminated PEM certificate block")?;
    let body = &pem[start..start + len];
    if body.contains(':') {
        return Err("the PEM block has headers (encrypted PEM is not accepted)".into());
    }
    let base64: String = body.split_ascii_whitespace().collect();
    let der = openssl::base64::decode_block(&base64).map_err(|e| e.to_string())?;
    X509::from_der(&der).map_err(|e| e.to_string())
}

/// Checks that `cert`, returned by `function`, is for `key` and `CN=<user>`.
pub(crate) fn check_issued(
    cert: &X509,
    key: &PKey<Private>,
    user: &str,
    function: &str,
) -> Result<(), String> {
    if !cert.public_key().map(|k| k.public_eq(key)).unwrap_or(false) {
        return Err(format!("{function} returned a certificate for another key"));
    }
    let cn = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok());
    if cn.as_deref() != Some(user) {
        return Err(format!(
            "{function} returned a certificate for CN {cn:?}, not {user:?}"
        ));
    }
    Ok(())
}

/// A certificate's serial in lowercase hex, as `pgssl.client_serial_hex()` shows it.
pub(crate) fn serial_hex(cert: &X509) -> String {
    cert.serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|s| s.to_lowercase()))
        .unwrap_or_default()
}

/// Seconds since the Unix epoch of an ASN.1 time.
pub(crate) fn unix_seconds(time: &Asn1TimeRef) -> Option<i64> {
    let diff = Asn1Time::from_unix(0).ok()?.diff(time).ok()?;
    Some(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `2027-02-26T15:32:42Z` for seconds since the Unix epoch (UTC, proleptic Gregorian).
pub(crate) fn iso8601(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Where a client's certificate and key live.
#[derive(Clone, Debug)]
pub(crate) struct ClientFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The private key (PEM, 0600).
    pub key: PathBuf,
}

/// The staged new key of an interrupted replacement: `<key>.pgssl-next`.
fn next_key_path(key: &Path) -> PathBuf {
    let mut name = key.file_name().unwrap_or_default().to_os_string();
    name.push(".pgssl-next");
    key.with_file_name(name)
}

fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

impl ClientFiles {
    /// `postgresql.crt` and `postgresql.key` in `dir`.
    pub(crate) fn in_dir(dir: &Path) -> ClientFiles {
        ClientFiles {
            cert: dir.join("postgresql.crt"),
            key: dir.join("postgresql.key"),
        }
    }

    /// The files a connection with `config` presents, as libpq picks them: `sslcert` and
    /// `sslkey`, else `~/.postgresql/postgresql.crt` and `.key`.
    pub(crate) fn of(config: &Config) -> Result<ClientFiles, String> {
        let default = |name: &str| config.home().map(|h| h.join(".postgresql").join(name));
        let cert = config
            .ssl_cert()
            .map(Path::to_path_buf)
            .or_else(|| default("postgresql.crt"))
            .ok_or("no home directory: give sslcert and sslkey in the connection string")?;
        let key = config
            .ssl_key()
            .map(Path::to_path_buf)
            .or_else(|| default("postgresql.key"))
            .ok_or("no home directory: give sslcert and sslkey in the connection string")?;
        Ok(ClientFiles { cert, key })
    }

    /// The certificate now in place.
    pub(crate) fn read_cert(&self) -> Result<X509, String> {
        let pem = fs::read_to_string(&self.cert)
            .map_err(|e| format!("cannot read {}: {e}", self.cert.display()))?;
        certificate_from_pem(&pem).map_err(|e| format!("{}: {e}", self.cert.display()))
    }

    /// Finishes a replacement that stopped between its two renames: when `<key>.pgssl-next`
    /// is there and matches the certificate in place, it becomes the key; when it does not
    /// match, it is a leftover of a replacement that never got that far, and is removed.
    /// Returns whether a replacement was completed.
    pub(crate) fn complete_interrupted(&self) -> Result<bool, String> {
        let next = next_key_path(&self.key);
        let Ok(pem) = fs::read(&next) else {
            return Ok(false);
        };
        // An empty passphrase: an encrypted file fails here instead of prompting.
        let staged = PKey::private_key_from_pem_passphrase(&pem, b"").ok();
        let matches = match (staged, self.read_cert().ok()) {
            (Some(key), Some(cert)) => cert.public_key().is_ok_and(|k| k.public_eq(&key)),
            _ => false,
        };
        if matches {
            fs::rename(&next, &self.key)
                .map_err(|e| format!("cannot rename {}: {e}", next.display()))?;
            sync_dir(folder(&self.key));
        } else {
            fs::remove_file(&next).map_err(|e| format!("cannot remove {}: {e}", next.display()))?;
        }
        Ok(matches)
    }

    /// Stages the new pair beside the old one; see the module documentation.
    pub(crate) fn stage(&self, cert_pem: &[u8], key: &PKey<Private>) -> Result<Staged, String> {
        let key_pem = key.private_key_to_pem_pkcs8().map_err(|e| e.to_string())?;
        let cert_dir = folder(&self.cert);
        fn err(p: &Path) -> impl Fn(std::io::Error) -> String + '_ {
            move |e| format!("cannot write {}: {e}", p.display())
        }
        let mut cert = tempfile::Builder::new()
            .prefix(".pgssl-")
            .permissions(fs::Permissions::from_mode(0o644))
            .tempfile_in(cert_dir)
            .map_err(err(cert_dir))?;
        cert.write_all(cert_pem)
            .and_then(|()| cert.as_file().sync_all())
            .map_err(err(cert_dir))?;
        let next = next_key_path(&self.key);
        // A leftover (a link included: removing it never touches its target).
        match fs::remove_file(&next) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(&next)(e)),
            _ => {}
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&next)
            .map_err(err(&next))?;
        // The mode again, past the umask.
        let written = file
            .set_permissions(fs::Permissions::from_mode(0o600))
            .and_then(|()| file.write_all(&key_pem))
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&next);
            return Err(err(&next)(e));
        }
        Ok(Staged {
            cert: Some(cert),
            next_key: Some(next),
        })
    }

    /// Renames a staged pair into place: the certificate, then the key.
    pub(crate) fn install(&self, mut staged: Staged) -> Result<(), String> {
        let cert = staged.cert.take().expect("staged certificate");
        cert.persist(&self.cert)
            .map_err(|e| format!("cannot write {}: {}", self.cert.display(), e.error))?;
        let next = staged.next_key.take().expect("staged key");
        fs::rename(&next, &self.key)
            .map_err(|e| format!("cannot write {}: {e}", self.key.display()))?;
        sync_dir(folder(&self.cert));
        sync_dir(folder(&self.key));
        Ok(())
    }
}

/// A staged pair: removed again when dropped before [`ClientFiles::install`].
pub(crate) struct Staged {
    cert: Option<tempfile::NamedTempFile>,
    next_key: Option<PathBuf>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(next) = self.next_key.take() {
            let _ = fs::remove_file(next);
        }
    }
}

/// Flushes a folder's entries (the renames) to disk; best effort.
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(key: &PKey<Private>, cn: &str) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    #[test]
    fn certificates_with_pem_headers_are_refused_without_a_passphrase_prompt() {
        let key = make_key(KeyType::EcP256).unwrap();
        let pem = String::from_utf8(self_signed(&key, "alice").to_pem().unwrap()).unwrap();
        let cert = certificate_from_pem(&pem).unwrap();
        assert!(cert.public_key().unwrap().public_eq(&key));
        let encrypted = pem.replace(
            "-----BEGIN CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\
             DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n",
        );
        let err = certificate_from_pem(&encrypted).unwrap_err();
        assert!(err.contains("encrypted PEM is not accepted"), "{err}");
    }

    #[test]
    fn iso8601_of_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_803_396_762), "2027-02-23T15:32:42Z");
    }

    #[test]
    fn the_key_type_of_a_key() {
        for t in [KeyType::EcP256, KeyType::EcP384, KeyType::Ed25519] {
            let key = make_key(t).unwrap();
            let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
            assert_eq!(KeyType::of(&public), Some(t));
        }
    }

    #[test]
    fn install_replaces_both_files_and_links_are_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let files = ClientFiles::in_dir(dir.path());
        let target = dir.path().join("elsewhere");
        fs::write(&target, "not a key").unwrap();
        std::os::unix::fs::symlink(&target, &files.key).unwrap();
        let key = make_key(KeyType::EcP256).unwrap();
        let cert = self_signed(&key, "alice");
        let staged = files.stage(&cert.to_pem().unwrap(), &key).unwrap();
        files.install(staged).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "not a key");
        let meta = fs::symlink_metadata(&files.key).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let written = PKey::private_key_from_pem(&fs::read(&files.key).unwrap()).unwrap();
        assert!(files
            .read_cert()
            .unwrap()
            .public_key()
            .unwrap()
            .public_eq(&written));
        assert!(!next_key_path(&files.key).exists());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            3,
            "no temporary file left"
        );
    }

    #[test]
    fn an_interrupted_replacement_is_completed_and_a_stale_one_removed() {
        let dir = tempfile::tempdir().unwrap();
        let files = ClientFiles::in_dir(dir.path());
        let old_key = make_key(KeyType::EcP256).unwrap();
        fs::write(&files.key, old_key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let new_key = make_key(KeyType::EcP256).unwrap();
        let new_cert = self_signed(&new_key, "alice");
        // Killed between the renames: the new certificate, the old key, the staged key.
        let staged = files.stage(&new_cert.to_pem().unwrap(), &new_key).unwrap();
        let next = staged.next_key.clone().unwrap();
        let cert = staged.cert.as_ref().unwrap().path().to_path_buf();
        std::mem::forget(staged);
        fs::rename(cert, &files.cert).unwrap();
        assert!(files.complete_interrupted().unwrap());
        let key = PKey::private_key_from_pem(&fs::read(&files.key).unwrap()).unwrap();
        assert!(key.public_eq(&new_key));
        assert!(!next.exists());
        // A staged key that matches nothing is a leftover.
        fs::write(&next, old_key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        assert!(!files.complete_interrupted().unwrap());
        assert!(!next.exists());
        let key = PKey::private_key_from_pem(&fs::read(&files.key).unwrap()).unwrap();
        assert!(key.public_eq(&new_key));
    }
}

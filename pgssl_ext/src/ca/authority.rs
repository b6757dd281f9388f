//! The CA itself: its key types, making a new one, loading one from its two
//! files, and the per-backend cache. No backend types: the SQL functions in [`super::functions`]
//! resolve the paths and turn [`CaError`]s into SQL errors.

use std::fmt;
use std::fs::{self};
use std::io::{self};
use std::path::{Path, PathBuf};

use foreign_types::ForeignTypeRef;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::X509;

use super::key_file::load_ca_private_key;
use super::passphrase::PassphraseError;
use super::profile::{self, BACKDATE_SECONDS};

const SECONDS_PER_DAY: i64 = 86_400;
/// Longest CA lifetime `init_ca` accepts: 100 years.
pub const MAX_CA_DAYS: i32 = 36_500;

/// The key types `pgssl.init_ca` can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaKeyType {
    /// ECDSA on NIST P-256 (the default).
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// RSA, 2048 bits.
    Rsa2048,
    /// RSA, 3072 bits.
    Rsa3072,
    /// RSA, 4096 bits.
    Rsa4096,
    /// Ed25519.
    Ed25519,
}

impl CaKeyType {
    const ALL: [Self; 6] = [
        Self::EcP256,
        Self::EcP384,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::Ed25519,
    ];

    /// The SQL name, e.g. `ec-p256`.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcP256 => "ec-p256",
            Self::EcP384 => "ec-p384",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::Ed25519 => "ed25519",
        }
    }

    /// Looks a key type up by its SQL name, ignoring case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The accepted names, comma-separated.
    pub fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    /// A fresh private key of this type.
    pub fn generate(self) -> Result<PKey<Private>, ErrorStack> {
        let ec = |nid| EcGroup::from_curve_name(nid).and_then(|g| EcKey::generate(&g));
        match self {
            Self::EcP256 => PKey::from_ec_key(ec(Nid::X9_62_PRIME256V1)?),
            Self::EcP384 => PKey::from_ec_key(ec(Nid::SECP384R1)?),
            Self::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?),
            Self::Rsa3072 => PKey::from_rsa(Rsa::generate(3072)?),
            Self::Rsa4096 => PKey::from_rsa(Rsa::generate(4096)?),
            Self::Ed25519 => PKey::generate_ed25519(),
        }
    }
}

/// A self-signed v3 CA certificate for `key`: basicConstraints CA:TRUE with
/// pathlen 0 (critical), keyUsage keyCertSign and cRLSign (critical), subject
/// key identifier; valid from `now` minus the backdating window for `days`.
pub fn self_signed_ca(
    common_name: &str,
    days: i32,
    key: &PKeyRef<Private>,
    now: i64,
) -> Result<X509, ErrorStack> {
    let name = profile::common_name_only(common_name)?;
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let serial = profile::random_serial()?;
    let serial = Asn1Integer::from_bn(&serial)?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(key)?;
    let not_before = Asn1Time::from_unix(now - BACKDATE_SECONDS)?;
    let not_after = Asn1Time::from_unix(now + i64::from(days) * SECONDS_PER_DAY)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
    builder.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
    builder.append_extension(ski)?;
    builder.sign(key, profile::signing_digest(key))?;
    Ok(builder.build())
}

/// Which of the CA's two files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaFile {
    /// `pgssl.ca_cert_file`.
    Certificate,
    /// `pgssl.ca_key_file`.
    Key,
}

impl CaFile {
    /// E.g. "server CA private key".
    fn name(self, role: CaRole) -> String {
        match self {
            Self::Certificate => format!("{} certificate", role.label()),
            Self::Key => format!("{} private key", role.label()),
        }
    }
}

/// Which of pgssl's two CAs: the one that signs client certificates, or the
/// one that signs the server's own. Messages and hints name the right one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    /// `pgssl.ca_cert_file` / `pgssl.ca_key_file`, made by `pgssl.init_ca()`.
    Client,
    /// `pgssl.server_ca_cert_file` / `pgssl.server_ca_key_file`, made by the
    /// first `pgssl.issue_server_cert()`.
    Server,
}

impl CaRole {
    /// "CA" or "server CA".
    pub fn label(self) -> &'static str {
        match self {
            Self::Client => "CA",
            Self::Server => "server CA",
        }
    }

    /// The two settings naming its files.
    pub fn settings(self) -> &'static str {
        match self {
            Self::Client => "pgssl.ca_cert_file and pgssl.ca_key_file",
            Self::Server => "pgssl.server_ca_cert_file and pgssl.server_ca_key_file",
        }
    }
}

/// Why the CA could not be used or made. Messages name the file, never its
/// content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaError {
    /// A file does not exist: the CA is not configured (55000).
    Missing {
        /// Which file.
        file: CaFile,
        /// Its resolved path.
        path: PathBuf,
    },
    /// A file exists but cannot be read (55000).
    Unreadable {
        /// Which file.
        file: CaFile,
        /// Its resolved path.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A file holds no PEM certificate or private key, or an encrypted key
    /// while `pgssl.ca_key_passphrase_command` is not set (55000).
    NotPem {
        /// Which file.
        file: CaFile,
        /// Its resolved path.
        path: PathBuf,
        /// Whether the key is encrypted.
        encrypted: bool,
    },
    /// The key file is readable by group or others (55000).
    KeyFileOpen {
        /// Its resolved path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The certificate is not a CA certificate: its basicConstraints say
    /// CA:FALSE, or its keyUsage lacks keyCertSign (55000).
    NotCa {
        /// The certificate's path.
        path: PathBuf,
    },
    /// The private key does not belong to the certificate (55000).
    KeyMismatch {
        /// The certificate's path.
        cert_path: PathBuf,
        /// The key's path.
        key_path: PathBuf,
    },
    /// `init_ca` found a file already there (55000).
    Exists {
        /// Which file.
        file: CaFile,
        /// Its resolved path.
        path: PathBuf,
    },
    /// `pgssl.ca_key_passphrase_command` gave no passphrase for the key (58000).
    PassphraseCommand {
        /// The key file's path.
        path: PathBuf,
        /// How the command failed; never any of its output.
        problem: PassphraseError,
    },
    /// The passphrase from the command does not decrypt the key (28P01).
    WrongPassphrase {
        /// The key file's path.
        path: PathBuf,
    },
    /// Writing a file failed (58030).
    Write {
        /// The path being written.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
}

impl CaError {
    /// The message, naming the CA of `role`.
    pub fn message(&self, role: CaRole) -> String {
        let label = role.label();
        match self {
            Self::Missing { file, path } => format!(
                "pgssl {label} is not configured: {} file \"{}\" does not exist",
                file.name(role),
                path.display()
            ),
            Self::Unreadable { file, path, reason } => format!(
                "could not read {} file \"{}\": {reason}",
                file.name(role),
                path.display()
            ),
            Self::NotPem {
                file,
                path,
                encrypted: true,
            } => format!(
                "{} file \"{}\" is encrypted, and pgssl.ca_key_passphrase_command is not set",
                file.name(role),
                path.display()
            ),
            Self::NotPem { file, path, .. } => format!(
                "{} file \"{}\" does not hold a PEM {}",
                file.name(role),
                path.display(),
                match file {
                    CaFile::Certificate => "certificate",
                    CaFile::Key => "private key",
                }
            ),
            Self::KeyFileOpen { path, mode } => format!(
                "{label} private key file \"{}\" has group or world access (mode {mode:04o})",
                path.display()
            ),
            Self::NotCa { path } => format!(
                "{label} certificate file \"{}\" holds a certificate that may not sign certificates",
                path.display()
            ),
            Self::KeyMismatch {
                cert_path,
                key_path,
            } => format!(
                "{label} private key \"{}\" does not match {label} certificate \"{}\"",
                key_path.display(),
                cert_path.display()
            ),
            Self::Exists { file, path } => format!(
                "a {label} already exists: {} file \"{}\" is present",
                file.name(role),
                path.display()
            ),
            Self::PassphraseCommand { path, problem } => format!(
                "pgssl.ca_key_passphrase_command {problem}: no passphrase for {label} private key \
                 file \"{}\"",
                path.display()
            ),
            Self::WrongPassphrase { path } => format!(
                "the passphrase from pgssl.ca_key_passphrase_command does not decrypt {label} \
                 private key file \"{}\"",
                path.display()
            ),
            Self::Write { path, reason } => {
                format!("could not write file \"{}\": {reason}", path.display())
            }
        }
    }

    /// What to do, for the SQL error's HINT.
    pub fn hint(&self, role: CaRole) -> Option<String> {
        let settings = role.settings();
        match self {
            Self::Missing { .. } => Some(match role {
                CaRole::Client => format!(
                    "Run pgssl.init_ca() as a superuser, or point {settings} at an existing CA \
                     (paths relative to the data directory)."
                ),
                CaRole::Server => format!(
                    "The first pgssl.issue_server_cert() makes the server CA; or point {settings} \
                     at an existing CA (paths relative to the data directory)."
                ),
            }),
            Self::NotPem {
                encrypted: true, ..
            } => Some(
                "Set pgssl.ca_key_passphrase_command in postgresql.conf to a command that prints \
                 its passphrase, then reload."
                    .into(),
            ),
            Self::PassphraseCommand { .. } => Some(
                "Run the command as the database server's user: it must exit with status 0 and \
                 print the passphrase as its first line, reading nothing from its input."
                    .into(),
            ),
            Self::WrongPassphrase { .. } => Some(
                "Make the command print the passphrase the key was encrypted with; \
                 \"openssl pkey -in FILE -noout\" asks for it."
                    .into(),
            ),
            Self::KeyFileOpen { .. } => Some(
                "The key file must be owned by the database user with mode 0600 (u=rw).".into(),
            ),
            Self::KeyMismatch { .. } => {
                Some(format!("Set {settings} to the two halves of one CA."))
            }
            Self::NotCa { .. } => Some(
                "Use a CA certificate (basicConstraints CA:TRUE), e.g. one made by pgssl.init_ca()."
                    .into(),
            ),
            Self::Exists { .. } => Some(match role {
                CaRole::Client => "pgssl.init_ca() never overwrites a CA; move the old files away \
                                   first, or use the existing CA."
                    .into(),
                CaRole::Server => format!(
                    "pgssl never overwrites a CA; move both files away, or set {settings} \
                     to the existing CA."
                ),
            }),
            _ => None,
        }
    }
}

/// A CA ready to sign: its certificate and the private key that matches it.
#[derive(Clone)]
pub struct Authority {
    /// The CA certificate.
    pub cert: X509,
    /// Its private key.
    pub key: PKey<Private>,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("Authority")
            .field(
                "subject",
                &crate::cert::name_rfc2253(self.cert.subject_name()),
            )
            .finish_non_exhaustive()
    }
}

pub(super) fn read(file: CaFile, path: &Path) -> Result<Vec<u8>, CaError> {
    fs::read(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => CaError::Missing {
            file,
            path: path.into(),
        },
        _ => CaError::Unreadable {
            file,
            path: path.into(),
            reason: e.to_string(),
        },
    })
}

/// Loads the CA certificate (the first PEM certificate in the file).
pub fn load_certificate(path: &Path) -> Result<X509, CaError> {
    let pem = read(CaFile::Certificate, path)?;
    X509::from_pem(&pem).map_err(|_| CaError::NotPem {
        file: CaFile::Certificate,
        path: path.into(),
        encrypted: false,
    })
}

/// Loads the CA of `role`: the certificate, then the key with
/// [`load_ca_private_key`] (private to the database user, decrypted with
/// `passphrase_command` when encrypted), which must be the certificate's.
pub fn load(
    cert_path: &Path,
    key_path: &Path,
    role: CaRole,
    passphrase_command: Option<&str>,
) -> Result<Authority, CaError> {
    let cert = load_certificate(cert_path)?;
    let key = load_ca_private_key(key_path, role, passphrase_command)?;
    let matches = cert
        .public_key()
        .map(|public| public.public_eq(&key))
        .unwrap_or(false);
    if !matches {
        return Err(CaError::KeyMismatch {
            cert_path: cert_path.into(),
            key_path: key_path.into(),
        });
    }
    if !may_sign_certificates(&cert) {
        return Err(CaError::NotCa {
            path: cert_path.into(),
        });
    }
    Ok(Authority { cert, key })
}

/// What tells that a file may have changed: which file it is, its size, and
/// when its content or its inode (owner, mode) last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(path).ok()?;
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The CA this backend last loaded, with the stamps of its two files and
/// the passphrase command it was loaded with.
struct CachedAuthority {
    paths: (PathBuf, PathBuf),
    passphrase_command: Option<String>,
    stamps: (FileStamp, FileStamp),
    authority: Authority,
}

thread_local! {
    // A backend is one thread; the cache lives as long as the session.
    static LOADED: std::cell::RefCell<Option<CachedAuthority>> = const { std::cell::RefCell::new(None) };
}

/// [`load`], remembered for the session: parsing the two PEM files and
/// checking the key costs more than signing, so a backend signing many
/// certificates loads the CA once. Any change to either file (new content,
/// a replaced file, a chmod) or to the passphrase command makes the next
/// call load and check it anew. An encrypted key is decrypted once, not at
/// each signature; the decrypted key stays in this backend's memory.
pub fn load_cached(
    cert_path: &Path,
    key_path: &Path,
    role: CaRole,
    passphrase_command: Option<&str>,
) -> Result<Authority, CaError> {
    let stamps = (FileStamp::of(cert_path), FileStamp::of(key_path));
    let paths = (cert_path.to_path_buf(), key_path.to_path_buf());
    if let (Some(cert_stamp), Some(key_stamp)) = &stamps {
        let hit = LOADED.with(|cache| {
            cache.borrow().as_ref().and_then(|c| {
                (c.paths == paths
                    && c.passphrase_command.as_deref() == passphrase_command
                    && c.stamps.0 == *cert_stamp
                    && c.stamps.1 == *key_stamp)
                    .then(|| c.authority.clone())
            })
        });
        if let Some(authority) = hit {
            return Ok(authority);
        }
    }
    let authority = load(cert_path, key_path, role, passphrase_command)?;
    if let (Some(cert_stamp), Some(key_stamp)) = stamps {
        LOADED.with(|cache| {
            *cache.borrow_mut() = Some(CachedAuthority {
                paths,
                passphrase_command: passphrase_command.map(str::to_owned),
                stamps: (cert_stamp, key_stamp),
                authority: authority.clone(),
            })
        });
    }
    Ok(authority)
}

extern "C" {
    // libcrypto's own CA test, as certificate verification applies it;
    // openssl-sys does not bind it.
    fn X509_check_ca(cert: *mut openssl_sys::X509) -> std::os::raw::c_int;
}

/// Whether OpenSSL's verification would accept `cert` as an issuer: a v3
/// certificate with CA:TRUE (and keyCertSign when it has a keyUsage), or an
/// old self-signed v1 certificate.
fn may_sign_certificates(cert: &X509) -> bool {
    // SAFETY: `cert` is a valid certificate; X509_check_ca only reads it
    // (it caches the decoded extensions inside the X509 object, as any
    // OpenSSL reader does).
    unsafe { X509_check_ca(cert.as_ptr()) > 0 }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ca::files::create_ca;
    use crate::cert;

    pub(crate) fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    pub(crate) fn new_ca(kind: CaKeyType) -> Authority {
        let key = kind.generate().unwrap();
        let cert = self_signed_ca("pgssl client CA", 3650, &key, now()).unwrap();
        Authority { cert, key }
    }

    #[test]
    fn every_key_type_makes_a_self_signed_ca() {
        for kind in CaKeyType::ALL {
            let ca = new_ca(kind);
            assert!(ca.cert.verify(&ca.key).unwrap(), "{kind:?}");
            assert_eq!(
                cert::name_rfc2253(ca.cert.subject_name()),
                "CN=pgssl client CA"
            );
            let exts = cert::extensions(&ca.cert);
            assert_eq!(exts[0].name, "basicConstraints");
            assert_eq!(exts[0].value, "CA:TRUE, pathlen:0");
            assert!(exts[0].critical);
            assert_eq!(exts[1].value, "Certificate Sign, CRL Sign");
            assert!(exts[1].critical);
            assert_eq!(exts[2].name, "subjectKeyIdentifier");
        }
        assert_eq!(CaKeyType::from_name("RSA-2048"), Some(CaKeyType::Rsa2048));
        assert_eq!(CaKeyType::from_name("dsa"), None);
    }

    #[test]
    fn create_then_load_and_refuse_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let (crt, key) = (dir.path().join("ca.crt"), dir.path().join("ca.key"));
        let ca = new_ca(CaKeyType::EcP256);
        create_ca(&crt, &key, &ca.cert, &ca.key, None).unwrap();
        assert_eq!(fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
        let loaded = load(&crt, &key, CaRole::Client, None).unwrap();
        assert_eq!(loaded.cert, ca.cert);
        assert!(matches!(
            create_ca(&crt, &key, &ca.cert, &ca.key, None),
            Err(CaError::Exists {
                file: CaFile::Certificate,
                ..
            })
        ));
    }

    #[test]
    fn the_cached_ca_follows_changes_to_its_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (crt, key) = (dir.path().join("ca.crt"), dir.path().join("ca.key"));
        let first = new_ca(CaKeyType::EcP256);
        create_ca(&crt, &key, &first.cert, &first.key, None).unwrap();
        let loaded = load_cached(&crt, &key, CaRole::Client, None).unwrap();
        assert_eq!(loaded.cert, first.cert);
        assert_eq!(
            load_cached(&crt, &key, CaRole::Client, None).unwrap().cert,
            first.cert
        );
        // Opening the key to others is noticed at once, as without the cache.
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_cached(&crt, &key, CaRole::Client, None),
            Err(CaError::KeyFileOpen { .. })
        ));
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            load_cached(&crt, &key, CaRole::Client, None).unwrap().cert,
            first.cert
        );
        // A new CA in the same files is the one used next.
        fs::remove_file(&crt).unwrap();
        fs::remove_file(&key).unwrap();
        let second = new_ca(CaKeyType::EcP384);
        create_ca(&crt, &key, &second.cert, &second.key, None).unwrap();
        assert_eq!(
            load_cached(&crt, &key, CaRole::Client, None).unwrap().cert,
            second.cert
        );
        fs::remove_file(&key).unwrap();
        assert!(matches!(
            load_cached(&crt, &key, CaRole::Client, None),
            Err(CaError::Missing {
                file: CaFile::Key,
                ..
            })
        ));
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (crt, key) = (dir.path().join("ca.crt"), dir.path().join("ca.key"));
        assert!(matches!(
            load(&crt, &key, CaRole::Client, None),
            Err(CaError::Missing {
                file: CaFile::Certificate,
                ..
            })
        ));
        let ca = new_ca(CaKeyType::EcP256);
        let other = new_ca(CaKeyType::EcP256);
        create_ca(&crt, &key, &ca.cert, &other.key, None).unwrap();
        assert!(matches!(
            load(&crt, &key, CaRole::Client, None),
            Err(CaError::KeyMismatch { .. })
        ));
        fs::remove_file(&crt).unwrap();
        fs::remove_file(&key).unwrap();
        // A leaf certificate with its own key is no CA.
        let leaf_key = CaKeyType::EcP256.generate().unwrap();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let name = profile::common_name_only("leaf").unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&leaf_key).unwrap();
        let (from, to) = (
            Asn1Time::days_from_now(0).unwrap(),
            Asn1Time::days_from_now(1).unwrap(),
        );
        b.set_not_before(&from).unwrap();
        b.set_not_after(&to).unwrap();
        b.append_extension(BasicConstraints::new().critical().build().unwrap())
            .unwrap();
        b.sign(&leaf_key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        create_ca(&crt, &key, &b.build(), &leaf_key, None).unwrap();
        assert!(matches!(
            load(&crt, &key, CaRole::Client, None),
            Err(CaError::NotCa { .. })
        ));
        fs::remove_file(&key).unwrap();
        // World-readable keys are refused, whoever owns them.
        fs::write(&key, other.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load(&crt, &key, CaRole::Client, None),
            Err(CaError::KeyFileOpen { .. })
        ));
        fs::write(&crt, "not a certificate").unwrap();
        assert!(matches!(
            load(&crt, &key, CaRole::Client, None),
            Err(CaError::NotPem { .. })
        ));
    }

    #[test]
    fn encrypted_keys_are_refused_without_a_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let (crt, key) = (dir.path().join("ca.crt"), dir.path().join("ca.key"));
        let ca = new_ca(CaKeyType::EcP256);
        fs::write(&crt, ca.cert.to_pem().unwrap()).unwrap();
        let pem = ca
            .key
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"secret")
            .unwrap();
        fs::write(&key, pem).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load(&crt, &key, CaRole::Client, None),
            Err(CaError::NotPem {
                encrypted: true,
                ..
            })
        ));
    }

    use std::os::unix::fs::{MetadataExt, PermissionsExt};
}

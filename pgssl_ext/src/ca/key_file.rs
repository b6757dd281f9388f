//! A CA's private key file: reading it, decrypted with the passphrase from
//! `pgssl.ca_key_passphrase_command` when it is encrypted, and encoding a new
//! one, encrypted when that command is set.
//!
//! [`load_ca_private_key`] is the one function that turns a key file into a
//! key; a cache of loaded CAs keeps what it returns in the backend's memory
//! only (OpenSSL frees key material with its cleansing free), never writes or
//! logs it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use openssl::error::ErrorStack;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::symm::Cipher;
use zeroize::Zeroizing;

use super::authority::{read, CaError, CaFile, CaRole};
use super::passphrase::{self, Passphrase, PassphraseError};

/// Whether PEM text holds an encrypted private key: PKCS#8
/// (`BEGIN ENCRYPTED PRIVATE KEY`) or OpenSSL's traditional form
/// (`Proc-Type: 4,ENCRYPTED`).
pub fn is_encrypted_pem(pem: &[u8]) -> bool {
    let has = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    has(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || has(b"Proc-Type: 4,ENCRYPTED")
}

/// Loads the private key of the CA of `role` from `path`. The file must be
/// private to the database user (as PostgreSQL asks of `ssl_key_file`). An
/// unencrypted key is used as it is; an encrypted one is decrypted with the
/// first line `passphrase_command` prints, and refused at once when no
/// command is set: OpenSSL never gets to prompt on a terminal.
pub fn load_ca_private_key(
    path: &Path,
    role: CaRole,
    passphrase_command: Option<&str>,
) -> Result<PKey<Private>, CaError> {
    check_key_mode(path)?;
    let pem = Zeroizing::new(read(CaFile::Key, path)?);
    // A callback that supplies no passphrase: OpenSSL's default one would
    // read from the terminal.
    if let Ok(key) = PKey::private_key_from_pem_callback(&pem, |_| Ok(0)) {
        return Ok(key);
    }
    let encrypted = is_encrypted_pem(&pem);
    let Some(command) = passphrase_command.filter(|_| encrypted) else {
        return Err(CaError::NotPem {
            file: CaFile::Key,
            path: path.into(),
            encrypted,
        });
    };
    let passphrase = passphrase::run(command, passphrase::prompt(role)).map_err(|problem| {
        CaError::PassphraseCommand {
            path: path.into(),
            problem,
        }
    })?;
    PKey::private_key_from_pem_passphrase(&pem, &passphrase)
        .map_err(|_| CaError::WrongPassphrase { path: path.into() })
}

/// The passphrase for a new key of the CA of `role`, to be written to
/// `path`: `None` when no command is set (the key is written unencrypted).
/// The command runs twice and must print the same passphrase both times,
/// so that a key is never encrypted with one it will not print again.
pub fn passphrase_for_new_key(
    path: &Path,
    role: CaRole,
    passphrase_command: Option<&str>,
) -> Result<Option<Passphrase>, CaError> {
    let Some(command) = passphrase_command else {
        return Ok(None);
    };
    let failed = |problem| CaError::PassphraseCommand {
        path: path.into(),
        problem,
    };
    let first = passphrase::run(command, passphrase::prompt(role)).map_err(failed)?;
    let second = passphrase::run(command, passphrase::prompt(role)).map_err(failed)?;
    if first != second {
        return Err(failed(PassphraseError::Unstable));
    }
    Ok(Some(first))
}

/// The PEM of a new CA key: PKCS#8, encrypted with AES-256-CBC (PBES2, key
/// from the passphrase by PBKDF2-HMAC-SHA256) when a passphrase is given.
pub fn encode_ca_private_key(
    key: &PKeyRef<Private>,
    passphrase: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, ErrorStack> {
    Ok(Zeroizing::new(match passphrase {
        Some(passphrase) => {
            key.private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), passphrase)?
        }
        None => key.private_key_to_pem_pkcs8()?,
    }))
}

/// PostgreSQL's rule for its own server key: no access for group or others,
/// except group read when root owns the file.
fn check_key_mode(path: &Path) -> Result<(), CaError> {
    let Ok(meta) = fs::metadata(path) else {
        return Ok(()); // `read` reports it precisely
    };
    let mode = meta.mode() & 0o7777;
    let allowed = if meta.uid() == 0 { 0o037 } else { 0o077 };
    if mode & allowed != 0 {
        return Err(CaError::KeyFileOpen {
            path: path.into(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::ca::authority::tests::new_ca;
    use crate::ca::authority::CaKeyType;

    fn write_key(path: &Path, pem: &[u8]) {
        let _ = fs::remove_file(path);
        fs::write(path, pem).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn an_encrypted_key_opens_with_the_command_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");
        let ca = new_ca(CaKeyType::EcP256);
        let pem = encode_ca_private_key(&ca.key, Some(b"s3cret pass")).unwrap();
        assert!(pem.starts_with(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert!(is_encrypted_pem(&pem));
        write_key(&path, &pem);

        let key = load_ca_private_key(&path, CaRole::Client, Some("echo 's3cret pass'")).unwrap();
        assert!(key.public_eq(&ca.key));
        assert!(matches!(
            load_ca_private_key(&path, CaRole::Client, None),
            Err(CaError::NotPem {
                encrypted: true,
                ..
            })
        ));
        assert!(matches!(
            load_ca_private_key(&path, CaRole::Client, Some("echo wrong")),
            Err(CaError::WrongPassphrase { .. })
        ));
        assert!(matches!(
            load_ca_private_key(&path, CaRole::Server, Some("exit 2")),
            Err(CaError::PassphraseCommand {
                problem: PassphraseError::Failed { .. },
                ..
            })
        ));
        // The prompt names the CA.
        let prompt_check = "test \"%p\" = 'Enter PEM pass phrase for the pgssl server CA key:' \
                            && echo 's3cret pass'";
        assert!(load_ca_private_key(&path, CaRole::Server, Some(prompt_check)).is_ok());
        assert!(load_ca_private_key(&path, CaRole::Client, Some(prompt_check)).is_err());
    }

    #[test]
    fn traditional_encrypted_pem_opens_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");
        let ca = new_ca(CaKeyType::Rsa2048);
        let rsa = ca.key.rsa().unwrap();
        let pem = rsa
            .private_key_to_pem_passphrase(Cipher::aes_256_cbc(), b"pw")
            .unwrap();
        assert!(is_encrypted_pem(&pem));
        write_key(&path, &pem);
        let key = load_ca_private_key(&path, CaRole::Client, Some("echo pw")).unwrap();
        assert!(key.public_eq(&ca.key));
    }

    #[test]
    fn an_unencrypted_key_never_runs_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");
        let marker = dir.path().join("ran");
        let ca = new_ca(CaKeyType::Ed25519);
        write_key(&path, &encode_ca_private_key(&ca.key, None).unwrap());
        let command = format!("touch '{}'; echo x", marker.display());
        let key = load_ca_private_key(&path, CaRole::Client, Some(&command)).unwrap();
        assert!(key.public_eq(&ca.key));
        assert!(!marker.exists());
    }

    #[test]
    fn a_new_key_needs_a_passphrase_the_command_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");
        assert!(passphrase_for_new_key(&path, CaRole::Client, None)
            .unwrap()
            .is_none());
        let same = passphrase_for_new_key(&path, CaRole::Client, Some("echo pw")).unwrap();
        assert_eq!(same.unwrap().as_slice(), b"pw");
        assert!(matches!(
            passphrase_for_new_key(&path, CaRole::Client, Some("date +%%N")),
            Err(CaError::PassphraseCommand {
                problem: PassphraseError::Unstable,
                ..
            })
        ));
    }
}

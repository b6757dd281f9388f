//! Every file pgssl writes: a new CA's two files, the server's key and
//! certificate, the CRL. Never over an existing file where a file is new;
//! atomically (write, flush, rename) where one is replaced; keys with mode
//! 0600 from the moment they exist.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use openssl::pkey::{PKeyRef, Private};
use openssl::x509::X509;

use super::authority::{CaError, CaFile};
use super::key_file::encode_ca_private_key;
use crate::error::PgsslError;

/// Writes a new CA's two files: the key first with mode 0600 (encrypted
/// with `passphrase` when one is given), then the certificate with mode 0644
/// (less the server's umask, usually 0077), neither ever over an existing
/// file nor through a symbolic link. When the certificate cannot be written
/// the key is removed again.
pub fn create_ca(
    cert_path: &Path,
    key_path: &Path,
    cert: &X509,
    key: &PKeyRef<Private>,
    passphrase: Option<&[u8]>,
) -> Result<(), CaError> {
    for (file, path) in [(CaFile::Certificate, cert_path), (CaFile::Key, key_path)] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(CaError::Exists {
                file,
                path: path.into(),
            });
        }
    }
    let key_pem = encode_ca_private_key(key, passphrase).map_err(|e| CaError::Write {
        path: key_path.into(),
        reason: e.to_string(),
    })?;
    let cert_pem = cert.to_pem().map_err(|e| CaError::Write {
        path: cert_path.into(),
        reason: e.to_string(),
    })?;
    write_new(CaFile::Key, key_path, &key_pem, 0o600)?;
    if let Err(e) = write_new(CaFile::Certificate, cert_path, &cert_pem, 0o644) {
        let _ = fs::remove_file(key_path);
        return Err(e);
    }
    Ok(())
}

fn write_new(file: CaFile, path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => CaError::Exists {
                file,
                path: path.into(),
            },
            _ => CaError::Write {
                path: path.into(),
                reason: e.to_string(),
            },
        })?;
    out.write_all(bytes)
        .and_then(|()| out.sync_all())
        .map_err(|e| {
            let _ = fs::remove_file(path);
            CaError::Write {
                path: path.into(),
                reason: e.to_string(),
            }
        })
}

/// Replaces `path` with `bytes` atomically: a temporary file in the same
/// directory, flushed, then renamed over it, so a reader sees the old file or
/// the new one and never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with_mode(path, bytes, 0o644)
}

/// [`write_atomically`] with the new file's permission bits (less the
/// server's umask), e.g. 0600 for a private key: the temporary file has them
/// from its creation, so the key is never readable by others, not even briefly.
pub fn write_atomically_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    // A name nobody can guess, created exclusively: a file or symbolic link
    // planted at the temporary name makes the write fail instead of following it.
    let mut random = [0u8; 8];
    openssl::rand::rand_bytes(&mut random).map_err(io::Error::other)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        crate::dn::hex_lower(&random)
    ));
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        out.write_all(bytes)?;
        out.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })?
        .sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes the key (0600) and then the certificate, each atomically, never
/// over an existing file; when the certificate cannot be written, the key is
/// removed again.
pub(crate) fn write_server_pair(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
) -> Result<(), PgsslError> {
    let failed = |what, path: &Path, e: io::Error| PgsslError::FileWrite {
        what,
        path: path.into(),
        reason: e.to_string(),
    };
    for (what, path) in [
        ("server certificate", cert_path),
        ("server private key", key_path),
    ] {
        if path.symlink_metadata().is_ok() {
            return Err(PgsslError::FileExists {
                what,
                path: path.into(),
            });
        }
    }
    write_atomically_with_mode(key_path, key_pem, 0o600)
        .map_err(|e| failed("server private key", key_path, e))?;
    if let Err(e) = write_atomically_with_mode(cert_path, cert_pem, 0o644) {
        let _ = fs::remove_file(key_path);
        return Err(failed("server certificate", cert_path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.crl");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

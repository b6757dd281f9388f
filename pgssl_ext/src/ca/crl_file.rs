//! The file `ssl_crl_file` names, as pgssl keeps it: one CRL per issuer, the
//! pgssl CA's replaced at each install, every other issuer's kept as it is.
//!
//! PostgreSQL sets `X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL` once a
//! CRL is configured, so every CA in `ssl_ca_file` needs a current CRL in
//! this file; replacing the whole file with the pgssl CA's CRL would lock
//! out the clients of every other CA. Pure: no backend types here.

use std::fs;
use std::io;
use std::path::Path;

use openssl::x509::{X509Crl, X509NameRef};

const BEGIN: &str = "-----BEGIN X509 CRL-----";
const END: &str = "-----END X509 CRL-----";

/// Why the CRL file could not be read or replaced.
#[derive(Debug)]
pub enum CrlFileError {
    /// The path is a symbolic link: pgssl replaces only a regular file, so
    /// that it never writes somewhere the link points.
    Symlink,
    /// The path exists but is not a regular file.
    NotAFile,
    /// A block in the file that is not a CRL: the file is left alone rather
    /// than dropping what a DBA put there.
    BadBlock {
        /// Which block (1-based).
        index: usize,
    },
    /// Reading or writing failed.
    Io(io::Error),
}

impl std::fmt::Display for CrlFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Symlink => f.write_str(
                "it is a symbolic link; pgssl replaces only a regular file (point ssl_crl_file at the real file)",
            ),
            Self::NotAFile => f.write_str("it is not a regular file"),
            Self::BadBlock { index } => write!(
                f,
                "its PEM block {index} is not a valid X509 CRL; the file is left as it is"
            ),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for CrlFileError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// The PEM blocks of every CRL in `text`, each with its parsed CRL, in
/// order; text around the blocks is ignored.
pub fn parse(text: &str) -> Result<Vec<(String, X509Crl)>, CrlFileError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start..];
        let Some(end) = after.find(END) else {
            return Err(CrlFileError::BadBlock {
                index: out.len() + 1,
            });
        };
        let block = &after[..end + END.len()];
        let crl = X509Crl::from_pem(block.as_bytes()).map_err(|_| CrlFileError::BadBlock {
            index: out.len() + 1,
        })?;
        out.push((format!("{block}\n"), crl));
        rest = &after[end + END.len()..];
    }
    Ok(out)
}

/// Whether two names are the same (DER comparison, as OpenSSL matches a CRL
/// to its issuer).
pub fn same_name(a: &X509NameRef, b: &X509NameRef) -> bool {
    matches!((a.to_der(), b.to_der()), (Ok(x), Ok(y)) if x == y)
}

/// The file's new contents: every CRL of another issuer, in its place, then
/// `ours` (PEM) for `issuer`.
pub fn merge(existing: &str, ours: &str, issuer: &X509NameRef) -> Result<String, CrlFileError> {
    let mut out = String::new();
    for (block, crl) in parse(existing)? {
        if !same_name(crl.issuer_name(), issuer) {
            out.push_str(&block);
        }
    }
    out.push_str(ours.trim_end());
    out.push('\n');
    Ok(out)
}

/// The file as it is now: empty when it does not exist; an error for a
/// symbolic link or anything but a regular file.
pub fn read(path: &Path) -> Result<String, CrlFileError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e.into()),
        Ok(meta) if meta.file_type().is_symlink() => return Err(CrlFileError::Symlink),
        Ok(meta) if !meta.is_file() => return Err(CrlFileError::NotAFile),
        Ok(_) => {}
    }
    Ok(fs::read_to_string(path)?)
}

/// What [`install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// The file already held exactly this CRL for the issuer.
    Unchanged,
    /// The file was replaced.
    Written,
}

/// Puts `ours` into the file at `path` in place of the issuer's previous
/// CRL, keeping every other issuer's. The new contents go to a temporary
/// file in the same folder, which is synced and renamed over the old one: a
/// reader sees the old file or the new one, never a part, and on any error
/// the old file stays as it was.
pub fn install(path: &Path, ours: &str, issuer: &X509NameRef) -> Result<Installed, CrlFileError> {
    let existing = read(path)?;
    let wanted = X509Crl::from_pem(ours.as_bytes())
        .and_then(|c| c.to_der())
        .map_err(|_| CrlFileError::BadBlock { index: 0 })?;
    let current = parse(&existing)?;
    let ours_now: Vec<_> = current
        .iter()
        .filter(|(_, crl)| same_name(crl.issuer_name(), issuer))
        .collect();
    if ours_now.len() == 1 && ours_now[0].1.to_der().ok().as_deref() == Some(&wanted[..]) {
        return Ok(Installed::Unchanged);
    }
    let contents = merge(&existing, ours, issuer)?;
    super::files::write_atomically(path, contents.as_bytes())?;
    Ok(Installed::Written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::nid::Nid;
    use openssl::x509::X509Name;

    /// The issuer of a CRL, as the CA that signed it names itself.
    fn issuer(pem: &str) -> X509Name {
        X509Crl::from_pem(pem.as_bytes())
            .unwrap()
            .issuer_name()
            .to_owned()
            .unwrap()
    }

    /// A CRL of a fresh CA named `cn`, valid `days`.
    fn crl(cn: &str, days: i64) -> String {
        let key = crate::ca::test_support::ec_key(Nid::X9_62_PRIME256V1);
        let now = crate::ca::test_support::now();
        let cert = crate::ca::authority::self_signed_ca(cn, 3650, &key, now).unwrap();
        let ca = crate::ca::authority::Authority { cert, key };
        let crl = crate::ca::revocation::build_crl(&ca, &[], 1, now, days * 86_400).unwrap();
        String::from_utf8(crl.to_pem().unwrap()).unwrap()
    }

    #[test]
    fn merge_keeps_other_issuers_and_replaces_ours() {
        let other = crl("root-client-ca", 3650);
        let old = crl("pgssl CA", 7);
        let new = crl("pgssl CA", 7);
        let existing = format!("# a comment\n{other}{old}");
        let merged = merge(&existing, &new, &issuer(&new)).unwrap();
        let blocks = parse(&merged).unwrap();
        assert_eq!(blocks.len(), 2);
        assert!(same_name(blocks[0].1.issuer_name(), &issuer(&other)));
        assert!(!same_name(&issuer(&other), &issuer(&new)));
        assert_eq!(blocks[1].0.trim(), new.trim());
    }

    #[test]
    fn a_block_that_is_not_a_crl_is_refused() {
        let bad = format!("{BEGIN}\nnot base64\n{END}\n");
        let ours = crl("pgssl CA", 7);
        assert!(matches!(
            merge(&bad, &ours, &issuer(&ours)),
            Err(CrlFileError::BadBlock { index: 1 })
        ));
    }

    #[test]
    fn install_writes_keeps_and_refuses_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.crl");
        let other = crl("root-client-ca", 3650);
        fs::write(&path, &other).unwrap();
        let ours = crl("pgssl CA", 7);
        let ours_issuer = issuer(&ours);
        assert_eq!(
            install(&path, &ours, &ours_issuer).unwrap(),
            Installed::Written
        );
        assert_eq!(
            install(&path, &ours, &ours_issuer).unwrap(),
            Installed::Unchanged
        );
        let now = fs::read_to_string(&path).unwrap();
        assert_eq!(parse(&now).unwrap().len(), 2);
        assert!(now.contains(other.trim()));

        let link = dir.path().join("link.crl");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(
            install(&link, &crl("pgssl CA", 7), &ours_issuer),
            Err(CrlFileError::Symlink)
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), now);
    }
}

//! `pgssl_ext/src/ca`'s pure modules, under the same module names they have there.

#[path = "../../../pgssl_ext/src/ca/csr.rs"]
pub mod csr;

#[path = "../../../pgssl_ext/src/ca/crl_file.rs"]
pub mod crl_file;

// check_csr's fast path (and the profile it signs with): the C half, csr_shim.c, is
// compiled by build.rs.
#[path = "../../../pgssl_ext/src/ca/raw_csr.rs"]
pub mod raw_csr;

#[path = "../../../pgssl_ext/src/ca/profile.rs"]
pub mod profile;

/// Stands in for the extension's `ca::files` (which needs the backend's error type): the
/// fuzz targets parse and merge CRL files, they never install one.
pub mod files {
    use std::io;
    use std::path::Path;

    /// Refuses: no fuzz target writes files.
    pub fn write_atomically(_path: &Path, _bytes: &[u8]) -> io::Result<()> {
        Err(io::Error::other("the fuzz targets write no files"))
    }
}

//! The in-database certificate authorities: sign client CSRs from SQL under
//! a strict policy, sign the server's own certificate, keep a registry of
//! what was issued, revoke and publish CRLs.
//!
//! Pure modules (no backend types, covered by plain `#[test]`s):
//! - [`csr`]: which CSRs are signed (its fast path over OpenSSL in `raw_csr`);
//! - [`profile`]: validity, serials and the one end-entity profile;
//! - [`revocation`]: serials given to SQL, revocation reasons, the CRL;
//! - [`authority`]: the CAs' key types, making, loading and caching a CA;
//! - [`files`]: every file pgssl writes;
//! - [`key_file`]: reading a CA key file, decrypting it when it is
//!   encrypted, and encoding a new one;
//! - [`passphrase`]: running `pgssl.ca_key_passphrase_command`;
//! - [`crl_file`]: the file `ssl_crl_file` names, one CRL per issuer.
//!
//! Backend modules:
//! - [`registry`]: all SQL on `pgssl.issued_certs` and `pgssl.crl_number`;
//! - [`issuance`]: the one path from a checked name and key to a signed,
//!   recorded certificate, for `enroll`, `sign_csr` and `issue_server_cert`;
//! - [`crl_store`]: signed CRLs in `pgssl.crls`, installed on every node;
//! - [`functions`]: the CA's SQL functions (`pgssl.init_ca`, `pgssl.enroll`, ...);
//! - [`renewal`]: `pgssl.renew`, over a login with the certificate it renews.
//!
//! The settings are in [`crate::gucs`].

pub mod authority;
pub mod crl_file;
pub(crate) mod crl_store;
pub mod csr;
pub mod files;
pub(crate) mod functions;
pub(crate) mod issuance;
pub mod key_file;
pub mod passphrase;
pub mod profile;
mod raw_csr;
pub(crate) mod registry;
pub(crate) mod renewal;
pub mod revocation;
#[cfg(test)]
mod test_support;

//! The in-database certificate authority: sign client CSRs from SQL under a
//! strict policy, keep a registry of what was issued, revoke and publish CRLs.
//!
//! - [`policy`]: which CSRs are signed and the certificate profile (pure);
//! - [`authority`]: making, loading and using the CA's two files (pure);
//! - [`functions`]: the SQL functions (`pgssl.init_ca`, `pgssl.enroll`, ...).
//!
//! Its settings are in [`crate::gucs`].

pub mod authority;
pub(crate) mod functions;
pub mod policy;

//! `pgssl_ext/src/audit`'s pure checks, under the same module names they have there.

#[path = "../../../pgssl_ext/src/audit/checks.rs"]
pub mod checks;

#[path = "../../../pgssl_ext/src/audit/versions.rs"]
pub mod versions;

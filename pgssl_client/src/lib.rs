//! Connect to PostgreSQL from Rust with libpq's exact `sslmode` semantics.
#![deny(missing_docs)]

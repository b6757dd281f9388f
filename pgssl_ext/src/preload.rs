//! What may only be set up while the server starts, with pgssl in
//! `shared_preload_libraries`: background workers, shared memory and hooks.
//!
//! `_PG_init` calls [`register`] only while preloading, and never in a
//! `pg_upgrade` (binary upgrade) run, as pg_cron does: there the server must
//! not start workers or touch state the upgrade does not expect. Everything
//! else in pgssl works without preloading.

/// Registers the preload-only parts. Nothing needs preloading yet; the
/// revocation worker and its shared memory register here.
pub(crate) fn register() {}

//! The pgssl background worker: one per node, started when `pgssl` is in
//! `shared_preload_libraries`, on the primary and on every hot standby.
//!
//! Like pg_cron's launcher it connects to one database (`pgssl.database`),
//! logs everything it does with the prefix `pgssl worker:`, and catches the
//! errors of each cycle, so one bad cycle never stops it. Twice a second (and
//! on a reload) it runs a cycle ([`cycle`]):
//!
//! - on the primary, re-signs the CRL when it is due or when a revocation
//!   committed since the newest one, and stores it in `pgssl.crls`;
//! - on every node, installs the newest stored CRL into `ssl_crl_file` and
//!   reloads the configuration;
//! - ends the sessions authenticated with a revoked certificate
//!   ([`sessions`]).
//!
//! [`register`] is the only thing `_PG_init` calls, and only while the
//! library is preloaded.

mod cycle;
mod sessions;

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::prelude::*;

use crate::gucs;
use pgrx::PgTryBuilder;

/// The name in `pg_stat_activity.backend_type` and in the server log.
pub const WORKER_TYPE: &str = "pgssl worker";
/// How often the worker wakes without being signalled: twice a second, since
/// nothing wakes it on a standby when a revocation is replayed, and sessions
/// there must end within two seconds of the commit on the primary.
const NAP: Duration = Duration::from_millis(500);
/// How long the postmaster waits before starting a worker that exited on an
/// error it could not catch (e.g. `pgssl.database` names no database).
const RESTART_AFTER: Duration = Duration::from_secs(10);

/// Registers the worker with the postmaster. Only valid while
/// `shared_preload_libraries` is being processed.
pub fn register() {
    BackgroundWorkerBuilder::new(WORKER_TYPE)
        .set_type(WORKER_TYPE)
        .set_library("pgssl")
        .set_function("pgssl_worker_main")
        .enable_spi_access()
        // Consistent state: on a hot standby too, as soon as it accepts
        // read-only connections.
        .set_start_time(BgWorkerStartTime::ConsistentState)
        .set_restart_time(Some(RESTART_AFTER))
        .load();
}

/// The worker's entry point, named in [`register`].
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgssl_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = gucs::database();
    log!("pgssl worker: started, connecting to database \"{database}\" (pgssl.database)");
    // A database that does not exist ends the worker here with a FATAL
    // naming it; the postmaster starts it again after RESTART_AFTER.
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);

    let mut state = cycle::State::default();
    loop {
        if BackgroundWorker::sighup_received() {
            // SAFETY: called from the worker's main loop, outside any
            // transaction, as PostgreSQL's own processes do on SIGHUP.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            if gucs::database() != database {
                log!(
                    "pgssl worker: pgssl.database changed to \"{}\"; restarting to connect to it",
                    gucs::database()
                );
                // SAFETY: a clean exit; exit code 1 makes the postmaster
                // start the worker again after RESTART_AFTER.
                unsafe { pg_sys::proc_exit(1) };
            }
        }
        cycle::run(&mut state);
        if !BackgroundWorker::wait_latch(Some(NAP)) {
            break;
        }
    }
    log!("pgssl worker: shutting down");
    // Exit code 1: when the server is not shutting down (the worker was
    // terminated on its own), the postmaster starts it again.
    // SAFETY: a clean exit from the worker's main function.
    unsafe { pg_sys::proc_exit(1) };
}

thread_local! {
    /// Whether this transaction already asked to wake the worker at commit.
    static WAKE_PENDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Wakes this node's worker as soon as the current transaction commits, so
/// a revocation reaches the CRL and the open sessions at once rather than at
/// the worker's next tick. Without a running worker (no preload) it does
/// nothing.
pub(crate) fn wake_after_commit() {
    if WAKE_PENDING.with(|p| p.replace(true)) {
        return;
    }
    let pid = crate::ca::registry::read_one::<i32>(
        "SELECT pid FROM pg_catalog.pg_stat_activity WHERE backend_type = $1",
        &[WORKER_TYPE.into()],
    );
    let Ok(Some(pid)) = pid else {
        WAKE_PENDING.with(|p| p.set(false));
        return;
    };
    pgrx::register_xact_callback(pgrx::PgXactCallbackEvent::Commit, move || {
        WAKE_PENDING.with(|p| p.set(false));
        // SAFETY: BackendPidGetProc takes ProcArrayLock itself and returns
        // NULL when no process has that pid any more; setting another
        // process's latch is how PostgreSQL wakes it, and is allowed after
        // commit (no ERROR can come of it).
        unsafe {
            let proc_ = pg_sys::BackendPidGetProc(pid);
            if !proc_.is_null() {
                pg_sys::SetLatch(&raw mut (*proc_).procLatch);
            }
        }
    });
    pgrx::register_xact_callback(pgrx::PgXactCallbackEvent::Abort, || {
        WAKE_PENDING.with(|p| p.set(false));
    });
}

/// Runs `body` in a transaction of its own. An ERROR or panic inside is
/// caught and returned as its message, and the transaction rolled back, so
/// the worker goes on.
pub(crate) fn in_transaction<R>(body: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    let body = AssertUnwindSafe(body);
    // SAFETY: the worker's main loop runs outside any transaction; this
    // starts one, with a snapshot for SPI, as BackgroundWorker::transaction does.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let outcome = PgTryBuilder::new(move || {
        let result = body();
        if result.is_ok() {
            // SAFETY: the snapshot pushed above is still the active one;
            // committing may raise an ERROR, caught below.
            unsafe {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
        }
        result
    })
    .catch_others(|e| Err(caught_message(&e)))
    .execute();
    if outcome.is_err() {
        // SAFETY: rolls back whatever transaction state is left (in
        // progress, or failed during commit); a no-op outside a transaction.
        unsafe { pg_sys::AbortCurrentTransaction() };
    }
    outcome
}

fn caught_message(e: &pg_sys::panic::CaughtError) -> String {
    match e {
        pg_sys::panic::CaughtError::PostgresError(r)
        | pg_sys::panic::CaughtError::ErrorReport(r)
        | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => r.message().to_string(),
    }
}

//! One cycle of the worker: sign when due (primary), install the newest CRL
//! (every node), end revoked sessions. Errors are logged, rate-limited, and
//! the failed step is retried after [`RETRY_AFTER`]; the CRL file in place
//! is never touched by a failed step.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pgrx::prelude::*;

use super::{in_transaction, sessions};
use crate::ca::crl_file::Installed;
use crate::ca::crl_store;
use crate::gucs;

/// How soon a failed step is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How often the same failure is logged again while it lasts.
const REPEAT_LOG_AFTER: Duration = Duration::from_secs(60);

/// What the worker remembers between cycles.
#[derive(Default)]
pub struct State {
    /// Per step: the last failure logged, and when.
    failures: HashMap<&'static str, (String, Instant)>,
    /// Per step: not before this instant after a failure.
    retry_at: HashMap<&'static str, Instant>,
    /// What was logged once about a missing extension or setting.
    notices: HashMap<&'static str, String>,
    /// The revoked serials, refreshed when their count changes.
    pub(super) revoked: sessions::RevokedSerials,
    /// The CRL number last installed, and the file as it was then: while
    /// both hold, the file is not read again.
    installed: Option<(i64, FileMark)>,
}

/// What tells a file changed without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileMark {
    path: std::path::PathBuf,
    dev_ino: (u64, u64),
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileMark {
    fn of(path: &std::path::Path) -> Option<FileMark> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(FileMark {
            path: path.to_path_buf(),
            dev_ino: (m.dev(), m.ino()),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

impl State {
    fn may_try(&self, step: &'static str) -> bool {
        self.retry_at
            .get(step)
            .is_none_or(|at| Instant::now() >= *at)
    }

    /// Logs a failure the first time, when it changes, and once a minute
    /// while it lasts; schedules the retry.
    fn failed(&mut self, step: &'static str, message: String) {
        let now = Instant::now();
        self.retry_at.insert(step, now + RETRY_AFTER);
        let repeat = match self.failures.get(step) {
            Some((last, at)) => *last != message || now.duration_since(*at) >= REPEAT_LOG_AFTER,
            None => true,
        };
        if repeat {
            let kept = if step.ends_with("the CRL") {
                "the CRL file in place is kept, "
            } else {
                ""
            };
            warning!(
                "pgssl worker: {step} failed: {message}; {kept}retrying every {} s",
                RETRY_AFTER.as_secs()
            );
            self.failures.insert(step, (message, now));
        }
    }

    fn succeeded(&mut self, step: &'static str) {
        self.retry_at.remove(step);
        if self.failures.remove(step).is_some() {
            log!("pgssl worker: {step} works again");
        }
    }

    /// Logs `message` once, until a different one is noticed for `topic`.
    fn notice(&mut self, topic: &'static str, message: Option<String>) {
        match message {
            Some(m) if self.notices.get(topic) != Some(&m) => {
                log!("pgssl worker: {m}");
                self.notices.insert(topic, m);
            }
            Some(_) => {}
            None => {
                self.notices.remove(topic);
            }
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Why a new CRL is signed now, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// None is stored yet, and there is something to protect.
    First,
    /// A revocation committed after the newest CRL was signed.
    Revocation,
    /// The newest CRL reached the refresh age (or its nextUpdate).
    Refresh,
}

impl Due {
    /// Why, for the log.
    fn why(self) -> &'static str {
        match self {
            Due::First => "the first",
            Due::Revocation => "a revocation committed",
            Due::Refresh => "the previous one reached pgssl.crl_refresh",
        }
    }
}

/// The newest CRL's (thisUpdate, nextUpdate, revocations listed).
pub type NewestFacts = (i64, i64, i64);

/// Whether to sign now. `wanted` says whether a first CRL is wanted when
/// none is stored (a CRL file is configured or something is revoked).
pub fn signing_due(
    newest: Option<NewestFacts>,
    revocations: i64,
    now: i64,
    refresh: i64,
    wanted: bool,
) -> Option<Due> {
    match newest {
        None if wanted || revocations > 0 => Some(Due::First),
        None => None,
        Some((_, _, listed)) if listed != revocations => Some(Due::Revocation),
        Some((this_update, next_update, _))
            if now >= this_update + refresh || now >= next_update || now < this_update =>
        {
            Some(Due::Refresh)
        }
        Some(_) => None,
    }
}

/// Runs one cycle; never raises.
pub fn run(state: &mut State) {
    // SAFETY: reads shared memory state; never raises.
    let in_recovery = unsafe { pg_sys::RecoveryInProgress() };

    let ready = in_transaction(|| {
        crate::ca::registry::read_one::<bool>(
            "SELECT pg_catalog.to_regclass('pgssl.crls') IS NOT NULL",
            &[],
        )
        .map(Option::unwrap_or_default)
        .map_err(|e| e.to_string())
    });
    match ready {
        Ok(true) => state.notice("extension", None),
        Ok(false) => {
            state.notice(
                "extension",
                Some(format!(
                    "the pgssl extension (0.2.0 or later) is not installed in database \"{}\" \
                     (pgssl.database); waiting for CREATE EXTENSION pgssl or ALTER EXTENSION pgssl UPDATE",
                    gucs::database()
                )),
            );
            return;
        }
        Err(e) => {
            state.failed("reading the catalog", e);
            return;
        }
    }

    if !in_recovery && state.may_try("signing the CRL") {
        match in_transaction(sign_if_due) {
            Ok(Some((due, number))) => {
                state.succeeded("signing the CRL");
                log!("pgssl worker: signed CRL number {number} ({})", due.why());
            }
            Ok(None) => state.succeeded("signing the CRL"),
            Err(e) => state.failed("signing the CRL", e),
        }
    }

    if state.may_try("installing the CRL") {
        let installed = &mut state.installed;
        match in_transaction(|| install_newest(installed)) {
            Ok(Ok(message)) => {
                state.succeeded("installing the CRL");
                state.notice("crl file", None);
                if let Some(m) = message {
                    log!("pgssl worker: {m}");
                }
            }
            Ok(Err(notice)) => {
                state.succeeded("installing the CRL");
                state.notice("crl file", Some(notice));
            }
            Err(e) => state.failed("installing the CRL", e),
        }
    }

    if gucs::terminate_revoked_sessions() {
        let revoked = &mut state.revoked;
        if let Err(e) = in_transaction(|| sessions::terminate_revoked(revoked)) {
            state.failed("ending revoked sessions", e);
        }
    }
}

/// Signs and stores a CRL when one is due; commits with the transaction.
fn sign_if_due() -> Result<Option<(Due, i64)>, String> {
    let revocations = crl_store::revocation_count().map_err(|e| e.message())?;
    let newest = crl_store::newest().map_err(|e| e.message())?;
    let now = unix_now();
    let wanted = newest.is_some()
        || (crl_store::crl_file_path()
            .map_err(|e| e.message())?
            .is_some()
            && gucs::ca_cert_file().exists());
    let due = signing_due(
        newest
            .as_ref()
            .map(|n| (n.this_update, n.next_update, n.revocations)),
        revocations,
        now,
        gucs::crl_refresh(),
        wanted,
    );
    let Some(due) = due else { return Ok(None) };
    let stored = crl_store::sign_and_store(now, gucs::crl_validity()).map_err(|e| {
        let hint = e.hint().map(|h| format!(" ({h})")).unwrap_or_default();
        format!("{}{hint}", e.message())
    })?;
    Ok(Some((due, stored.number)))
}

/// Installs the newest stored CRL when the file does not hold it yet.
/// `Ok(Err(notice))` says why nothing can be installed (no CRL file set).
fn install_newest(
    installed: &mut Option<(i64, FileMark)>,
) -> Result<Result<Option<String>, String>, String> {
    let Some(newest) = crl_store::newest().map_err(|e| e.message())? else {
        return Ok(Ok(None));
    };
    let Some(path) = crl_store::crl_file_path().map_err(|e| e.message())? else {
        return Ok(Err(
            "ssl_crl_file is not set, so the server checks no CRL: revoked pgssl certificates \
             are still accepted. Set ssl_crl_file (e.g. 'pgssl.crl') and reload."
                .into(),
        ));
    };
    if let (Some((number, mark)), Some(now)) = (installed.as_ref(), FileMark::of(&path)) {
        if *number == newest.number && *mark == now {
            return Ok(Ok(None));
        }
    }
    let outcome = crl_store::install(&newest, &path).map_err(|e| e.message())?;
    *installed = FileMark::of(&path).map(|mark| (newest.number, mark));
    match outcome {
        Installed::Unchanged => Ok(Ok(None)),
        Installed::Written => {
            crl_store::reload_configuration().map_err(|e| e.message())?;
            Ok(Ok(Some(format!(
                "installed CRL number {} ({} revocation(s), next update {}) into \"{}\" and reloaded the configuration",
                newest.number,
                newest.revocations,
                crate::timestamps::iso8601(newest.next_update).unwrap_or_default(),
                path.display()
            ))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{signing_due, Due};

    const DAY: i64 = 86_400;

    #[test]
    fn signs_first_on_revocation_and_at_half_life() {
        let refresh = 7 * DAY / 2;
        assert_eq!(signing_due(None, 0, 0, refresh, false), None);
        assert_eq!(signing_due(None, 0, 0, refresh, true), Some(Due::First));
        assert_eq!(signing_due(None, 1, 0, refresh, false), Some(Due::First));
        let newest = Some((1000, 1000 + 7 * DAY, 2));
        assert_eq!(signing_due(newest, 2, 1000 + DAY, refresh, true), None);
        assert_eq!(
            signing_due(newest, 3, 1000 + DAY, refresh, true),
            Some(Due::Revocation)
        );
        assert_eq!(
            signing_due(newest, 2, 1000 + refresh, refresh, true),
            Some(Due::Refresh)
        );
        // Long after (a server that was down): due at once.
        assert_eq!(
            signing_due(newest, 2, 1000 + 100 * DAY, refresh, true),
            Some(Due::Refresh)
        );
        // A clock that went back before thisUpdate: sign again.
        assert_eq!(
            signing_due(newest, 2, 10, refresh, true),
            Some(Due::Refresh)
        );
    }
}

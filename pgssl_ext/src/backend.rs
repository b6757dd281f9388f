//! What the rest of the crate asks of the running backend: the time, the
//! caller's privileges, whether it may write, the data directory, and the
//! server's own settings.

use std::ffi::CStr;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use pgrx::pg_sys;
use pgrx::spi::Spi;

use crate::error::PgsslError;

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `Err(SuperuserOnly)` unless the current user is a superuser.
pub(crate) fn require_superuser(function: &'static str) -> Result<(), PgsslError> {
    // SAFETY: a plain catalog lookup of the current user, valid in any
    // transaction; it raises its own ERROR if the catalog read fails.
    if unsafe { pg_sys::superuser() } {
        Ok(())
    } else {
        Err(PgsslError::SuperuserOnly { function })
    }
}

/// `Err(ReadOnly)` on a standby or in a read-only transaction, checked
/// before anything is signed by functions that write the registry, files or
/// a sequence.
pub(crate) fn require_writable(function: &'static str) -> Result<(), PgsslError> {
    // SAFETY: RecoveryInProgress only reads shared memory state and never
    // raises an error; XactReadOnly is the backend's own flag for the current
    // transaction, read on the backend's only thread.
    let (in_recovery, read_only) = unsafe { (pg_sys::RecoveryInProgress(), pg_sys::XactReadOnly) };
    if in_recovery || read_only {
        Err(PgsslError::ReadOnly {
            function,
            in_recovery,
        })
    } else {
        Ok(())
    }
}

/// The data directory. The backend's working directory is the data
/// directory too; resolving against it makes messages show the full path.
pub(crate) fn data_directory() -> PathBuf {
    // SAFETY: DataDir is set by the postmaster before any backend runs SQL and
    // never changes afterwards; it is NULL or a NUL-terminated C string.
    let dir = unsafe { pg_sys::DataDir };
    if dir.is_null() {
        return PathBuf::from(".");
    }
    // SAFETY: non-null and NUL-terminated, as above.
    PathBuf::from(
        unsafe { CStr::from_ptr(dir) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// A path from a setting: absolute as given, or relative to the data
/// directory, as the server resolves its own file settings.
pub(crate) fn resolve_path(text: &str) -> PathBuf {
    let path = PathBuf::from(text);
    if path.is_absolute() {
        return path;
    }
    data_directory().join(path)
}

/// A server setting's current value (`current_setting(name, true)`); empty
/// when unset or unknown. A read-only query (`Spi::get_one` would assign a
/// transaction id, which a standby refuses), so the audit runs on standbys.
pub(crate) fn setting(name: &str) -> String {
    Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.current_setting($1, true)",
                Some(1),
                &[name.into()],
            )?
            .first()
            .get_one::<String>()
    })
    .ok()
    .flatten()
    .unwrap_or_default()
}

/// The session user's name, as `session_user` shows it: a catalog cache
/// look-up, no SQL.
pub(crate) fn session_user() -> String {
    // SAFETY: GetSessionUserId reads the backend's own state; GetUserNameFromId
    // with noerr = true returns NULL or a palloc'd NUL-terminated copy of the
    // role's name, read here before it is freed.
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::GetSessionUserId(), true);
        if name.is_null() {
            return String::new();
        }
        let text = CStr::from_ptr(name).to_string_lossy().into_owned();
        pg_sys::pfree(name.cast());
        text
    }
}

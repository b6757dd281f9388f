//! Every session's TLS facts in shared memory: one fixed-size slot per
//! backend, filled at authentication, emptied when the backend exits.
//!
//! With pgssl preloaded, the `ClientAuthentication_hook` (in `port_shim.c`,
//! chained to any hook installed before it) calls [`pgssl_record_session`]
//! once authentication succeeded on a TLS connection. It takes a free slot
//! and writes the session's TLS version, cipher and key-exchange group and,
//! when the client sent a certificate, its subject and issuer DNs (RFC 2253),
//! serial, not-after and SHA-256 fingerprint. A `before_shmem_exit` callback
//! empties the slot when the backend exits, however it exits.
//!
//! There are `MaxBackends` slots (client backends, walsenders, background
//! workers), so the memory is bounded by `max_connections` and friends:
//! [`SLOT_BYTES`] each. A DN is kept whole up to [`DN_BYTES`] bytes; a longer
//! one is cut at a character boundary and flagged `dn_truncated`, never cut
//! silently. One LWLock guards the array: a backend holds it only to copy a
//! slot in or out.

use std::ffi::{c_char, c_void, CStr};
use std::mem::size_of;
use std::ptr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::cert;
use crate::session::SessionTls;

/// The most bytes of a DN (subject or issuer, RFC 2253) a slot keeps.
pub(crate) const DN_BYTES: usize = 1024;
/// The size of one slot in shared memory.
pub(crate) const SLOT_BYTES: usize = size_of::<Slot>();

const SHMEM_NAME: &CStr = c"pgssl session slots";
const TRANCHE: &CStr = c"pgssl sessions";

extern "C" {
    fn pgssl_install_client_auth_hook();
    fn pgssl_addin_shmem_init_lock() -> *mut c_void;
    fn pgssl_ssl_group_name(ssl: *mut c_void) -> *const c_char;
}

/// Text of at most `N` bytes, with a flag saying it was cut.
#[repr(C)]
#[derive(Clone, Copy)]
struct Text<const N: usize> {
    len: u16,
    truncated: bool,
    bytes: [u8; N],
}

impl<const N: usize> Text<N> {
    const EMPTY: Self = Self {
        len: 0,
        truncated: false,
        bytes: [0; N],
    };

    fn set(&mut self, text: &str) {
        let mut end = text.len().min(N);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        self.len = end as u16;
        self.truncated = end < text.len();
    }

    fn get(&self) -> String {
        String::from_utf8_lossy(&self.bytes[..usize::from(self.len)]).into_owned()
    }
}

/// One backend's TLS facts. `pid == 0` marks a free slot.
#[repr(C)]
#[derive(Clone, Copy)]
struct Slot {
    pid: i32,
    has_cert: bool,
    has_not_after: bool,
    not_after: i64,
    fingerprint: [u8; 32],
    version: Text<16>,
    cipher: Text<64>,
    group: Text<32>,
    serial_hex: Text<128>,
    client_dn: Text<DN_BYTES>,
    issuer_dn: Text<DN_BYTES>,
}

impl Slot {
    const FREE: Self = Self {
        pid: 0,
        has_cert: false,
        has_not_after: false,
        not_after: 0,
        fingerprint: [0; 32],
        version: Text::EMPTY,
        cipher: Text::EMPTY,
        group: Text::EMPTY,
        serial_hex: Text::EMPTY,
        client_dn: Text::EMPTY,
        issuer_dn: Text::EMPTY,
    };
}

/// What one slot says, copied out of shared memory.
pub(crate) struct SessionFacts {
    pub pid: i32,
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub group: Option<String>,
    pub client_dn: Option<String>,
    pub issuer_dn: Option<String>,
    pub dn_truncated: bool,
    pub serial_hex: Option<String>,
    pub not_after: Option<i64>,
    pub fingerprint: Option<String>,
}

/// The slot array's header, followed in shared memory by `count` slots.
#[repr(C)]
struct Header {
    count: usize,
}

// The postmaster's state, set once while it starts (and again in each
// backend on EXEC_BACKEND builds); read-only afterwards. Backends are
// single-threaded.
#[cfg(not(any(feature = "pg13", feature = "pg14")))]
static mut PREV_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP: pg_sys::shmem_startup_hook_type = None;
static mut HEADER: *mut Header = ptr::null_mut();
/// The slot this backend filled, if any.
static mut MY_SLOT: Option<usize> = None;

/// Asks for the shared memory and lock and installs the hooks. Called from
/// `_PG_init` only while `shared_preload_libraries` is processed.
pub(crate) fn register() {
    // SAFETY: the hooks are plain function pointers the server reads while
    // it starts; we are on the postmaster's only thread, during preloading.
    unsafe {
        PREV_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(shmem_startup);
        request_shmem();
        pgssl_install_client_auth_hook();
    }
}

/// PostgreSQL 15+: memory and locks are requested in `shmem_request_hook`,
/// once `MaxBackends` is final.
#[cfg(not(any(feature = "pg13", feature = "pg14")))]
unsafe fn request_shmem() {
    // SAFETY: as in `register`.
    unsafe {
        PREV_REQUEST = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(shmem_request);
    }
}

/// PostgreSQL 13 and 14 take the requests in `_PG_init`, before
/// `MaxBackends` is computed: the same sum the server makes.
#[cfg(any(feature = "pg13", feature = "pg14"))]
unsafe fn request_shmem() {
    // SAFETY: the settings were read from postgresql.conf before preloading.
    unsafe {
        // pgrx does not export these two variables for 13 and 14: read the settings.
        let setting = |name: &CStr| -> i32 {
            let value = pg_sys::GetConfigOption(name.as_ptr(), false, false);
            if value.is_null() {
                return 0;
            }
            CStr::from_ptr(value)
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let count = pg_sys::MaxConnections
            + setting(c"autovacuum_max_workers")
            + 1
            + pg_sys::max_worker_processes
            + setting(c"max_wal_senders");
        pg_sys::RequestAddinShmemSpace(bytes_for(usize::try_from(count).unwrap_or(0)));
        pg_sys::RequestNamedLWLockTranche(TRANCHE.as_ptr(), 1);
    }
}

fn bytes_for(count: usize) -> usize {
    size_of::<Header>() + count * SLOT_BYTES
}

#[cfg(not(any(feature = "pg13", feature = "pg14")))]
#[pg_guard]
unsafe extern "C-unwind" fn shmem_request() {
    // SAFETY: called by the postmaster in shmem_request_hook, when
    // MaxBackends is final and add-in memory and locks may be requested.
    unsafe {
        if let Some(prev) = PREV_REQUEST {
            prev();
        }
        let count = usize::try_from(pg_sys::MaxBackends).unwrap_or(0);
        pg_sys::RequestAddinShmemSpace(bytes_for(count));
        pg_sys::RequestNamedLWLockTranche(TRANCHE.as_ptr(), 1);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    // SAFETY: called in shmem_startup_hook; AddinShmemInitLock serialises
    // the creation of add-in structures, as the server's modules do it.
    unsafe {
        if let Some(prev) = PREV_STARTUP {
            prev();
        }
        let init_lock = pgssl_addin_shmem_init_lock().cast::<pg_sys::LWLock>();
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let count = usize::try_from(pg_sys::MaxBackends).unwrap_or(0);
        let mut found = false;
        let header = pg_sys::ShmemInitStruct(SHMEM_NAME.as_ptr(), bytes_for(count), &mut found)
            .cast::<Header>();
        if !found {
            (*header).count = count;
            let slots = header.add(1).cast::<Slot>();
            for i in 0..count {
                slots.add(i).write(Slot::FREE);
            }
        }
        HEADER = header;
        pg_sys::LWLockRelease(init_lock);
    }
}

/// The array and its lock, when pgssl was preloaded.
fn array() -> Option<(*mut Slot, usize, *mut pg_sys::LWLock)> {
    // SAFETY: HEADER is set once at start and points into shared memory that
    // lives as long as the server; the tranche exists whenever HEADER is set.
    unsafe {
        let header = HEADER;
        if header.is_null() {
            return None;
        }
        let lock = &raw mut (*pg_sys::GetNamedLWLockTranche(TRANCHE.as_ptr())).lock;
        Some((header.add(1).cast::<Slot>(), (*header).count, lock))
    }
}

/// Runs `body` on the slots while holding the lock in `mode`.
fn with_slots<R>(mode: pg_sys::LWLockMode::Type, body: impl FnOnce(&mut [Slot]) -> R) -> Option<R> {
    let (slots, count, lock) = array()?;
    // SAFETY: the slots live in shared memory for the server's lifetime; the
    // lock serialises writers with readers. `body` only copies plain data
    // and cannot raise an ERROR while the lock is held.
    unsafe {
        pg_sys::LWLockAcquire(lock, mode);
        let result = body(std::slice::from_raw_parts_mut(slots, count));
        pg_sys::LWLockRelease(lock);
        Some(result)
    }
}

/// This session's facts, in a slot not yet in shared memory.
fn facts_slot(pid: i32) -> Slot {
    let tls = SessionTls::current();
    let mut slot = Slot::FREE;
    slot.pid = pid;
    if let Some(v) = tls.version() {
        slot.version.set(v);
    }
    if let Some(c) = tls.cipher() {
        slot.cipher.set(c.name);
    }
    if let Some(ssl) = tls.ssl {
        // SAFETY: the shim reads the group from the server's live SSL* and
        // returns NULL or a static NUL-terminated name.
        let name =
            unsafe { pgssl_ssl_group_name(foreign_types::ForeignTypeRef::as_ptr(ssl).cast()) };
        if !name.is_null() {
            // SAFETY: non-NULL and NUL-terminated, as above.
            slot.group
                .set(&unsafe { CStr::from_ptr(name) }.to_string_lossy());
        }
    }
    if let Some(peer) = tls.peer {
        slot.has_cert = true;
        slot.client_dn.set(&cert::name_rfc2253(peer.subject_name()));
        slot.issuer_dn.set(&cert::name_rfc2253(peer.issuer_name()));
        if let Some(hex) = cert::serial_hex(peer) {
            slot.serial_hex.set(&hex);
        }
        if let Some(t) = cert::unix_seconds(peer.not_after()) {
            slot.has_not_after = true;
            slot.not_after = t;
        }
        if let Ok(digest) = peer.digest(openssl::hash::MessageDigest::sha256()) {
            slot.fingerprint.copy_from_slice(&digest);
        }
    }
    slot
}

/// Called by the authentication hook (`port_shim.c`) once a TLS session
/// authenticated: records its facts in a free slot and empties it at exit.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgssl_record_session() {
    // SAFETY: MyProcPid is this backend's own pid, set before authentication.
    let pid = unsafe { pg_sys::MyProcPid };
    let slot = facts_slot(pid);
    let taken = with_slots(pg_sys::LWLockMode::LW_EXCLUSIVE, |slots| {
        let free = slots.iter().position(|s| s.pid == 0 || s.pid == pid)?;
        slots[free] = slot;
        Some(free)
    })
    .flatten();
    if let Some(index) = taken {
        // SAFETY: this backend's own flag, set once; the callback below
        // empties the slot before the backend leaves shared memory.
        unsafe {
            MY_SLOT = Some(index);
            pg_sys::before_shmem_exit(Some(release_slot), pg_sys::Datum::from(0));
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn release_slot(_code: i32, _arg: pg_sys::Datum) {
    // SAFETY: this backend's own flag, read and reset on its only thread.
    let Some(index) = (unsafe {
        let index = MY_SLOT;
        MY_SLOT = None;
        index
    }) else {
        return;
    };
    // SAFETY: as above.
    let pid = unsafe { pg_sys::MyProcPid };
    with_slots(pg_sys::LWLockMode::LW_EXCLUSIVE, |slots| {
        if slots[index].pid == pid {
            slots[index] = Slot::FREE;
        }
    });
}

/// Whether the slots exist (pgssl is in `shared_preload_libraries`).
pub(crate) fn preloaded() -> bool {
    array().is_some()
}

/// The number of slots and how many are in use; `None` without preloading.
pub(crate) fn usage() -> Option<(usize, usize)> {
    with_slots(pg_sys::LWLockMode::LW_SHARED, |slots| {
        (slots.len(), slots.iter().filter(|s| s.pid != 0).count())
    })
}

/// Every slot in use, copied out; empty without preloading.
pub(crate) fn sessions() -> Vec<SessionFacts> {
    let used: Vec<Slot> = with_slots(pg_sys::LWLockMode::LW_SHARED, |slots| {
        slots.iter().filter(|s| s.pid != 0).copied().collect()
    })
    .unwrap_or_default();
    used.iter().map(session_facts).collect()
}

fn session_facts(s: &Slot) -> SessionFacts {
    let text = |present: bool, t: String| (present && !t.is_empty()).then_some(t);
    SessionFacts {
        pid: s.pid,
        version: text(true, s.version.get()),
        cipher: text(true, s.cipher.get()),
        group: text(true, s.group.get()),
        client_dn: text(s.has_cert, s.client_dn.get()),
        issuer_dn: text(s.has_cert, s.issuer_dn.get()),
        dn_truncated: s.client_dn.truncated || s.issuer_dn.truncated,
        serial_hex: text(s.has_cert, s.serial_hex.get()),
        not_after: s.has_not_after.then_some(s.not_after),
        fingerprint: s
            .has_cert
            .then(|| s.fingerprint.iter().map(|b| format!("{b:02x}")).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::Text;

    #[test]
    fn text_is_cut_at_a_character_boundary_and_says_so() {
        let mut t = Text::<4>::EMPTY;
        t.set("abé!");
        assert_eq!(t.get(), "abé");
        assert!(t.truncated);
        t.set("abc");
        assert_eq!(t.get(), "abc");
        assert!(!t.truncated);
    }
}

//! Certificate files that change while the program runs. libpq reads `sslrootcert`,
//! `sslcrl`, `sslcrldir`, `sslcert` and `sslkey` again for every connection, so a renewed
//! certificate or a new CRL applies to the next connection; a pool that lives for months
//! must do the same.
//!
//! Reading the files costs about a millisecond (OpenSSL parses the roots and CRLs, the key
//! is checked against the certificate), so [`TlsFiles`] keeps what it built and, per
//! connection, compares each file's metadata with what it was when read: device and inode (a
//! file renamed over the old one is another inode), size, mode, and the modification and
//! change times to the nanosecond (`ctime` moves on every write, `chmod` or rename, and
//! `touch` cannot set it back). Paths are followed through symbolic links, so a swapped
//! link (a Kubernetes secret volume) is a change too. A directory (`sslcrldir`) is compared
//! with its entries.
//!
//! Timestamps have a granularity (a clock tick on Linux, two seconds on FAT), so a file
//! rewritten in place within the tick in which it was read can keep all of its metadata. As
//! git does for "racily clean" index entries, a file whose timestamps are that recent when it
//! is read is also remembered by a digest of its content, and compared by content until its
//! timestamps are old enough to be trusted.
//!
//! The root certificate and CRLs ([`Trust`]) and the client certificate and key
//! ([`Identity`]) are watched apart: a renewed client certificate keeps the verifier and the
//! server chains it already accepted.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::{Identity, TlsSetup, Trust};
use crate::config::{Config, SslCertMode};
use crate::error::Error;

/// How recent a timestamp must be for the file's content to be compared too: longer than
/// any file system's timestamp granularity (FAT's is two seconds).
const RACY_WINDOW: Duration = Duration::from_secs(3);

/// How many times the files are read when they keep changing while being read.
const READ_ATTEMPTS: usize = 3;

/// What `stat` tells about a file: everything a replacement changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mode: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    is_dir: bool,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            mode: meta.mode(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            is_dir: meta.is_dir(),
        }
    }

    /// Whether a write at `now` could still leave these timestamps as they are.
    fn is_recent(&self, now: SystemTime) -> bool {
        let latest = self.mtime.max(self.ctime);
        let Ok(now) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return true;
        };
        let now = (i64::try_from(now.as_secs()).unwrap_or(i64::MAX), 0);
        let window = i64::try_from(RACY_WINDOW.as_secs()).unwrap_or(i64::MAX);
        (latest.0.saturating_add(window), latest.1) >= now
    }
}

/// One path as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// Nothing there: libpq goes on without the file.
    Absent,
    /// `stat` failed otherwise (a permission): reading it reports why.
    Unreadable(io::ErrorKind),
    /// There, with the digest of its content (of a directory: its entry names) while its
    /// timestamps are too recent to be trusted.
    Present {
        stamp: Stamp,
        digest: Option<[u8; 32]>,
    },
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// The file's content, or a directory's sorted entry names, hashed; an unreadable file
/// hashes its error, which reading it again for real will report.
fn content_digest(path: &Path, is_dir: bool) -> [u8; 32] {
    let bytes = if is_dir {
        fs::read_dir(path).map(|entries| {
            let mut names: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            names.sort();
            let mut listing = Vec::new();
            for name in names {
                listing.extend(name.into_encoded_bytes());
                listing.push(0);
            }
            listing
        })
    } else {
        fs::read(path)
    };
    match bytes {
        Ok(b) => openssl::sha::sha256(&b),
        Err(e) => openssl::sha::sha256(format!("\0{:?}", e.kind()).as_bytes()),
    }
}

/// Looks at `path` now.
fn look(path: &Path, now: SystemTime) -> Seen {
    match fs::metadata(path) {
        Ok(meta) => {
            let stamp = Stamp::of(&meta);
            let digest = stamp
                .is_recent(now)
                .then(|| content_digest(path, stamp.is_dir));
            Seen::Present { stamp, digest }
        }
        Err(e) if is_absent(&e) => Seen::Absent,
        Err(e) => Seen::Unreadable(e.kind()),
    }
}

/// The files one part of the setup was read from, as they were when read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FileSet {
    files: Vec<(PathBuf, Seen)>,
}

impl FileSet {
    /// Looks at each of `paths` now, and at the entries of those that are directories.
    pub(super) fn observe(paths: &[PathBuf]) -> FileSet {
        let now = SystemTime::now();
        let mut files = Vec::new();
        for path in paths {
            let seen = look(path, now);
            let is_dir = matches!(seen, Seen::Present { stamp, .. } if stamp.is_dir);
            files.push((path.clone(), seen));
            if is_dir {
                let mut entries: Vec<PathBuf> = fs::read_dir(path)
                    .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                    .unwrap_or_default();
                entries.sort();
                files.extend(entries.into_iter().map(|p| {
                    let seen = look(&p, now);
                    (p, seen)
                }));
            }
        }
        FileSet { files }
    }

    /// Whether every file is still as it was read: metadata alone, and the content too
    /// while the timestamps are recent. A file whose timestamps have become old enough is
    /// compared by metadata alone from then on.
    pub(super) fn unchanged(&mut self) -> bool {
        self.unchanged_at(SystemTime::now())
    }

    fn unchanged_at(&mut self, now: SystemTime) -> bool {
        for (path, seen) in &mut self.files {
            match (seen, fs::metadata(&*path)) {
                (Seen::Present { stamp, digest }, Ok(meta)) => {
                    if Stamp::of(&meta) != *stamp {
                        return false;
                    }
                    if let Some(d) = digest {
                        if content_digest(path, stamp.is_dir) != *d {
                            return false;
                        }
                        if !stamp.is_recent(now) {
                            *digest = None;
                        }
                    }
                }
                (Seen::Absent, Err(e)) if is_absent(&e) => {}
                (Seen::Unreadable(kind), Err(e)) if !is_absent(&e) && e.kind() == *kind => {}
                _ => return false,
            }
        }
        true
    }
}

/// The files the root certificate store is built from: none for `sslrootcert=system`,
/// whose store OpenSSL finds itself.
fn trust_paths(config: &Config) -> Vec<PathBuf> {
    if config.system_roots() {
        return Vec::new();
    }
    [
        config.root_cert_file(),
        config.crl_file(),
        config.ssl_crl_dir.clone(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The client certificate and key files: none when `sslcertmode=disable` sends none.
fn identity_paths(config: &Config) -> Vec<PathBuf> {
    if config.ssl_cert_mode == SslCertMode::Disable {
        return Vec::new();
    }
    [config.cert_file(), config.key_file()]
        .into_iter()
        .flatten()
        .collect()
}

/// A setup and the files it was read from.
struct Loaded {
    trust_files: FileSet,
    identity_files: FileSet,
    setup: Arc<TlsSetup>,
}

enum State {
    Unread,
    Read(Loaded),
    /// The files could not be read, and nothing was read before.
    Failed(Error),
}

/// A [`Config`]'s TLS files, read at the first connection and again when they change (or,
/// with [`Config::set_reload_tls_files`] off, once).
pub(crate) struct TlsFiles {
    config: Config,
    state: Mutex<State>,
}

impl TlsFiles {
    /// Nothing is read yet: [`TlsFiles::current`] reads.
    pub(crate) fn new(config: Config) -> TlsFiles {
        TlsFiles {
            config,
            state: Mutex::new(State::Unread),
        }
    }

    /// The setup for the next connection: the one already built when no file changed,
    /// else one built from the files as they are now. A read that fails (a certificate
    /// beside a key that is not its own, half-way through a renewal) is this connection's
    /// error; the next connection reads the files again.
    pub(crate) fn current(&self) -> Result<Arc<TlsSetup>, Error> {
        // A panic while reading leaves the state as it was: nothing to repair.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let reload = self.config.reload_tls_files;
        let (trust, identity) = match &mut *state {
            State::Read(loaded) if !reload => return Ok(loaded.setup.clone()),
            State::Failed(e) if !reload => return Err(e.clone()),
            State::Read(loaded) => {
                let trust_same = loaded.trust_files.unchanged();
                let identity_same = loaded.identity_files.unchanged();
                if trust_same && identity_same {
                    return Ok(loaded.setup.clone());
                }
                (
                    trust_same.then(|| (loaded.setup.trust().clone(), loaded.trust_files.clone())),
                    identity_same.then(|| {
                        (
                            loaded.setup.identity().clone(),
                            loaded.identity_files.clone(),
                        )
                    }),
                )
            }
            State::Unread | State::Failed(_) => (None, None),
        };
        match read(&self.config, trust, identity) {
            Ok(loaded) => {
                let setup = loaded.setup.clone();
                *state = State::Read(loaded);
                Ok(setup)
            }
            Err(e) => {
                if !matches!(*state, State::Read(_)) {
                    *state = State::Failed(e.clone());
                }
                Err(e)
            }
        }
    }
}

/// Reads what changed (`trust` and `identity` are kept when given) and builds the setup.
/// When a file changes while it is read (a renewal replacing the key, then the
/// certificate), it is read again, so that one version of each file is used.
fn read(
    config: &Config,
    trust: Option<(Trust, FileSet)>,
    identity: Option<(Identity, FileSet)>,
) -> Result<Loaded, Error> {
    let observe_trust = || match &trust {
        Some((_, files)) => files.clone(),
        None => FileSet::observe(&trust_paths(config)),
    };
    let observe_identity = || match &identity {
        Some((_, files)) => files.clone(),
        None => FileSet::observe(&identity_paths(config)),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let trust_files = observe_trust();
        let identity_files = observe_identity();
        let setup = (|| {
            let t = match &trust {
                Some((t, _)) => t.clone(),
                None => Trust::load(config)?,
            };
            let i = match &identity {
                Some((i, _)) => i.clone(),
                None => Identity::load(config)?,
            };
            TlsSetup::assemble(config, t, i)
        })();
        let settled = observe_trust() == trust_files && observe_identity() == identity_files;
        if settled || attempt == READ_ATTEMPTS {
            return setup.map(|setup| Loaded {
                trust_files,
                identity_files,
                setup: Arc::new(setup),
            });
        }
    }
}

#[cfg(test)]
mod tests;

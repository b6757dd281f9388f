//! The home directory, where `~/.postgresql` and `~/.pgpass` live.

use std::path::PathBuf;

/// The home directory as libpq finds it: `$HOME` when set and not empty, else the home
/// directory the system's user database (NSS: `/etc/passwd`, LDAP, ...) gives the user
/// running the process.
pub fn home_dir() -> Option<PathBuf> {
    // The `home` crate is the Cargo team's definition of the home directory: on Unix,
    // `$HOME`, else `getpwuid_r`. An empty `$HOME` names no directory.
    home::home_dir().filter(|h| !h.as_os_str().is_empty())
}

//! libpq connection strings to a test server, built in one place.
//!
//! Each starts with `host` and `port` (and `dbname=postgres`), so options
//! appended after them, a later `host=` included, override them as libpq
//! reads a connection string from left to right.

use std::path::Path;

use crate::pki::CertFiles;

/// TCP to `127.0.0.1:<port>`, database `postgres`, then `extra`.
///
/// libpq 13 matches `verify-full` host names against DNS SANs only (IP SANs
/// count from 14), so with its psql the server is named by its DNS SAN,
/// `localhost`, at the same address.
pub fn tcp(port: u16, extra: &str) -> String {
    let host = if crate::pg_major() < 14 {
        "host=localhost hostaddr=127.0.0.1"
    } else {
        "host=127.0.0.1"
    };
    format!("{host} port={port} dbname=postgres {extra}")
}

/// The Unix socket in `socket_dir` for `user`, database `postgres`.
pub fn socket(socket_dir: &Path, port: u16, user: &str) -> String {
    format!(
        "host={} port={port} dbname=postgres user={user}",
        socket_dir.display()
    )
}

/// TCP with `sslmode=verify-full` against `root_cert`, as `user`, presenting
/// the client certificate and key in `client`.
pub fn verify_full(port: u16, user: &str, root_cert: &Path, client: &CertFiles) -> String {
    tcp(
        port,
        &format!(
            "user='{user}' sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
            root_cert.display(),
            client.cert.display(),
            client.key.display()
        ),
    )
}

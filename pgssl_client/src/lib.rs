//! Connect to PostgreSQL from Rust with libpq's exact `sslmode` semantics, over rustls.
//!
//! pgssl_client takes the connection strings psql takes (`key=value` lists and
//! `postgresql://` URIs, with the `PG*` environment variables and `~/.postgresql` files) and
//! makes the decision psql would: which mode, which checks, which files, which fallbacks.
//! Certificates the openssl command line makes (X.509 v1, CN-only) are accepted as libpq
//! accepts them.
//!
//! ```no_run
//! # async fn run() -> Result<(), pgssl_client::Error> {
//! let (client, connection) = pgssl_client::connect(
//!     "host=127.0.0.1 dbname=postgres user=postgres sslmode=verify-full \
//!      sslrootcert=ca.crt sslcert=client.crt sslkey=client.key",
//! )
//! .await?;
//! tokio::spawn(connection);
//! let row = client.query_one("SELECT 1", &[]).await.expect("query");
//! # let _ = row;
//! # Ok(())
//! # }
//! ```
//!
//! The API, all of it at the crate root:
//!
//! - [`connect`] for one connection; a [`Connector`] (a [`Config`] and its certificate
//!   files) for many, with [`Connector::connect_with_info`] telling how each was secured
//!   ([`ConnectionInfo`], [`TlsInfo`], [`CertificateSummary`]).
//! - [`Config`]: a connection string parsed as libpq parses it, with typed accessors.
//! - [`MakeTls`] for pools: give it, with [`Config::to_tokio_postgres`], to
//!   `tokio_postgres::Config::connect`, deadpool-postgres or bb8. It yields [`TlsConnector`]s
//!   and [`TlsStream`]s, with `tls-server-end-point` channel binding.
//! - [`Error`]: which check failed, in libpq's words, with what was expected and presented.
//!
//! Certificate files may change while the program runs: like libpq, which reads them for
//! every connection, a [`Connector`] or [`MakeTls`] (and so a pool) uses `sslcert`, `sslkey`,
//! `sslrootcert`, `sslcrl` and `sslcrldir` as they are at each new connection, re-reading
//! them only when their metadata changed; open connections are not touched (see
//! [`MakeTls`], and [`Config::set_reload_tls_files`] to read them once).
//!
//! The crate has no feature flags. The `examples/` folder connects with `verify-full` and a
//! client certificate through tokio-postgres, deadpool-postgres, bb8 and diesel-async.
//!
//! When pgssl_client refuses a server certificate, the server receives the TLS alert libpq
//! would send (`unknown_ca`, `certificate_expired`, `certificate_revoked`, ...), and the
//! caller gets libpq's reason.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod connect;
mod error;
mod tls;

pub use config::{
    home_dir, is_connection_string, AuthMethod, ChannelBinding, Config, Endpoint, RequireAuth,
    SslCertMode, SslMode, TlsVersion, DEFAULT_SOCKET_DIR,
};
pub use connect::{connect, ConnectionInfo, Connector, PgConnection};
pub use error::Error;
pub use tls::{CertificateSummary, MakeTls, TlsConnector, TlsInfo, TlsStream, Verification};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! pgssl: a PostgreSQL extension that shows a session's TLS state exactly and
//! completely.
//!
//! The SQL surface lives in the `pgssl` schema; hand-written SQL (comments,
//! views, grants) is in the workspace's `sql/` folder.

use pgrx::prelude::*;

mod audit;
mod ca;
mod cert;
mod dn;
mod error;
mod port;
mod server;
mod session;
mod timestamps;
mod worker;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../../sql/session.sql", name = "session_sql", finalize);
extension_sql_file!(
    "../../sql/audit.sql",
    name = "audit_sql",
    requires = [audit::server_cert, audit::check_config]
);
extension_sql_file!(
    "../../sql/ca.sql",
    name = "ca_sql",
    requires = [
        ca::functions::init_ca,
        ca::functions::ca_cert,
        ca::functions::enroll,
        ca::functions::sign_csr,
        ca::functions::revoke,
        ca::functions::crl,
        ca::functions::install_crl
    ]
);
extension_sql_file!(
    "../../sql/server.sql",
    name = "server_sql",
    requires = [server::issue_server_cert, server::server_ca_cert]
);

/// Registers the settings when the library loads (at the first call of any
/// pgssl function, or at start with `shared_preload_libraries`). A value set
/// before that, in postgresql.conf or by a superuser's `SET`, is kept.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    ca::register_gucs();
    server::register_gucs();
    worker::settings::register();
    // The worker can only be registered while the library is preloaded,
    // and never in a binary upgrade (pg_upgrade's servers must not sign or
    // write anything).
    // SAFETY: both are plain flags the postmaster sets before loading
    // libraries; read on the only thread.
    let (preloading, binary_upgrade) = unsafe {
        (
            pg_sys::process_shared_preload_libraries_in_progress,
            pg_sys::IsBinaryUpgrade,
        )
    };
    if preloading && !binary_upgrade {
        worker::register();
    }
    // PostgreSQL 15+: warn about misspelt pgssl.* settings.
    #[cfg(not(any(feature = "pg13", feature = "pg14")))]
    // SAFETY: called once while the library loads, as PostgreSQL expects.
    unsafe {
        pg_sys::MarkGUCPrefixReserved(c"pgssl".as_ptr());
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    // `#[pg_test]` connects over a Unix socket, so this is the no-TLS case;
    // the TLS cases are end-to-end tests in the workspace's `tests/` crate.
    #[pg_test]
    fn without_tls_everything_is_null_or_false() {
        let row = Spi::get_one::<bool>(
            "SELECT NOT pgssl.ssl_is_used() AND NOT pgssl.client_cert_present()
                AND pgssl.ssl_version() IS NULL AND pgssl.ssl_cipher() IS NULL
                AND pgssl.ssl_cipher_bits() IS NULL AND pgssl.client_cn() IS NULL
                AND pgssl.client_dn() IS NULL AND pgssl.issuer_dn() IS NULL
                AND pgssl.client_dn_field('CN') IS NULL AND pgssl.issuer_field('O') IS NULL
                AND pgssl.client_serial() IS NULL AND pgssl.client_serial_hex() IS NULL
                AND pgssl.client_cert_not_before() IS NULL AND pgssl.client_cert_not_after() IS NULL
                AND pgssl.client_cert_fingerprint() IS NULL AND pgssl.client_cert_pem() IS NULL
                AND (SELECT count(*) FROM pgssl.client_cert_extensions()) = 0",
        );
        assert_eq!(row, Ok(Some(true)));
    }

    #[pg_test]
    fn session_info_reports_no_tls() {
        let info = Spi::get_one::<pgrx::JsonB>("SELECT pgssl.session_info()")
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(info["ssl"], false);
        assert_eq!(info["client_cert_present"], false);
        assert!(info["client_dn"].is_null());
    }

    #[pg_test(error = "unknown X.509 name field \"nosuchfield\"")]
    fn unknown_field_is_an_error() {
        Spi::run("SELECT pgssl.client_dn_field('nosuchfield')").unwrap();
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    /// One-off set-up for the test cluster.
    pub fn setup(_options: Vec<&str>) {}

    /// Settings for the test cluster's `postgresql.conf`.
    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}

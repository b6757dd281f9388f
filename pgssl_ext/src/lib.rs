//! pgssl: a PostgreSQL extension that shows a session's TLS state exactly and
//! completely.
//!
//! The SQL surface lives in the `pgssl` schema; hand-written SQL (comments,
//! views, grants) is in the workspace's `sql/` folder, upgrade scripts
//! (`pgssl--A--B.sql`) in this crate's `sql/` folder, where cargo-pgrx
//! installs them from.

use pgrx::prelude::*;

mod audit;
mod backend;
mod ca;
mod cert;
mod dn;
mod error;
mod gucs;
mod port;
mod preload;
mod server;
mod session;
mod timestamps;
mod worker;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../../sql/session.sql", name = "session_sql", finalize);
extension_sql_file!(
    "../../sql/audit.sql",
    name = "audit_sql",
    requires = [
        audit::server_cert,
        audit::check_config,
        audit::expiring::expiring
    ]
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
        ca::functions::install_crl,
        ca::renewal::renew
    ]
);
extension_sql_file!(
    "../../sql/server.sql",
    name = "server_sql",
    requires = [server::issue_server_cert, server::server_ca_cert]
);

/// Runs when the library loads: at start with `shared_preload_libraries`, or
/// at the first call of any pgssl function. The settings are registered
/// either way; the parts that only work when preloaded (workers, shared
/// memory, hooks) only while preloading, and never during `pg_upgrade`.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    // SAFETY: both are plain flags the server sets before it loads any
    // library, read on the only thread of the loading process.
    let (preloading, binary_upgrade) = unsafe {
        (
            pg_sys::process_shared_preload_libraries_in_progress,
            pg_sys::IsBinaryUpgrade,
        )
    };
    if preloading && !binary_upgrade {
        preload::register();
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

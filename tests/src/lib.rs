//! End-to-end test support for pgssl: throwaway TLS clusters and
//! certificates minted at run time.
//!
//! The one place for what the tests and the benchmark share:
//! [`TlsCluster`] (a primary, [`TlsCluster::start_standby`] a streaming
//! standby of it, [`ClusterBuilder::faketime`] a moved clock), [`conninfo`]
//! (connection strings), [`pki`] (CAs, certificates, CRLs, [`csr_pem`] and
//! [`openssl_csr`] for CSRs, [`unix_time`] and friends for ASN.1 times), and
//! [`wait_until`] for polling.
//!
//! ```no_run
//! use pgssl_tests::TlsCluster;
//!
//! let cluster = TlsCluster::start();
//! let alice = cluster.client_cert(&[("CN", "alice")]);
//! cluster.sql("CREATE ROLE alice LOGIN");
//! let cn = cluster.psql_ok(&cluster.verify_full("alice", Some(&alice)), "SELECT pgssl.client_cn()");
//! assert_eq!(cn, "alice");
//! ```

pub mod cluster;
pub mod conninfo;
pub mod pki;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use cluster::{
    clean_command, libfaketime, pg_bindir, pg_major, ClusterBuilder, TlsCluster, DEFAULT_HBA,
    SEED_HBA,
};
pub use pki::{
    csr_pem, days_until, openssl_csr, time_from_now, unix_now, unix_time, Ca, CertFiles, CertSpec,
    Issued, KeyType,
};

/// A suffix unique within this test process, for file names.
pub fn unique_suffix() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs the `openssl` command line in `dir`, panicking on failure.
pub fn openssl(dir: &Path, args: &[&str]) {
    openssl_stdout(dir, args);
}

/// Runs the `openssl` command line in `dir` and returns what it printed,
/// panicking with its stderr on failure.
pub fn openssl_stdout(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    stdout_ok(&out, &format!("openssl {args:?}"))
}

/// The stdout of a command that must have succeeded, without its final
/// newline; panics naming `what` failed, with its stderr, otherwise.
pub fn stdout_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim_end_matches('\n')
        .to_string()
}

/// Polls `ready` every 50 ms until it holds; panics after `timeout`,
/// naming `what` it waited for.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The files of the seed document's recipe, made with its exact openssl
/// commands: `ca.crt`/`ca.key` (server CA), `server.crt`/`server.key`
/// (X.509 v1, `CN=127.0.0.1`, no SAN, text before the PEM block),
/// `ca-client.crt`/`ca-client.key` (client CA) and `client.crt`/`client.key`
/// (`CN=postgres`).
pub fn seed_recipe(dir: &Path) {
    let cmds: [&[&str]; 6] = [
        &[
            "req",
            "-new",
            "-x509",
            "-days",
            "3650",
            "-nodes",
            "-out",
            "ca.crt",
            "-keyout",
            "ca.key",
            "-subj",
            "/CN=root-server-ca",
        ],
        &[
            "req",
            "-new",
            "-nodes",
            "-text",
            "-out",
            "server.csr",
            "-keyout",
            "server.key",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-text",
            "-days",
            "365",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
        ],
        &[
            "req",
            "-new",
            "-x509",
            "-days",
            "3650",
            "-nodes",
            "-out",
            "ca-client.crt",
            "-keyout",
            "ca-client.key",
            "-subj",
            "/CN=root-client-ca",
        ],
        &[
            "req",
            "-new",
            "-nodes",
            "-text",
            "-out",
            "client.csr",
            "-keyout",
            "client.key",
            "-subj",
            "/CN=postgres",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-text",
            "-days",
            "365",
            "-CA",
            "ca-client.crt",
            "-CAkey",
            "ca-client.key",
            "-CAcreateserial",
            "-out",
            "client.crt",
        ],
    ];
    for args in cmds {
        openssl(dir, args);
    }
}

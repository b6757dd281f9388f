//! Each example in `examples/` connects to a real TLS cluster with `sslmode=verify-full`
//! and a client certificate, as its documentation says to run it.

use std::path::PathBuf;
use std::process::Command;

use pgssl_tests::TlsCluster;

const EXAMPLES: [(&str, &str); 4] = [
    ("tokio_postgres", "tokio-postgres"),
    ("deadpool_postgres", "deadpool-postgres"),
    ("bb8_postgres", "bb8-postgres"),
    ("diesel_async", "diesel-async"),
];

/// The examples' binaries, built now with this test's profile (`cargo test` builds them too,
/// but not when only this test is selected).
fn built_examples() -> PathBuf {
    // target/<profile>/deps/examples-<hash>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.args(["build", "--quiet", "--examples", "-p", "pgssl_client"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cargo.arg("--release");
    }
    let status = cargo.status().expect("cargo runs");
    assert!(status.success(), "cargo build --examples");
    profile_dir.join("examples")
}

#[test]
fn each_example_connects_with_verify_full_and_a_client_certificate() {
    let examples = built_examples();
    let cluster = TlsCluster::builder().without_extension().start();
    cluster.sql("CREATE ROLE dave LOGIN");
    let dave = cluster.client_cert(&[("CN", "dave")]);
    // hostssl ... cert: the server lets dave in on his certificate alone.
    let conninfo = cluster.verify_full("dave", Some(&dave));
    assert!(conninfo.contains("sslmode=verify-full"), "{conninfo}");
    let home = tempfile::tempdir().unwrap();

    for (example, label) in EXAMPLES {
        let out = pgssl_tests::clean_command(&examples.join(example), home.path())
            .arg(&conninfo)
            .output()
            .unwrap_or_else(|e| panic!("{example} runs: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{example}: {stdout}{stderr}");
        assert_eq!(
            stdout.trim(),
            format!("{label}: TLSv1.3 as dave, client certificate /CN=dave"),
            "{example}"
        );
    }

    // The same examples refuse a server whose certificate does not name the host they
    // connect to: verify-full is checked, not just TLS.
    let wrong_host = format!("{conninfo} host=db.invalid hostaddr=127.0.0.1");
    for (example, _) in EXAMPLES {
        let out = pgssl_tests::clean_command(&examples.join(example), home.path())
            .arg(&wrong_host)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{example} refuses another host name");
        assert!(stderr.contains("db.invalid"), "{example}: {stderr}");
    }
}

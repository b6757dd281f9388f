//! `pgssl check` against a server whose certificate carries terminal escapes and an embedded
//! NUL: the text report shows them escaped (`\x1b`, `\0`), never raw, and never cut.

use std::path::Path;

use pgssl_tests::{clean_command, CertSpec, TlsCluster};

#[test]
fn check_escapes_what_a_hostile_certificate_says() {
    let cluster = TlsCluster::builder()
        .hba("local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
        .without_extension()
        .start();
    let mut spec = CertSpec::server();
    spec.subject = vec![
        ("CN".into(), "evil\u{1b}]0;owned\u{7}\u{1b}[2J".into()),
        ("O".into(), "shown\0hidden".into()),
    ];
    cluster.serve_and_restart(&cluster.ca.issue(&spec));
    let home = tempfile::tempdir().unwrap();
    let conninfo = cluster.conninfo("user=postgres sslmode=require sslrootcert=/nonexistent");
    let out = clean_command(Path::new(env!("CARGO_BIN_EXE_pgssl")), home.path())
        .args(["check", &conninfo])
        .output()
        .expect("pgssl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.stdout.contains(&0x1b),
        "a raw escape reached the terminal: {stdout:?}"
    );
    assert!(
        !out.stdout.contains(&0),
        "a raw NUL reached the terminal: {stdout:?}"
    );
    assert!(
        stdout.contains("CN=evil\\x1b]0;owned\\x07\\x1b[2J, O=shown\\0hidden"),
        "{stdout}"
    );
}

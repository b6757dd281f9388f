//! A certificate signing request whose PEM block carries encryption headers
//! (`Proc-Type: 4,ENCRYPTED`, `DEK-Info`) is refused at once with SQLSTATE 22023, with the
//! server's standard input left open: OpenSSL's default passphrase callback would read it
//! (or the terminal) and hold the backend.

use std::process::Stdio;
use std::time::{Duration, Instant};

use pgssl_tests::{csr_pem, KeyType, TlsCluster};

#[test]
fn encrypted_csr_is_refused_without_reading_a_passphrase() {
    let cluster = TlsCluster::start();
    let mut server = cluster.restart_with_open_stdin();
    let csr = csr_pem(&["alice"], &KeyType::EcP256.generate()).replace(
        "-----BEGIN CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\nProc-Type: 4,ENCRYPTED\n\
         DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n",
    );
    assert!(csr.contains("Proc-Type"), "{csr}");
    for function in ["pgssl.sign_csr", "pgssl.enroll"] {
        let mut psql = cluster
            .psql_command(&cluster.socket_conninfo("postgres"))
            .args(["-v", "VERBOSITY=verbose", "-c"])
            .arg(format!("SELECT {function}($pem${csr}$pem$)"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql");
        let started = Instant::now();
        while psql.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(20) {
                let _ = psql.kill();
                panic!(
                    "{function} is still running after 20 s: the backend waits for a passphrase"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = psql.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{function} accepted an encrypted CSR"
        );
        assert!(stderr.contains("ERROR:  22023:"), "{function}: {stderr}");
        assert!(
            stderr.contains("encrypted PEM is not accepted"),
            "{function}: {stderr}"
        );
    }
    cluster.pg_ctl("stop");
    drop(server.stdin.take());
    server.wait().expect("the server exits");
}

//! The TLS alert the server receives when pgssl_client refuses its certificate is the one
//! libpq (OpenSSL) sends for the same failure, as the server's log shows it; and the caller
//! still reads libpq's reason.

use pgssl_client::{Config, Connector};
use pgssl_tests::{CertSpec, TlsCluster};

/// The alert named in the log lines written since `from` (e.g. "alert unknown ca"); the
/// backend logs it as its handshake fails, which may be a moment after the client gave up.
fn alert_since(cluster: &TlsCluster, from: usize) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = cluster.log();
        let alert = log[from..]
            .lines()
            .find_map(|l| l.find(" alert ").map(|i| l[i..].trim().to_string()));
        match alert {
            Some(alert) => return alert,
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            None => panic!("no alert in the server log:\n{}", &log[from..]),
        }
    }
}

/// Serves `issued` from now on.
fn serve(cluster: &TlsCluster, issued: &pgssl_tests::Issued) {
    cluster.write_data_file("server.crt", &issued.cert.to_pem().unwrap(), 0o644);
    cluster.write_data_file(
        "server.key",
        &issued.key.private_key_to_pem_pkcs8().unwrap(),
        0o600,
    );
    cluster.pg_ctl("restart");
}

/// psql, then pgssl_client, with `extra` options and verify-ca against the cluster CA: the
/// alert each made the server log, and pgssl_client's error.
async fn both_refused(cluster: &TlsCluster, extra: &str) -> (String, String, String) {
    let home = tempfile::tempdir().unwrap();
    let conninfo = cluster.conninfo(&format!(
        "user=postgres sslmode=verify-ca sslrootcert={} sslcert=none.crt {extra}",
        cluster.root_cert.display()
    ));
    // A PostgreSQL 18 server logs the refusal as an EOF, without the alert's name: there
    // only the refusals themselves are compared (the alerts come back empty).
    let logs_alerts = pgssl_tests::pg_major() < 18;
    let before = cluster.log().len();
    let psql = cluster.psql(&conninfo, "SELECT 1");
    assert!(!psql.status.success(), "psql refuses the certificate");
    let psql_alert = if logs_alerts {
        alert_since(cluster, before)
    } else {
        String::new()
    };

    let before = cluster.log().len();
    let config = Config::from_conninfo_with_env(&conninfo, &|_| None, Some(home.path())).unwrap();
    let error = match Connector::new(config).connect().await {
        Ok(_) => panic!("pgssl_client refuses the certificate"),
        Err(e) => e.to_string(),
    };
    let pgssl_alert = if logs_alerts {
        alert_since(cluster, before)
    } else {
        String::new()
    };
    (psql_alert, pgssl_alert, error)
}

#[tokio::test]
async fn refusals_send_libpqs_alerts() {
    let cluster = TlsCluster::builder().without_extension().start();

    // A server certificate from a CA the client does not trust.
    let stranger = pgssl_tests::Ca::new("stranger CA").issue(&CertSpec::server());
    serve(&cluster, &stranger);
    let (psql, pgssl, error) = both_refused(&cluster, "").await;
    println!("unknown CA: psql {psql:?}, pgssl {pgssl:?}: {error}");
    assert!(psql.contains("unknown ca") || psql.is_empty(), "{psql}");
    assert_eq!(pgssl, psql);
    assert!(
        error.contains("unable to get local issuer certificate"),
        "{error}"
    );

    // An expired one.
    let expired = cluster
        .ca
        .issue(&CertSpec::server().validity(-2 * 86_400, -86_400));
    serve(&cluster, &expired);
    let (psql, pgssl, error) = both_refused(&cluster, "").await;
    println!("expired: psql {psql:?}, pgssl {pgssl:?}: {error}");
    assert!(
        psql.contains("certificate expired") || psql.is_empty(),
        "{psql}"
    );
    assert_eq!(pgssl, psql);
    assert!(error.contains("certificate has expired"), "{error}");

    // One the client's CRL revokes.
    let revoked = cluster.ca.issue(&CertSpec::server());
    serve(&cluster, &revoked);
    let crl = cluster.client_dir.join("revoked.crl");
    pgssl_tests::pki::write_file(&crl, &cluster.ca.crl(&[&revoked.cert]), 0o644);
    let (psql, pgssl, error) = both_refused(&cluster, &format!("sslcrl={}", crl.display())).await;
    println!("revoked: psql {psql:?}, pgssl {pgssl:?}: {error}");
    assert!(
        psql.contains("certificate revoked") || psql.is_empty(),
        "{psql}"
    );
    assert_eq!(pgssl, psql);
    assert!(error.contains("certificate revoked"), "{error}");
}

//! Connection set-up time: pgssl_client against stock tokio-postgres-rustls (rustls' own
//! verifier, the same CA and client certificate) and against libpq (pgbench -C), all with
//! verify-full and a client certificate over TLS 1.3 to the same local server.
//!
//! Ignored by default (timing on a shared machine is noise for a pass/fail test); run with
//! `cargo test --release -p pgssl_tests --test client_bench -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pgssl_client::{Config, Connector};
use pgssl_tests::TlsCluster;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const N: u32 = 300;

fn per_connection(total: Duration) -> f64 {
    total.as_secs_f64() * 1000.0 / f64::from(N)
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "a benchmark: run with --ignored --nocapture, preferably with --release"]
async fn connection_setup_time() {
    let cluster = TlsCluster::builder().without_extension().start();
    cluster.sql("CREATE ROLE bench LOGIN");
    let files = cluster.client_cert(&[("CN", "bench")]);
    let conninfo = cluster.verify_full("bench", Some(&files));
    let home = tempfile::tempdir().unwrap();

    // pgssl: the Connector reads the files and builds the rustls configuration once.
    let connector = Connector::new(
        Config::from_conninfo_with_env(&conninfo, &|_| None, Some(home.path())).unwrap(),
    );
    let pgssl_tls = pgssl_client::MakeTls::new(connector.config()).unwrap();
    let pgssl_config = connector.config().to_tokio_postgres();

    // Stock tokio-postgres-rustls with rustls' WebPkiServerVerifier, config built once.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(cluster.ca.cert.to_der().unwrap()))
        .unwrap();
    let cert = openssl::x509::X509::from_pem(&std::fs::read(&files.cert).unwrap()).unwrap();
    let key =
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(&files.key).unwrap()).unwrap();
    let tls_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from(cert.to_der().unwrap())],
        PrivateKeyDer::try_from(key.private_key_to_pkcs8().unwrap()).unwrap(),
    )
    .unwrap();
    let stock_tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
    let mut stock_config = tokio_postgres::Config::new();
    stock_config
        .host("127.0.0.1")
        .port(cluster.port)
        .user("bench")
        .dbname("postgres")
        .ssl_mode(tokio_postgres::config::SslMode::Require);

    // Interleaved, so that drift on a shared machine hits all alike.
    let (mut pgssl, mut pooled, mut stock) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..N {
        let t = Instant::now();
        let (client, connection) = connector.connect().await.unwrap();
        pgssl += t.elapsed();
        let driver = tokio::spawn(connection);
        drop(client);
        let _ = driver.await;

        let t = Instant::now();
        let (client, connection) = pgssl_config.connect(pgssl_tls.clone()).await.unwrap();
        pooled += t.elapsed();
        let driver = tokio::spawn(connection);
        drop(client);
        let _ = driver.await;

        let t = Instant::now();
        let (client, connection) = stock_config.connect(stock_tls.clone()).await.unwrap();
        stock += t.elapsed();
        let driver = tokio::spawn(connection);
        drop(client);
        let _ = driver.await;
    }

    // libpq: pgbench -C opens a new connection per transaction and reports the average.
    let script = home.path().join("select1.sql");
    std::fs::write(&script, "SELECT 1;\n").unwrap();
    let out = pgssl_tests::clean_command(&pgssl_tests::pg_bindir().join("pgbench"), home.path())
        .args(["-n", "-C", "-t", &N.to_string(), "-f"])
        .arg(&script)
        .arg(&conninfo)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let libpq: f64 = report
        .lines()
        .find_map(|l| l.strip_prefix("average connection time = "))
        .and_then(|v| v.trim_end_matches(" ms").parse().ok())
        .unwrap_or_else(|| panic!("no connection time in: {report}"));

    let (pgssl, pooled, stock) = (
        per_connection(pgssl),
        per_connection(pooled),
        per_connection(stock),
    );
    println!("connection set-up, verify-full + client certificate, {N} connections:");
    println!("  pgssl_client Connector {pgssl:.3} ms");
    println!(
        "  pgssl_client MakeTls   {pooled:.3} ms  (the pool path: tokio_postgres::Config::connect)"
    );
    println!(
        "  tokio-postgres-rustls  {stock:.3} ms  (pgssl is {:.2}x its speed)",
        stock / pgssl
    );
    println!(
        "  libpq (pgbench -C)     {libpq:.3} ms  (pgssl is {:.2}x its speed)",
        libpq / pgssl
    );
}

//! The seed document's recipe, done by hand with the openssl command line,
//! works with pgssl unchanged: its X.509 v1 server certificate for
//! `CN=127.0.0.1` (no SAN), its separate client CA, `hostssl ... cert`, and
//! psql with `sslmode=verify-full`.

use pgssl_tests::{seed_recipe, stdout_ok, TlsCluster, SEED_HBA};

fn seed_cluster() -> (TlsCluster, tempfile::TempDir) {
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    seed_recipe(dir);
    let cluster = TlsCluster::builder().seed_files(dir).hba(SEED_HBA).start();
    (cluster, files)
}

#[test]
fn psql_verify_full_with_the_seed_files_reports_cn_postgres() {
    let (cluster, files) = seed_cluster();
    let dir = files.path().display();
    // The seed's own connection options, on the test cluster's port.
    let conninfo = cluster.conninfo(&format!(
        "user=postgres sslmode=verify-full \
         sslrootcert={dir}/ca.crt sslcert={dir}/client.crt sslkey={dir}/client.key"
    ));
    let out = cluster.psql_ok(
        &conninfo,
        "SELECT pgssl.client_cn(), pgssl.client_dn(), pgssl.issuer_dn(), pgssl.ssl_is_used()",
    );
    assert_eq!(out, "postgres|CN=postgres|CN=root-client-ca|t");

    // The same files name the same host the other way round: the server
    // certificate has no SAN and its CN is 127.0.0.1, so libpq refuses
    // `localhost` under verify-full.
    let refused = cluster.psql(
        &conninfo.replace("host=127.0.0.1", "host=localhost"),
        "SELECT 1",
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("does not match host name \"localhost\""),
        "{stderr}"
    );
}

#[test]
fn the_seed_server_side_check_with_pgsslrootcert_and_require() {
    let (cluster, files) = seed_cluster();
    let dir = files.path();
    // "Server sides Authorization": PGSSLROOTCERT=ca.crt with sslmode=require
    // verifies the chain (libpq treats require + a root certificate as verify-ca).
    let out = cluster
        .psql_command(&cluster.conninfo(&format!(
            "user=postgres sslmode=require sslcert={} sslkey={}",
            dir.join("client.crt").display(),
            dir.join("client.key").display()
        )))
        .env("PGSSLROOTCERT", dir.join("ca.crt"))
        .args([
            "-c",
            "SELECT pgssl.ssl_version() IS NOT NULL, pgssl.client_cn()",
        ])
        .output()
        .unwrap();
    assert_eq!(
        stdout_ok(&out, "psql with PGSSLROOTCERT").trim(),
        "t|postgres"
    );

    // With the client CA as the root instead, the server's chain does not verify.
    let out = cluster
        .psql_command(&cluster.conninfo("user=postgres sslmode=require"))
        .env("PGSSLROOTCERT", dir.join("ca-client.crt"))
        .args(["-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("certificate verify failed"));
}

//! TLS 1.2 and 1.3 with RSA, ECDSA and Ed25519 server keys (the handshake signature is
//! checked by pgssl's own code, which also takes X.509 v1 certificates), and the protocol
//! version limits, against psql.

use std::path::Path;

use pgssl_client::{Config, Connector};
use pgssl_tests::{seed_recipe, CertFiles, CertSpec, KeyType, TlsCluster};

const VERSION_QUERY: &str = "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

fn psql_version(cluster: &TlsCluster, conninfo: &str) -> Option<String> {
    let out = cluster.psql(conninfo, VERSION_QUERY);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

async fn pgssl_version(conninfo: &str, home: &Path) -> Option<String> {
    let config = Config::from_conninfo_with_env(conninfo, &|_| None, Some(home)).ok()?;
    let (client, connection, info) = Connector::new(config).connect_with_info().await.ok()?;
    let driver = tokio::spawn(connection);
    let version: String = client.query_one(VERSION_QUERY, &[]).await.ok()?.get(0);
    drop(client);
    let _ = driver.await;
    assert_eq!(info.tls.map(|t| t.version), Some(version.clone()));
    Some(version)
}

#[tokio::test(flavor = "current_thread")]
async fn versions_and_key_types_match_psql() {
    let home = tempfile::tempdir().unwrap();
    let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\n";
    let mut clusters: Vec<(&str, TlsCluster, String)> = Vec::new();

    let ec = TlsCluster::builder().hba(hba).without_extension().start();
    let root = ec.root_cert.display().to_string();
    clusters.push(("ECDSA P-256", ec, root));

    let files = tempfile::tempdir().unwrap();
    seed_recipe(files.path());
    let rsa_v1 = TlsCluster::builder()
        .server_files(CertFiles {
            cert: files.path().join("server.crt"),
            key: files.path().join("server.key"),
        })
        .hba(hba)
        .without_extension()
        .start();
    clusters.push((
        "RSA, X.509 v1",
        rsa_v1,
        files.path().join("ca.crt").display().to_string(),
    ));

    let ed = TlsCluster::builder().hba(hba).without_extension().start();
    let issued = ed.ca.issue(&CertSpec::server().key_type(KeyType::Ed25519));
    ed.serve_and_restart(&issued);
    let root = ed.root_cert.display().to_string();
    clusters.push(("Ed25519", ed, root));

    let limits = [
        ("", "TLSv1.3"),
        ("ssl_max_protocol_version=TLSv1.2", "TLSv1.2"),
        ("ssl_min_protocol_version=TLSv1.3", "TLSv1.3"),
        (
            "ssl_min_protocol_version=TLSv1.2 ssl_max_protocol_version=TLSv1.2",
            "TLSv1.2",
        ),
    ];
    let mut mismatches = Vec::new();
    println!(
        "{:<14} {:<66} {:<8} {:<8}",
        "server key", "client limits", "psql", "pgssl"
    );
    for (name, cluster, root) in &clusters {
        for (limit, expected) in limits {
            let conninfo = cluster.conninfo(&format!(
                "user=postgres sslmode=verify-full sslrootcert={root} {limit}"
            ));
            // The seed certificate names 127.0.0.1 only; the fixture's name both.
            let psql = psql_version(cluster, &conninfo);
            let pgssl = pgssl_version(&conninfo, home.path()).await;
            println!(
                "{name:<14} {limit:<66} {:<8} {:<8}",
                psql.as_deref().unwrap_or("refused"),
                pgssl.as_deref().unwrap_or("refused")
            );
            assert_eq!(psql.as_deref(), Some(expected), "psql: {name} {limit}");
            if psql != pgssl {
                mismatches.push(format!("{name} {limit}: psql {psql:?}, pgssl {pgssl:?}"));
            }
        }
    }

    // A server that stops at TLS 1.2 and a client that wants 1.3: both refuse.
    let old = TlsCluster::builder()
        .hba(hba)
        .conf("ssl_max_protocol_version = 'TLSv1.2'")
        .without_extension()
        .start();
    let conninfo = old.conninfo(&format!(
        "user=postgres sslmode=require sslrootcert={} ssl_min_protocol_version=TLSv1.3",
        old.root_cert.display()
    ));
    assert_eq!(psql_version(&old, &conninfo), None);
    assert_eq!(pgssl_version(&conninfo, home.path()).await, None);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

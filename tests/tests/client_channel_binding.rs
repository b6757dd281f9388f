//! SCRAM channel binding against psql: server certificates signed with Ed25519, RSA-PSS,
//! ECDSA P-384, ECDSA P-521 and RSA (each CA's key of the same type as the server's), every
//! `channel_binding` with sslmode require and verify-full, SCRAM and `cert` authentication:
//! pgssl connects exactly when psql does. Where the certificate's signature has no hash for
//! `tls-server-end-point` (Ed25519, RSASSA-PSS), libpq refuses SCRAM unless
//! `channel_binding=disable`, and pgssl must not fall back to gs2 flag `n`.

use std::path::{Path, PathBuf};

use pgssl_client::{Config, Connector, Error};
use pgssl_tests::{Ca, CertFiles, CertSpec, KeyType, TlsCluster};

const BINDINGS: [&str; 3] = ["disable", "prefer", "require"];
const MODES: [&str; 2] = ["require", "verify-full"];

async fn pgssl_connects(conninfo: &str, home: &Path) -> Result<(), Error> {
    let config = Config::from_conninfo_with_env(conninfo, &|_| None, Some(home))?;
    let (client, connection) = Connector::new(config).connect().await?;
    let driver = tokio::spawn(connection);
    let one: i32 = client
        .query_one("SELECT 1", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(one, 1);
    drop(client);
    let _ = driver.await;
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn channel_binding_matches_psql_for_every_signature_algorithm() {
    let home = tempfile::tempdir().unwrap();
    let cluster = TlsCluster::builder().without_extension().start();
    cluster.sql("CREATE ROLE alice LOGIN PASSWORD 'pw' IN ROLE scram_users");
    cluster.sql("CREATE ROLE bob LOGIN");
    let bob = cluster.client_cert(&[("CN", "bob")]);
    let none = CertFiles {
        cert: cluster.client_dir.join("none.crt"),
        key: cluster.client_dir.join("none.key"),
    };
    let mut table = Vec::new();
    let mut mismatches = Vec::new();
    for (name, key_type) in [
        ("Ed25519", KeyType::Ed25519),
        ("RSA-PSS", KeyType::RsaPss2048),
        ("ECDSA P-384", KeyType::EcP384),
        // The server signs the handshake with P-521: rustls verifies that only with
        // the aws-lc-rs provider (ring has no P-521), so this row holds the provider choice.
        ("ECDSA P-521", KeyType::EcP521),
        ("RSA", KeyType::Rsa2048),
    ] {
        let ca = Ca::with_key_type(&format!("{name} server CA"), key_type);
        let issued = ca.issue(&CertSpec::server().key_type(key_type));
        cluster.serve_and_restart(&issued);
        let root: PathBuf = cluster.dir("roots").join(format!("{key_type:?}.crt"));
        ca.write_cert(&root);
        for mode in MODES {
            for binding in BINDINGS {
                for (auth, user, client) in [("scram", "alice", &none), ("cert", "bob", &bob)] {
                    let conninfo = cluster.conninfo(&format!(
                        "user={user} password=pw sslmode={mode} channel_binding={binding} \
                         sslrootcert={} sslcert={} sslkey={}",
                        root.display(),
                        client.cert.display(),
                        client.key.display()
                    ));
                    let psql = cluster.psql(&conninfo, "SELECT 1");
                    let psql_ok = psql.status.success();
                    let pgssl = pgssl_connects(&conninfo, home.path()).await;
                    let line =
                        format!(
                        "{name:12} {mode:12} cb={binding:8} {auth:6} psql={psql_ok:5} pgssl={:5} \
                         | psql: {} | pgssl: {}",
                        pgssl.is_ok(),
                        String::from_utf8_lossy(&psql.stderr).trim(),
                        pgssl.as_ref().err().map(ToString::to_string).unwrap_or_default()
                    );
                    if psql_ok != pgssl.is_ok() {
                        mismatches.push(line.clone());
                    }
                    table.push((name, binding, auth, psql_ok, pgssl, line));
                }
            }
        }
    }
    for (.., line) in &table {
        println!("{line}");
    }
    assert!(
        mismatches.is_empty(),
        "pgssl differs from psql:\n{}",
        mismatches.join("\n")
    );
    // The cases the comparison exists for: with no hash, SCRAM binding is refused with a
    // clear error, and without binding the same server is reachable.
    for (name, binding, auth, psql_ok, pgssl, line) in &table {
        if *name == "Ed25519" && *auth == "scram" {
            assert_eq!(*psql_ok, *binding == "disable", "{line}");
            if *binding != "disable" {
                assert!(
                    pgssl
                        .as_ref()
                        .is_err_and(|e| e.to_string().contains("could not find digest")),
                    "{line}"
                );
            }
        }
        if *name == "RSA" && *binding != "require" {
            assert!(*psql_ok, "{line}");
        }
        if *name == "ECDSA P-521" && *binding != "require" {
            assert!(*psql_ok, "P-521 keys must be reachable: {line}");
        }
        if *name == "RSA-PSS" && *binding == "disable" {
            assert!(*psql_ok, "RSA-PSS keys must be reachable: {line}");
        }
    }
}

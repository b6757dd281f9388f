//! Several hosts and hostaddr, as libpq tries them.

use pgssl_client::{Config, Connector, Endpoint};
use pgssl_tests::TlsCluster;

#[tokio::test(flavor = "current_thread")]
async fn hosts_are_tried_in_order_and_hostaddr_keeps_the_name_for_checks() {
    let cluster = TlsCluster::builder().without_extension().start();
    cluster.sql("CREATE ROLE erin LOGIN");
    let files = cluster.client_cert(&[("CN", "erin")]);
    let home = tempfile::tempdir().unwrap();
    let tls = format!(
        "user=erin sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
        cluster.root_cert.display(),
        files.cert.display(),
        files.key.display()
    );
    // A closed port first (port 1 on loopback refuses at once), then the server.
    let conninfo = format!(
        "host=127.0.0.1,localhost port=1,{} dbname=postgres {tls}",
        cluster.port
    );
    assert_eq!(cluster.psql_ok(&conninfo, "SELECT 1"), "1");
    let config = Config::from_conninfo_with_env(&conninfo, &|_| None, Some(home.path())).unwrap();
    let (_client, connection, info) = Connector::new(config).connect_with_info().await.unwrap();
    drop(connection);
    assert_eq!(
        info.endpoint,
        Endpoint::Tcp {
            host: Some("localhost".into()),
            hostaddr: None,
            port: cluster.port
        }
    );

    // hostaddr says where to connect; the certificate is checked against host.
    for (host, ok) in [("localhost", true), ("db.example.com", false)] {
        let conninfo = format!(
            "host={host} hostaddr=127.0.0.1 port={} dbname=postgres {tls}",
            cluster.port
        );
        let psql = cluster.psql(&conninfo, "SELECT 1").status.success();
        let config =
            Config::from_conninfo_with_env(&conninfo, &|_| None, Some(home.path())).unwrap();
        let pgssl = Connector::new(config).connect().await;
        assert_eq!(psql, ok, "psql, host={host}");
        assert_eq!(pgssl.is_ok(), ok, "pgssl, host={host}: {:?}", pgssl.err());
    }

    // Every host failing: one error per host, in order.
    let conninfo = format!("host=127.0.0.1,127.0.0.1 port=1,2 dbname=postgres {tls}");
    let config = Config::from_conninfo_with_env(&conninfo, &|_| None, Some(home.path())).unwrap();
    match Connector::new(config).connect().await {
        Err(pgssl_client::Error::AllHostsFailed(errors)) => assert_eq!(errors.len(), 2),
        other => panic!("{:?}", other.err()),
    }
}

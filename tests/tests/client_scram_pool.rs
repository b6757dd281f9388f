//! SCRAM channel binding (`tls-server-end-point`) and a connection pool with the pgssl
//! connector, against the fixture's default cluster.

use std::path::Path;

use pgssl_client::{Config, Connector, MakeTls};
use pgssl_tests::TlsCluster;

fn config(conninfo: &str, home: &Path) -> Config {
    Config::from_conninfo_with_env(conninfo, &|_| None, Some(home)).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn channel_binding_require_against_a_scram_hostssl_line() {
    let cluster = TlsCluster::builder().without_extension().start();
    // scram_users log in with a password over TLS (hostssl +scram_users scram-sha-256).
    cluster.sql("CREATE ROLE carol LOGIN PASSWORD 'pw' IN ROLE scram_users");
    let home = tempfile::tempdir().unwrap();
    let base = format!(
        "user=carol password=pw sslrootcert={}",
        cluster.root_cert.display()
    );

    for mode in ["require", "verify-ca", "verify-full"] {
        let conninfo = cluster.conninfo(&format!("{base} sslmode={mode} channel_binding=require"));
        assert_eq!(
            cluster.psql_ok(&conninfo, "SELECT 1"),
            "1",
            "psql, sslmode={mode}"
        );
        let (client, connection) = Connector::new(config(&conninfo, home.path()))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("pgssl, sslmode={mode}: {e}"));
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT ssl, session_user::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0));
        assert_eq!(row.get::<_, String>(1), "carol");
    }

    // Without TLS there is nothing to bind to: both refuse.
    let plain = cluster.conninfo(&format!("{base} sslmode=disable channel_binding=require"));
    assert!(!cluster.psql(&plain, "SELECT 1").status.success());
    assert!(Connector::new(config(&plain, home.path()))
        .connect()
        .await
        .is_err());

    // A wrong password is still refused with channel binding.
    let wrong = cluster.conninfo(&format!(
        "user=carol password=nope sslmode=verify-full channel_binding=require sslrootcert={}",
        cluster.root_cert.display()
    ));
    let err = Connector::new(config(&wrong, home.path()))
        .connect()
        .await
        .err()
        .expect("refused");
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("28P01"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadpool_with_the_pgssl_connector() {
    use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

    let cluster = TlsCluster::builder().without_extension().start();
    cluster.sql("CREATE ROLE dave LOGIN");
    let dave = cluster.client_cert(&[("CN", "dave")]);
    let home = tempfile::tempdir().unwrap();
    let conninfo = cluster.verify_full("dave", Some(&dave));
    let config = config(&conninfo, home.path());

    let tls = MakeTls::new(&config).unwrap();
    let manager = Manager::from_config(
        config.to_tokio_postgres(),
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager).max_size(4).build().unwrap();

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let client = pool.get().await.unwrap();
            let row = client
                .query_one(
                    "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap();
            (row.get::<_, bool>(0), row.get::<_, Option<String>>(1))
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (true, Some("/CN=dave".to_string())));
    }
    assert!(pool.status().size <= 4);

    // The pool applies the same policy: a wrong host name is refused under verify-full.
    let wrong = Config::from_conninfo_with_env(
        &conninfo.replace(
            "host=127.0.0.1",
            "host=127.0.0.1 host=localhost.localdomain hostaddr=127.0.0.1",
        ),
        &|_| None,
        Some(home.path()),
    )
    .unwrap();
    let manager = Manager::from_config(
        wrong.to_tokio_postgres(),
        MakeTls::new(&wrong).unwrap(),
        ManagerConfig::default(),
    );
    let pool = Pool::builder(manager).max_size(1).build().unwrap();
    let err = pool.get().await.expect_err("refused");
    // tokio-postgres names only the kind of error; pgssl's reason is in the source chain.
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    let err = chain;
    assert!(
        err.contains("does not match host name \"localhost.localdomain\""),
        "{err}"
    );
}

//! A deadpool-postgres pool (and a bb8 one) built from one `Config` follows its certificate files on a real
//! TLS cluster (`hostssl ... cert`): a renewed client certificate is presented by every new
//! connection while the open ones stay up, a half-replaced pair fails one attempt and not
//! the next, and a changed root certificate or CRL applies to the next connection as it
//! does for psql.

use std::fs;
use std::path::Path;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use pgssl_client::{Config, MakeTls};
use pgssl_tests::pki::write_file;
use pgssl_tests::{csr_pem, wait_until, Ca, KeyType, TlsCluster};

/// A cluster whose client CA is pgssl's own, so that `pgssl.sign_csr` issues logins.
fn pgssl_ca_cluster() -> TlsCluster {
    let cluster = TlsCluster::start();
    let pem = cluster.sql("SELECT pgssl.init_ca('pgssl reload CA', 3650, 'ec-p256')");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    cluster.sql("ALTER SYSTEM SET ssl_ca_file = 'pgssl_ca.crt'");
    cluster.sql("SELECT pg_reload_conf()");
    wait_until("ssl_ca_file reloaded", Duration::from_secs(20), || {
        cluster.sql("SHOW ssl_ca_file") == "pgssl_ca.crt"
    });
    cluster
}

/// A certificate for `role` with a fresh key, signed by `pgssl.sign_csr` as the superuser
/// (what a renewal gets); its serial as `pgssl.client_serial_hex()` shows it.
fn issue(cluster: &TlsCluster, role: &str) -> (PKey<Private>, X509, String) {
    let key = KeyType::EcP256.generate();
    let csr = csr_pem(&[role], &key);
    let pem = cluster.sql(&format!("SELECT pgssl.sign_csr($csr${csr}$csr$)"));
    let cert = X509::from_pem(pem.as_bytes()).unwrap();
    let serial = cert
        .serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap()
        .to_string();
    (key, cert, comparable(&serial))
}

/// Writes `contents` beside `path` and renames it over `path`, as a renewer does.
fn replace(path: &Path, contents: &[u8], mode: u32) {
    let tmp = path.with_extension("new");
    write_file(&tmp, contents, mode);
    fs::rename(&tmp, path).unwrap();
}

fn replace_key(path: &Path, key: &PKey<Private>) {
    replace(path, &key.private_key_to_pem_pkcs8().unwrap(), 0o600);
}

fn replace_cert(path: &Path, cert: &X509) {
    replace(path, &cert.to_pem().unwrap(), 0o644);
}

/// A hex serial without leading zeros, in lowercase.
fn comparable(hex: &str) -> String {
    hex.trim_start_matches('0').to_lowercase()
}

/// The serial of the client certificate a connection logged in with (a deadpool
/// `Object` or a bb8 connection, both a `tokio_postgres::Client` underneath).
async fn serial(client: &tokio_postgres::Client) -> String {
    let hex: String = client
        .query_one("SELECT pgssl.client_serial_hex()", &[])
        .await
        .expect("a query on an open connection")
        .get(0);
    comparable(&hex)
}

/// The pool's error for a connection it could not open, with its sources, as a program
/// would log it; and the pgssl_client error among those sources.
async fn refused(pool: &Pool) -> (String, pgssl_client::Error) {
    let Err(err) = pool.get().await else {
        panic!("the connection is accepted")
    };
    let mut text = err.to_string();
    let mut mine = None;
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        if let Some(e) = s.downcast_ref::<pgssl_client::Error>() {
            mine.get_or_insert_with(|| e.clone());
        }
        source = s.source();
    }
    let mine = mine.unwrap_or_else(|| panic!("no pgssl_client error in {text}"));
    (text, mine)
}

/// `n` connections that the pool has to open now (nothing idle is handed back while
/// they are all held).
async fn open(pool: &Pool, n: usize) -> Vec<Object> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(pool.get().await.expect("a new connection"));
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_presents_the_renewed_certificate_and_keeps_open_connections() {
    let cluster = pgssl_ca_cluster();
    cluster.sql("CREATE ROLE alice LOGIN");
    let dir = cluster.dir("alice");
    let (cert_path, key_path) = (dir.join("alice.crt"), dir.join("alice.key"));
    let root = dir.join("root.crt");
    let crl = dir.join("server.crl");
    fs::copy(&cluster.root_cert, &root).unwrap();
    let (key1, cert1, serial1) = issue(&cluster, "alice");
    replace_key(&key_path, &key1);
    replace_cert(&cert_path, &cert1);
    // sslcrl names a file that does not exist yet: libpq goes on without it.
    let conninfo = cluster.conninfo(&format!(
        "user=alice sslmode=verify-full sslrootcert={} sslcrl={} sslcert={} sslkey={}",
        root.display(),
        crl.display(),
        cert_path.display(),
        key_path.display()
    ));
    let home = tempfile::tempdir().unwrap();
    let config = Config::from_conninfo_with_env(&conninfo, &|_| None, Some(home.path())).unwrap();
    assert!(config.reload_tls_files(), "on by default");
    let manager = Manager::from_config(
        config.to_tokio_postgres(),
        MakeTls::new(&config).unwrap(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager).max_size(32).build().unwrap();

    let first = open(&pool, 3).await;
    for c in &first {
        assert_eq!(serial(c).await, serial1);
    }
    // A bb8 pool from the same configuration, through the same seam.
    let bb8_pool = bb8::Pool::builder()
        .max_size(4)
        .retry_connection(false)
        .build(bb8_postgres::PostgresConnectionManager::new(
            config.to_tokio_postgres(),
            MakeTls::new(&config).unwrap(),
        ))
        .await
        .unwrap();
    let bb8_first = bb8_pool.get().await.unwrap();
    assert_eq!(serial(&bb8_first).await, serial1);

    // Renewal: a new key and certificate for the same role, each renamed into place.
    let (key2, cert2, serial2) = issue(&cluster, "alice");
    assert_ne!(serial1, serial2);
    replace_key(&key_path, &key2);
    replace_cert(&cert_path, &cert2);
    assert_eq!(
        comparable(&cluster.psql_ok(&conninfo, "SELECT pgssl.client_serial_hex()")),
        serial2,
        "psql presents the renewed certificate"
    );
    let second = open(&pool, 3).await;
    for c in &second {
        assert_eq!(
            serial(c).await,
            serial2,
            "a new connection after the renewal"
        );
    }
    for c in &first {
        assert_eq!(serial(c).await, serial1, "an open connection stays up");
    }
    let bb8_second = bb8_pool.get().await.unwrap();
    assert_eq!(serial(&bb8_second).await, serial2, "bb8: a new connection");
    assert_eq!(serial(&bb8_first).await, serial1, "bb8: an open one");

    // Half-way through the next renewal: the new certificate beside the old key. That
    // attempt fails and names both files, as psql does; the pool is not broken by it.
    let (key3, cert3, serial3) = issue(&cluster, "alice");
    replace_cert(&cert_path, &cert3);
    let psql = cluster.psql(&conninfo, "SELECT 1");
    assert!(!psql.status.success());
    let psql_err = String::from_utf8_lossy(&psql.stderr);
    assert!(psql_err.contains("key values mismatch"), "{psql_err}");
    let (err, mine) = refused(&pool).await;
    match mine {
        pgssl_client::Error::KeyMismatch { cert, key } => {
            assert_eq!((cert, key), (cert_path.clone(), key_path.clone()));
        }
        other => panic!("{other}"),
    }
    for path in [&cert_path, &key_path] {
        assert!(err.contains(&*path.to_string_lossy()), "{err}");
    }
    assert!(err.contains("does not match private key file"), "{err}");
    replace_key(&key_path, &key3);
    let third = open(&pool, 2).await;
    for c in &third {
        assert_eq!(serial(c).await, serial3);
    }

    // The client's CRL appears and revokes the server's certificate: the next connection
    // is refused as psql refuses it; open connections stay up.
    let server_cert =
        X509::from_pem(&fs::read(cluster.data_dir.join("server.crt")).unwrap()).unwrap();
    replace(&crl, &cluster.ca.crl(&[&server_cert]), 0o644);
    let psql = cluster.psql(&conninfo, "SELECT 1");
    assert!(!psql.status.success());
    let psql_err = String::from_utf8_lossy(&psql.stderr);
    assert!(psql_err.contains("certificate verify failed"), "{psql_err}");
    let (err, _) = refused(&pool).await;
    assert!(err.contains("certificate revoked"), "{err}");
    replace(&crl, &cluster.ca.crl(&[]), 0o644);
    let fourth = open(&pool, 1).await;
    assert_eq!(serial(&fourth[0]).await, serial3);

    // sslrootcert now names another CA: the server is no longer trusted, by psql or the
    // pool; the CA back, it is.
    let other = Ca::new("another CA");
    other.write_cert(&dir.join("other.crt"));
    fs::rename(&root, dir.join("saved.crt")).unwrap();
    fs::copy(dir.join("other.crt"), &root).unwrap();
    let psql = cluster.psql(&conninfo, "SELECT 1");
    assert!(!psql.status.success());
    let psql_err = String::from_utf8_lossy(&psql.stderr);
    assert!(psql_err.contains("certificate verify failed"), "{psql_err}");
    let (err, _) = refused(&pool).await;
    assert!(
        err.contains("unable to get local issuer certificate"),
        "{err}"
    );
    fs::rename(dir.join("saved.crt"), &root).unwrap();
    let fifth = open(&pool, 1).await;
    assert_eq!(serial(&fifth[0]).await, serial3);

    // Every connection opened along the way still answers, each with its certificate.
    for (held, expected) in [
        (&first, &serial1),
        (&second, &serial2),
        (&third, &serial3),
        (&fourth, &serial3),
        (&fifth, &serial3),
    ] {
        for c in held {
            assert_eq!(&serial(c).await, expected);
        }
    }
    assert_eq!(serial(&bb8_first).await, serial1);
    assert_eq!(serial(&bb8_second).await, serial2);
    let alive = cluster.sql(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
          WHERE usename = 'alice' AND ssl",
    );
    assert_eq!(alive, "12");
}

//! Connection strings against libpq itself: each string goes to psql and to pgssl_client
//! (parse, then connect) against a live server that trusts every TCP login; both must
//! connect or both refuse. Validation that libpq does only while connecting (integer
//! options, ports, hostaddr, root certificate files) is covered that way. The table is
//! printed.

use std::path::Path;

use pgssl_client::{Config, Connector};
use pgssl_tests::{clean_command, pg_bindir, TlsCluster};

/// Every key=value case is prefixed with this (`{port}`: the live server's); later keys
/// override it.
const BASE: &str = "host=127.0.0.1 port={port} user=postgres dbname=postgres";

const KEY_VALUE: &[&str] = &[
    "",
    "dbname=x",
    "  dbname = x  user=u ",
    "password='it\\'s here'",
    "password='it''s'",
    "password='unterminated",
    "password=a\\ b",
    "dbname",
    "dbname x",
    "hots=x",
    "application_name= dbname=x",
    "sslmode=verify",
    "sslmode=Require",
    "sslmode=verify-full sslrootcert=/nonexistent",
    "channel_binding=yes",
    "channel_binding=require",
    "gssencmode=maybe",
    "target_session_attrs=master",
    "target_session_attrs=read-write",
    "ssl_min_protocol_version=TLSv1.4",
    "ssl_min_protocol_version=tlsv1.3",
    "ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2",
    "port=abc",
    "port=0",
    "port=65536",
    "port=' {port} '",
    "connect_timeout=1s",
    "keepalives=yes",
    "keepalives_idle=5",
    "keepalives=0",
    "connect_timeout=1",
    "hostaddr=localhost",
    "hostaddr=127.0.0.1",
    "host=a,b,c port=1,2",
    "host=127.0.0.1,127.0.0.1 port=1,{port}",
    "host=a,b hostaddr=127.0.0.1",
    "sslcompression=1",
    "sslsni=0",
    "sslcrldir=/nonexistent",
    "requiressl=1",
    "sslpasswd=x",
];

const URIS: &[&str] = &[
    "postgresql://postgres@127.0.0.1:{port}/postgres",
    "postgres://postgres@127.0.0.1:{port}/postgres",
    "postgresql://postgres:p%40ss@127.0.0.1:{port}/postgres?connect_timeout=2",
    "postgresql://127.0.0.1:1,127.0.0.1:{port}/postgres?user=postgres",
    "postgresql://%2Fnonexistent:{port}/postgres?user=postgres&host=127.0.0.1",
    "postgresql://postgres@[::1]:{port}/postgres",
    "postgresql://[::1",
    "postgresql://[]/db",
    "postgresql://[::1]x/db",
    "postgresql://127.0.0.1:1/db?sslmode",
    "postgresql://127.0.0.1:1/db?a=b=c",
    "postgresql://127.0.0.1:1/db?foo=bar",
    "postgresql://127.0.0.1:1/d%zz",
    "postgresql://127.0.0.1:1/d%2",
    "postgresql://127.0.0.1:1/d%00",
    "postgresql://127.0.0.1:1/db?sslmode=bogus",
    "postgresql://postgres@127.0.0.1:{port}/postgres?ssl=true",
    "postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable&",
    "postgresql://postgres@127.0.0.1:{port}/postgres?requiressl=1",
    "postgresql://127.0.0.1:1/db?&",
];

/// psql's verdict: `Ok` when it connected, else its message.
fn libpq(conninfo: &str, home: &Path) -> Result<(), String> {
    let out = clean_command(&pg_bindir().join("psql"), home)
        .args(["-X", "-w", "-c", "SELECT 1", "-d", conninfo])
        .output()
        .expect("psql");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

async fn pgssl(conninfo: &str, home: &Path) -> Result<(), String> {
    let config = Config::from_conninfo_with_env(conninfo, &|_| None, Some(home))
        .map_err(|e| e.to_string())?;
    let (client, connection) = Connector::new(config)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    client
        .simple_query("SELECT 1")
        .await
        .map_err(|e| e.to_string())?;
    drop(client);
    let _ = driver.await;
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn pgssl_accepts_exactly_what_libpq_accepts() {
    let cluster = TlsCluster::builder()
        .hba("local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n")
        .conf("listen_addresses = '127.0.0.1,::1'")
        .without_extension()
        .start();
    let port = cluster.port.to_string();
    let home = tempfile::tempdir().unwrap();
    let mut cases: Vec<String> = KEY_VALUE
        .iter()
        .map(|s| format!("{BASE} {s}").replace("{port}", &port))
        .collect();
    cases.extend(URIS.iter().map(|s| s.replace("{port}", &port)));
    let mut mismatches = Vec::new();
    println!("{:<8} {:<8} conninfo", "libpq", "pgssl");
    for conninfo in &cases {
        let theirs = libpq(conninfo, home.path());
        let ours = pgssl(conninfo, home.path()).await;
        let verdict = |ok: bool| if ok { "connects" } else { "refuses" };
        println!(
            "{:<8} {:<8} {conninfo}",
            verdict(theirs.is_ok()),
            verdict(ours.is_ok())
        );
        if theirs.is_ok() != ours.is_ok() {
            mismatches.push(format!(
                "{conninfo:?}\n  libpq: {theirs:?}\n  pgssl: {ours:?}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "disagreements:\n{}",
        mismatches.join("\n")
    );
}

//! `pgssl.issue_server_cert()`: a server certificate from SQL, switched to
//! with ALTER SYSTEM and a reload, verified by psql with verify-full; rotated
//! while connections stay open; bad input refused with nothing left behind.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use pgssl_tests::{stdout_ok, wait_until, TlsCluster};
use serde_json::Value;

fn issue(cluster: &TlsCluster, hostnames: &str) -> Value {
    let out = cluster.sql(&format!("SELECT pgssl.issue_server_cert({hostnames})"));
    serde_json::from_str(&out).unwrap()
}

/// Runs the ALTER SYSTEM commands `issue_server_cert` returned, and reloads.
fn switch_to(cluster: &TlsCluster, issued: &Value) {
    for step in issued["next_steps"].as_array().unwrap() {
        cluster.sql(step.as_str().unwrap());
    }
}

/// The serial of the certificate the server presents to a new connection,
/// as the openssl command line sees it.
fn presented_serial(cluster: &TlsCluster) -> String {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-starttls",
            "postgres",
            "-connect",
            &format!("127.0.0.1:{}", cluster.port),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut pem = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut pem)
        .unwrap();
    child.wait().unwrap();
    let cert = openssl::x509::X509::from_pem(pem.as_bytes()).expect("no certificate from s_client");
    hex::encode(cert.serial_number().to_bn().unwrap().to_vec())
}

fn server_ca_file(cluster: &TlsCluster) -> std::path::PathBuf {
    let path = cluster.client_dir.join("server-root.crt");
    std::fs::write(&path, cluster.sql("SELECT pgssl.server_ca_cert()") + "\n").unwrap();
    path
}

fn verify_full_to(cluster: &TlsCluster, host: &str, root: &std::path::Path) -> String {
    cluster.sql("DO $$ BEGIN CREATE ROLE bob LOGIN PASSWORD 'pw' IN ROLE scram_users; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    // psql 13 matches DNS SANs only (libpq checks IP SANs from 14): it names the server.
    let host = if pgssl_tests::pg_major() < 14 && host.parse::<std::net::IpAddr>().is_ok() {
        "localhost"
    } else {
        host
    };
    let conninfo = cluster.conninfo(&format!(
        "host={host} user=bob password=pw sslmode=verify-full sslrootcert={}",
        root.display()
    ));
    cluster.psql_ok(&conninfo, "SELECT pgssl.ssl_version() IS NOT NULL")
}

#[test]
fn an_issued_certificate_serves_verify_full_for_every_name() {
    let cluster = TlsCluster::start();
    let issued = issue(&cluster, "ARRAY['localhost', '127.0.0.1']");
    assert_eq!(issued["server_ca_created"], true);
    assert_eq!(issued["subject"], "CN=localhost");
    assert_eq!(
        issued["subject_alt_names"],
        serde_json::json!(["DNS:localhost", "IP:127.0.0.1"])
    );
    let key_mode = std::fs::metadata(issued["key_path"].as_str().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let ca_key = cluster.data_dir.join("pgssl_server_ca.key");
    assert_eq!(
        std::fs::metadata(&ca_key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    switch_to(&cluster, &issued);
    let root = server_ca_file(&cluster);
    assert_eq!(verify_full_to(&cluster, "localhost", &root), "t");
    assert_eq!(verify_full_to(&cluster, "127.0.0.1", &root), "t");
    assert_eq!(
        presented_serial(&cluster),
        issued["serial_hex"].as_str().unwrap()
    );
    // The audit agrees with what the server now uses.
    let info: Value = serde_json::from_str(&cluster.sql("SELECT pgssl.server_cert()")).unwrap();
    assert_eq!(info["serial_hex"], issued["serial_hex"]);
    assert_eq!(cluster.sql("SELECT count(*) FROM pgssl.check_config() WHERE \"check\" LIKE 'server%' AND status <> 'ok'"), "0");
}

#[test]
fn rotation_keeps_open_connections_and_serves_the_new_certificate() {
    let cluster = TlsCluster::start();
    let first = issue(&cluster, "ARRAY['localhost', '127.0.0.1']");
    switch_to(&cluster, &first);
    let root = server_ca_file(&cluster);
    verify_full_to(&cluster, "127.0.0.1", &root);

    // A session opened before the rotation.
    let conninfo = cluster.conninfo(&format!(
        "user=bob password=pw sslmode=verify-full sslrootcert={}",
        root.display()
    ));
    let mut open = cluster
        .psql_command(&conninfo)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = open.stdin.take().unwrap();
    writeln!(stdin, "SELECT 'before', pg_backend_pid();").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));

    let second = issue(&cluster, "ARRAY['localhost', '127.0.0.1']");
    assert_eq!(second["server_ca_created"], false);
    assert_ne!(second["serial_hex"], first["serial_hex"]);
    let start_time = cluster.sql("SELECT pg_postmaster_start_time()");
    switch_to(&cluster, &second);

    // New connections get the new certificate, from the same server CA.
    wait_until(
        "the new certificate to be served",
        Duration::from_secs(10),
        || presented_serial(&cluster) == second["serial_hex"].as_str().unwrap(),
    );
    assert_eq!(verify_full_to(&cluster, "localhost", &root), "t");
    assert_eq!(
        cluster.sql("SELECT pg_postmaster_start_time()"),
        start_time,
        "the server restarted"
    );

    // The old session still answers, over TLS.
    writeln!(stdin, "SELECT 'after', pgssl.ssl_version() IS NOT NULL;").unwrap();
    drop(stdin);
    let stdout = stdout_ok(&open.wait_with_output().unwrap(), "the open session");
    assert!(
        stdout.contains("before|") && stdout.contains("after|t"),
        "{stdout}"
    );
}

fn data_dir_listing(cluster: &TlsCluster) -> BTreeSet<String> {
    std::fs::read_dir(&cluster.data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn bad_input_is_an_error_with_its_sqlstate_and_leaves_nothing_behind() {
    let cluster = TlsCluster::start();
    cluster.sql("CREATE ROLE mallory LOGIN PASSWORD 'pw' IN ROLE scram_users; GRANT EXECUTE ON FUNCTION pgssl.issue_server_cert(text[], integer) TO mallory");
    let before = data_dir_listing(&cluster);
    let superuser = cluster.socket_conninfo("postgres");
    let mallory = format!("{} password=pw", cluster.verify_full("mallory", None));
    let cases = [
        (
            &superuser,
            "SELECT pgssl.issue_server_cert(ARRAY[]::text[])",
            "22023",
            "hostnames is empty",
        ),
        (
            &superuser,
            "SELECT pgssl.issue_server_cert(ARRAY['localhost', NULL])",
            "22023",
            "host name 2 is NULL",
        ),
        (
            &superuser,
            "SELECT pgssl.issue_server_cert(ARRAY['bad name'])",
            "22023",
            "invalid host name \"bad name\"",
        ),
        (
            &superuser,
            "SELECT pgssl.issue_server_cert(ARRAY['*.com'])",
            "22023",
            "wildcard",
        ),
        (
            &superuser,
            "SELECT pgssl.issue_server_cert(ARRAY['localhost'], 0)",
            "22023",
            "at least 1",
        ),
        (
            &superuser,
            "SELECT pgssl.issue_server_cert(ARRAY['localhost'], -5)",
            "22023",
            "at least 1",
        ),
        (
            &superuser,
            "SELECT pgssl.issue_server_cert(ARRAY['localhost'], 398)",
            "22023",
            "pgssl.max_validity_days",
        ),
        (
            &mallory,
            "SELECT pgssl.issue_server_cert(ARRAY['localhost'])",
            "42501",
            "superuser",
        ),
    ];
    for (conninfo, sql, sqlstate, text) in cases {
        let out = cluster
            .psql_command(conninfo)
            .args(["-v", "VERBOSITY=verbose", "-c", sql])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sql} succeeded");
        assert!(
            stderr.contains(&format!("ERROR:  {sqlstate}:")) && stderr.contains(text),
            "{sql}: {stderr}"
        );
    }
    assert_eq!(
        cluster.sql("SELECT pgssl.issue_server_cert(NULL) IS NULL"),
        "t"
    );
    assert_eq!(
        data_dir_listing(&cluster),
        before,
        "a refused call left files behind"
    );

    // A server CA key that cannot be written: 58030, and no half-written CA.
    let locked = cluster.dir("locked");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // PostgreSQL 15 takes ALTER SYSTEM of an extension's setting once the library is loaded.
    let set = format!(
        "ALTER SYSTEM SET pgssl.server_ca_key_file = '{}/ca.key'",
        locked.display()
    );
    let out = cluster
        .psql_command(&superuser)
        .args([
            "-c",
            "LOAD 'pgssl'",
            "-c",
            &set,
            "-c",
            "SELECT pg_reload_conf()",
        ])
        .output()
        .unwrap();
    stdout_ok(&out, "setting the locked key file");
    let out = cluster
        .psql_command(&superuser)
        .args([
            "-v",
            "VERBOSITY=verbose",
            "-c",
            "LOAD 'pgssl'",
            "-c",
            "SELECT pgssl.issue_server_cert(ARRAY['localhost'])",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ERROR:  58030:"), "{stderr}");
    let after: BTreeSet<String> = data_dir_listing(&cluster)
        .into_iter()
        .filter(|f| f != "postgresql.auto.conf")
        .collect();
    let before: BTreeSet<String> = before
        .into_iter()
        .filter(|f| f != "postgresql.auto.conf")
        .collect();
    assert_eq!(after, before, "a failed write left files behind");
}

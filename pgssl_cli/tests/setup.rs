//! `pgssl setup`, `pgssl setup --rotate` and `pgssl report` end to end: a cluster
//! with TLS off gets TLS in one command, then a new server certificate while
//! connections stay open.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use pgssl_tests::{clean_command, TlsCluster};
use serde_json::Value;

/// No TLS anywhere yet: the superuser over the socket, everyone else with a
/// password over plaintext TCP.
const PLAIN_HBA: &str = "\
local all all                trust
host  all all 127.0.0.1/32   scram-sha-256
";

fn pgssl(cluster: &TlsCluster, args: &[&str]) -> Output {
    let home = cluster.dir("home");
    clean_command(Path::new(env!("CARGO_BIN_EXE_pgssl")), &home)
        .args(args)
        .output()
        .expect("pgssl runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn superuser(cluster: &TlsCluster) -> String {
    format!(
        "host={} port={} dbname=postgres user=postgres",
        cluster.socket_dir.display(),
        cluster.port
    )
}

fn verify_full(cluster: &TlsCluster, host: &str, root: &Path) -> String {
    format!(
        "host={host} port={} dbname=postgres user=alice password=secret sslmode=verify-full sslrootcert={}",
        cluster.port,
        root.display()
    )
}

fn normalise_serial(s: &str) -> String {
    s.to_ascii_lowercase().trim_start_matches('0').to_string()
}

/// The serial of the server certificate `pgssl check` saw.
fn checked_serial(cluster: &TlsCluster, conninfo: &str) -> String {
    let out = pgssl(cluster, &["check", "--json", conninfo]);
    assert!(
        out.status.success(),
        "pgssl check failed: {}",
        text(&out.stderr)
    );
    let report: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    normalise_serial(
        report["tls"]["server_certificates"][0]["serial"]
            .as_str()
            .unwrap(),
    )
}

fn set_up(cluster: &TlsCluster) -> std::path::PathBuf {
    set_up_printing(cluster, "restart the server once to start it")
}

/// `pgssl setup` with `--edit-hba`, for localhost and 127.0.0.1; checks that it
/// succeeded and that its output has `expected`.
fn set_up_printing(cluster: &TlsCluster, expected: &str) -> std::path::PathBuf {
    let root = cluster.client_dir.join("server-root.crt");
    let out = pgssl(
        cluster,
        &[
            "setup",
            &superuser(cluster),
            "--hostname",
            "localhost",
            "--hostname",
            "127.0.0.1",
            "--root-cert",
            root.to_str().unwrap(),
            "--edit-hba",
        ],
    );
    println!("{}", text(&out.stdout));
    assert!(
        out.status.success(),
        "pgssl setup failed: {}",
        text(&out.stderr)
    );
    for expected in [expected, "restart the server once to start it"] {
        assert!(
            text(&out.stdout).contains(expected),
            "{expected}: {}",
            text(&out.stdout)
        );
    }
    root
}

/// A cluster with TLS off, password logins over TCP, no pgssl yet, and a role alice
/// with a password: where `pgssl setup` starts.
fn plain_cluster_with_alice() -> TlsCluster {
    let cluster = TlsCluster::builder()
        .bare()
        .hba(PLAIN_HBA)
        .without_extension()
        .start();
    cluster.sql("CREATE ROLE alice LOGIN PASSWORD 'secret'");
    cluster
}

#[test]
fn setup_turns_tls_on_for_both_names_and_the_audit_finds_no_failure() {
    let cluster = plain_cluster_with_alice();
    assert_eq!(cluster.sql("SHOW ssl"), "off");

    let root = set_up(&cluster);
    assert_eq!(cluster.sql("SHOW ssl"), "on");
    assert_eq!(
        cluster
            .sql("SELECT pg_read_file('pg_hba.conf') LIKE '%hostnossl all all 0.0.0.0/0 reject%'"),
        "t"
    );
    // The lines refuse plaintext and widen nothing: the old line still governs
    // TLS logins, and a plaintext login is refused.
    let plaintext = cluster.psql(
        &cluster.conninfo("user=alice password=secret sslmode=disable"),
        "SELECT 1",
    );
    assert!(
        text(&plaintext.stderr).contains("no encryption"),
        "{}",
        text(&plaintext.stderr)
    );
    let backups = std::fs::read_dir(&cluster.data_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("pg_hba.conf.pgssl-backup-")
        })
        .count();
    assert_eq!(backups, 1);

    for host in ["localhost", "127.0.0.1"] {
        let conninfo = verify_full(&cluster, host, &root);
        assert_eq!(
            cluster.psql_ok(&conninfo, "SELECT pgssl.ssl_is_used()"),
            "t",
            "psql to {host}"
        );
        let out = pgssl(&cluster, &["check", &conninfo]);
        assert!(
            out.status.success(),
            "pgssl check to {host}: {}",
            text(&out.stderr)
        );
    }
    let failures = cluster.sql("SELECT count(*) FROM pgssl.check_config() WHERE status = 'fail'");
    assert_eq!(
        failures,
        "0",
        "{}",
        cluster.sql("SELECT * FROM pgssl.check_config()")
    );

    // The revocation worker is set to start with the server: a restart
    // starts it, and the audit sees it.
    assert_eq!(
        cluster.sql("SELECT setting FROM pg_file_settings WHERE name = 'shared_preload_libraries'"),
        "pgssl"
    );
    cluster.pg_ctl("restart");
    pgssl_tests::wait_until(
        "the pgssl worker",
        std::time::Duration::from_secs(20),
        || {
            cluster.sql("SELECT status FROM pgssl.check_config() WHERE \"check\" = 'crl_worker'")
                == "ok"
        },
    );

    // The report agrees, and says so in its exit status.
    let out = pgssl(&cluster, &["report", &superuser(&cluster)]);
    assert!(out.status.success(), "pgssl report: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("TLS checks") && text(&out.stdout).contains("server_cert_san")
    );
    let out = pgssl(&cluster, &["report", "--json", &superuser(&cluster)]);
    let report: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(report["failed"], 0);
    assert!(report["connections"].as_array().is_some());
}

#[test]
fn report_exits_non_zero_when_a_check_fails() {
    let cluster = TlsCluster::builder()
        .hba(&format!(
            "{}host all all 10.0.0.0/8 trust\n",
            pgssl_tests::DEFAULT_HBA
        ))
        .start();
    let out = pgssl(&cluster, &["report", &superuser(&cluster)]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("TLS check(s) failed"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("hba_plaintext_tcp"));
}

#[test]
fn rotate_serves_a_new_certificate_while_open_connections_keep_working() {
    let cluster = plain_cluster_with_alice();
    let root = set_up(&cluster);
    let conninfo = verify_full(&cluster, "localhost", &root);
    let before = checked_serial(&cluster, &conninfo);

    let mut open = cluster
        .psql_command(&conninfo)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = open.stdin.take().unwrap();
    writeln!(stdin, "SELECT 'before';").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = cluster.sql("SELECT pg_postmaster_start_time()");

    let out = pgssl(
        &cluster,
        &[
            "setup",
            "--rotate",
            &superuser(&cluster),
            "--root-cert",
            root.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "pgssl setup --rotate failed: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("rotated the server certificate"));

    let after = checked_serial(&cluster, &conninfo);
    assert_ne!(
        after, before,
        "a new connection still sees the old certificate"
    );
    let served = cluster.sql("SELECT pgssl.server_cert()->>'serial_hex'");
    assert_eq!(after, normalise_serial(&served));
    assert_eq!(
        cluster.sql("SELECT pg_postmaster_start_time()"),
        started,
        "the server restarted"
    );
    // The rotated certificate keeps both names.
    assert!(cluster
        .psql(&verify_full(&cluster, "127.0.0.1", &root), "SELECT 1")
        .status
        .success());

    writeln!(stdin, "SELECT 'after', pgssl.ssl_is_used();").unwrap();
    drop(stdin);
    let out = open.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("before") && stdout.contains("after|t"),
        "{stdout}"
    );
}

#[test]
fn setup_refuses_a_non_superuser_and_names_missing_hosts() {
    let cluster = TlsCluster::builder().ssl_off().hba(PLAIN_HBA).start();
    cluster.sql("CREATE ROLE alice LOGIN PASSWORD 'secret'");
    let alice = cluster.conninfo("user=alice password=secret sslmode=disable");
    let out = pgssl(&cluster, &["setup", &alice, "--hostname", "localhost"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("needs a superuser"),
        "{}",
        text(&out.stderr)
    );
    let out = pgssl(&cluster, &["setup", &superuser(&cluster)]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--hostname"),
        "{}",
        text(&out.stderr)
    );
    let out = pgssl(
        &cluster,
        &["setup", &superuser(&cluster), "--hostname", "localhost"],
    );
    assert!(
        text(&out.stderr).contains("ssl_ca_file is already \"ca.crt\""),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        cluster.sql("SHOW ssl"),
        "off",
        "a refused setup changed the server"
    );
    assert_eq!(cluster.sql("SHOW ssl_ca_file"), "ca.crt");
}

#[test]
fn setup_refuses_bad_names_and_changes_nothing() {
    let cluster = TlsCluster::builder().bare().hba(PLAIN_HBA).start();
    let out = pgssl(
        &cluster,
        &["setup", &superuser(&cluster), "--hostname", "bad name"],
    );
    assert!(
        text(&out.stderr).contains("invalid host name"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        cluster.sql("SHOW ssl"),
        "off",
        "a refused setup changed the server"
    );
    let made = cluster.sql("SELECT count(*) FROM pg_ls_dir('.') AS f WHERE f LIKE 'pgssl%'");
    assert_eq!(made, "0", "a refused setup left files behind");
}

#[test]
fn setup_writes_encrypted_ca_keys_when_a_passphrase_command_is_set() {
    let cluster = plain_cluster_with_alice();
    let script = cluster.dir("secrets").join("pass.sh");
    std::fs::write(&script, "#!/bin/sh\necho 'setup pass phrase'\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // LOAD first (the library defines the setting), in its own transaction.
    let out = cluster
        .psql_command(&cluster.socket_conninfo("postgres"))
        .args(["-c", "LOAD 'pgssl'", "-c"])
        .arg(format!(
            "ALTER SYSTEM SET pgssl.ca_key_passphrase_command = '{} \"%p\"'",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    cluster.sql("SELECT pg_reload_conf()");

    let root = set_up_printing(&cluster, "CA key (ok): the client CA private key");
    for key in ["pgssl_ca.key", "pgssl_server_ca.key"] {
        let pem = std::fs::read_to_string(cluster.data_dir.join(key)).unwrap();
        assert!(
            pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{key}: {pem:.60}"
        );
    }
    let conninfo = verify_full(&cluster, "localhost", &root);
    assert_eq!(
        cluster.psql_ok(&conninfo, "SELECT pgssl.ssl_is_used()"),
        "t"
    );
    assert_eq!(
        cluster.sql(
            "SELECT string_agg(status, ',') FROM pgssl.check_config()
              WHERE \"check\" = 'ca_key_protection'"
        ),
        "ok,ok"
    );
}

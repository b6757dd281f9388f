//! Encrypted CA keys end to end: with `pgssl.ca_key_passphrase_command` set, both CAs'
//! keys are written encrypted, enrolling, server certificates and the worker's CRLs all
//! sign with them, the passphrase is in no server log line, each way the command can fail
//! has its SQLSTATE, and `check_config()` names the roles that could read a key that is
//! not encrypted.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use openssl::x509::X509;
use pgssl_tests::{openssl_csr, unique_suffix, wait_until, CertFiles, TlsCluster};

// ---------------------------------------------------------------- helpers

/// A passphrase no other text in the log can contain by chance.
fn passphrase() -> String {
    format!("Pass-{}-phrase q7Zx", unique_suffix())
}

/// Writes an executable script for the server's user; returns its path.
fn script(cluster: &TlsCluster, name: &str, body: &str) -> PathBuf {
    let path = cluster.dir("secrets").join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A script that prints `passphrase`, as a passphrase command (with the prompt).
fn command_printing(cluster: &TlsCluster, passphrase: &str) -> String {
    let path = script(
        cluster,
        &format!("pass-{}.sh", unique_suffix()),
        &format!("printf '%s\\n' '{passphrase}'"),
    );
    format!("{} \"%p\"", path.display())
}

/// `ALTER SYSTEM SET name = value` (or `RESET` for `None`), reload, and
/// wait until new sessions see it.
fn set_and_reload(cluster: &TlsCluster, name: &str, value: Option<&str>) {
    match value {
        // LOAD: the library defines its settings when it loads.
        Some(v) => cluster.sql_as(
            "postgres",
            &format!(
                "LOAD 'pgssl'; ALTER SYSTEM SET {name} = '{}'",
                v.replace('\'', "''")
            ),
        ),
        None => cluster.sql_as(
            "postgres",
            &format!("LOAD 'pgssl'; ALTER SYSTEM RESET {name}"),
        ),
    };
    cluster.sql("SELECT pg_reload_conf()");
    let want = value.unwrap_or_default();
    wait_until(
        &format!("{name} to be reloaded"),
        Duration::from_secs(20),
        || cluster.sql(&format!("SELECT current_setting('{name}', true)")) == want,
    );
}

/// A dollar-quoted SQL literal.
fn lit(text: &str) -> String {
    format!("$pgssl${text}$pgssl$")
}

/// A CSR for `cn` made with the openssl command; returns the key file and the CSR text.
fn csr(cluster: &TlsCluster, cn: &str) -> (PathBuf, String) {
    let dir = cluster.dir("clients");
    let (key, csr) = openssl_csr(
        &dir,
        &format!("{cn}-{}", unique_suffix()),
        &format!("/CN={cn}"),
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    (key, fs::read_to_string(csr).unwrap())
}

/// Whether `openssl pkey` can read the key file with this `-passin` argument.
fn openssl_reads_key(path: &Path, passin: &str) -> bool {
    Command::new("openssl")
        .args(["pkey", "-noout", "-passin", passin, "-in"])
        .arg(path)
        .output()
        .expect("openssl")
        .status
        .success()
}

/// Checks that the key file is encrypted PKCS#8 (AES-256), mode 0600, and
/// that openssl opens it with `passphrase` only.
fn assert_encrypted_key(path: &Path, passphrase: &str) {
    let pem = fs::read_to_string(path).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{}: {pem:.60}",
        path.display()
    );
    assert!(!pem.contains("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(
        fs::metadata(path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let dir = path.parent().unwrap();
    let info = pgssl_tests::openssl_stdout(dir, &["asn1parse", "-in", path.to_str().unwrap()]);
    assert!(info.contains("aes-256-cbc"), "{info}");
    assert!(
        !openssl_reads_key(path, "pass:"),
        "read without a passphrase"
    );
    assert!(
        !openssl_reads_key(path, "pass:wrong"),
        "read with a wrong passphrase"
    );
    assert!(openssl_reads_key(path, &format!("pass:{passphrase}")));
}

/// The `ca_key_protection` rows: `status|detail`, one a line.
fn protection(cluster: &TlsCluster) -> Vec<(String, String)> {
    cluster
        .sql(
            "SELECT status || '|' || detail FROM pgssl.check_config()
              WHERE \"check\" = 'ca_key_protection' ORDER BY detail",
        )
        .lines()
        .map(|l| {
            let (status, detail) = l.split_once('|').unwrap();
            (status.to_string(), detail.to_string())
        })
        .collect()
}

fn serial_of(pem: &str) -> String {
    let cert = X509::from_pem(pem.as_bytes()).unwrap();
    let hex = cert.serial_number().to_bn().unwrap().to_hex_str().unwrap();
    hex.to_lowercase()
}

// ---------------------------------------------------------------- tests

#[test]
fn encrypted_ca_keys_sign_certificates_and_crls_and_the_passphrase_is_never_logged() {
    let pass = passphrase();
    let cluster = TlsCluster::builder()
        .conf("shared_preload_libraries = 'pgssl'")
        .conf("log_statement = 'all'")
        .conf("log_min_messages = debug5")
        .start();
    let command = command_printing(&cluster, &pass);
    set_and_reload(&cluster, "pgssl.ca_key_passphrase_command", Some(&command));

    // Both CAs are written with encrypted keys.
    cluster.sql("SELECT pgssl.init_ca('pgssl encrypted CA') IS NOT NULL");
    assert_encrypted_key(&cluster.data_dir.join("pgssl_ca.key"), &pass);
    let issued = cluster.sql(
        "SELECT pgssl.issue_server_cert(ARRAY['localhost', '127.0.0.1'])->>'server_ca_created'",
    );
    assert_eq!(issued, "true");
    assert_encrypted_key(&cluster.data_dir.join("pgssl_server_ca.key"), &pass);

    // The worker signs and installs CRLs with the encrypted key.
    set_and_reload(&cluster, "ssl_ca_file", Some("pgssl_ca.crt"));
    set_and_reload(&cluster, "ssl_crl_file", Some("pgssl.crl"));
    wait_until("the worker's first CRL", Duration::from_secs(30), || {
        cluster.data_dir.join("pgssl.crl").exists()
    });

    // Enrolling signs with it; the certificate logs in with psql.
    cluster.sql(
        "CREATE ROLE alice LOGIN; GRANT EXECUTE ON FUNCTION pgssl.enroll(text, integer) TO alice",
    );
    let (key, request) = csr(&cluster, "alice");
    let pem = cluster.sql_as("alice", &format!("SELECT pgssl.enroll({})", lit(&request)));
    let cert = cluster.dir("clients").join("alice.crt");
    fs::write(&cert, format!("{pem}\n")).unwrap();
    let files = CertFiles { cert, key };
    let conninfo = cluster.verify_full("alice", Some(&files));
    assert_eq!(
        cluster.psql_ok(&conninfo, "SELECT current_user || ' ' || pgssl.client_cn()"),
        "alice alice"
    );

    // Revoked, the worker signs a new CRL that the server enforces.
    let serial = serial_of(&pem);
    cluster.sql(&format!("SELECT pgssl.revoke('{serial}', 'keyCompromise')"));
    wait_until(
        "the revocation to reach logins",
        Duration::from_secs(30),
        || {
            let out = cluster.psql(&conninfo, "SELECT 1");
            !out.status.success()
                && String::from_utf8_lossy(&out.stderr).contains("certificate revoked")
        },
    );

    // A protected key with its command is what the audit wants.
    let rows = protection(&cluster);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|(status, _)| status == "ok"), "{rows:?}");

    // Not one log line shows the passphrase, at debug5 with every statement logged.
    let log = cluster.log();
    assert!(
        log.contains("pgssl worker: signed CRL number"),
        "{log:.2000}"
    );
    assert!(!log.contains(&pass), "the server log shows the passphrase");
    assert!(
        !log.contains("q7Zx"),
        "the server log shows part of the passphrase"
    );
}

#[test]
fn each_way_the_passphrase_command_fails_has_its_sqlstate() {
    let pass = passphrase();
    let cluster = TlsCluster::builder()
        .conf("shared_preload_libraries = 'pgssl'")
        .conf("log_statement = 'all'")
        .start();
    let good = command_printing(&cluster, &pass);
    set_and_reload(&cluster, "pgssl.ca_key_passphrase_command", Some(&good));
    cluster.sql("SELECT pgssl.init_ca() IS NOT NULL");
    let (_, request) = csr(&cluster, "bob");
    let sign = format!("SELECT pgssl.sign_csr({}) IS NOT NULL", lit(&request));
    assert_eq!(cluster.sql_as("postgres", &sign), "t");

    // Like ssl_passphrase_command: set in the configuration files only, and
    // hidden from roles that are not superusers.
    cluster.sql_error_as(
        "postgres",
        "SET pgssl.ca_key_passphrase_command = 'echo x'",
        "55P02",
    );
    cluster.sql("CREATE ROLE mallory LOGIN");
    cluster.sql_error_as("mallory", "SHOW pgssl.ca_key_passphrase_command", "42501");
    assert_eq!(
        cluster.sql_as(
            "mallory",
            "SELECT count(*) FROM pg_settings WHERE name = 'pgssl.ca_key_passphrase_command'"
        ),
        "0"
    );

    // Fails (and prints the passphrase first): 58000, and nothing it printed is shown.
    let failing = script(
        &cluster,
        "fails.sh",
        &format!("echo '{pass}'; echo 'diagnostic on stderr' >&2; exit 3"),
    );
    set_and_reload(
        &cluster,
        "pgssl.ca_key_passphrase_command",
        Some(&failing.display().to_string()),
    );
    let error = cluster.sql_error_as("postgres", &sign, "58000");
    assert!(error.contains("exit status: 3"), "{error}");
    assert!(!error.contains(&pass), "{error}");
    // Prints nothing: 58000.
    set_and_reload(&cluster, "pgssl.ca_key_passphrase_command", Some("true"));
    let error = cluster.sql_error_as("postgres", &sign, "58000");
    assert!(error.contains("printed no passphrase"), "{error}");
    // Prints a passphrase that does not decrypt the key: 28P01.
    set_and_reload(
        &cluster,
        "pgssl.ca_key_passphrase_command",
        Some("echo not-the-passphrase"),
    );
    cluster.sql_error_as("postgres", &sign, "28P01");
    // No command for an encrypted key: 55000, without waiting on a terminal.
    set_and_reload(&cluster, "pgssl.ca_key_passphrase_command", None);
    let error = cluster.sql_error_as("postgres", &sign, "55000");
    assert!(
        error.contains("pgssl.ca_key_passphrase_command is not set"),
        "{error}"
    );
    let rows = protection(&cluster);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "warn", "{rows:?}");

    // A new CA with a failing command: 58000, and no file left behind.
    set_and_reload(
        &cluster,
        "pgssl.ca_key_passphrase_command",
        Some(&failing.display().to_string()),
    );
    cluster.sql_error_as(
        "postgres",
        "SET pgssl.ca_cert_file = 'other.crt'; SET pgssl.ca_key_file = 'other.key';
         SELECT pgssl.init_ca('other CA')",
        "58000",
    );
    assert!(!cluster.data_dir.join("other.key").exists());
    assert!(!cluster.data_dir.join("other.crt").exists());

    // The good command again: signing works.
    set_and_reload(&cluster, "pgssl.ca_key_passphrase_command", Some(&good));
    assert_eq!(cluster.sql_as("postgres", &sign), "t");
    assert!(
        !cluster.log().contains(&pass),
        "the server log shows the passphrase"
    );
}

#[test]
fn check_config_names_who_can_read_an_unencrypted_ca_key() {
    let cluster = TlsCluster::builder().replication().start();
    cluster.sql("SELECT pgssl.init_ca() IS NOT NULL");
    let key = cluster.data_dir.join("pgssl_ca.key");
    assert!(fs::read_to_string(&key)
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));

    // Unencrypted in the data directory, nobody else can read it: warn.
    let rows = protection(&cluster);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "warn", "{rows:?}");
    assert!(rows[0].1.contains("data directory"), "{rows:?}");

    // Roles that cannot log in, or are superusers, do not count.
    cluster.sql(
        "CREATE ROLE readers NOLOGIN; GRANT pg_read_server_files TO readers;
         CREATE ROLE admin LOGIN SUPERUSER; GRANT pg_read_server_files TO admin",
    );
    assert_eq!(protection(&cluster)[0].0, "warn");

    cluster.sql(
        "CREATE ROLE alice LOGIN; GRANT pg_read_server_files TO alice;
         CREATE ROLE bob LOGIN; GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) TO bob;
         CREATE ROLE rep LOGIN REPLICATION;
         CREATE ROLE binreaders NOLOGIN;
         GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO binreaders;
         CREATE ROLE carol LOGIN NOINHERIT IN ROLE binreaders;
         CREATE ROLE dave LOGIN",
    );
    // The threat is real: bob reads the key with pg_read_file.
    assert!(cluster
        .sql_as("bob", "SELECT pg_catalog.pg_read_file('pgssl_ca.key')")
        .contains("-----BEGIN PRIVATE KEY-----"));
    let rows = protection(&cluster);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (status, detail) = &rows[0];
    assert_eq!(status, "fail", "{detail}");
    for expected in [
        "alice (member of pg_read_server_files)",
        "bob (EXECUTE on pg_read_file(text))",
        "carol (EXECUTE on pg_read_binary_file(text))",
        "rep (REPLICATION",
    ] {
        assert!(detail.contains(expected), "{expected} missing: {detail}");
    }
    for absent in ["readers (", "admin (", "dave (", "postgres ("] {
        assert!(!detail.contains(absent), "{absent} listed: {detail}");
    }

    // Converted with openssl as docs/ca.md says, with a command set: ok,
    // and the CA still signs.
    let pass = passphrase();
    let work = cluster.dir("convert");
    let pass_file = work.join("pass");
    fs::write(&pass_file, format!("{pass}\n")).unwrap();
    pgssl_tests::openssl(
        &work,
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            key.to_str().unwrap(),
            "-out",
            "encrypted.key",
            "-passout",
            &format!("file:{}", pass_file.display()),
        ],
    );
    let encrypted = fs::read(work.join("encrypted.key")).unwrap();
    let command = command_printing(&cluster, &pass);
    set_and_reload(&cluster, "pgssl.ca_key_passphrase_command", Some(&command));
    fs::remove_file(&key).unwrap();
    cluster.write_data_file("pgssl_ca.key", &encrypted, 0o600);
    assert_encrypted_key(&key, &pass);
    let rows = protection(&cluster);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "ok", "{rows:?}");
    let (_, request) = csr(&cluster, "dave");
    let pem = cluster.sql(&format!("SELECT pgssl.sign_csr({})", lit(&request)));
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
}

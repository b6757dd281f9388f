//! Revocation in production, end to end: the pgssl worker (preloaded) keeps
//! the CRL signed and installed on the primary and on a streaming standby,
//! with the server clock moved on by libfaketime; revocations reach new
//! logins and open sessions; nothing pgssl hands out is unrevocable.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use openssl::x509::{X509Crl, X509};
use pgssl_tests::{csr_pem, wait_until, CertFiles, KeyType, TlsCluster};

// ---------------------------------------------------------------- helpers

/// A primary with the pgssl worker preloaded, a pgssl CA trusted for client
/// certificates, `ssl_crl_file = 'pgssl.crl'`, and the first CRL installed
/// by the worker; `extra` lines go into postgresql.conf.
fn primary(extra: &[&str]) -> TlsCluster {
    let mut builder = TlsCluster::builder()
        .replication()
        .conf("shared_preload_libraries = 'pgssl'");
    for line in extra {
        builder = builder.conf(line);
    }
    let cluster = builder.start();
    cluster.sql("SELECT pgssl.init_ca('pgssl revocation CA', 3650) IS NOT NULL");
    set_and_reload(&cluster, "ssl_ca_file", "pgssl_ca.crt");
    set_and_reload(&cluster, "ssl_crl_file", "pgssl.crl");
    // The worker signs the first CRL and installs it, without a command.
    wait_until("the first CRL", Duration::from_secs(20), || {
        cluster.data_dir.join("pgssl.crl").exists()
    });
    cluster
}

/// `ALTER SYSTEM SET name = value`, reload, and wait until new sessions see it.
fn set_and_reload(cluster: &TlsCluster, name: &str, value: &str) {
    cluster.sql(&format!("ALTER SYSTEM SET {name} = '{value}'"));
    cluster.sql("SELECT pg_reload_conf()");
    wait_until(
        &format!("{name} = {value}"),
        Duration::from_secs(20),
        || cluster.sql(&format!("SELECT current_setting('{name}', true)")) == value,
    );
}

/// A login role with a certificate from the pgssl CA, valid 397 days (so it
/// is still valid when the server's clock is moved 100 days on); returns
/// the files psql uses and the serial (hex).
fn issue(cluster: &TlsCluster, role: &str) -> (CertFiles, String) {
    cluster.sql(&format!(
        "DO $$BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN END$$"
    ));
    let key = KeyType::EcP256.generate();
    let csr = csr_pem(&[role], &key);
    let pem = cluster.sql(&format!("SELECT pgssl.sign_csr($csr${csr}$csr$, 397)"));
    let files = write_client(
        cluster,
        role,
        &pem,
        &key.private_key_to_pem_pkcs8().unwrap(),
    );
    (files, serial_of(&pem))
}

fn write_client(cluster: &TlsCluster, stem: &str, cert_pem: &str, key_pem: &[u8]) -> CertFiles {
    let stem = format!("{stem}-{}", pgssl_tests::unique_suffix());
    let cert = cluster.client_dir.join(format!("{stem}.crt"));
    let key = cluster.client_dir.join(format!("{stem}.key"));
    fs::write(&cert, format!("{cert_pem}\n")).unwrap();
    fs::write(&key, key_pem).unwrap();
    fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    CertFiles { cert, key }
}

fn serial_of(pem: &str) -> String {
    let cert = X509::from_pem(pem.as_bytes()).unwrap();
    let bn = cert.serial_number().to_bn().unwrap();
    bn.to_hex_str().unwrap().to_lowercase()
}

/// Whether `role` logs in with `files` over verify-full.
fn logs_in(cluster: &TlsCluster, role: &str, files: &CertFiles) -> bool {
    cluster
        .psql(&cluster.verify_full(role, Some(files)), "SELECT 1")
        .status
        .success()
}

/// Waits until `role` logs in (the worker may be installing a fresh CRL).
fn wait_logs_in(cluster: &TlsCluster, role: &str, files: &CertFiles, within: Duration) {
    wait_until(&format!("{role} logging in"), within, || {
        logs_in(cluster, role, files)
    });
}

/// Whether the handshake refuses `role`'s certificate as revoked. (A login
/// that gets through and is then ended by the worker does not count.)
fn refused_as_revoked(cluster: &TlsCluster, role: &str, files: &CertFiles) -> bool {
    let out = cluster.psql(&cluster.verify_full(role, Some(files)), "SELECT 1");
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("certificate revoked")
}

/// Asserts that `role` is refused with "certificate revoked".
fn assert_revoked(cluster: &TlsCluster, role: &str, files: &CertFiles) {
    let out = cluster.psql(&cluster.verify_full(role, Some(files)), "SELECT 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("certificate revoked"),
        "{role} was not refused as revoked: {stderr}"
    );
}

/// Waits until `role` is refused as revoked; returns how long that took.
fn wait_refused(cluster: &TlsCluster, role: &str, files: &CertFiles, within: Duration) -> Duration {
    let start = Instant::now();
    wait_until(&format!("{role} being refused as revoked"), within, || {
        refused_as_revoked(cluster, role, files)
    });
    start.elapsed()
}

/// The pgssl CA's CRL in the file the server uses.
fn installed_crl(cluster: &TlsCluster, file: &str) -> X509Crl {
    let text = fs::read_to_string(cluster.data_dir.join(file)).unwrap();
    let ca = X509::from_pem(cluster.sql("SELECT pgssl.ca_cert()").as_bytes()).unwrap();
    let crls = crls_in(&text);
    crls.into_iter()
        .find(|c| c.issuer_name().to_der().unwrap() == ca.subject_name().to_der().unwrap())
        .expect("the pgssl CA's CRL in the file")
}

fn crls_in(text: &str) -> Vec<X509Crl> {
    text.split_inclusive("-----END X509 CRL-----")
        .filter(|b| b.contains("-----BEGIN X509 CRL-----"))
        .map(|b| X509Crl::from_pem(b.trim().as_bytes()).unwrap())
        .collect()
}

/// Seconds until the nextUpdate of `crl`, by the given clock offset in days.
fn days_left(crl: &X509Crl, offset_days: i64) -> i64 {
    let next = crl.next_update().unwrap();
    let fake_now = openssl::asn1::Asn1Time::days_from_now(offset_days as u32).unwrap();
    fake_now.diff(next).unwrap().days as i64
}

/// A psql session kept open: its backend pid, and its stdin to keep it.
struct OpenSession {
    child: Child,
    _stdin: ChildStdin,
    pid: i32,
}

impl OpenSession {
    fn open(cluster: &TlsCluster, role: &str, files: &CertFiles) -> OpenSession {
        let mut child = cluster
            .psql_command(&cluster.verify_full(role, Some(files)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "SELECT pg_backend_pid();").unwrap();
        stdin.flush().unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let pid = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pid: {line:?}"));
        OpenSession {
            child,
            _stdin: stdin,
            pid,
        }
    }

    fn alive_on(&self, cluster: &TlsCluster) -> bool {
        cluster.sql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {}",
            self.pid
        )) == "1"
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Restarts `node` with its clock moved by `offset` under libfaketime, and
/// waits until the pgssl worker runs on that clock.
///
/// libfaketime leaves a process on the real clock when it is forked inside
/// a signal handler that interrupted an intercepted `select()` (its
/// per-thread guard is set there and the child inherits it). PostgreSQL 15
/// starts background workers from its SIGCHLD handler, so the worker may
/// come up on the real clock; such a worker is terminated and the
/// postmaster starts it again from its main loop, on the moved clock. This
/// is the harness correcting the simulation, not a pgssl command.
fn restart_with_clock(node: &mut TlsCluster, offset: &str) {
    node.restart_with_faketime(Some(offset));
    wait_until(
        "the pgssl worker on the server's clock",
        Duration::from_secs(30),
        || {
            let row = node.sql(
                "SELECT pid, backend_start < now() - interval '1 hour'
               FROM pg_stat_activity WHERE backend_type = 'pgssl worker'",
            );
            match row.split_once('|') {
                Some((pid, "t")) => {
                    node.sql(&format!("SELECT pg_terminate_backend({pid})"));
                    false
                }
                Some((_, "f")) => true,
                _ => false,
            }
        },
    );
}

fn assert_log_has(cluster: &TlsCluster, needle: &str) {
    let log = cluster.log();
    assert!(log.contains(needle), "server log lacks {needle:?}:\n{log}");
}

fn wait_log(cluster: &TlsCluster, needle: &str, within: Duration) {
    wait_until(&format!("{needle:?} in the server log"), within, || {
        cluster.log().contains(needle)
    });
}

// ---------------------------------------------------------------- tests

/// Done when: 30 and 100 days after a revocation, with no command run by
/// hand in between, a valid certificate logs in on primary and standby and
/// the revoked one is refused on both.
#[test]
fn the_crl_never_lapses_on_primary_and_standby() {
    let mut primary = primary(&[]);
    let (alice, alice_serial) = issue(&primary, "alice");
    let (bob, _) = issue(&primary, "bob");
    wait_logs_in(&primary, "alice", &alice, Duration::from_secs(20));
    let mut standby = primary.start_standby();
    wait_logs_in(&standby, "alice", &alice, Duration::from_secs(20));

    primary.sql(&format!(
        "SELECT pgssl.revoke('{alice_serial}', 'keyCompromise')"
    ));
    let took = wait_refused(&primary, "alice", &alice, Duration::from_secs(10));
    eprintln!("new logins refused on the primary {took:?} after the commit");
    assert!(
        took < Duration::from_secs(2),
        "primary refused after {took:?}"
    );
    standby.catch_up_with(&primary);
    let took = wait_refused(&standby, "alice", &alice, Duration::from_secs(10));
    eprintln!("new logins refused on the standby {took:?} after replay");
    assert!(
        took < Duration::from_secs(10),
        "standby refused after {took:?}"
    );
    assert!(logs_in(&primary, "bob", &bob) && logs_in(&standby, "bob", &bob));
    let first = installed_crl(&primary, "pgssl.crl");
    assert!(
        (6..=7).contains(&days_left(&first, 0)),
        "a week's CRL by default"
    );

    for days in [30, 100] {
        let offset = format!("+{days}d");
        restart_with_clock(&mut primary, &offset);
        restart_with_clock(&mut standby, &offset);
        // Nothing is run by hand: the worker re-signs on the primary, the
        // standby installs the replicated CRL.
        wait_logs_in(&primary, "bob", &bob, Duration::from_secs(20));
        wait_logs_in(&standby, "bob", &bob, Duration::from_secs(20));
        assert_revoked(&primary, "alice", &alice);
        assert_revoked(&standby, "alice", &alice);
        for node in [&primary, &standby] {
            let crl = installed_crl(node, "pgssl.crl");
            assert!(
                days_left(&crl, days) >= 3,
                "{days} days on: the CRL is current"
            );
        }
        assert_eq!(
            fs::read_to_string(primary.data_dir.join("pgssl.crl")).unwrap(),
            fs::read_to_string(standby.data_dir.join("pgssl.crl")).unwrap(),
            "the standby installs the primary's CRL"
        );
    }
    // The audit agrees on both nodes (it runs on a standby too).
    for node in [&primary, &standby] {
        for name in [
            "crl_worker",
            "crl_coverage",
            "crl_expiry",
            "crl_lists_revoked",
        ] {
            assert_eq!(check(node, name), vec!["ok"], "{name}");
        }
    }
    assert_log_has(&primary, "pgssl worker: signed CRL number");
    assert_log_has(&standby, "pgssl worker: installed CRL number");
    assert!(
        !standby.log().contains("signed CRL"),
        "a standby never signs"
    );
}

/// Done when: a session open with a certificate is ended within 2 s of its
/// revocation committing, on primary and standby; other sessions stay up;
/// with the setting off, it stays up.
#[test]
fn sessions_with_a_revoked_certificate_end_on_primary_and_standby() {
    let primary = primary(&[]);
    let (alice, alice_serial) = issue(&primary, "alice");
    let (carol, carol_serial) = issue(&primary, "carol");
    let (bob, _) = issue(&primary, "bob");
    wait_logs_in(&primary, "alice", &alice, Duration::from_secs(20));
    let (erin, erin_serial) = issue(&primary, "erin");
    let standby = primary.start_standby();
    wait_logs_in(&standby, "carol", &carol, Duration::from_secs(20));

    let on_primary = OpenSession::open(&primary, "alice", &alice);
    let bob_on_primary = OpenSession::open(&primary, "bob", &bob);
    let on_standby = OpenSession::open(&standby, "carol", &carol);
    let bob_on_standby = OpenSession::open(&standby, "bob", &bob);
    let erin_on_primary = OpenSession::open(&primary, "erin", &erin);
    assert!(on_primary.alive_on(&primary) && on_standby.alive_on(&standby));

    // erin's certificate is superseded (renewed): no login with it any more,
    // but her session, whose key nobody doubts, stays.
    primary.sql(&format!(
        "SELECT pgssl.revoke('{alice_serial}'), pgssl.revoke('{carol_serial}', 'keyCompromise'), \
                pgssl.revoke('{erin_serial}', 'superseded')"
    ));
    let committed = Instant::now();
    wait_until("alice's session to end", Duration::from_secs(10), || {
        !on_primary.alive_on(&primary)
    });
    let primary_took = committed.elapsed();
    wait_until(
        "carol's session on the standby to end",
        Duration::from_secs(10),
        || !on_standby.alive_on(&standby),
    );
    let standby_took = committed.elapsed();
    eprintln!(
        "sessions ended {primary_took:?} (primary) and {standby_took:?} (standby) after the commit"
    );
    assert!(
        primary_took < Duration::from_secs(2),
        "primary: {primary_took:?}"
    );
    assert!(
        standby_took < Duration::from_secs(2),
        "standby: {standby_took:?}"
    );
    assert!(bob_on_primary.alive_on(&primary), "other sessions stay up");
    assert!(bob_on_standby.alive_on(&standby), "other sessions stay up");
    wait_refused(&primary, "erin", &erin, Duration::from_secs(10));
    assert!(
        erin_on_primary.alive_on(&primary),
        "a superseded certificate's session stays up"
    );
    assert_log_has(
        &primary,
        &format!(
            "terminated session pid {} of role \"alice\": its client certificate serial {alice_serial}",
            on_primary.pid
        ),
    );
    assert_log_has(
        &standby,
        &format!(
            "terminated session pid {} of role \"carol\": its client certificate serial {carol_serial}",
            on_standby.pid
        ),
    );

    // With pgssl.terminate_revoked_sessions off, new logins are refused but
    // the open session stays.
    set_and_reload(&primary, "pgssl.terminate_revoked_sessions", "off");
    let (dave, dave_serial) = issue(&primary, "dave");
    let dave_session = OpenSession::open(&primary, "dave", &dave);
    primary.sql(&format!("SELECT pgssl.revoke('{dave_serial}')"));
    wait_refused(&primary, "dave", &dave, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(dave_session.alive_on(&primary), "the setting is off");
    assert!(bob_on_primary.alive_on(&primary));
}

/// Done when: a certificate from a rolled-back `enroll` is revoked by its
/// serial and then refused.
#[test]
fn a_certificate_from_a_rolled_back_enroll_is_revoked_by_serial() {
    let primary = primary(&[]);
    primary.sql(
        "CREATE ROLE erin LOGIN; GRANT EXECUTE ON FUNCTION pgssl.enroll(text, integer) TO erin",
    );
    let key = KeyType::EcP256.generate();
    let csr = csr_pem(&["erin"], &key);
    let socket = primary.socket_conninfo("erin");
    let out = primary
        .psql_command(&socket)
        .arg("-c")
        .arg("BEGIN")
        .arg("-c")
        .arg(format!("SELECT pgssl.enroll($csr${csr}$csr$, 30)"))
        .arg("-c")
        .arg("ROLLBACK")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let serial = serial_of(&pem);
    assert_eq!(
        primary.sql(&format!(
            "SELECT count(*) FROM pgssl.issued_certs WHERE serial = '{serial}'"
        )),
        "0",
        "the registry row rolled back"
    );
    let erin = write_client(
        &primary,
        "erin",
        &pem,
        &key.private_key_to_pem_pkcs8().unwrap(),
    );
    assert!(
        logs_in(&primary, "erin", &erin),
        "valid, and not in the registry"
    );

    // The serial is in the server log, which no rollback undoes.
    assert_log_has(
        &primary,
        &format!("pgssl issued certificate serial {serial} for CN \"erin\""),
    );
    let out = primary.psql(
        &primary.socket_conninfo("postgres"),
        &format!("SELECT pgssl.revoke('{serial}', 'keyCompromise')"),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t");
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("WARNING:") && warning.contains("not in pgssl.issued_certs"),
        "{warning}"
    );
    let took = wait_refused(&primary, "erin", &erin, Duration::from_secs(10));
    assert!(took < Duration::from_secs(2), "{took:?}");
    let crl = installed_crl(&primary, "pgssl.crl");
    let cert = X509::from_pem(pem.as_bytes()).unwrap();
    assert!(matches!(
        crl.get_by_serial(cert.serial_number()),
        openssl::x509::CrlStatus::Revoked(_)
    ));
    assert_eq!(
        primary.sql(&format!(
            "SELECT revocation_reason FROM pgssl.unregistered_revocations WHERE serial = '{serial}'"
        )),
        "keyCompromise"
    );
}

/// A CRL of the CA in `dir` (`<stem>.crt`, `<stem>.key`), made as a DBA
/// would with `openssl ca -gencrl`; `clock` runs openssl under faketime.
fn dba_crl(dir: &Path, stem: &str, validity: &[&str], clock: Option<&str>) -> String {
    fs::write(
        dir.join("crl.cnf"),
        "[ca]\ndefault_ca = CA_default\n[CA_default]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\n",
    )
    .unwrap();
    fs::write(dir.join("index.txt"), "").unwrap();
    fs::write(dir.join("crlnumber"), "01\n").unwrap();
    let out_name = format!("{stem}-{}.crl", pgssl_tests::unique_suffix());
    let mut cmd = match clock {
        Some(offset) => {
            let mut c = Command::new("faketime");
            c.args(["-f", offset, "openssl"]);
            c
        }
        None => Command::new("openssl"),
    };
    let out = cmd
        .args(["ca", "-gencrl", "-config", "crl.cnf", "-keyfile"])
        .arg(format!("{stem}.key"))
        .arg("-cert")
        .arg(format!("{stem}.crt"))
        .arg("-out")
        .arg(&out_name)
        .args(validity)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read_to_string(dir.join(out_name)).unwrap()
}

/// The seed document's client files in a folder of `cluster`.
fn seed_files(cluster: &TlsCluster) -> std::path::PathBuf {
    let dir = cluster.dir("seed");
    pgssl_tests::seed_recipe(&dir);
    fs::set_permissions(
        dir.join("client.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    dir
}

fn check(cluster: &TlsCluster, name: &str) -> Vec<String> {
    let out = cluster.sql(&format!(
        "SELECT status FROM pgssl.check_config() WHERE \"check\" = '{name}' ORDER BY status"
    ));
    out.lines().map(str::to_string).collect()
}

/// Done when: with `ssl_ca_file` holding the pgssl CA and the seed
/// document's `root-client-ca`, the seed's `CN=postgres` certificate still
/// logs in after revocations and CRL refreshes; a revoked pgssl certificate
/// does not.
#[test]
fn the_seed_client_ca_keeps_its_crl_through_every_refresh() {
    let mut primary = TlsCluster::builder()
        .conf("shared_preload_libraries = 'pgssl'")
        .start();
    let seed = seed_files(&primary);
    // The DBA gives root-client-ca a CRL of its own, valid ten years.
    let seed_crl = dba_crl(&seed, "ca-client", &["-crldays", "3650"], None);
    primary.sql("SELECT pgssl.init_ca('pgssl revocation CA', 3650) IS NOT NULL");
    let bundle = format!(
        "{}{}",
        fs::read_to_string(primary.data_dir.join("pgssl_ca.crt")).unwrap(),
        fs::read_to_string(seed.join("ca-client.crt")).unwrap()
    );
    primary.write_data_file("clients.crt", bundle.as_bytes(), 0o644);
    primary.write_data_file("pgssl.crl", seed_crl.as_bytes(), 0o644);
    set_and_reload(&primary, "ssl_ca_file", "clients.crt");
    set_and_reload(&primary, "ssl_crl_file", "pgssl.crl");
    wait_until("both CRLs in the file", Duration::from_secs(20), || {
        crls_in(&fs::read_to_string(primary.data_dir.join("pgssl.crl")).unwrap()).len() == 2
    });
    let seed_client = CertFiles {
        cert: seed.join("client.crt"),
        key: seed.join("client.key"),
    };
    wait_logs_in(&primary, "postgres", &seed_client, Duration::from_secs(10));

    let (alice, alice_serial) = issue(&primary, "alice");
    let (bob, bob_serial) = issue(&primary, "bob");
    let (carol, _) = issue(&primary, "carol");
    primary.sql(&format!("SELECT pgssl.revoke('{alice_serial}')"));
    wait_refused(&primary, "alice", &alice, Duration::from_secs(10));
    primary.sql(&format!("SELECT pgssl.revoke('{bob_serial}')"));
    wait_refused(&primary, "bob", &bob, Duration::from_secs(10));
    assert!(
        logs_in(&primary, "postgres", &seed_client),
        "seed client after revocations"
    );

    // A refresh: 30 days on, the worker re-signs; the seed CA's CRL stays.
    restart_with_clock(&mut primary, "+30d");
    wait_logs_in(&primary, "carol", &carol, Duration::from_secs(20));
    assert!(
        logs_in(&primary, "postgres", &seed_client),
        "seed client after a refresh"
    );
    assert_revoked(&primary, "alice", &alice);
    assert_revoked(&primary, "bob", &bob);
    let text = fs::read_to_string(primary.data_dir.join("pgssl.crl")).unwrap();
    assert!(
        text.contains(seed_crl.trim()),
        "root-client-ca's CRL kept as it was"
    );
    assert_eq!(crls_in(&text).len(), 2);
    for name in [
        "crl_worker",
        "crl_coverage",
        "crl_expiry",
        "crl_lists_revoked",
    ] {
        assert_eq!(check(&primary, name), vec!["ok"], "{name}");
    }
}

/// Done when: `check_config()` reports each new check as described, tested
/// with each broken set-up.
#[test]
fn check_config_fails_each_broken_revocation_set_up() {
    // Without the preload: a warning, then a failure once revocation is in use.
    let plain = TlsCluster::start();
    assert_eq!(check(&plain, "crl_worker"), vec!["warn"]);
    plain.sql("SELECT pgssl.init_ca() IS NOT NULL");
    let (_, serial) = issue(&plain, "alice");
    set_and_reload(&plain, "ssl_ca_file", "pgssl_ca.crt");
    set_and_reload(&plain, "ssl_crl_file", "pgssl.crl");
    plain.sql("SELECT pgssl.install_crl()");
    plain.sql(&format!("SELECT pgssl.revoke('{serial}')"));
    assert_eq!(check(&plain, "crl_worker"), vec!["fail"]);
    // The revocation is in the registry, not in the file the server reads.
    assert_eq!(check(&plain, "crl_lists_revoked"), vec!["fail"]);
    plain.sql("SELECT pgssl.install_crl()");
    assert_eq!(check(&plain, "crl_lists_revoked"), vec!["ok"]);

    // With the worker: a second CA in ssl_ca_file without a CRL.
    let primary = primary(&[]);
    let other = seed_files(&primary);
    let bundle = format!(
        "{}{}",
        fs::read_to_string(primary.data_dir.join("pgssl_ca.crt")).unwrap(),
        fs::read_to_string(other.join("ca-client.crt")).unwrap()
    );
    primary.write_data_file("clients.crt", bundle.as_bytes(), 0o644);
    set_and_reload(&primary, "ssl_ca_file", "clients.crt");
    assert_eq!(check(&primary, "crl_worker"), vec!["ok"]);
    assert_eq!(check(&primary, "crl_coverage"), vec!["fail"]);
    let detail =
        primary.sql("SELECT detail FROM pgssl.check_config() WHERE \"check\" = 'crl_coverage'");
    assert!(detail.contains("root-client-ca"), "{detail}");

    // Its CRL due within a day, then expired: the worker keeps it as it is.
    let install_other = |crl: &str| {
        let path = primary.data_dir.join("pgssl.crl");
        let ours = fs::read_to_string(&path).unwrap();
        primary.write_data_file("pgssl.crl", format!("{crl}{ours}").as_bytes(), 0o644);
    };
    install_other(&dba_crl(&other, "ca-client", &["-crlhours", "2"], None));
    assert_eq!(check(&primary, "crl_coverage"), vec!["ok"]);
    assert_eq!(check(&primary, "crl_expiry"), vec!["fail"]);
    let fresh = fs::read_to_string(primary.data_dir.join("pgssl.crl")).unwrap();
    let ours: String = fresh
        .split_inclusive("-----END X509 CRL-----\n")
        .skip(1)
        .collect();
    primary.write_data_file("pgssl.crl", ours.as_bytes(), 0o644);
    install_other(&dba_crl(
        &other,
        "ca-client",
        &["-crldays", "1"],
        Some("-3d"),
    ));
    let detail =
        primary.sql("SELECT detail FROM pgssl.check_config() WHERE \"check\" = 'crl_expiry'");
    assert!(detail.contains("expired"), "{detail}");
    assert_eq!(check(&primary, "crl_expiry"), vec!["fail"]);
}

/// Runs a command as root (the test's user), panicking on failure.
fn root(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Done when (faults): the CA key unreadable, `ssl_crl_file` a symbolic
/// link: the worker logs a clear error, keeps the last good CRL in place,
/// retries, and the server keeps accepting what it accepted.
#[test]
fn an_unreadable_key_and_a_symlinked_crl_file_keep_the_last_good_crl() {
    let primary = primary(&[]);
    let (alice, alice_serial) = issue(&primary, "alice");
    let (bob, bob_serial) = issue(&primary, "bob");
    let (carol, _) = issue(&primary, "carol");
    wait_logs_in(&primary, "alice", &alice, Duration::from_secs(20));
    let crl_path = primary.data_dir.join("pgssl.crl");
    let key = primary.data_dir.join("pgssl_ca.key");

    // The CA key unreadable: nothing can be signed.
    root("chmod", &["000", key.to_str().unwrap()]);
    let good = fs::read_to_string(&crl_path).unwrap();
    primary.sql(&format!("SELECT pgssl.revoke('{alice_serial}')"));
    wait_log(
        &primary,
        "pgssl worker: signing the CRL failed",
        Duration::from_secs(10),
    );
    assert_log_has(
        &primary,
        "the CRL file in place is kept, retrying every 5 s",
    );
    assert_log_has(&primary, "pgssl_ca.key");
    assert_eq!(
        fs::read_to_string(&crl_path).unwrap(),
        good,
        "the last good CRL stays"
    );
    // Valid certificates still log in. (The revoked one is not in the CRL
    // yet; the worker ends its sessions all the same.)
    assert!(logs_in(&primary, "bob", &bob) && logs_in(&primary, "carol", &carol));
    // Readable again: the next retry signs and installs.
    root("chmod", &["600", key.to_str().unwrap()]);
    wait_refused(&primary, "alice", &alice, Duration::from_secs(15));
    wait_log(
        &primary,
        "pgssl worker: signing the CRL works again",
        Duration::from_secs(5),
    );

    // ssl_crl_file a symbolic link: pgssl never writes through it.
    let real = primary.data_dir.join("real.crl");
    fs::rename(&crl_path, &real).unwrap();
    std::os::unix::fs::symlink(&real, &crl_path).unwrap();
    let good = fs::read_to_string(&real).unwrap();
    primary.sql(&format!("SELECT pgssl.revoke('{bob_serial}')"));
    wait_log(&primary, "is a symbolic link", Duration::from_secs(10));
    assert_log_has(&primary, "pgssl worker: installing the CRL failed");
    assert!(fs::symlink_metadata(&crl_path)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(&real).unwrap(), good);
    assert!(logs_in(&primary, "carol", &carol));
    // A regular file again: installed at the next retry.
    fs::remove_file(&crl_path).unwrap();
    primary.write_data_file("pgssl.crl", good.as_bytes(), 0o644);
    wait_refused(&primary, "bob", &bob, Duration::from_secs(15));
    assert!(logs_in(&primary, "carol", &carol));
    assert_revoked(&primary, "alice", &alice);
}

/// A tmpfs mounted on a folder, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Done when (faults): the data directory full (a small tmpfs): the worker
/// logs a clear error, keeps the last good CRL, retries, and the server keeps
/// accepting what it accepted. The tmpfs is mounted on the folder of the
/// data directory that holds `ssl_crl_file`, so the server's own files (WAL,
/// log) keep working while the CRL cannot be written.
#[test]
fn a_full_file_system_keeps_the_last_good_crl() {
    let primary = TlsCluster::builder()
        .conf("shared_preload_libraries = 'pgssl'")
        .start();
    let dir = primary.data_dir.join("crl");
    fs::create_dir(&dir).unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "this test mounts a small tmpfs and needs root: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _mount = Tmpfs(dir.clone());
    root("chown", &["postgres:postgres", dir.to_str().unwrap()]);
    primary.sql("SELECT pgssl.init_ca('pgssl revocation CA', 3650) IS NOT NULL");
    set_and_reload(&primary, "ssl_ca_file", "pgssl_ca.crt");
    set_and_reload(&primary, "ssl_crl_file", "crl/pgssl.crl");
    let crl_path = dir.join("pgssl.crl");
    wait_until("the first CRL", Duration::from_secs(20), || {
        crl_path.exists()
    });
    let (alice, alice_serial) = issue(&primary, "alice");
    let (bob, _) = issue(&primary, "bob");
    wait_logs_in(&primary, "alice", &alice, Duration::from_secs(20));

    // Fill the file system.
    let filler = dir.join("filler");
    let mut file = fs::File::create(&filler).unwrap();
    let block = vec![0u8; 4096];
    while file.write_all(&block).is_ok() {}
    drop(file);
    let good = fs::read_to_string(&crl_path).unwrap();
    primary.sql(&format!("SELECT pgssl.revoke('{alice_serial}')"));
    wait_log(&primary, "No space left on device", Duration::from_secs(10));
    assert_log_has(&primary, "pgssl worker: installing the CRL failed");
    assert_eq!(
        fs::read_to_string(&crl_path).unwrap(),
        good,
        "the last good CRL stays"
    );
    let leftovers: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no half-written file left: {leftovers:?}"
    );
    assert!(logs_in(&primary, "bob", &bob));

    // Room again: installed at the next retry.
    fs::remove_file(&filler).unwrap();
    wait_refused(&primary, "alice", &alice, Duration::from_secs(15));
    assert!(logs_in(&primary, "bob", &bob));
}

/// Done when (faults): the database named in `pgssl.database` missing.
#[test]
fn a_missing_pgssl_database_is_logged_and_retried() {
    let primary = primary(&[]);
    let (alice, alice_serial) = issue(&primary, "alice");
    let (bob, _) = issue(&primary, "bob");
    wait_logs_in(&primary, "alice", &alice, Duration::from_secs(20));
    let crl_path = primary.data_dir.join("pgssl.crl");
    let good = fs::read_to_string(&crl_path).unwrap();

    set_and_reload(&primary, "pgssl.database", "nosuch");
    wait_log(
        &primary,
        "FATAL:  database \"nosuch\" does not exist",
        Duration::from_secs(30),
    );
    assert_log_has(
        &primary,
        "pgssl worker: pgssl.database changed to \"nosuch\"",
    );
    assert_log_has(
        &primary,
        "pgssl worker: started, connecting to database \"nosuch\" (pgssl.database)",
    );
    primary.sql(&format!("SELECT pgssl.revoke('{alice_serial}')"));
    // The postmaster starts the worker again every 10 s; it fails again.
    let attempts = || {
        primary
            .log()
            .matches("database \"nosuch\" does not exist")
            .count()
    };
    let first = attempts();
    wait_until("another attempt", Duration::from_secs(25), || {
        attempts() > first
    });
    assert_eq!(
        fs::read_to_string(&crl_path).unwrap(),
        good,
        "the last good CRL stays"
    );
    assert!(logs_in(&primary, "bob", &bob) && logs_in(&primary, "alice", &alice));

    set_and_reload(&primary, "pgssl.database", "postgres");
    wait_refused(&primary, "alice", &alice, Duration::from_secs(30));
    assert!(logs_in(&primary, "bob", &bob));
}

//! `pgssl renew` end to end: alice enrolls over a password login, renews over a login with
//! her certificate (psql's default files, `~/.postgresql/postgresql.crt` and `.key`), and logs
//! in with the new pair; a password login is refused; `--daemon` renews a certificate of a
//! few minutes' life again and again while the test watches the files, and retries while
//! the server is down; with an expired certificate it gives up with status 1.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::x509::X509;
use pgssl_tests::{clean_command, wait_until, Ca, CertFiles, CertSpec, TlsCluster};

/// `pgssl` with no `PG*` variables and `HOME` at `home`.
fn pgssl_command(home: &Path) -> Command {
    let mut cmd = clean_command(Path::new(env!("CARGO_BIN_EXE_pgssl")), home);
    cmd.current_dir(home);
    cmd
}

fn pgssl(home: &Path, args: &[&str]) -> Output {
    pgssl_command(home).args(args).output().expect("pgssl runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A cluster that trusts its pgssl CA for client certificates, and `alice` with a password,
/// allowed to enroll.
fn cluster() -> TlsCluster {
    let cluster = TlsCluster::start();
    cluster.sql("SELECT pgssl.init_ca('pgssl renew CLI test CA') IS NOT NULL");
    set_and_reload(&cluster, "ssl_ca_file", "pgssl_ca.crt");
    cluster.sql("CREATE ROLE alice LOGIN PASSWORD 'pw'");
    cluster.sql("GRANT EXECUTE ON FUNCTION pgssl.enroll(text, integer) TO alice");
    cluster
}

/// `ALTER SYSTEM SET name = value` (after `LOAD 'pgssl'`, as PostgreSQL 15 needs for
/// `pgssl.*`, in one session: psql -f), reload, and wait until new sessions see it.
fn set_and_reload(cluster: &TlsCluster, name: &str, value: &str) {
    let file = cluster
        .dir("sql")
        .join(format!("{}.sql", pgssl_tests::unique_suffix()));
    fs::write(
        &file,
        format!("LOAD 'pgssl';\nALTER SYSTEM SET {name} = '{value}';\nSELECT pg_reload_conf();\n"),
    )
    .unwrap();
    let out = cluster
        .psql_command(&cluster.socket_conninfo("postgres"))
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_until(
        &format!("{name} = {value}"),
        Duration::from_secs(20),
        || cluster.sql(&format!("SELECT current_setting('{name}', true)")) == value,
    );
}

/// psql's default client files under `home`.
fn default_files(home: &Path) -> CertFiles {
    CertFiles {
        cert: home.join(".postgresql/postgresql.crt"),
        key: home.join(".postgresql/postgresql.key"),
    }
}

/// alice enrolls with `pgssl enroll` over a password login, into `~/.postgresql`.
fn enroll(cluster: &TlsCluster, home: &Path) {
    let login = cluster.conninfo(&format!(
        "user=alice password=pw sslmode=disable sslrootcert={}",
        cluster.root_cert.display()
    ));
    let out = pgssl(home, &["enroll", &login]);
    assert!(out.status.success(), "pgssl enroll: {}", text(&out.stderr));
}

/// The connection string `pgssl renew` and psql log in with: no sslcert or sslkey, so both
/// take `~/.postgresql/postgresql.crt` and `.key`.
fn cert_login(cluster: &TlsCluster) -> String {
    cluster.conninfo(&format!(
        "user=alice sslmode=verify-full sslrootcert={}",
        cluster.root_cert.display()
    ))
}

fn serial_of(path: &Path) -> String {
    let cert = X509::from_pem(&fs::read(path).unwrap()).unwrap();
    let bytes = cert.serial_number().to_bn().unwrap().to_vec();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The serial the server sees when psql logs in with the files in `home`.
fn psql_serial(cluster: &TlsCluster, home: &Path) -> String {
    let out = clean_command(&pgssl_tests::pg_bindir().join("psql"), home)
        .args(["-X", "-A", "-t", "-d", &cert_login(cluster)])
        .args(["-c", "SELECT pgssl.client_serial_hex()"])
        .output()
        .unwrap();
    assert!(out.status.success(), "psql: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

#[test]
fn renew_replaces_the_default_files_and_the_new_pair_logs_in() {
    let cluster = cluster();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    enroll(&cluster, home);
    let files = default_files(home);
    let first = serial_of(&files.cert);
    let first_key = fs::read(&files.key).unwrap();
    assert_eq!(psql_serial(&cluster, home), first);

    let exec_log = home.join("exec.log");
    let exec = format!("echo \"$PGSSL_CERT\" >> {}", exec_log.display());
    let out = pgssl(home, &["renew", &cert_login(&cluster), "--exec", &exec]);
    assert!(out.status.success(), "pgssl renew: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    println!("{stdout}");
    let second = serial_of(&files.cert);
    assert_ne!(second, first);
    assert!(
        stdout.contains(&format!(
            "renewed certificate serial {second} (was {first}), valid until 20"
        )),
        "{stdout}"
    );
    assert_ne!(fs::read(&files.key).unwrap(), first_key, "a new key");
    let mode = fs::metadata(&files.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(psql_serial(&cluster, home), second);
    assert_eq!(
        fs::read_to_string(&exec_log).unwrap().trim(),
        files.cert.display().to_string()
    );
    let mut left: Vec<String> = fs::read_dir(home.join(".postgresql"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["postgresql.crt", "postgresql.key"],
        "nothing staged is left"
    );

    // A password login: refused, the files untouched.
    let password = cluster.conninfo("user=alice password=pw sslmode=disable");
    let out = pgssl(home, &["renew", &password]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("SQLSTATE 42501"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(serial_of(&files.cert), second);

    // An expired certificate: the daemon tries, and gives up with status 1.
    let data = |name: &str| fs::read(cluster.data_dir.join(name)).unwrap();
    let ca = Ca::from_pem(&data("pgssl_ca.crt"), &data("pgssl_ca.key"));
    let expired_home = tempfile::tempdir().unwrap();
    fs::create_dir(expired_home.path().join(".postgresql")).unwrap();
    ca.issue(&CertSpec::client(&[("CN", "alice")]).validity(-7200, -3600))
        .write(&expired_home.path().join(".postgresql"), "postgresql");
    let out = pgssl(
        expired_home.path(),
        &["renew", &cert_login(&cluster), "--daemon"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("expired at")
            && text(&out.stderr).contains("could not be renewed"),
        "{}",
        text(&out.stderr)
    );
}

/// The daemon's output, line by line, as it comes.
struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    fn start(home: &Path, args: &[&str]) -> Daemon {
        let mut child = pgssl_command(home)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("daemon: {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Daemon { child, lines }
    }

    fn logged(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_daemon_renews_again_and_again_and_retries_while_the_server_is_down() {
    let cluster = cluster();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    enroll(&cluster, home);
    // Renewals live 5 minutes (10 from their backdated notBefore): one renewal turns the
    // 90-day certificate into a short one.
    set_and_reload(&cluster, "pgssl.renew_validity", "5min");
    let out = pgssl(home, &["renew", &cert_login(&cluster)]);
    assert!(out.status.success(), "pgssl renew: {}", text(&out.stderr));
    let files = default_files(home);
    let start = serial_of(&files.cert);

    // At 0.55 of 600 s: 30 s after each issue, plus up to 27 s of jitter.
    let exec_log: PathBuf = home.join("exec.log");
    let exec = format!("echo renewed >> {}", exec_log.display());
    let login = cert_login(&cluster);
    let daemon = Daemon::start(
        home,
        &["renew", &login, "--daemon", "--at", "0.55", "--exec", &exec],
    );
    assert!(daemon.child.id() > 0);
    wait_until("the first renewal", Duration::from_secs(120), || {
        serial_of(&files.cert) != start
    });
    let first = serial_of(&files.cert);
    assert_eq!(psql_serial(&cluster, home), first);

    // The server goes away before the next renewal is due: the daemon fails, says so,
    // and retries until it is back.
    cluster.pg_ctl("stop");
    wait_until("a failed renewal", Duration::from_secs(120), || {
        daemon.logged("renewal failed")
    });
    assert!(daemon.logged("retrying in"));
    assert_eq!(
        serial_of(&files.cert),
        first,
        "nothing replaced while failing"
    );
    cluster.pg_ctl("start");
    wait_until("the second renewal", Duration::from_secs(120), || {
        serial_of(&files.cert) != first
    });
    let second = serial_of(&files.cert);
    assert_ne!(second, start);
    assert_eq!(psql_serial(&cluster, home), second);
    wait_until(
        "the command after each renewal",
        Duration::from_secs(10),
        || fs::read_to_string(&exec_log).is_ok_and(|s| s.lines().count() == 2),
    );
    for step in [
        "certificate serial",
        "renewing at",
        "renewed: serial",
        "running",
    ] {
        assert!(daemon.logged(step), "the daemon did not log {step:?}");
    }
    assert_eq!(
        cluster.sql(&format!(
            "SELECT count(*) FROM pgssl.issued_certs WHERE serial IN ('{start}', '{first}', '{second}')"
        )),
        "3"
    );
}

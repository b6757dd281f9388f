//! A throwaway PostgreSQL cluster with TLS, one per test.
//!
//! Each cluster lives in its own temporary folder and listens on its own free
//! port on 127.0.0.1, so tests run in parallel. The server runs as the
//! `postgres` OS user when the tests run as root (initdb refuses root), and is
//! stopped and removed on drop, also when the test panics.
//!
//! A cluster can also run as a streaming standby of another
//! ([`TlsCluster::start_standby`]), and under libfaketime with its clock moved
//! ([`ClusterBuilder::faketime`], [`TlsCluster::restart_with_faketime`]).

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tempfile::TempDir;

use crate::conninfo;
use crate::pki::{write_file, Ca, CertFiles, CertSpec, Issued};

/// The default `pg_hba.conf`: superuser over the socket; over TCP with TLS,
/// members of `scram_users` log in with a password and everyone else with a
/// client certificate; without TLS, a password.
pub const DEFAULT_HBA: &str = "\
# TYPE    DATABASE USER          ADDRESS        METHOD
local     all      all                          trust
hostssl   all      +scram_users  127.0.0.1/32   scram-sha-256
hostssl   all      all           127.0.0.1/32   cert
hostnossl all      all           127.0.0.1/32   scram-sha-256
";

/// The seed document's `pg_hba.conf`: client certificates only, over TLS
/// (plus the socket line the fixture administers the cluster through).
pub const SEED_HBA: &str = "\
local   all all                trust
hostssl all all 127.0.0.1/32   cert
";

/// The PostgreSQL binaries: `$PGSSL_PG_BINDIR`, else PostgreSQL 15's.
pub fn pg_bindir() -> PathBuf {
    std::env::var_os("PGSSL_PG_BINDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// The major release of the binaries in [`pg_bindir`] (13, 15, 17, 18, ...),
/// for tests whose expectations differ by release.
pub fn pg_major() -> u32 {
    static MAJOR: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MAJOR.get_or_init(|| {
        let out = run(Command::new(pg_bindir().join("postgres")).arg("--version"));
        // "postgres (PostgreSQL) 18.1" or "... 15.20 (Debian 15.20-0+deb12u1)"
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .nth(2)
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("no version in {text:?}"))
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The libfaketime library the server is started with when its clock is
/// moved: `$PGSSL_LIBFAKETIME`, else the one Debian's `libfaketime` package
/// installed (`apt-get install faketime`).
pub fn libfaketime() -> PathBuf {
    if let Some(path) = std::env::var_os("PGSSL_LIBFAKETIME") {
        return PathBuf::from(path);
    }
    let listed = Command::new("dpkg")
        .args(["-L", "libfaketime"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    listed
        .lines()
        .find(|line| line.ends_with("/libfaketime.so.1"))
        .map(PathBuf::from)
        .expect(
            "libfaketime.so.1 not found: install the Debian package faketime (scripts/setup.sh)",
        )
}

/// The uid and gid the server runs as: `postgres` when we are root, else ourselves.
fn server_owner() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id");
        assert!(
            out.status.success(),
            "no `postgres` OS user: install postgresql-15"
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    Some((id("-u"), id("-g")))
}

/// A command run as the server's OS user.
fn server_command(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn chown_tree(path: &Path, owner: Option<(u32, u32)>) {
    let Some((uid, gid)) = owner else { return };
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), owner);
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// How to build a cluster; [`TlsCluster::start`] takes the defaults.
pub struct ClusterBuilder {
    ssl: bool,
    tls_files: bool,
    server_files: Option<CertFiles>,
    ca_file: Option<PathBuf>,
    crl_file: Option<PathBuf>,
    hba: String,
    conf: Vec<String>,
    create_extension: bool,
    replication: bool,
    faketime: Option<String>,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            ssl: true,
            tls_files: true,
            server_files: None,
            ca_file: None,
            crl_file: None,
            hba: DEFAULT_HBA.into(),
            conf: vec![],
            create_extension: true,
            replication: false,
            faketime: None,
        }
    }
}

impl ClusterBuilder {
    /// `ssl = off` (the certificates are still minted and configured).
    pub fn ssl_off(mut self) -> Self {
        self.ssl = false;
        self
    }

    /// A cluster as initdb leaves it: `ssl = off` and no TLS file configured
    /// (no `ssl_cert_file`, `ssl_key_file` or `ssl_ca_file` in the data directory).
    pub fn bare(mut self) -> Self {
        self.ssl = false;
        self.tls_files = false;
        self
    }

    /// Serve these files instead of a certificate from the cluster's CA.
    /// They are copied into the data directory as `server.crt`/`server.key`.
    pub fn server_files(mut self, files: CertFiles) -> Self {
        self.server_files = Some(files);
        self
    }

    /// The seed document's set-up from the files [`crate::seed_recipe`] made
    /// in `dir`: its server certificate and key, and its client CA as
    /// `ssl_ca_file`, each copied into the data directory as the document does.
    pub fn seed_files(self, dir: &Path) -> Self {
        self.server_files(CertFiles {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        })
        .ca_file(dir.join("ca-client.crt"))
    }

    /// Use this file as `ssl_ca_file` (copied into the data directory as
    /// `ca.crt`) instead of the cluster CA's certificate.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Use this file as `ssl_crl_file` (copied into the data directory as `root.crl`).
    pub fn crl_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.crl_file = Some(path.into());
        self
    }

    /// Replace the whole `pg_hba.conf`. Keep a `local all all trust` line:
    /// the fixture administers the cluster over the Unix socket.
    pub fn hba(mut self, hba: &str) -> Self {
        self.hba = hba.into();
        self
    }

    /// Append a line to `postgresql.conf`.
    pub fn conf(mut self, line: &str) -> Self {
        self.conf.push(line.into());
        self
    }

    /// Do not run `CREATE EXTENSION pgssl`.
    pub fn without_extension(mut self) -> Self {
        self.create_extension = false;
        self
    }

    /// Let the superuser replicate over the Unix socket (a `local replication
    /// all trust` line before the `pg_hba.conf` lines), so that
    /// [`TlsCluster::start_standby`] can copy and follow this cluster.
    pub fn replication(mut self) -> Self {
        self.replication = true;
        self
    }

    /// Start the server under libfaketime with its clock moved by `offset`,
    /// in libfaketime's relative form (`+30d`, `-2h`, `+90s`).
    pub fn faketime(mut self, offset: &str) -> Self {
        self.faketime = Some(offset.into());
        self
    }

    /// Creates, configures and starts the cluster.
    pub fn start(self) -> TlsCluster {
        TlsCluster::start_with(self)
    }
}

/// A running cluster and the PKI it trusts.
pub struct TlsCluster {
    root: TempDir,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The Unix socket directory (the superuser connects there).
    pub socket_dir: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The CA that signed the server certificate and that the server trusts
    /// for client certificates (unless the builder replaced either).
    pub ca: Ca,
    /// The CA certificate, for clients' `sslrootcert`.
    pub root_cert: PathBuf,
    /// A folder owned by the test's user for client files.
    pub client_dir: PathBuf,
    owner: Option<(u32, u32)>,
    /// The server's clock offset under libfaketime, if it runs under it.
    faketime: Option<String>,
    /// Whether `pg_hba.conf` lets the superuser replicate over the socket.
    replication: bool,
}

impl TlsCluster {
    /// A cluster with the defaults: TLS on, a server certificate with SANs
    /// `localhost` and `127.0.0.1`, [`DEFAULT_HBA`], and the extension created.
    pub fn start() -> TlsCluster {
        ClusterBuilder::default().start()
    }

    /// A builder for other set-ups.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    fn start_with(options: ClusterBuilder) -> TlsCluster {
        let root = tempfile::Builder::new()
            .prefix("pgssl-test-")
            .tempdir()
            .unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let owner = server_owner();
        let data_dir = root.path().join("data");
        let socket_dir = root.path().join("sock");
        let client_dir = root.path().join("client");
        let server_dir = root.path().join("server");
        for dir in [&socket_dir, &client_dir, &server_dir] {
            fs::create_dir(dir).unwrap();
        }

        let ca = Ca::new("pgssl test CA");
        let root_cert = client_dir.join("root.crt");
        ca.write_cert(&root_cert);

        // initdb into a folder the server's user owns.
        fs::create_dir(&data_dir).unwrap();
        fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o700)).unwrap();
        chown_tree(&data_dir, owner);
        chown_tree(&socket_dir, owner);
        let mut initdb = server_command(&pg_bindir().join("initdb"));
        initdb.arg("-D").arg(&data_dir).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(&mut initdb);

        let mut conf = vec![
            "listen_addresses = '127.0.0.1'".to_string(),
            format!("unix_socket_directories = '{}'", socket_dir.display()),
            format!("ssl = {}", if options.ssl { "on" } else { "off" }),
            "fsync = off".into(),
            // The default from 14 on; 13 still stores md5 hashes, which scram-sha-256 lines refuse.
            "password_encryption = 'scram-sha-256'".into(),
            "max_connections = 30".into(),
            "shared_buffers = 16MB".into(),
        ];
        if options.tls_files {
            // TLS files go into the data directory, as a DBA would put them.
            let server_files = options
                .server_files
                .unwrap_or_else(|| ca.issue(&CertSpec::server()).write(&server_dir, "server"));
            fs::copy(&server_files.cert, data_dir.join("server.crt")).unwrap();
            fs::copy(&server_files.key, data_dir.join("server.key")).unwrap();
            fs::set_permissions(
                data_dir.join("server.key"),
                fs::Permissions::from_mode(0o600),
            )
            .unwrap();
            match &options.ca_file {
                Some(path) => drop(fs::copy(path, data_dir.join("ca.crt")).unwrap()),
                None => ca.write_cert(&data_dir.join("ca.crt")),
            }
            conf.push("ssl_cert_file = 'server.crt'".into());
            conf.push("ssl_key_file = 'server.key'".into());
            conf.push("ssl_ca_file = 'ca.crt'".into());
        }
        if let Some(path) = &options.crl_file {
            fs::copy(path, data_dir.join("root.crl")).unwrap();
            conf.push("ssl_crl_file = 'root.crl'".into());
        }
        conf.extend(options.conf);
        let mut pg_conf = fs::read_to_string(data_dir.join("postgresql.conf")).unwrap();
        pg_conf.push_str("\n# pgssl test fixture\n");
        pg_conf.push_str(&conf.join("\n"));
        pg_conf.push('\n');
        fs::write(data_dir.join("postgresql.conf"), pg_conf).unwrap();
        let hba = if options.replication {
            format!("local replication all trust\n{}", options.hba)
        } else {
            options.hba
        };
        fs::write(data_dir.join("pg_hba.conf"), hba).unwrap();
        chown_tree(&data_dir, owner);

        let mut cluster = TlsCluster {
            root,
            data_dir,
            socket_dir,
            port: 0,
            ca,
            root_cert,
            client_dir,
            owner,
            faketime: options.faketime,
            replication: options.replication,
        };
        cluster.start_server();
        cluster.sql("CREATE ROLE scram_users NOLOGIN");
        if options.create_extension {
            let out = cluster.psql_socket("CREATE EXTENSION pgssl");
            assert!(
                out.status.success(),
                "CREATE EXTENSION pgssl failed (is the extension installed? run scripts/setup.sh): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        cluster
    }

    /// Starts the server on a free port; retries when another test took the port first.
    fn start_server(&mut self) {
        let mut last_error = String::new();
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let out = self.pg_ctl_command(port, "start").output().unwrap();
            if out.status.success() {
                self.port = port;
                return;
            }
            last_error = format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
            );
        }
        panic!("the test server did not start:\n{last_error}");
    }

    /// `pg_ctl <action>` on this cluster's data directory and port; a server
    /// it starts runs under libfaketime when the cluster's clock is moved.
    fn pg_ctl_command(&self, port: u16, action: &str) -> Command {
        let mut cmd = server_command(&pg_bindir().join("pg_ctl"));
        cmd.arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(self.data_dir.join("server.log"))
            .args(["-o", &format!("-p {port}"), "-w", "-t", "60", action]);
        if let Some(offset) = &self.faketime {
            cmd.env("LD_PRELOAD", libfaketime()).env("FAKETIME", offset);
        }
        cmd
    }

    /// Restarts the server as `postgres` itself rather than through `pg_ctl` (which gives
    /// it /dev/null), with a standard input that stays open and is never written: a backend
    /// that reads its standard input then blocks instead of reading end-of-file. Keep the
    /// returned child (its stdin) until the end of the test.
    pub fn restart_with_open_stdin(&self) -> std::process::Child {
        self.pg_ctl("stop");
        let log = fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir.join("server.log"))
            .unwrap();
        let child = server_command(&pg_bindir().join("postgres"))
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-p", &self.port.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("postgres");
        crate::wait_until(
            "the server to accept connections",
            std::time::Duration::from_secs(30),
            || {
                self.psql(&self.socket_conninfo("postgres"), "SELECT 1")
                    .status
                    .success()
            },
        );
        child
    }

    /// Runs `pg_ctl` with the given action (`reload`, `restart`, ...).
    pub fn pg_ctl(&self, action: &str) {
        run(&mut self.pg_ctl_command(self.port, action));
    }

    /// Restarts the server with its clock moved by `offset` under libfaketime
    /// (`Some("+30d")`), or on the real clock (`None`). Later restarts keep it.
    pub fn restart_with_faketime(&mut self, offset: Option<&str>) {
        self.faketime = offset.map(str::to_string);
        self.pg_ctl("restart");
    }

    /// The server's clock offset under libfaketime, if it runs under it.
    pub fn faketime(&self) -> Option<&str> {
        self.faketime.as_deref()
    }

    /// Starts a streaming standby of this cluster: `pg_basebackup -R` over
    /// the socket, run as the server's OS user, then the copy started on its
    /// own free port and socket folder, waiting until it accepts read-only
    /// connections. The standby serves the same certificates and trusts the
    /// same CA; it is stopped and removed on drop. Build this cluster with
    /// [`ClusterBuilder::replication`].
    pub fn start_standby(&self) -> TlsCluster {
        assert!(
            self.replication,
            "a standby needs a primary built with TlsCluster::builder().replication()"
        );
        let root = tempfile::Builder::new()
            .prefix("pgssl-standby-")
            .tempdir()
            .unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let data_dir = root.path().join("data");
        let socket_dir = root.path().join("sock");
        let client_dir = root.path().join("client");
        for dir in [&data_dir, &socket_dir, &client_dir] {
            fs::create_dir(dir).unwrap();
        }
        fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o700)).unwrap();
        chown_tree(&data_dir, self.owner);
        chown_tree(&socket_dir, self.owner);
        run(server_command(&pg_bindir().join("pg_basebackup"))
            .arg("-D")
            .arg(&data_dir)
            .args(["-R", "-X", "stream", "--checkpoint=fast", "--no-sync"])
            .args(["-U", "postgres", "-h"])
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string()]));
        // The copy holds the primary's log; the standby starts its own.
        let _ = fs::remove_file(data_dir.join("server.log"));
        let mut conf = fs::read_to_string(data_dir.join("postgresql.conf")).unwrap();
        conf.push_str(&format!(
            "# pgssl test fixture: standby\nunix_socket_directories = '{}'\n",
            socket_dir.display()
        ));
        fs::write(data_dir.join("postgresql.conf"), conf).unwrap();
        chown_tree(&data_dir, self.owner);
        let root_cert = client_dir.join("root.crt");
        fs::copy(&self.root_cert, &root_cert).unwrap();

        let mut standby = TlsCluster {
            root,
            data_dir,
            socket_dir,
            port: 0,
            ca: self.ca.clone(),
            root_cert,
            client_dir,
            owner: self.owner,
            faketime: None,
            replication: self.replication,
        };
        standby.start_server();
        standby
    }

    /// The primary's current WAL write position (`pg_current_wal_lsn()`).
    pub fn current_wal_lsn(&self) -> String {
        self.sql("SELECT pg_current_wal_lsn()")
    }

    /// Waits (up to 60 s) until this standby has replayed WAL up to `lsn`
    /// (`pg_last_wal_replay_lsn() >= lsn`); panics otherwise.
    pub fn wait_for_replay(&self, lsn: &str) {
        let query = format!("SELECT coalesce(pg_last_wal_replay_lsn() >= '{lsn}', false)");
        crate::wait_until(
            &format!("the standby replaying up to {lsn}"),
            Duration::from_secs(60),
            || self.sql(&query) == "t",
        );
    }

    /// Waits until this standby has replayed everything `primary` has written so far.
    pub fn catch_up_with(&self, primary: &TlsCluster) {
        self.wait_for_replay(&primary.current_wal_lsn());
    }

    /// Replaces the server certificate and key in the data directory
    /// (`server.crt`, `server.key`) with `issued`; the server reads them at
    /// its next reload or restart.
    pub fn write_server_files(&self, issued: &Issued) {
        self.write_data_file("server.crt", &issued.cert.to_pem().unwrap(), 0o644);
        self.write_data_file(
            "server.key",
            &issued.key.private_key_to_pem_pkcs8().unwrap(),
            0o600,
        );
    }

    /// [`write_server_files`](Self::write_server_files), then a restart, so
    /// that the server serves them.
    pub fn serve_and_restart(&self, issued: &Issued) {
        self.write_server_files(issued);
        self.pg_ctl("restart");
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
    }

    /// A folder of this cluster's temporary tree, created on first use.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes a file into the data directory, owned by the server's user.
    pub fn write_data_file(&self, name: &str, contents: &[u8], mode: u32) {
        let path = self.data_dir.join(name);
        write_file(&path, contents, mode);
        chown_tree(&path, self.owner);
    }

    /// Runs SQL as the superuser over the Unix socket in database `postgres`;
    /// returns the unaligned, tuples-only output. Panics on any error.
    pub fn sql(&self, sql: &str) -> String {
        crate::stdout_ok(&self.psql_socket(sql), sql)
    }

    fn psql_socket(&self, sql: &str) -> Output {
        self.psql(&self.socket_conninfo("postgres"), sql)
    }

    /// A libpq connection string for `user` over the Unix socket, in database
    /// `postgres` (`local all all trust` lets any role in).
    pub fn socket_conninfo(&self, user: &str) -> String {
        conninfo::socket(&self.socket_dir, self.port, user)
    }

    /// A libpq connection string for TCP to 127.0.0.1 (`host` and `port`
    /// first, so `extra` can override them).
    pub fn conninfo(&self, extra: &str) -> String {
        conninfo::tcp(self.port, extra)
    }

    /// The connection string psql uses with `sslmode=verify-full` against the
    /// cluster CA, for `user`, with a client certificate when given. Without
    /// one, `sslcert` names a file that does not exist, so libpq sends none.
    pub fn verify_full(&self, user: &str, client: Option<&CertFiles>) -> String {
        let none = CertFiles {
            cert: self.client_dir.join("none.crt"),
            key: self.client_dir.join("none.key"),
        };
        conninfo::verify_full(self.port, user, &self.root_cert, client.unwrap_or(&none))
    }

    /// A client certificate from the cluster CA with this subject, written
    /// into the client folder.
    pub fn client_cert(&self, subject: &[(&str, &str)]) -> CertFiles {
        self.issue_client(&CertSpec::client(subject))
    }

    /// A client certificate from the cluster CA per `spec`.
    pub fn issue_client(&self, spec: &CertSpec) -> CertFiles {
        let stem = format!("client-{}", crate::unique_suffix());
        self.ca.issue(spec).write(&self.client_dir, &stem)
    }

    /// Runs psql with `conninfo` and `sql` (`-X -q -A -t`, stop on the first
    /// error), with every `PG*` variable removed and `HOME` pointing at the
    /// cluster's folder, so nothing of the machine's own set-up leaks in.
    pub fn psql(&self, conninfo: &str, sql: &str) -> Output {
        self.psql_command(conninfo)
            .arg("-c")
            .arg(sql)
            .output()
            .expect("psql")
    }

    /// The psql command [`psql`](Self::psql) runs, before `-c`.
    pub fn psql_command(&self, conninfo: &str) -> Command {
        let mut cmd = clean_command(&pg_bindir().join("psql"), self.root.path());
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo,
        ]);
        cmd
    }

    /// Like [`psql`](Self::psql), panicking with psql's stderr on failure;
    /// returns stdout without the final newline.
    pub fn psql_ok(&self, conninfo: &str, sql: &str) -> String {
        crate::stdout_ok(
            &self.psql(conninfo, sql),
            &format!("psql {conninfo:?} -c {sql:?}"),
        )
    }

    /// Runs `sql` from a file with `conninfo`, `VERBOSITY=verbose` so that errors carry
    /// their SQLSTATE; psql's output, succeeded or not.
    pub fn psql_script(&self, conninfo: &str, sql: &str) -> std::process::Output {
        let file = self
            .dir("sql")
            .join(format!("q{}.sql", crate::unique_suffix()));
        std::fs::write(&file, sql).unwrap();
        self.psql_command(conninfo)
            .args(["-v", "VERBOSITY=verbose", "-f"])
            .arg(&file)
            .output()
            .expect("psql")
    }

    /// `sql` as `role` over the socket, through [`psql_script`](Self::psql_script);
    /// stdout, or panics with stderr.
    pub fn sql_as(&self, role: &str, sql: &str) -> String {
        let out = self.psql_script(&self.socket_conninfo(role), sql);
        crate::stdout_ok(&out, &format!("as {role}: {sql}"))
    }

    /// Asserts that `sql` as `role` over the socket fails with `sqlstate`; returns
    /// psql's error text.
    pub fn sql_error_as(&self, role: &str, sql: &str, sqlstate: &str) -> String {
        let out = self.psql_script(&self.socket_conninfo(role), sql);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "as {role}: {sql:.200} succeeded");
        assert!(
            stderr.contains(&format!("ERROR:  {sqlstate}:")),
            "as {role}: {sql:.200}\nexpected SQLSTATE {sqlstate}, got: {stderr}"
        );
        stderr
    }

    /// Runs a query that returns one JSON value and parses it.
    pub fn psql_json(&self, conninfo: &str, sql: &str) -> serde_json::Value {
        let text = self.psql_ok(conninfo, sql);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// A command with every `PG*` variable removed and `HOME` set to `home`.
pub fn clean_command(program: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", home);
    cmd
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        if self.port != 0 {
            let _ = server_command(&pg_bindir().join("pg_ctl"))
                .arg("-D")
                .arg(&self.data_dir)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
        if std::thread::panicking() {
            eprintln!("--- server log of the failed test ---\n{}", self.log());
        }
    }
}

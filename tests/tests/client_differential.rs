//! pgssl_client against psql: for each server set-up, each sslmode, with and without a
//! client certificate, pgssl connects exactly when psql connects, with TLS exactly when psql
//! uses TLS. Each case is run with the CA's certificate as `sslrootcert` and with no root
//! certificate file. The table of cases is printed (`cargo test -- --nocapture` shows it).

use std::path::{Path, PathBuf};

use pgssl_client::{Config, Connector};
use pgssl_tests::{seed_recipe, CertFiles, CertSpec, TlsCluster, DEFAULT_HBA};

const MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// One server set-up and what a client of it holds.
struct Setup {
    name: &'static str,
    cluster: TlsCluster,
    user: &'static str,
    root_cert: PathBuf,
    client: CertFiles,
    /// Extra client options (a CRL).
    extra: String,
    _files: Option<tempfile::TempDir>,
}

fn with_password(cluster: &TlsCluster, user: &str) {
    if user != "postgres" {
        cluster.sql(&format!("CREATE ROLE {user} LOGIN"));
    }
    cluster.sql(&format!("ALTER ROLE {user} PASSWORD 'pw'"));
}

/// A cluster serving `server` (issued by the cluster's own CA unless the spec says
/// otherwise), with a password for alice and a client certificate for her.
fn standard(
    name: &'static str,
    builder: impl FnOnce(&Path) -> pgssl_tests::ClusterBuilder,
) -> Setup {
    let files = tempfile::tempdir().unwrap();
    let cluster = builder(files.path()).without_extension().start();
    with_password(&cluster, "alice");
    let client = cluster.client_cert(&[("CN", "alice")]);
    Setup {
        name,
        root_cert: cluster.root_cert.clone(),
        user: "alice",
        client,
        extra: String::new(),
        cluster,
        _files: Some(files),
    }
}

fn setups() -> Vec<Setup> {
    let mut out = Vec::new();

    // 1. The fixture's default: a server certificate with SANs localhost and 127.0.0.1.
    out.push(standard("SANs", |_| TlsCluster::builder()));

    // 2. The seed document's files, made by its openssl commands: v1, CN=127.0.0.1, no SAN,
    //    a separate client CA, client.crt with CN=postgres.
    {
        let files = tempfile::tempdir().unwrap();
        let dir = files.path();
        seed_recipe(dir);
        let cluster = TlsCluster::builder()
            .seed_files(dir)
            .hba(DEFAULT_HBA)
            .without_extension()
            .start();
        with_password(&cluster, "postgres");
        out.push(Setup {
            name: "seed v1 CN-only",
            root_cert: dir.join("ca.crt"),
            user: "postgres",
            client: CertFiles {
                cert: dir.join("client.crt"),
                key: dir.join("client.key"),
            },
            extra: String::new(),
            cluster,
            _files: Some(files),
        });
    }

    // 3. A trusted certificate for another host name only.
    out.push(standard("wrong host name", |_| TlsCluster::builder()));
    {
        // The wrong-host certificate must come from the cluster's own CA, which exists only
        // once the cluster does: restart it with the new files.
        let s = out.last_mut().unwrap();
        let mut spec = CertSpec::server();
        spec.dns = vec!["db.example.com".into()];
        spec.ips = vec![];
        let issued = s.cluster.ca.issue(&spec);
        s.cluster.serve_and_restart(&issued);
    }

    // 4. A server certificate from a CA the client does not trust.
    out.push(standard("unknown CA", |dir| {
        let other = pgssl_tests::Ca::new("some other CA");
        let files = other.issue(&CertSpec::server()).write(dir, "server");
        TlsCluster::builder().server_files(files)
    }));

    // 5. An expired server certificate from the trusted CA.
    out.push(standard("expired", |_| TlsCluster::builder()));
    {
        let s = out.last_mut().unwrap();
        let issued = s
            .cluster
            .ca
            .issue(&CertSpec::server().validity(-2 * 86_400, -86_400));
        s.cluster.serve_and_restart(&issued);
    }

    // 6. A server certificate the client's CRL revokes.
    out.push(standard("revoked by CRL", |_| TlsCluster::builder()));
    {
        let s = out.last_mut().unwrap();
        let issued = s.cluster.ca.issue(&CertSpec::server());
        s.cluster.serve_and_restart(&issued);
        let crl = s.cluster.client_dir.join("revoked.crl");
        pgssl_tests::pki::write_file(&crl, &s.cluster.ca.crl(&[&issued.cert]), 0o644);
        s.extra = format!("sslcrl={}", crl.display());
    }

    // 7. ssl = off.
    out.push(standard("ssl = off", |_| TlsCluster::builder().ssl_off()));

    // 8. TLS only: no hostnossl line, so a plaintext attempt is refused (allow retries
    //    with TLS), and without a client certificate there is no way in.
    out.push(standard("hostssl only", |_| {
        TlsCluster::builder().hba("local all all trust\nhostssl all all 127.0.0.1/32 cert\n")
    }));
    // 9. The server does not trust the client's CA: with TLS 1.3 the server's alert comes
    //    after the client's handshake is done, which libpq treats as a failure, not as a
    //    reason for prefer to fall back.
    out.push(standard("untrusted client", |dir| {
        let other = pgssl_tests::Ca::new("a CA the client never used");
        let path = dir.join("other-ca.crt");
        other.write_cert(&path);
        TlsCluster::builder().ca_file(path)
    }));
    out
}

/// What a client got: connected or not, and over TLS or not.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Tls,
    Plain,
    Refused(String),
}

impl Outcome {
    fn short(&self) -> &'static str {
        match self {
            Outcome::Tls => "TLS",
            Outcome::Plain => "plain",
            Outcome::Refused(_) => "refused",
        }
    }

    fn same_as(&self, other: &Outcome) -> bool {
        self.short() == other.short()
    }
}

const TLS_QUERY: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

fn psql_outcome(cluster: &TlsCluster, conninfo: &str) -> Outcome {
    let out = cluster.psql(conninfo, TLS_QUERY);
    if !out.status.success() {
        return Outcome::Refused(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    match String::from_utf8_lossy(&out.stdout).trim() {
        "t" => Outcome::Tls,
        "f" => Outcome::Plain,
        other => panic!("unexpected psql output {other:?}"),
    }
}

async fn pgssl_outcome(conninfo: &str, home: &Path) -> Outcome {
    let config = match Config::from_conninfo_with_env(conninfo, &|_| None, Some(home)) {
        Ok(c) => c,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let connector = Connector::new(config);
    match connector.connect_with_info().await {
        Ok((client, connection, info)) => {
            let driver = tokio::spawn(connection);
            let ssl: bool = client
                .query_one(TLS_QUERY, &[])
                .await
                .expect("query")
                .get(0);
            drop(client);
            let _ = driver.await;
            assert_eq!(
                ssl,
                info.tls.is_some(),
                "the client's and the server's view of TLS agree"
            );
            if ssl {
                Outcome::Tls
            } else {
                Outcome::Plain
            }
        }
        Err(e) => Outcome::Refused(e.to_string()),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn pgssl_connects_exactly_when_psql_does() {
    let setups = setups();
    let home = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    let mut mismatches = Vec::new();
    for s in &setups {
        for with_root in [true, false] {
            for mode in MODES {
                for with_cert in [false, true] {
                    let root = if with_root {
                        s.root_cert.clone()
                    } else {
                        s.cluster.client_dir.join("no-root.crt")
                    };
                    let (cert, key) = if with_cert {
                        (s.client.cert.clone(), s.client.key.clone())
                    } else {
                        (
                            s.cluster.client_dir.join("none.crt"),
                            s.cluster.client_dir.join("none.key"),
                        )
                    };
                    let conninfo = s.cluster.conninfo(&format!(
                        "user={} password=pw sslmode={mode} sslrootcert={} sslcert={} sslkey={} {}",
                        s.user,
                        root.display(),
                        cert.display(),
                        key.display(),
                        s.extra
                    ));
                    let psql = psql_outcome(&s.cluster, &conninfo);
                    let pgssl = pgssl_outcome(&conninfo, home.path()).await;
                    let agree = psql.same_as(&pgssl);
                    rows.push(format!(
                        "{:<16} {:<5} {:<12} {:<5} {:<8} {:<8} {}",
                        s.name,
                        if with_root { "yes" } else { "no" },
                        mode,
                        if with_cert { "yes" } else { "no" },
                        psql.short(),
                        pgssl.short(),
                        if agree { "" } else { "MISMATCH" }
                    ));
                    if !agree {
                        mismatches.push(format!("{} root={with_root} sslmode={mode} cert={with_cert}:\n  psql:  {psql:?}\n  pgssl: {pgssl:?}", s.name));
                    }
                }
            }
        }
    }
    println!(
        "{:<16} {:<5} {:<12} {:<5} {:<8} {:<8}",
        "server", "root", "sslmode", "cert", "psql", "pgssl"
    );
    for r in &rows {
        println!("{r}");
    }
    assert_eq!(rows.len(), 9 * 2 * 6 * 2);
    assert!(
        mismatches.is_empty(),
        "pgssl and psql disagree:\n{}",
        mismatches.join("\n")
    );
}

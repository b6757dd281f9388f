//! `pgssl check` against psql 18 (libpq 18), case by case, on a server of the release the
//! fixture runs (`PGSSL_PG_BINDIR`: 15, 17, 18): the options libpq added after 15
//! (`sslrootcert=system`, `sslcertmode`, `require_auth` from 16, `sslnegotiation=direct` from
//! 17), the protocol version range and client certificates. For each case both connect or
//! both are refused, over the same TLS version. The table is printed
//! (`cargo test -p pgssl_cli --test libpq18 -- --nocapture` shows it).
//!
//! psql 18 is `$PGSSL_PSQL18`, which `scripts/test.sh` sets from
//! `scripts/pg.sh 18` before it runs this test with `--include-ignored`; a plain run of
//! the suite, without psql 18, lists it as ignored.

use std::path::{Path, PathBuf};

use pgssl_tests::{clean_command, CertFiles, TlsCluster};
use serde_json::Value;

/// What a client got.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Connected over TLS, with this protocol version.
    Tls(String),
    Plain,
    Refused(String),
}

impl Outcome {
    fn short(&self) -> String {
        match self {
            Outcome::Tls(v) => format!("TLS {v}"),
            Outcome::Plain => "plain".into(),
            Outcome::Refused(_) => "refused".into(),
        }
    }
}

fn psql18() -> Option<PathBuf> {
    std::env::var_os("PGSSL_PSQL18").map(PathBuf::from)
}

/// One connection attempt, as both clients see it.
struct Case {
    name: String,
    conninfo: String,
    /// `SSL_CERT_FILE`: the system store for `sslrootcert=system`.
    system_store: Option<PathBuf>,
}

fn psql_outcome(psql: &Path, home: &Path, case: &Case) -> Outcome {
    let mut cmd = clean_command(psql, home);
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    if let Some(store) = &case.system_store {
        cmd.env("SSL_CERT_FILE", store);
    }
    let out = cmd
        .args(["-X", "-q", "-A", "-t", "-d", &case.conninfo, "-c"])
        .arg("SELECT coalesce(version, 'plain') FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .output()
        .expect("psql 18 runs");
    if !out.status.success() {
        return Outcome::Refused(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    match String::from_utf8_lossy(&out.stdout).trim() {
        "plain" => Outcome::Plain,
        version => Outcome::Tls(version.to_string()),
    }
}

fn pgssl_outcome(home: &Path, case: &Case) -> Outcome {
    let mut cmd = clean_command(Path::new(env!("CARGO_BIN_EXE_pgssl")), home);
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    if let Some(store) = &case.system_store {
        cmd.env("SSL_CERT_FILE", store);
    }
    let out = cmd
        .args(["check", &case.conninfo, "--json"])
        .output()
        .expect("pgssl runs");
    if !out.status.success() {
        return Outcome::Refused(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let report: Value = serde_json::from_slice(&out.stdout).expect("pgssl check --json");
    match report["tls"]["version"].as_str() {
        // rustls names versions TLSv1_3; the server and libpq say TLSv1.3.
        Some(v) => Outcome::Tls(v.replace('_', ".")),
        None => Outcome::Plain,
    }
}

/// A store of trusted roots as a system's: some other CA first, then `ca` when given.
fn system_store(cluster: &TlsCluster, name: &str, with_cluster_ca: bool) -> PathBuf {
    let path = cluster.client_dir.join(name);
    let other = pgssl_tests::Ca::new("a public CA of the system store");
    other.write_cert(&path);
    let mut pem = std::fs::read(&path).unwrap();
    if with_cluster_ca {
        pem.extend(std::fs::read(&cluster.root_cert).unwrap());
    }
    std::fs::write(&path, pem).unwrap();
    path
}

/// Every case against one cluster: `alice` logs in with a client certificate, `bob` with a
/// password (SCRAM).
fn cases(cluster: &TlsCluster, alice: &CertFiles, strict: &TlsCluster) -> Vec<Case> {
    let root = cluster.root_cert.display().to_string();
    let none = cluster.client_dir.join("none.crt").display().to_string();
    let cert = |files: &CertFiles| {
        format!(
            "sslcert={} sslkey={}",
            files.cert.display(),
            files.key.display()
        )
    };
    let alice_cert = cert(alice);
    let no_cert = format!("sslcert={none} sslkey={none}");
    let with_ca = system_store(cluster, "system-with-ca.pem", true);
    let without_ca = system_store(cluster, "system-without-ca.pem", false);
    let mut out = Vec::new();
    let mut add = |name: &str, c: &TlsCluster, extra: String, store: Option<&PathBuf>| {
        out.push(Case {
            name: name.to_string(),
            conninfo: c.conninfo(&extra),
            system_store: store.cloned(),
        })
    };

    // Client certificates.
    add(
        "cert",
        cluster,
        format!("user=alice sslmode=verify-full sslrootcert={root} {alice_cert}"),
        None,
    );
    add(
        "no cert",
        cluster,
        format!("user=alice sslmode=verify-full sslrootcert={root} {no_cert}"),
        None,
    );
    add(
        "password",
        cluster,
        format!("user=bob password=pw sslmode=verify-full sslrootcert={root} {no_cert}"),
        None,
    );

    // sslrootcert=system: verify-full by default, against the system store.
    for (name, store) in [
        ("system store with CA", &with_ca),
        ("system store without", &without_ca),
    ] {
        add(
            name,
            cluster,
            format!("user=alice sslrootcert=system {alice_cert}"),
            Some(store),
        );
    }
    add(
        "system verify-full",
        cluster,
        format!("user=alice sslrootcert=system sslmode=verify-full {alice_cert}"),
        Some(&with_ca),
    );
    add(
        "system require",
        cluster,
        format!("user=alice sslrootcert=system sslmode=require {alice_cert}"),
        Some(&with_ca),
    );

    // sslnegotiation=direct: TLS from the first byte, ALPN postgresql (servers 17+).
    for mode in ["require", "verify-ca", "verify-full"] {
        add(
            &format!("direct {mode}"),
            cluster,
            format!(
                "user=alice sslnegotiation=direct sslmode={mode} sslrootcert={root} {alice_cert}"
            ),
            None,
        );
    }
    add(
        "direct password",
        cluster,
        format!("user=bob password=pw sslnegotiation=direct sslmode=require {no_cert}"),
        None,
    );
    add(
        "direct prefer",
        cluster,
        format!("user=alice sslnegotiation=direct sslmode=prefer {alice_cert}"),
        None,
    );
    add(
        "direct system",
        cluster,
        format!("user=alice sslnegotiation=direct sslrootcert=system {alice_cert}"),
        Some(&with_ca),
    );

    // Protocol versions, against the default server and one that stops at TLS 1.2.
    for (min, max) in [
        ("TLSv1.3", ""),
        ("", "TLSv1.2"),
        ("TLSv1.2", "TLSv1.2"),
        ("TLSv1.3", "TLSv1.2"),
        ("TLSv1.4", ""),
    ] {
        let mut range = String::new();
        if !min.is_empty() {
            range.push_str(&format!("ssl_min_protocol_version={min} "));
        }
        if !max.is_empty() {
            range.push_str(&format!("ssl_max_protocol_version={max}"));
        }
        add(
            &format!("range {min}..{max}"),
            cluster,
            format!("user=alice sslmode=verify-full sslrootcert={root} {alice_cert} {range}"),
            None,
        );
    }
    let strict_root = strict.root_cert.display().to_string();
    for min in ["TLSv1.2", "TLSv1.3"] {
        add(&format!("server max 1.2, min {min}"), strict, format!("user=bob password=pw sslmode=verify-full sslrootcert={strict_root} {no_cert} ssl_min_protocol_version={min}"), None);
    }

    // sslcertmode (libpq 16).
    for mode in ["disable", "allow", "require", "bogus"] {
        add(
            &format!("certmode {mode} cert"),
            cluster,
            format!(
                "user=alice sslmode=verify-full sslrootcert={root} {alice_cert} sslcertmode={mode}"
            ),
            None,
        );
        add(&format!("certmode {mode} password"), cluster, format!("user=bob password=pw sslmode=verify-full sslrootcert={root} {no_cert} sslcertmode={mode}"), None);
    }

    // require_auth (libpq 16).
    for methods in [
        "scram-sha-256",
        "password",
        "!password",
        "none",
        "password,scram-sha-256",
        "!scram-sha-256",
        "bogus",
    ] {
        add(&format!("require_auth {methods} password"), cluster, format!("user=bob password=pw sslmode=verify-full sslrootcert={root} {no_cert} require_auth={methods}"), None);
    }
    for methods in ["none", "scram-sha-256", "!none"] {
        add(&format!("require_auth {methods} cert"), cluster, format!("user=alice sslmode=verify-full sslrootcert={root} {alice_cert} require_auth={methods}"), None);
    }
    out
}

#[test]
#[ignore = "needs psql 18 in $PGSSL_PSQL18: scripts/test.sh runs it"]
fn pgssl_check_agrees_with_psql_18() {
    let psql = psql18().expect("PGSSL_PSQL18 names psql 18 (scripts/pg.sh 18 builds it)");
    assert!(
        psql.exists(),
        "PGSSL_PSQL18={} does not exist",
        psql.display()
    );
    let cluster = TlsCluster::builder().without_extension().start();
    cluster.sql("CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN PASSWORD 'pw' IN ROLE scram_users");
    let alice = cluster.client_cert(&[("CN", "alice")]);
    let strict = TlsCluster::builder()
        .without_extension()
        .conf("ssl_max_protocol_version = 'TLSv1.2'")
        .start();
    strict.sql("CREATE ROLE bob LOGIN PASSWORD 'pw' IN ROLE scram_users");
    let home = tempfile::tempdir().unwrap();
    let major = pgssl_tests::pg_major();

    let mut rows = Vec::new();
    let mut mismatches = Vec::new();
    let cases = cases(&cluster, &alice, &strict);
    for case in &cases {
        let psql_out = psql_outcome(&psql, home.path(), case);
        let pgssl_out = pgssl_outcome(home.path(), case);
        let agree = psql_out.short() == pgssl_out.short();
        rows.push(format!(
            "psql 18 / server {major:<3} {:<34} {:<10} {:<10} {}",
            case.name,
            psql_out.short(),
            pgssl_out.short(),
            if agree { "" } else { "MISMATCH" }
        ));
        if !agree {
            mismatches.push(format!(
                "{} ({}):\n  psql 18: {psql_out:?}\n  pgssl:   {pgssl_out:?}",
                case.name, case.conninfo
            ));
        }
    }
    println!(
        "{:<22} {:<34} {:<10} {:<10}",
        "client / server", "case", "psql", "pgssl"
    );
    for r in &rows {
        println!("{r}");
    }
    assert!(
        mismatches.is_empty(),
        "pgssl and psql 18 disagree:\n{}",
        mismatches.join("\n")
    );

    // The cases mean what they say: certificate logins work, the system store is used,
    // direct TLS works exactly from 17 on.
    let outcome = |name: &str| {
        let case = cases.iter().find(|c| c.name == name).unwrap();
        psql_outcome(&psql, home.path(), case).short()
    };
    assert_eq!(outcome("cert"), "TLS TLSv1.3");
    assert_eq!(outcome("no cert"), "refused");
    assert_eq!(outcome("system store with CA"), "TLS TLSv1.3");
    assert_eq!(outcome("system store without"), "refused");
    assert_eq!(outcome("range ..TLSv1.2"), "TLS TLSv1.2");
    let direct = if major >= 17 {
        "TLS TLSv1.3"
    } else {
        "refused"
    };
    assert_eq!(outcome("direct verify-full"), direct);
}

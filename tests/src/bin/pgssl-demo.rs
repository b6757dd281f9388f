//! The README's main command: a throwaway PostgreSQL cluster with TLS, a
//! client certificate, and what pgssl reports about the session.

use pgssl_tests::TlsCluster;

fn show(cluster: &TlsCluster, conninfo: &str, sql: &str) {
    println!("\n$ psql \"{conninfo}\" -c \"{sql}\"");
    let out = cluster
        .psql_command(conninfo)
        .args([
            "-P",
            "format=aligned",
            "-P",
            "tuples_only=off",
            "-x",
            "-c",
            sql,
        ])
        .output()
        .expect("psql");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "psql failed");
}

fn main() {
    println!("Starting a throwaway PostgreSQL cluster with ssl = on, a test CA, and");
    println!("pg_hba.conf: hostssl ... cert (client certificates) for everyone but scram_users.");
    let cluster = TlsCluster::start();
    cluster.sql("CREATE ROLE alice LOGIN");
    let alice = cluster.client_cert(&[
        ("O", "Example Databases"),
        ("OU", "Reliability"),
        ("CN", "alice"),
    ]);
    println!(
        "Cluster on 127.0.0.1:{}; client certificate for CN=alice in {}",
        cluster.port,
        alice.cert.display()
    );

    let conninfo = cluster.verify_full("alice", Some(&alice));
    show(
        &cluster,
        &conninfo,
        "SELECT pgssl.ssl_version(), pgssl.ssl_cipher(), pgssl.client_cn(), pgssl.client_dn(), \
         pgssl.issuer_dn(), pgssl.client_serial_hex(), pgssl.client_cert_not_after(), \
         pgssl.client_cert_fingerprint()",
    );
    show(
        &cluster,
        &conninfo,
        "SELECT jsonb_pretty(pgssl.session_info())",
    );
    show(
        &cluster,
        &conninfo,
        "SELECT pid, usename, ssl, version, client_dn FROM pgssl.connections",
    );
    enroll_and_check(&cluster);
    println!("\nThe cluster is stopped and removed now.");
}

/// The `pgssl` command: `PGSSL_BIN`, else `pgssl` on PATH (scripts/setup.sh links it).
fn pgssl_command() -> Option<std::path::PathBuf> {
    if let Some(bin) = std::env::var_os("PGSSL_BIN") {
        return Some(bin.into());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("pgssl"))
        .find(|p| p.is_file())
}

fn run_pgssl(pgssl: &std::path::Path, cluster: &TlsCluster, args: &[&str]) -> String {
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("\"{a}\"")
            } else {
                a.to_string()
            }
        })
        .collect();
    println!("\n$ pgssl {}", shown.join(" "));
    let out = pgssl_tests::clean_command(pgssl, &cluster.dir("home"))
        .args(args)
        .output()
        .expect("pgssl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "pgssl failed");
    stdout
}

/// The full loop with the pgssl command: a certificate by `pgssl enroll` over a password
/// login, then `pgssl check` with `sslmode=verify-full` and that certificate.
fn enroll_and_check(cluster: &TlsCluster) {
    let Some(pgssl) = pgssl_command() else {
        println!("\n(pgssl is not on PATH: scripts/setup.sh links it; skipping the enroll demo)");
        return;
    };
    let has_enroll = cluster.sql(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = 'pgssl' AND p.proname = 'enroll'",
    ) == "1";
    if !has_enroll {
        println!("\n(this build of the extension has no pgssl.enroll; skipping the enroll demo)");
        return;
    }
    println!("\nNow bob, who has only a password, gets a certificate from the database's own CA.");
    println!("The server trusts that CA for client certificates (ssl_ca_file = 'pgssl_ca.crt').");
    cluster.sql("SELECT pgssl.init_ca('pgssl demo client CA') IS NOT NULL");
    cluster.sql("ALTER SYSTEM SET ssl_ca_file = 'pgssl_ca.crt'");
    cluster.sql("SELECT pg_reload_conf()");
    cluster.sql("CREATE ROLE bob LOGIN PASSWORD 'demo-password'");
    cluster.sql("GRANT EXECUTE ON FUNCTION pgssl.enroll(text, integer) TO bob");
    let out_dir = cluster.dir("bob");
    // The fixture's pg_hba.conf takes passwords from bob only without TLS
    // (hostnossl ... scram-sha-256) and certificates over TLS (hostssl ... cert).
    let login = cluster.conninfo(&format!(
        "user=bob password=demo-password sslmode=disable sslrootcert={}",
        cluster.root_cert.display()
    ));
    let out_arg = out_dir.display().to_string();
    let enrolled = run_pgssl(&pgssl, cluster, &["enroll", &login, "--out", &out_arg]);
    let conninfo = enrolled
        .lines()
        .last()
        .expect("pgssl enroll prints the conninfo")
        .to_string();
    run_pgssl(&pgssl, cluster, &["check", &conninfo]);
}

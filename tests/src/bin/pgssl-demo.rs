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
    println!("\nThe cluster is stopped and removed now.");
}

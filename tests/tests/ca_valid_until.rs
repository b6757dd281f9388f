//! `pgssl.enroll` honours the role's `VALID UNTIL`: the certificate's `notAfter` is clipped
//! to it, and a role already past it gets ERROR 28000 and no certificate.

use std::fs;

use openssl::x509::X509;
use pgssl_tests::{csr_pem, unix_now, unix_time, KeyType, TlsCluster};

fn enroll_as(cluster: &TlsCluster, role: &str) -> std::process::Output {
    let csr = csr_pem(&[role], &KeyType::EcP256.generate());
    let file = cluster.dir("sql").join(format!("{role}.sql"));
    fs::write(&file, format!("SELECT pgssl.enroll($pem${csr}$pem$, 397)")).unwrap();
    cluster
        .psql_command(&cluster.socket_conninfo(role))
        .args(["-v", "VERBOSITY=verbose", "-f"])
        .arg(&file)
        .output()
        .expect("psql")
}

#[test]
fn enroll_never_outlives_the_roles_valid_until() {
    let cluster = TlsCluster::start();
    cluster.sql("SELECT pgssl.init_ca()");
    let grant = "GRANT EXECUTE ON FUNCTION pgssl.enroll(text, integer) TO";
    cluster.sql(&format!(
        "CREATE ROLE soon LOGIN VALID UNTIL '{}'; {grant} soon;
         CREATE ROLE gone LOGIN VALID UNTIL '2001-01-01 00:00:00+00'; {grant} gone;
         CREATE ROLE forever LOGIN VALID UNTIL 'infinity'; {grant} forever",
        // Two days from now, in the server's own terms.
        cluster.sql("SELECT (now() + interval '2 days')::text")
    ));
    let until: i64 = cluster
        .sql("SELECT extract(epoch FROM rolvaliduntil)::int8 FROM pg_roles WHERE rolname = 'soon'")
        .parse()
        .unwrap();

    let out = enroll_as(&cluster, "soon");
    let pem = pgssl_tests::stdout_ok(&out, "enroll as soon");
    let cert = X509::from_pem(pem.as_bytes()).unwrap();
    let not_after = unix_time(cert.not_after());
    assert!(
        not_after <= until,
        "notAfter {not_after} is past VALID UNTIL {until}"
    );
    assert!(
        not_after >= until - 1,
        "clipped to VALID UNTIL, not shorter: {not_after} vs {until}"
    );

    let out = enroll_as(&cluster, "gone");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a role past VALID UNTIL got a certificate"
    );
    assert!(stderr.contains("ERROR:  28000:"), "{stderr}");
    assert!(stderr.contains("VALID UNTIL"), "{stderr}");
    assert_eq!(
        cluster.sql("SELECT count(*) FROM pgssl.issued_certs WHERE common_name = 'gone'"),
        "0"
    );

    let out = enroll_as(&cluster, "forever");
    let pem = pgssl_tests::stdout_ok(&out, "enroll as forever");
    let cert = X509::from_pem(pem.as_bytes()).unwrap();
    let days = (unix_time(cert.not_after()) - unix_now()) / 86_400;
    assert!(
        (396..=397).contains(&days),
        "infinity does not clip: {days} days"
    );
}

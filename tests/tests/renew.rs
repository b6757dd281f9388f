//! `pgssl.renew()` end to end on a TLS cluster with `hostssl ... cert`: a certificate from
//! `pgssl.enroll` renews itself over a login with it, and the new one logs in; every other
//! session is refused with 42501 and the reason (no TLS, a password login that presented a
//! valid certificate, a revoked, expired or foreign certificate); bad CSRs get their SQLSTATE
//! and leave no row; `pgssl.renew_revokes_previous` revokes the old certificate, which the
//! installed CRL then refuses; `pgssl.renew_validity` sets the lifetime of renewals.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::Duration;

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use pgssl_tests::{
    csr_pem, seed_recipe, stdout_ok, unix_now, unix_time, wait_until, Ca, CertFiles, CertSpec,
    KeyType, TlsCluster,
};

// ---------------------------------------------------------------- helpers

/// Asserts that `out` failed with `sqlstate` and a message containing `reason`.
fn assert_refused(out: &Output, sqlstate: &str, reason: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&format!("ERROR:  {sqlstate}:")),
        "expected SQLSTATE {sqlstate}, got: {stderr}"
    );
    assert!(stderr.contains(reason), "expected {reason:?} in: {stderr}");
}

/// A dollar-quoted SQL literal.
fn lit(text: &str) -> String {
    assert!(!text.contains("$pgssl$"));
    format!("$pgssl${text}$pgssl$")
}

/// `ALTER SYSTEM SET name = value` (after `LOAD 'pgssl'`, as PostgreSQL 15 needs for
/// `pgssl.*`), reload, and wait until new sessions see it.
fn set_and_reload(cluster: &TlsCluster, name: &str, value: &str) {
    let sql =
        format!("LOAD 'pgssl';\nALTER SYSTEM SET {name} = '{value}';\nSELECT pg_reload_conf();");
    stdout_ok(
        &cluster.psql_script(&cluster.socket_conninfo("postgres"), &sql),
        &sql,
    );
    wait_until(
        &format!("{name} = {value}"),
        Duration::from_secs(20),
        || cluster.sql(&format!("SELECT current_setting('{name}', true)")) == value,
    );
}

/// A cluster whose pgssl CA is trusted for client certificates, and roles `alice` and
/// `bob` with a password, allowed to enroll. `bob` is a member of `scram_users`: over TLS he
/// logs in with his password (the fixture's `pg_hba.conf`), alice with a certificate.
fn ca_cluster() -> TlsCluster {
    let cluster = TlsCluster::start();
    cluster.sql("SELECT pgssl.init_ca('pgssl renew test CA') IS NOT NULL");
    set_and_reload(&cluster, "ssl_ca_file", "pgssl_ca.crt");
    for role in ["alice", "bob"] {
        cluster.sql(&format!("CREATE ROLE {role} LOGIN PASSWORD 'pw'"));
        cluster.sql(&format!(
            "GRANT EXECUTE ON FUNCTION pgssl.enroll(text, integer) TO {role}"
        ));
    }
    cluster.sql("GRANT scram_users TO bob");
    cluster
}

/// A certificate and its key in files, and its serial.
struct Held {
    files: CertFiles,
    cert: X509,
    serial: String,
}

fn serial_hex(cert: &X509) -> String {
    let bytes = cert.serial_number().to_bn().unwrap().to_vec();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hold(cluster: &TlsCluster, pem: &str, key: &PKey<Private>) -> Held {
    let cert = X509::from_pem(pem.as_bytes()).unwrap_or_else(|e| panic!("{e}: {pem}"));
    let stem = format!("held-{}", pgssl_tests::unique_suffix());
    let files = CertFiles {
        cert: cluster.client_dir.join(format!("{stem}.crt")),
        key: cluster.client_dir.join(format!("{stem}.key")),
    };
    fs::write(&files.cert, pem).unwrap();
    fs::write(&files.key, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    fs::set_permissions(&files.key, fs::Permissions::from_mode(0o600)).unwrap();
    let serial = serial_hex(&cert);
    Held {
        files,
        cert,
        serial,
    }
}

/// Without TLS, with a password (the fixture's `hostnossl ... scram-sha-256`).
fn password_login(cluster: &TlsCluster, role: &str) -> String {
    cluster.conninfo(&format!("user={role} password=pw sslmode=disable"))
}

/// `role` enrolls over a password login.
fn enroll(cluster: &TlsCluster, role: &str) -> Held {
    let key = KeyType::EcP256.generate();
    let sql = format!("SELECT pgssl.enroll({})", lit(&csr_pem(&[role], &key)));
    let out = cluster.psql_script(&password_login(cluster, role), &sql);
    hold(cluster, &stdout_ok(&out, "enroll"), &key)
}

/// `pgssl.renew()` of a CSR for `cn` with a new key of `key_type`, over `conninfo`.
fn renew_as(
    cluster: &TlsCluster,
    conninfo: &str,
    cn: &str,
    key_type: KeyType,
) -> (Output, PKey<Private>) {
    let key = key_type.generate();
    let sql = format!("SELECT pgssl.renew({})", lit(&csr_pem(&[cn], &key)));
    (cluster.psql_script(conninfo, &sql), key)
}

/// The serial the server sees for a login with `held`'s files, or psql's error.
fn login_serial(cluster: &TlsCluster, role: &str, held: &Held) -> Result<String, String> {
    let out = cluster.psql(
        &cluster.verify_full(role, Some(&held.files)),
        "SELECT current_user || ' ' || pgssl.client_serial_hex()",
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn registry_rows(cluster: &TlsCluster) -> String {
    cluster.sql("SELECT count(*) FROM pgssl.issued_certs")
}

// ---------------------------------------------------------------- tests

#[test]
fn a_certificate_renews_itself_and_everything_else_is_refused() {
    let cluster = ca_cluster();
    let first = enroll(&cluster, "alice");
    assert_eq!(
        login_serial(&cluster, "alice", &first),
        Ok(format!("alice {}", first.serial))
    );
    // Nobody granted renew: PUBLIC may execute it, the certificate is the credential.
    assert_eq!(
        cluster
            .sql("SELECT has_function_privilege('alice', 'pgssl.renew(text, integer)', 'EXECUTE')"),
        "t"
    );

    // Renew over the certificate: a new key, a new serial, and it logs in.
    let cert_login = cluster.verify_full("alice", Some(&first.files));
    let (out, key) = renew_as(&cluster, &cert_login, "alice", KeyType::EcP256);
    let second = hold(&cluster, &stdout_ok(&out, "renew"), &key);
    assert_ne!(second.serial, first.serial);
    assert!(second.cert.public_key().unwrap().public_eq(&key));
    assert!(!second
        .cert
        .public_key()
        .unwrap()
        .public_eq(&first.cert.public_key().unwrap()));
    assert_eq!(
        login_serial(&cluster, "alice", &second),
        Ok(format!("alice {}", second.serial))
    );
    // The default lifetime, as enroll's; the previous one is kept (renew_revokes_previous off).
    let days = (unix_time(second.cert.not_after()) - unix_now()) / 86_400;
    assert!((89..=90).contains(&days), "{days} days");
    assert_eq!(
        cluster.sql(&format!(
            "SELECT string_agg(issued_by || ':' || (revoked_at IS NULL), ',' ORDER BY issued_at)
               FROM pgssl.issued_certs WHERE serial IN ('{}', '{}')",
            first.serial, second.serial
        )),
        "alice:true,alice:true"
    );
    assert!(login_serial(&cluster, "alice", &first).is_ok());
    let log = cluster.log();
    assert!(log.contains(&format!(
        "pgssl issued certificate serial {} for CN \"alice\" to \"alice\"",
        second.serial
    )));
    assert!(log.contains(&format!(
        "pgssl renewed certificate serial {} of \"alice\" with serial {}",
        first.serial, second.serial
    )));

    // Bad input over the same kind of session: each its SQLSTATE, no row.
    let rows = registry_rows(&cluster);
    let second_login = cluster.verify_full("alice", Some(&second.files));
    let (out, _) = renew_as(&cluster, &second_login, "bob", KeyType::EcP256);
    assert_refused(&out, "42501", "is for common name \"bob\"");
    let (out, _) = renew_as(&cluster, &second_login, "alice", KeyType::Rsa1024);
    assert_refused(&out, "22023", "1024");
    let out = cluster.psql_script(&second_login, "SELECT pgssl.renew('garbage')");
    assert_refused(&out, "22023", "no PEM certificate signing request found");
    let out = cluster.psql_script(&second_login, "SELECT pgssl.renew(NULL)");
    assert_refused(&out, "22004", "csr");
    let key = KeyType::EcP256.generate();
    let sql = format!(
        "BEGIN READ ONLY;\nSELECT pgssl.renew({});",
        lit(&csr_pem(&["alice"], &key))
    );
    let out = cluster.psql_script(&second_login, &sql);
    assert_refused(&out, "25006", "in a read-only transaction");
    assert_eq!(registry_rows(&cluster), rows);

    // A password login without TLS.
    let (out, _) = renew_as(
        &cluster,
        &password_login(&cluster, "alice"),
        "alice",
        KeyType::EcP256,
    );
    assert_refused(&out, "42501", "does not use TLS");
    // A password login over TLS that presented bob's own valid certificate: the server
    // verified it, but the login was by password.
    let bobs = enroll(&cluster, "bob");
    let bob_tls_password = format!(
        "{} password=pw",
        cluster.verify_full("bob", Some(&bobs.files))
    );
    assert_eq!(
        cluster.psql_ok(
            &bob_tls_password,
            "SELECT pgssl.client_cn() || ' ' || (pgssl.session_info()->>'client_cert_verified')"
        ),
        "bob true"
    );
    let (out, _) = renew_as(&cluster, &bob_tls_password, "bob", KeyType::EcP256);
    assert_refused(&out, "42501", "not authenticated by its client certificate");
    assert_eq!(
        registry_rows(&cluster),
        rows.parse::<i64>().map(|n| (n + 1).to_string()).unwrap()
    );

    // Revoked (no CRL installed: the server still lets it in, pgssl.renew does not).
    cluster.sql(&format!(
        "SELECT pgssl.revoke('{}', 'keyCompromise')",
        second.serial
    ));
    assert!(login_serial(&cluster, "alice", &second).is_ok());
    let (out, _) = renew_as(&cluster, &second_login, "alice", KeyType::EcP256);
    assert_refused(&out, "42501", "is revoked (keyCompromise)");

    // pgssl.renew_validity: renewals live that long, a short-lived certificate.
    set_and_reload(&cluster, "pgssl.renew_validity", "10min");
    let (out, key) = renew_as(&cluster, &cert_login, "alice", KeyType::Ed25519);
    let short = hold(&cluster, &stdout_ok(&out, "renew"), &key);
    let left = unix_time(short.cert.not_after()) - unix_now();
    assert!((590..=600).contains(&left), "{left} s left");
    assert_eq!(
        login_serial(&cluster, "alice", &short),
        Ok(format!("alice {}", short.serial))
    );
}

#[test]
fn an_expired_or_foreign_certificate_is_refused() {
    let cluster = ca_cluster();
    let data = |name: &str| fs::read(cluster.data_dir.join(name)).unwrap();
    let pgssl_ca = Ca::from_pem(&data("pgssl_ca.crt"), &data("pgssl_ca.key"));

    // A certificate from the pgssl CA, recorded, that ends while its session is open (the
    // server refuses an expired certificate at the handshake, so this is the one way a
    // session can hold one).
    let issued = pgssl_ca.issue(&CertSpec::client(&[("CN", "alice")]).validity(-60, 4));
    let pem = String::from_utf8(issued.cert.to_pem().unwrap()).unwrap();
    let held = hold(&cluster, &pem, &issued.key);
    let fingerprint: String = issued
        .cert
        .digest(MessageDigest::sha256())
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    cluster.sql(&format!(
        "INSERT INTO pgssl.issued_certs (serial, common_name, not_before, not_after,
                fingerprint_sha256, issued_by, certificate)
         VALUES ('{}', 'alice', to_timestamp({}), to_timestamp({}), '{fingerprint}', 'postgres', {})",
        held.serial,
        unix_time(issued.cert.not_before()),
        unix_time(issued.cert.not_after()),
        lit(&pem)
    ));
    let key = KeyType::EcP256.generate();
    let sql = format!(
        "SELECT pgssl.client_serial_hex(); SELECT pg_sleep(6); SELECT pgssl.renew({})",
        lit(&csr_pem(&["alice"], &key))
    );
    let out = cluster.psql_script(&cluster.verify_full("alice", Some(&held.files)), &sql);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&held.serial),
        "the session did not log in with the short certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_refused(
        &out,
        "42501",
        &format!("serial {}) expired at", held.serial),
    );

    // The seed document's client CA, trusted beside the pgssl CA: its certificate
    // (CN=postgres) logs in with `cert`, and is no credential for pgssl.renew().
    let seed = cluster.dir("seed");
    seed_recipe(&seed);
    let mut both = data("pgssl_ca.crt");
    both.extend(fs::read(seed.join("ca-client.crt")).unwrap());
    cluster.write_data_file("clients.crt", &both, 0o644);
    set_and_reload(&cluster, "ssl_ca_file", "clients.crt");
    let seed_client = CertFiles {
        cert: seed.join("client.crt"),
        key: seed.join("client.key"),
    };
    fs::set_permissions(&seed_client.key, fs::Permissions::from_mode(0o600)).unwrap();
    let login = cluster.verify_full("postgres", Some(&seed_client));
    assert_eq!(
        cluster.psql_ok(
            &login,
            "SELECT pgssl.client_cn() || ' ' || pgssl.issuer_dn()"
        ),
        "postgres CN=root-client-ca"
    );
    let rows = registry_rows(&cluster);
    let (out, _) = renew_as(&cluster, &login, "postgres", KeyType::EcP256);
    assert_refused(
        &out,
        "42501",
        "issuer \"CN=root-client-ca\") was not issued by the pgssl CA",
    );
    assert_eq!(registry_rows(&cluster), rows);
}

#[test]
fn renew_revokes_previous_and_the_crl_refuses_the_old_certificate() {
    let cluster = ca_cluster();
    set_and_reload(&cluster, "pgssl.renew_revokes_previous", "on");
    set_and_reload(&cluster, "ssl_crl_file", "pgssl.crl");
    cluster.sql("SELECT pgssl.install_crl() IS NOT NULL");
    let first = enroll(&cluster, "alice");
    let login = cluster.verify_full("alice", Some(&first.files));
    wait_until("alice logging in", Duration::from_secs(20), || {
        login_serial(&cluster, "alice", &first).is_ok()
    });

    // Rolled back: nothing revoked, nothing recorded.
    let key = KeyType::EcP256.generate();
    let sql = format!(
        "BEGIN; SELECT pgssl.renew({}) IS NOT NULL; ROLLBACK;",
        lit(&csr_pem(&["alice"], &key))
    );
    stdout_ok(&cluster.psql_script(&login, &sql), "renew, rolled back");
    assert_eq!(
        cluster.sql("SELECT count(*) || ' ' || count(revoked_at) FROM pgssl.issued_certs"),
        "1 0"
    );

    let (out, key) = renew_as(&cluster, &login, "alice", KeyType::EcP256);
    let second = hold(&cluster, &stdout_ok(&out, "renew"), &key);
    assert_eq!(
        cluster.sql(&format!(
            "SELECT revocation_reason FROM pgssl.issued_certs WHERE serial = '{}'",
            first.serial
        )),
        "superseded"
    );
    assert!(cluster
        .log()
        .contains("the previous one is revoked (superseded)"));
    cluster.sql("SELECT pgssl.install_crl() IS NOT NULL");
    wait_until(
        "the old certificate refused",
        Duration::from_secs(20),
        || {
            login_serial(&cluster, "alice", &first)
                .is_err_and(|e| e.contains("certificate revoked"))
        },
    );
    assert_eq!(
        login_serial(&cluster, "alice", &second),
        Ok(format!("alice {}", second.serial))
    );
}

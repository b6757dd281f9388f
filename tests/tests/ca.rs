//! The in-database CA end to end: certificates signed by `pgssl.enroll` and
//! `pgssl.sign_csr` log in over `sslmode=verify-full` and `hostssl ... cert`;
//! revocation reaches the server through `pgssl.install_crl()` without a
//! restart; every refusal is an ERROR with its SQLSTATE and leaves no row.

use std::fs;
use std::process::Output;
use std::time::Duration;

use openssl::pkey::PKey;
use openssl::x509::{X509NameBuilder, X509};
use pgssl_tests::{
    csr_pem, openssl_csr, openssl_stdout, seed_recipe, wait_until, CertFiles, KeyType, TlsCluster,
};

// ---------------------------------------------------------------- helpers

/// A dollar-quoted SQL literal.
fn lit(text: &str) -> String {
    assert!(!text.contains("$pgssl$"));
    format!("$pgssl${text}$pgssl$")
}

const EC_P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// Makes the server trust the pgssl CA for client certificates: ssl_ca_file
/// names the CA file in the data directory; reloaded, no restart.
fn trust_pgssl_ca(cluster: &TlsCluster) {
    set_and_reload(cluster, "ssl_ca_file", "pgssl_ca.crt");
}

/// `ALTER SYSTEM SET name = value`, reload, and wait until new sessions see it.
fn set_and_reload(cluster: &TlsCluster, name: &str, value: &str) {
    cluster.sql_as(
        "postgres",
        &format!("LOAD 'pgssl'; ALTER SYSTEM SET {name} = '{value}'"),
    );
    cluster.sql("SELECT pg_reload_conf()");
    wait_until(
        &format!("{name} to be reloaded"),
        Duration::from_secs(20),
        || cluster.sql(&format!("SELECT current_setting('{name}', true)")) == value,
    );
}

/// Creates a login role, allowed to enroll.
fn enrollable_role(cluster: &TlsCluster, role: &str) {
    cluster.sql(&format!(
        "CREATE ROLE {role} LOGIN; GRANT EXECUTE ON FUNCTION pgssl.enroll(text, integer) TO {role}"
    ));
}

/// `role` enrolls with a CLI-made key and CSR; returns the files psql uses.
fn enroll_with_cli(cluster: &TlsCluster, role: &str, key_args: &[&str]) -> CertFiles {
    let dir = cluster.dir("clients");
    let (key, csr) = openssl_csr(&dir, role, &format!("/CN={role}"), key_args);
    let csr = fs::read_to_string(csr).unwrap();
    let pem = cluster.sql_as(role, &format!("SELECT pgssl.enroll({})", lit(&csr)));
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let cert = dir.join(format!("{role}.crt"));
    fs::write(&cert, format!("{pem}\n")).unwrap();
    CertFiles { cert, key }
}

/// psql with verify-full as `role` with `files`.
fn login(cluster: &TlsCluster, role: &str, files: &CertFiles, sql: &str) -> Output {
    cluster.psql(&cluster.verify_full(role, Some(files)), sql)
}

fn login_ok(cluster: &TlsCluster, role: &str, files: &CertFiles, sql: &str) -> String {
    cluster.psql_ok(&cluster.verify_full(role, Some(files)), sql)
}

fn assert_no_crash(cluster: &TlsCluster) {
    let log = cluster.log();
    for bad in [
        "terminated by signal",
        "was terminated",
        "PANIC",
        "server process (PID",
    ] {
        assert!(
            !log.contains(bad),
            "server log shows a crash ({bad}):\n{log}"
        );
    }
    assert_eq!(cluster.sql("SELECT 1"), "1");
}

fn registry_count(cluster: &TlsCluster) -> i64 {
    cluster
        .sql("SELECT count(*) FROM pgssl.issued_certs")
        .parse()
        .unwrap()
}

/// A cluster whose client CA is a fresh pgssl CA of `key_type`.
fn pgssl_ca_cluster(key_type: &str) -> TlsCluster {
    let cluster = TlsCluster::start();
    let pem = cluster.sql(&format!(
        "SELECT pgssl.init_ca('pgssl e2e CA', 3650, '{key_type}')"
    ));
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    trust_pgssl_ca(&cluster);
    cluster
}

// ---------------------------------------------------------------- tests

#[test]
fn enroll_then_verify_full_login_with_the_pgssl_ca() {
    let cluster = pgssl_ca_cluster("ec-p256");
    enrollable_role(&cluster, "alice");
    let files = enroll_with_cli(&cluster, "alice", EC_P256);

    let out = login_ok(
        &cluster,
        "alice",
        &files,
        "SELECT pgssl.client_cn() || ' ' || current_user || ' ' || pgssl.ssl_is_used()",
    );
    assert_eq!(out, "alice alice true");

    // The registry row matches the certificate the server saw.
    let serial = login_ok(
        &cluster,
        "alice",
        &files,
        "SELECT pgssl.client_serial_hex()",
    );
    let fingerprint = login_ok(
        &cluster,
        "alice",
        &files,
        "SELECT pgssl.client_cert_fingerprint()",
    );
    let row = cluster.sql(&format!(
        "SELECT common_name, issued_by, fingerprint_sha256 = '{fingerprint}',
                revoked_at IS NULL, not_after - not_before
           FROM pgssl.issued_certs WHERE serial = '{serial}'"
    ));
    assert_eq!(row, "alice|alice|t|t|90 days 00:05:00");
    assert!(serial.len() >= 16, "at least 64 bits: {serial}");

    // The issued certificate has exactly the profile's extensions.
    let text = openssl_stdout(
        files.cert.parent().unwrap(),
        &[
            "x509",
            "-noout",
            "-text",
            "-in",
            files.cert.to_str().unwrap(),
        ],
    );
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("Subject: CN = alice"), "{text}");
    assert!(text.contains("ecdsa-with-SHA256"), "{text}");
}

#[test]
fn the_seed_documents_rsa_ca_works_as_the_pgssl_ca() {
    let files = tempfile::tempdir().unwrap();
    seed_recipe(files.path());
    // The seed's client CA (openssl req -new -x509 -days 3650 -nodes, RSA-2048),
    // configured as the pgssl CA and as ssl_ca_file.
    let cluster = TlsCluster::builder()
        .ca_file(files.path().join("ca-client.crt"))
        .start();
    cluster.write_data_file(
        "seed_ca.crt",
        &fs::read(files.path().join("ca-client.crt")).unwrap(),
        0o644,
    );
    cluster.write_data_file(
        "seed_ca.key",
        &fs::read(files.path().join("ca-client.key")).unwrap(),
        0o600,
    );
    // ALTER SYSTEM knows pgssl's settings once the library is loaded.
    cluster.sql_as(
        "postgres",
        "LOAD 'pgssl'; ALTER SYSTEM SET pgssl.ca_cert_file = 'seed_ca.crt'; \
         ALTER SYSTEM SET pgssl.ca_key_file = 'seed_ca.key'",
    );
    set_and_reload(&cluster, "pgssl.ca_key_file", "seed_ca.key");
    assert_eq!(
        cluster.sql("SELECT pgssl.ca_cert()"),
        fs::read_to_string(files.path().join("ca-client.crt"))
            .unwrap()
            .trim_end()
    );

    // The seed's own client command (RSA, -text: text around the PEM block).
    enrollable_role(&cluster, "bob");
    let dir = cluster.dir("clients");
    let (key, csr) = openssl_csr(&dir, "bob", "/CN=bob", &["-text"]);
    let csr = fs::read_to_string(csr).unwrap();
    assert!(csr.starts_with("Certificate Request:"));
    let pem = cluster.sql_as("bob", &format!("SELECT pgssl.enroll({})", lit(&csr)));
    fs::write(dir.join("bob.crt"), format!("{pem}\n")).unwrap();
    let bob = CertFiles {
        cert: dir.join("bob.crt"),
        key,
    };
    assert_eq!(
        login_ok(
            &cluster,
            "bob",
            &bob,
            "SELECT pgssl.client_cn() || ' ' || pgssl.issuer_dn()"
        ),
        "bob CN=root-client-ca"
    );
    // openssl agrees the chain is good and the signature is SHA-256 RSA.
    let verify = openssl_stdout(
        &dir,
        &[
            "verify",
            "-CAfile",
            files.path().join("ca-client.crt").to_str().unwrap(),
            "-purpose",
            "sslclient",
            "bob.crt",
        ],
    );
    assert!(verify.contains("bob.crt: OK"), "{verify}");
    let text = openssl_stdout(&dir, &["x509", "-noout", "-text", "-in", "bob.crt"]);
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
    assert!(
        text.contains("Digital Signature, Key Encipherment"),
        "{text}"
    );
}

#[test]
fn revoke_and_install_crl_refuse_that_login_without_a_restart() {
    let cluster = pgssl_ca_cluster("ec-p384");
    enrollable_role(&cluster, "alice");
    enrollable_role(&cluster, "bob");
    let alice = enroll_with_cli(&cluster, "alice", EC_P256);
    let bob = enroll_with_cli(&cluster, "bob", &["-newkey", "rsa:2048"]);

    // The CRL file the server reads; the first CRL is empty.
    cluster.sql_error_as("postgres", "SELECT pgssl.install_crl()", "55000");
    set_and_reload(&cluster, "ssl_crl_file", "pgssl.crl");
    let path = cluster.sql("SELECT pgssl.install_crl()");
    assert_eq!(
        path,
        cluster.data_dir.join("pgssl.crl").display().to_string()
    );
    let started = cluster.sql("SELECT pg_postmaster_start_time()");
    wait_until("alice to log in", Duration::from_secs(20), || {
        login(&cluster, "alice", &alice, "SELECT 1")
            .status
            .success()
    });
    assert_eq!(
        login_ok(&cluster, "bob", &bob, "SELECT pgssl.client_cn()"),
        "bob"
    );

    let serial = login_ok(
        &cluster,
        "alice",
        &alice,
        "SELECT pgssl.client_serial_hex()",
    );
    // Revocation is by hex serial, in any case, with an RFC 5280 reason.
    assert_eq!(
        cluster.sql(&format!(
            "SELECT pgssl.revoke(upper('{serial}'), 'keyCompromise')"
        )),
        "t"
    );
    assert_eq!(
        cluster.sql(&format!("SELECT pgssl.revoke('{serial}')")),
        "f",
        "already revoked"
    );
    // A serial the registry does not know (a certificate whose issuing
    // transaction rolled back) is recorded with a WARNING, not refused.
    let out = cluster.psql_script(
        &cluster.socket_conninfo("postgres"),
        "SELECT pgssl.revoke('00ff', 'unspecified')",
    );
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARNING:") && stderr.contains("not in pgssl.issued_certs"),
        "{stderr}"
    );
    cluster.sql_error_as(
        "postgres",
        &format!("SELECT pgssl.revoke('{serial}', 'because')"),
        "22023",
    );
    cluster.sql_error_as("postgres", "SELECT pgssl.revoke('xyz')", "22023");

    let path = cluster.sql("SELECT pgssl.install_crl()");
    // Refused as soon as the reload is through; bob's certificate still works.
    wait_until("alice to be refused", Duration::from_secs(20), || {
        !login(&cluster, "alice", &alice, "SELECT 1")
            .status
            .success()
    });
    let refused = login(&cluster, "alice", &alice, "SELECT 1");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("certificate revoked"), "{stderr}");
    assert_eq!(
        login_ok(&cluster, "bob", &bob, "SELECT pgssl.client_cn()"),
        "bob"
    );
    assert_eq!(
        cluster.sql("SELECT pg_postmaster_start_time()"),
        started,
        "no restart"
    );

    // The CRL on disk: v2, signed by the CA, the reason, an increasing number.
    let dir = cluster.dir("crl");
    fs::write(dir.join("ca.crt"), cluster.sql("SELECT pgssl.ca_cert()")).unwrap();
    fs::copy(&path, dir.join("installed.crl")).unwrap();
    let text = openssl_stdout(
        &dir,
        &[
            "crl",
            "-in",
            "installed.crl",
            "-CAfile",
            "ca.crt",
            "-noout",
            "-text",
        ],
    );
    assert!(text.contains("Version 2"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains(&serial.to_uppercase()), "{text}");
    assert!(
        text.contains("X509v3 CRL Number: \n                2"),
        "{text}"
    );
    let next = cluster.sql("SELECT pgssl.crl(30)");
    fs::write(dir.join("next.crl"), next).unwrap();
    let text = openssl_stdout(
        &dir,
        &[
            "crl", "-in", "next.crl", "-CAfile", "ca.crt", "-noout", "-text",
        ],
    );
    assert!(
        text.contains("X509v3 CRL Number: \n                3"),
        "{text}"
    );
    assert_no_crash(&cluster);
}

#[test]
fn a_csr_asking_for_ca_true_gets_a_certificate_that_cannot_sign() {
    let cluster = pgssl_ca_cluster("ec-p256");
    enrollable_role(&cluster, "mallory");
    cluster.sql("CREATE ROLE victim LOGIN");
    let dir = cluster.dir("clients");
    let (key, csr) = openssl_csr(
        &dir,
        "mallory",
        "/CN=mallory",
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            "-addext",
            "extendedKeyUsage=serverAuth,clientAuth",
            "-addext",
            "subjectAltName=DNS:db.example.com,IP:127.0.0.1",
        ],
    );
    let csr_text = fs::read_to_string(&csr).unwrap();
    let pem = cluster.sql_as(
        "mallory",
        &format!("SELECT pgssl.enroll({})", lit(&csr_text)),
    );
    fs::write(dir.join("mallory.crt"), format!("{pem}\n")).unwrap();
    let text = openssl_stdout(&dir, &["x509", "-noout", "-text", "-in", "mallory.crt"]);
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(!text.contains("Certificate Sign"), "{text}");
    assert!(!text.contains("Server Authentication"), "{text}");
    assert!(!text.contains("Subject Alternative Name"), "{text}");
    let mallory = CertFiles {
        cert: dir.join("mallory.crt"),
        key: key.clone(),
    };
    assert_eq!(
        login_ok(&cluster, "mallory", &mallory, "SELECT pgssl.client_cn()"),
        "mallory"
    );

    // Mallory signs a certificate for "victim" with her certificate and key
    // and presents the chain victim -> mallory.
    let mallory_cert = X509::from_pem(pem.as_bytes()).unwrap();
    let mallory_key = PKey::private_key_from_pem(&fs::read(&key).unwrap()).unwrap();
    let victim_key = KeyType::EcP256.generate();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "victim").unwrap();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = openssl::bn::BigNum::from_u32(7).unwrap();
    b.set_serial_number(&openssl::asn1::Asn1Integer::from_bn(&serial).unwrap())
        .unwrap();
    b.set_subject_name(&name.build()).unwrap();
    b.set_issuer_name(mallory_cert.subject_name()).unwrap();
    b.set_pubkey(&victim_key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(&mallory_key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let victim_cert = b.build();
    let chain = [
        victim_cert.to_pem().unwrap(),
        mallory_cert.to_pem().unwrap(),
    ]
    .concat();
    fs::write(dir.join("victim.crt"), chain).unwrap();
    pgssl_tests::pki::write_file(
        &dir.join("victim.key"),
        &victim_key.private_key_to_pem_pkcs8().unwrap(),
        0o600,
    );
    let victim = CertFiles {
        cert: dir.join("victim.crt"),
        key: dir.join("victim.key"),
    };
    let out = login(&cluster, "victim", &victim, "SELECT 1");
    assert!(
        !out.status.success(),
        "a certificate signed by a leaf was accepted"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("certificate") || stderr.contains("SSL"),
        "{stderr}"
    );
    assert_no_crash(&cluster);
}

#[test]
fn privileges() {
    let cluster = pgssl_ca_cluster("ed25519");
    cluster.sql("CREATE ROLE nobody LOGIN");
    let csr = lit(&csr_pem(&["nobody"], &KeyType::EcP256.generate()));
    for sql in [
        format!("SELECT pgssl.sign_csr({csr})"),
        format!("SELECT pgssl.enroll({csr})"),
        "SELECT pgssl.revoke('00ff')".to_string(),
        "SELECT pgssl.crl()".to_string(),
        "SELECT pgssl.install_crl()".to_string(),
        "SELECT pgssl.init_ca()".to_string(),
        "SELECT * FROM pgssl.issued_certs".to_string(),
        "INSERT INTO pgssl.issued_certs (serial) VALUES ('00')".to_string(),
        "SELECT nextval('pgssl.crl_number')".to_string(),
    ] {
        let err = cluster.sql_error_as("nobody", &sql, "42501");
        assert!(err.contains("permission denied"), "{err}");
    }
    // Anyone may read the CA certificate.
    assert!(cluster
        .sql_as("nobody", "SELECT pgssl.ca_cert()")
        .starts_with("-----BEGIN CERTIFICATE-----"));
    // Superuser-only even with EXECUTE granted.
    cluster.sql(
        "GRANT EXECUTE ON FUNCTION pgssl.install_crl(integer), pgssl.init_ca(text, integer, text) TO nobody",
    );
    let err = cluster.sql_error_as("nobody", "SELECT pgssl.install_crl()", "42501");
    assert!(err.contains("superusers only"), "{err}");
    cluster.sql_error_as("nobody", "SELECT pgssl.init_ca()", "42501");
    // The settings are superuser-only: refused once the library is loaded,
    // and a placeholder set before that is dropped when it loads.
    cluster.sql_error_as(
        "nobody",
        "SELECT pgssl.ca_cert() IS NOT NULL; SET pgssl.ca_key_file = '/tmp/mine.key'",
        "42501",
    );
    let out = cluster.psql_script(
        &cluster.socket_conninfo("nobody"),
        "SET pgssl.ca_cert_file = '/tmp/mine.crt'; SELECT pgssl.ca_cert() IS NOT NULL",
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied to set parameter"));

    // A DBA's grant of sign_csr lets a role sign for any CN; issued_by says who.
    cluster.sql("GRANT EXECUTE ON FUNCTION pgssl.sign_csr(text, integer) TO nobody");
    let other = lit(&csr_pem(&["someone else"], &KeyType::EcP256.generate()));
    cluster.sql_as(
        "nobody",
        &format!("SELECT pgssl.sign_csr({other}) IS NOT NULL"),
    );
    assert_eq!(
        cluster.sql("SELECT common_name || ' by ' || issued_by FROM pgssl.issued_certs"),
        "someone else by nobody"
    );
    // ... and still not read the registry.
    cluster.sql_error_as("nobody", "SELECT count(*) FROM pgssl.issued_certs", "42501");

    // No SQL function returns the CA key: the functions are exactly these,
    // and none of their outputs holds a private key.
    let functions = cluster.sql(
        "SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc
          WHERE pronamespace = 'pgssl'::regnamespace
            AND proname IN ('init_ca','ca_cert','enroll','sign_csr','revoke','crl','install_crl')",
    );
    assert_eq!(
        functions,
        "ca_cert,crl,enroll,init_ca,install_crl,revoke,sign_csr"
    );
    let key_file = fs::read_to_string(cluster.data_dir.join("pgssl_ca.key")).unwrap();
    assert!(key_file.contains("PRIVATE KEY"));
    let mode = fs::metadata(cluster.data_dir.join("pgssl_ca.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    set_and_reload(&cluster, "ssl_crl_file", "pgssl.crl");
    let outputs = cluster.sql(&format!(
        "SELECT pgssl.ca_cert() || pgssl.sign_csr({csr}) || pgssl.crl() || pgssl.install_crl()
                || (SELECT string_agg(certificate, '') FROM pgssl.issued_certs)"
    ));
    assert!(!outputs.contains("PRIVATE KEY"));
    let key_body: String = key_file
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!outputs.replace('\n', "").contains(&key_body));
    assert!(
        !cluster.log().contains(&key_body),
        "the key is in the server log"
    );
}

#[test]
fn bad_input_is_an_error_with_its_sqlstate_and_writes_nothing() {
    let cluster = pgssl_ca_cluster("rsa-2048");
    enrollable_role(&cluster, "alice");
    let su = "postgres";
    let dir = cluster.dir("bad");
    let cli = |stem: &str, subject: &str, key_args: &[&str]| {
        fs::read_to_string(openssl_csr(&dir, stem, subject, key_args).1).unwrap()
    };

    let mut cases: Vec<(&str, String, &str)> = vec![
        ("empty text", lit(""), "22023"),
        ("garbage", lit("hello, I am not a CSR"), "22023"),
        ("a certificate", "pgssl.ca_cert()".into(), "22023"),
        ("no CN", lit(&cli("nocn", "/O=Acme", EC_P256)), "22023"),
        (
            "two CNs",
            lit(&cli("twocn", "/CN=a/CN=b", EC_P256)),
            "22023",
        ),
        (
            "CN with NUL",
            lit(&csr_pem(&["ali\0ce"], &KeyType::EcP256.generate())),
            "22023",
        ),
        (
            "CN with newline",
            lit(&csr_pem(&["alice\nbob"], &KeyType::EcP256.generate())),
            "22023",
        ),
        (
            "RSA-1024",
            lit(&cli("rsa1024", "/CN=alice", &["-newkey", "rsa:1024"])),
            "22023",
        ),
        ("2 MB", lit(&"A".repeat(2 * 1024 * 1024)), "22023"),
    ];
    // A CSR whose signature does not verify: one byte of its signature flipped.
    let good = csr_pem(&["alice"], &KeyType::EcP256.generate());
    let mut der = openssl::x509::X509Req::from_pem(good.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let last = der.len() - 3;
    der[last] ^= 0x01;
    let tampered = openssl::x509::X509Req::from_der(&der).unwrap();
    cases.push((
        "bad signature",
        lit(&String::from_utf8(tampered.to_pem().unwrap()).unwrap()),
        "22023",
    ));
    let alice_csr = lit(&cli("alice", "/CN=alice", EC_P256));
    for (what, arg, state) in &cases {
        for f in ["sign_csr", "enroll"] {
            let role = if f == "enroll" { "alice" } else { su };
            let err = cluster.sql_error_as(role, &format!("SELECT pgssl.{f}({arg})"), state);
            eprintln!("{what} via {f}: {}", err.lines().next().unwrap_or(""));
        }
    }
    // Days: 0, negative, more than pgssl.max_validity_days.
    for days in ["0", "-1", "398"] {
        cluster.sql_error_as(
            su,
            &format!("SELECT pgssl.sign_csr({alice_csr}, {days})"),
            "22023",
        );
    }
    cluster.sql_error_as(
        su,
        &format!("SET pgssl.max_validity_days = 30; SELECT pgssl.sign_csr({alice_csr}, 31)"),
        "22023",
    );
    // enroll only for the session user.
    let err = cluster.sql_error_as(
        "alice",
        &format!(
            "SELECT pgssl.enroll({})",
            lit(&cli("bob", "/CN=bob", EC_P256))
        ),
        "42501",
    );
    assert!(
        err.contains("\"bob\"") && err.contains("\"alice\""),
        "{err}"
    );
    // CA files missing; CA key not matching the certificate.
    cluster.sql_error_as(
        su,
        &format!("SET pgssl.ca_cert_file = 'nowhere.crt'; SELECT pgssl.sign_csr({alice_csr})"),
        "55000",
    );
    cluster.sql_error_as(
        su,
        &format!("SET pgssl.ca_key_file = 'nowhere.key'; SELECT pgssl.sign_csr({alice_csr})"),
        "55000",
    );
    cluster.sql_error_as(
        su,
        "SET pgssl.ca_cert_file = 'nowhere.crt'; SELECT pgssl.ca_cert()",
        "55000",
    );
    cluster.sql(
        "SET pgssl.ca_cert_file = 'other.crt'; SET pgssl.ca_key_file = 'other.key';
         SELECT pgssl.init_ca('other CA') IS NOT NULL",
    );
    let err = cluster.sql_error_as(
        su,
        &format!("SET pgssl.ca_key_file = 'other.key'; SELECT pgssl.sign_csr({alice_csr})"),
        "55000",
    );
    assert!(err.contains("does not match"), "{err}");
    // A setting made before the library is loaded (a placeholder) counts.
    let err = cluster.sql_error_as(
        su,
        &format!("SET pgssl.ca_cert_file = 'early.crt'; SELECT pgssl.sign_csr({alice_csr})"),
        "55000",
    );
    assert!(err.contains("early.crt"), "{err}");
    // init_ca refuses to overwrite, bad arguments.
    cluster.sql_error_as(su, "SELECT pgssl.init_ca()", "55000");
    cluster.sql_error_as(su, "SET pgssl.ca_cert_file = 'x.crt'; SET pgssl.ca_key_file = 'x.key'; SELECT pgssl.init_ca('x', 10, 'dsa-1024')", "22023");
    cluster.sql_error_as(su, "SET pgssl.ca_cert_file = 'x.crt'; SET pgssl.ca_key_file = 'x.key'; SELECT pgssl.init_ca('x', 0)", "22023");
    cluster.sql_error_as(su, "SET pgssl.ca_cert_file = 'x.crt'; SET pgssl.ca_key_file = 'x.key'; SELECT pgssl.init_ca(E'x\\ny')", "22023");
    cluster.sql_error_as(su, "SELECT pgssl.crl(0)", "22023");
    // Read-only transactions (and standbys) cannot sign.
    cluster.sql_error_as(
        su,
        &format!("BEGIN READ ONLY; SELECT pgssl.sign_csr({alice_csr})"),
        "25006",
    );
    assert_eq!(registry_count(&cluster), 0, "no refusal wrote a row");

    // A rolled-back transaction leaves no row.
    cluster.sql(&format!(
        "BEGIN; SELECT pgssl.sign_csr({alice_csr}) IS NOT NULL; ROLLBACK"
    ));
    assert_eq!(registry_count(&cluster), 0);

    // NULL csr is NULL; NULL days is pgssl.default_validity_days.
    assert_eq!(
        cluster.sql("SELECT pgssl.sign_csr(NULL) IS NULL, pgssl.enroll(NULL, 5) IS NULL"),
        "t|t"
    );
    assert_eq!(registry_count(&cluster), 0);
    cluster.sql(&format!(
        "SELECT pgssl.sign_csr({alice_csr}, NULL) IS NOT NULL"
    ));
    cluster.sql(&format!(
        "SET pgssl.default_validity_days = 10; SELECT pgssl.enroll({}, NULL) IS NOT NULL",
        lit(&cli("postgres", "/CN=postgres", EC_P256))
    ));
    assert_eq!(
        cluster.sql("SELECT string_agg(common_name || ':' || (not_after - not_before), ',' ORDER BY common_name) FROM pgssl.issued_certs"),
        "alice:90 days 00:05:00,postgres:10 days 00:05:00"
    );
    // The same CSR may be signed again: each certificate gets its own serial.
    cluster.sql(&format!(
        "SELECT pgssl.sign_csr({alice_csr}, 1) IS NOT NULL"
    ));
    assert_eq!(
        cluster.sql("SELECT count(DISTINCT serial) FROM pgssl.issued_certs"),
        "3"
    );
    assert_no_crash(&cluster);
}

#[test]
fn a_standby_refuses_to_sign_with_25006() {
    let cluster = TlsCluster::builder().replication().start();
    cluster.sql("SELECT pgssl.init_ca() IS NOT NULL");
    let standby = cluster.start_standby();
    let conninfo = standby.socket_conninfo("postgres");
    assert_eq!(standby.sql("SELECT pg_is_in_recovery()"), "t");
    // The CA certificate is readable there; nothing that writes runs.
    assert_eq!(
        standby.sql("SELECT pgssl.ca_cert()"),
        cluster.sql("SELECT pgssl.ca_cert()")
    );
    let csr = lit(&csr_pem(&["postgres"], &KeyType::EcP256.generate()));
    for sql in [
        format!("SELECT pgssl.sign_csr({csr})"),
        format!("SELECT pgssl.enroll({csr})"),
        "SELECT pgssl.revoke('00ff')".into(),
        "SELECT pgssl.crl()".into(),
        "SELECT pgssl.install_crl()".into(),
        "SELECT pgssl.init_ca()".into(),
    ] {
        let out = standby.psql_script(&conninfo, &sql);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("ERROR:  25006:") && stderr.contains("during recovery"),
            "{sql:.60}: {stderr}"
        );
    }
}

#[test]
fn check_config_flags_revocations_the_server_does_not_enforce() {
    let cluster = pgssl_ca_cluster("ec-p256");
    let status = || {
        cluster.sql(
            "SELECT status FROM pgssl.check_config() WHERE \"check\" = 'crl_for_revoked_certs'",
        )
    };
    assert_eq!(status(), "ok");
    cluster.sql(&format!(
        "SELECT pgssl.sign_csr({}) IS NOT NULL",
        lit(&csr_pem(&["carol"], &KeyType::EcP256.generate()))
    ));
    let serial = cluster.sql("SELECT serial FROM pgssl.issued_certs");
    cluster.sql(&format!("SELECT pgssl.revoke('{serial}', 'superseded')"));
    assert_eq!(status(), "fail");
    set_and_reload(&cluster, "ssl_crl_file", "pgssl.crl");
    cluster.sql("SELECT pgssl.install_crl()");
    assert_eq!(status(), "ok");
}

/// The issuer CN of each certificate in `pems` (PEM blocks one after another).
fn issuer_cns(pems: &str) -> Vec<String> {
    X509::stack_from_pem(pems.as_bytes())
        .unwrap()
        .iter()
        .map(|c| {
            let cn = c
                .issuer_name()
                .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                .next()
                .unwrap();
            cn.data().to_string().unwrap()
        })
        .collect()
}

#[test]
fn a_changed_ca_file_is_used_by_the_next_signing_in_the_same_session() {
    // One psql session, so one backend and its cached CA: the files change
    // under it between two signings (a new pair of files at the same paths,
    // then the first pair copied back over them in place, same size, same
    // inodes), and each signing uses the CA on disk at that moment.
    let cluster = TlsCluster::start();
    let data = cluster.data_dir.display().to_string();
    let csr = lit(&csr_pem(&["carol"], &KeyType::EcP256.generate()));
    let sign = format!("SELECT pgssl.sign_csr({csr});");
    let script = format!(
        "SET pgssl.ca_cert_file = 'swap_ca.crt';
         SET pgssl.ca_key_file = 'swap_ca.key';
         SELECT pgssl.init_ca('swap CA one', 30) IS NULL;
         {sign}
         {sign}
         \\! mv {data}/swap_ca.crt {data}/one.crt && mv {data}/swap_ca.key {data}/one.key
         SELECT pgssl.init_ca('swap CA two', 30) IS NULL;
         {sign}
         \\! cp {data}/one.crt {data}/swap_ca.crt && cp {data}/one.key {data}/swap_ca.key
         {sign}
         SELECT pg_backend_pid() = pg_backend_pid() AS same_session;"
    );
    let out = cluster.sql_as("postgres", &script);
    // Each signing after a change used the CA on disk at that moment.
    assert_eq!(
        issuer_cns(&out),
        ["swap CA one", "swap CA one", "swap CA two", "swap CA one"],
        "{out}"
    );
    // The files copied back kept the second CA's inodes and their size.
    let meta = fs::metadata(cluster.data_dir.join("swap_ca.key")).unwrap();
    assert_eq!(
        meta.len(),
        fs::metadata(cluster.data_dir.join("one.key"))
            .unwrap()
            .len()
    );
    assert_eq!(registry_count(&cluster), 4);
}

//! `pgssl.server_cert()` and `pgssl.check_config()` against real clusters,
//! each misconfigured in one way.

use std::collections::BTreeSet;

use openssl::x509::X509;
use pgssl_tests::{
    days_until, seed_recipe, unix_time, Ca, CertFiles, CertSpec, KeyType, TlsCluster,
};

/// Every line requires TLS; a well-configured server.
const GOOD_HBA: &str = "\
local   all all                trust
hostssl all +scram_users 127.0.0.1/32 scram-sha-256
hostssl all all 127.0.0.1/32   cert
";

/// The (check, status) pairs that are not `ok`, but for the warning that
/// the fixture's clusters do not preload pgssl (its checks are in
/// revocation.rs).
fn problems(cluster: &TlsCluster) -> BTreeSet<(String, String)> {
    let out = cluster.sql(
        "SELECT \"check\" || '|' || status FROM pgssl.check_config()
          WHERE status <> 'ok' AND NOT (\"check\" = 'crl_worker' AND status = 'warn')",
    );
    out.lines()
        .map(|l| {
            let (check, status) = l.split_once('|').unwrap();
            (check.to_string(), status.to_string())
        })
        .collect()
}

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn good_cluster() -> TlsCluster {
    TlsCluster::builder().hba(GOOD_HBA).start()
}

#[test]
fn a_well_configured_server_has_no_problems() {
    let cluster = good_cluster();
    assert_eq!(problems(&cluster), set(&[]));
    let checks = cluster.sql(
        "SELECT string_agg(DISTINCT \"check\", ',' ORDER BY \"check\") FROM pgssl.check_config()",
    );
    assert_eq!(
        checks,
        "crl_for_revoked_certs,crl_worker,direct_tls,hba_cert_without_ca,hba_file_valid,hba_plaintext_tcp,key_exchange_groups,\
         server_cert_expiry,server_cert_san,server_cert_version,server_key_match,server_key_strength,ssl,\
         ssl_min_protocol_version,tls13_ciphers"
    );
}

/// The detail of one `check_config()` row.
fn detail(cluster: &TlsCluster, check: &str) -> String {
    cluster.sql(&format!(
        "SELECT detail FROM pgssl.check_config() WHERE \"check\" = '{check}'"
    ))
}

#[test]
fn the_audit_speaks_of_the_settings_of_the_running_release() {
    let major = pgssl_tests::pg_major();
    let cluster = good_cluster();
    let groups = detail(&cluster, "key_exchange_groups");
    let tls13 = detail(&cluster, "tls13_ciphers");
    let direct = detail(&cluster, "direct_tls");
    let info: serde_json::Value =
        serde_json::from_str(&cluster.sql("SELECT pgssl.server_cert()->'tls_settings'")).unwrap();
    assert_eq!(
        info["server_version_num"].as_u64().unwrap() / 10_000,
        major as u64
    );
    if major >= 18 {
        // 18's default groups put X25519 first.
        assert_eq!(groups, "ssl_groups is 'X25519:prime256v1'");
        assert_eq!(info["groups_setting"], "ssl_groups");
        assert_eq!(
            tls13,
            "ssl_tls13_ciphers is empty: OpenSSL's default TLS 1.3 suites apply"
        );
        assert_eq!(info["tls13_ciphers"], "");
    } else {
        assert!(
            groups.starts_with("ssl_ecdh_curve is 'prime256v1'"),
            "{groups}"
        );
        assert_eq!(info["groups_setting"], "ssl_ecdh_curve");
        assert!(tls13.contains("18 adds ssl_tls13_ciphers"), "{tls13}");
        assert_eq!(info["tls13_ciphers"], serde_json::Value::Null);
    }
    assert_eq!(info["crl_dir"].is_null(), major < 14);
    assert_eq!(info["direct_tls"], major >= 17);
    if major >= 17 {
        assert!(direct.contains("sslnegotiation=direct"), "{direct}");
    } else {
        assert!(direct.contains("has no direct TLS"), "{direct}");
    }

    // A curve below 256 bits in the release's own setting is a warning that names it.
    let (setting, value) = if major >= 18 {
        ("ssl_groups", "X25519:secp224r1")
    } else {
        ("ssl_ecdh_curve", "secp224r1")
    };
    let weak = TlsCluster::builder()
        .hba(GOOD_HBA)
        .conf(&format!("{setting} = '{value}'"))
        .start();
    assert_eq!(problems(&weak), set(&[("key_exchange_groups", "warn")]));
    assert!(detail(&weak, "key_exchange_groups").starts_with(&format!("{setting} is '{value}'")));
}

#[test]
fn ssl_off_fails() {
    let cluster = TlsCluster::builder().hba(GOOD_HBA).ssl_off().start();
    assert_eq!(problems(&cluster), set(&[("ssl", "fail")]));
}

#[test]
fn old_protocol_versions_warn() {
    let cluster = TlsCluster::builder()
        .hba(GOOD_HBA)
        .conf("ssl_min_protocol_version = 'TLSv1'")
        .start();
    assert_eq!(
        problems(&cluster),
        set(&[("ssl_min_protocol_version", "warn")])
    );
}

#[test]
fn plaintext_tcp_lines_warn_and_trust_fails() {
    let hba = format!(
        "{GOOD_HBA}host all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 10.0.0.0/8 trust\n"
    );
    let cluster = TlsCluster::builder().hba(&hba).start();
    assert_eq!(
        problems(&cluster),
        set(&[("hba_plaintext_tcp", "warn"), ("hba_plaintext_tcp", "fail")])
    );
    let detail = cluster.sql("SELECT detail FROM pgssl.check_config() WHERE status = 'fail'");
    assert!(
        detail.contains("line 5") && detail.contains("trust"),
        "{detail}"
    );
}

#[test]
fn cert_lines_without_ssl_ca_file_fail() {
    let cluster = TlsCluster::builder()
        .hba(GOOD_HBA)
        .conf("ssl_ca_file = ''")
        .start();
    assert_eq!(problems(&cluster), set(&[("hba_cert_without_ca", "fail")]));
}

/// Replaces the server's certificate and key on disk with a new pair per
/// `spec`, as a DBA does before a reload: check_config audits the files the
/// next reload will load (the server would refuse some of these at start).
fn replace_server_files(cluster: &TlsCluster, spec: &CertSpec) {
    let issued = cluster.ca.issue(spec);
    cluster.write_server_files(&issued);
}

#[test]
fn an_expired_server_certificate_fails() {
    let cluster = good_cluster();
    replace_server_files(&cluster, &CertSpec::server().validity(-7200, -3600));
    assert_eq!(problems(&cluster), set(&[("server_cert_expiry", "fail")]));
}

#[test]
fn a_server_certificate_expiring_within_30_days_warns() {
    let cluster = good_cluster();
    replace_server_files(&cluster, &CertSpec::server().validity(-60, 10 * 86_400));
    assert_eq!(problems(&cluster), set(&[("server_cert_expiry", "warn")]));
}

#[test]
fn a_certificate_without_sans_warns() {
    let cluster = good_cluster();
    replace_server_files(&cluster, &CertSpec::server().without_sans());
    assert_eq!(problems(&cluster), set(&[("server_cert_san", "warn")]));
}

#[test]
fn a_weak_rsa_key_fails() {
    let cluster = good_cluster();
    replace_server_files(&cluster, &CertSpec::server().key_type(KeyType::Rsa1024));
    assert_eq!(problems(&cluster), set(&[("server_key_strength", "fail")]));
}

#[test]
fn a_key_that_does_not_match_fails() {
    let cluster = good_cluster();
    let other = cluster.ca.issue(&CertSpec::server());
    cluster.write_data_file(
        "server.key",
        &other.key.private_key_to_pem_pkcs8().unwrap(),
        0o600,
    );
    assert_eq!(problems(&cluster), set(&[("server_key_match", "fail")]));
}

#[test]
fn a_pgssl_client_ca_expiring_within_90_days_warns() {
    let cluster = good_cluster();
    // Where pgssl looks for its client CA by default.
    let ca = Ca::with_validity("short-lived client CA", KeyType::EcP256, 30);
    cluster.write_data_file("pgssl_ca.crt", &ca.cert.to_pem().unwrap(), 0o644);
    assert_eq!(problems(&cluster), set(&[("client_ca_expiry", "warn")]));
}

#[test]
fn the_seed_server_certificate_is_v1_without_sans() {
    let files = tempfile::tempdir().unwrap();
    seed_recipe(files.path());
    let cluster = TlsCluster::builder()
        .hba(GOOD_HBA)
        .server_files(CertFiles {
            cert: files.path().join("server.crt"),
            key: files.path().join("server.key"),
        })
        .start();
    let info: serde_json::Value =
        serde_json::from_str(&cluster.sql("SELECT pgssl.server_cert()")).unwrap();
    let seed = X509::from_pem(&std::fs::read(files.path().join("server.crt")).unwrap()).unwrap();
    assert_eq!(info["version"], 1);
    assert_eq!(info["subject"], "CN=127.0.0.1");
    assert_eq!(info["issuer"], "CN=root-server-ca");
    assert_eq!(info["subject_alt_names"], serde_json::json!([]));
    assert_eq!(info["key_algorithm"], "RSA");
    assert_eq!(info["key_bits"], 2048);
    assert_eq!(info["signature_algorithm"], "sha256WithRSAEncryption");
    assert_eq!(info["chain"], serde_json::json!([]));
    // The expiry the openssl command line set (-days 365), to the second.
    assert_eq!(info["days_left"], days_until(seed.not_after()));
    let not_after = unix_time(seed.not_after());
    let reported = cluster.sql(&format!(
        "SELECT extract(epoch FROM (pgssl.server_cert()->>'not_after')::timestamptz)::bigint = {not_after}"
    ));
    assert_eq!(reported, "t");
    assert_eq!(
        problems(&cluster),
        set(&[("server_cert_version", "warn"), ("server_cert_san", "warn")])
    );
}

#[test]
fn server_cert_is_for_superusers_and_pg_read_all_settings() {
    let cluster = good_cluster();
    cluster.sql("CREATE ROLE viewer LOGIN PASSWORD 'pw' IN ROLE scram_users; CREATE ROLE nobody LOGIN PASSWORD 'pw' IN ROLE scram_users; GRANT pg_read_all_settings TO viewer");
    let conn = |user: &str| format!("{} password=pw", cluster.verify_full(user, None));
    let subject = cluster.psql_ok(&conn("viewer"), "SELECT pgssl.server_cert()->>'subject'");
    assert_eq!(subject, "CN=localhost");
    let denied = cluster.psql(&conn("nobody"), "SELECT pgssl.server_cert()");
    assert!(String::from_utf8_lossy(&denied.stderr)
        .contains("permission denied for function server_cert"));
    let denied = cluster.psql(&conn("viewer"), "SELECT * FROM pgssl.check_config()");
    assert!(String::from_utf8_lossy(&denied.stderr)
        .contains("permission denied for function check_config"));
}

#[test]
fn an_hba_file_the_server_cannot_load_fails() {
    let cluster = good_cluster();
    // A typo: the server refuses the whole file at the next reload and keeps
    // its previous rules, so the audit must not judge the new lines.
    let hba = format!("{GOOD_HBA}hostssl all all 127.0.0.1/32 scram\n");
    cluster.write_data_file("pg_hba.conf", hba.as_bytes(), 0o600);
    assert_eq!(problems(&cluster), set(&[("hba_file_valid", "fail")]));
    let detail =
        cluster.sql("SELECT detail FROM pgssl.check_config() WHERE \"check\" = 'hba_file_valid'");
    assert!(
        detail.contains("line 4") && detail.contains("keeps its previous rules"),
        "{detail}"
    );
}

//! The session TLS functions over real TLS, driven by psql with
//! `sslmode=verify-full`, checked against contrib sslinfo, pg_stat_ssl and the
//! certificate files themselves.

use std::process::Stdio;
use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use openssl::x509::X509;
use pgssl_tests::{unix_time, CertFiles, TlsCluster};
use serde_json::Value;

/// Asserts that sslinfo's `/C=SE/O=Acme/CN=alice` names what our RFC 2253
/// `CN=alice,O=Acme,C=SE` names (for names without special characters),
/// allowing for sslinfo cutting its DNs at 63 bytes as the server does.
fn assert_same_dn(rfc2253: &Value, sslinfo: &Value) {
    let mut parts: Vec<&str> = rfc2253.as_str().unwrap().split(',').collect();
    parts.reverse();
    let slash = format!("/{}", parts.join("/"));
    let sslinfo = sslinfo.as_str().unwrap();
    // sslinfo cuts at 63 bytes from PostgreSQL 14 on; 13's returns the whole DN.
    if slash.len() > 63 && pgssl_tests::pg_major() >= 14 {
        assert_eq!(sslinfo, &slash[..63], "sslinfo keeps 63 bytes of {slash}");
    } else {
        assert_eq!(sslinfo, slash);
    }
}

fn cert_of(files: &CertFiles) -> X509 {
    X509::from_pem(&std::fs::read(&files.cert).unwrap()).unwrap()
}

const EVERYTHING: &str = "
SELECT json_build_object(
  'ssl_is_used', pgssl.ssl_is_used(),              'sslinfo_ssl_is_used', ssl_is_used(),
  'ssl_version', pgssl.ssl_version(),              'sslinfo_ssl_version', ssl_version(),
  'ssl_cipher', pgssl.ssl_cipher(),                'sslinfo_ssl_cipher', ssl_cipher(),
  'ssl_cipher_bits', pgssl.ssl_cipher_bits(),      'stat_bits', (SELECT bits FROM pg_stat_ssl WHERE pid = pg_backend_pid()),
  'client_cert_present', pgssl.client_cert_present(), 'sslinfo_client_cert_present', ssl_client_cert_present(),
  'client_cn', pgssl.client_cn(),                  'sslinfo_cn', ssl_client_dn_field('CN'),
  'client_dn', pgssl.client_dn(),                  'sslinfo_client_dn', ssl_client_dn(),
  'issuer_dn', pgssl.issuer_dn(),                  'sslinfo_issuer_dn', ssl_issuer_dn(),
  'client_serial', pgssl.client_serial()::text,    'sslinfo_client_serial', ssl_client_serial()::text,
  'client_serial_hex', pgssl.client_serial_hex(),
  'not_before', extract(epoch FROM pgssl.client_cert_not_before())::bigint,
  'not_after', extract(epoch FROM pgssl.client_cert_not_after())::bigint,
  'fingerprint', pgssl.client_cert_fingerprint(),
  'pem', pgssl.client_cert_pem(),
  'extensions', (SELECT json_agg(e) FROM pgssl.client_cert_extensions() AS e),
  'stat_client_dn', (SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()),
  'view_client_dn', (SELECT client_dn FROM pgssl.connections WHERE pid = pg_backend_pid()),
  'session_info', pgssl.session_info()
)";

fn start_with_sslinfo() -> TlsCluster {
    let cluster = TlsCluster::start();
    cluster.sql("CREATE EXTENSION sslinfo");
    cluster
}

#[test]
fn every_function_matches_sslinfo_and_the_certificate() {
    let cluster = start_with_sslinfo();
    cluster.sql("CREATE ROLE alice LOGIN");
    let files = cluster.client_cert(&[
        ("C", "SE"),
        ("ST", "Stockholm"),
        ("O", "Acme"),
        ("OU", "Databases"),
        ("CN", "alice"),
        ("emailAddress", "alice@example.com"),
    ]);
    let conninfo = cluster.verify_full("alice", Some(&files));
    let v = cluster.psql_json(&conninfo, EVERYTHING);
    let cert = cert_of(&files);

    for (ours, theirs) in [
        ("ssl_is_used", "sslinfo_ssl_is_used"),
        ("ssl_version", "sslinfo_ssl_version"),
        ("ssl_cipher", "sslinfo_ssl_cipher"),
        ("ssl_cipher_bits", "stat_bits"),
        ("client_cert_present", "sslinfo_client_cert_present"),
        ("client_cn", "sslinfo_cn"),
        ("client_serial", "sslinfo_client_serial"),
    ] {
        assert!(
            !v[ours].is_null(),
            "{ours} is NULL over TLS with a client certificate"
        );
        assert_eq!(v[ours], v[theirs], "{ours} vs {theirs}");
    }
    assert_eq!(v["ssl_is_used"], true);
    assert_eq!(v["client_cn"], "alice");
    assert_eq!(v["ssl_version"], "TLSv1.3");

    // DNs: the same attributes as sslinfo, in RFC 2253 order and form.
    let expected_dn =
        "emailAddress=alice@example.com,CN=alice,OU=Databases,O=Acme,ST=Stockholm,C=SE";
    assert_eq!(v["client_dn"], expected_dn);
    assert_same_dn(&v["client_dn"], &v["sslinfo_client_dn"]);
    assert_eq!(v["issuer_dn"], "CN=pgssl test CA");
    assert_same_dn(&v["issuer_dn"], &v["sslinfo_issuer_dn"]);
    // For ASCII names, the same string the server matches `clientname=DN`
    // against; PostgreSQL 13 has neither `clientname=DN` nor that string.
    if pgssl_tests::pg_major() >= 14 {
        assert_eq!(v["session_info"]["client_dn_as_matched"], expected_dn);
    } else {
        assert_eq!(v["session_info"]["client_dn_as_matched"], Value::Null);
    }

    // Serial, validity, fingerprint and PEM against the certificate file.
    let serial = cert.serial_number().to_bn().unwrap();
    assert_eq!(v["client_serial"], serial.to_dec_str().unwrap().to_string());
    assert_eq!(v["client_serial_hex"], hex::encode(serial.to_vec()));
    assert_eq!(v["not_before"], unix_time(cert.not_before()));
    assert_eq!(v["not_after"], unix_time(cert.not_after()));
    assert_eq!(
        v["fingerprint"],
        hex::encode(cert.digest(MessageDigest::sha256()).unwrap())
    );
    assert_eq!(v["pem"], String::from_utf8(cert.to_pem().unwrap()).unwrap());

    // Extensions, in certificate order, with OpenSSL's names and values.
    let exts = v["extensions"].as_array().unwrap();
    let names: Vec<&str> = exts.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "basicConstraints",
            "keyUsage",
            "extendedKeyUsage",
            "subjectKeyIdentifier",
            "authorityKeyIdentifier"
        ]
    );
    assert_eq!(exts[0]["value"], "CA:FALSE");
    assert_eq!(exts[0]["critical"], true);
    assert_eq!(exts[1]["value"], "Digital Signature, Key Encipherment");
    assert_eq!(exts[2]["value"], "TLS Web Client Authentication");
    assert_eq!(exts[2]["critical"], false);

    // Field lookup by short name, long name and OID, as sslinfo's.
    let fields = cluster.psql_json(
        &conninfo,
        "SELECT json_agg(json_build_array(f, pgssl.client_dn_field(f), ssl_client_dn_field(f)))
           FROM unnest(ARRAY['CN','commonName','O','organizationName','OU','C','ST','emailAddress','2.5.4.3']) AS f",
    );
    for row in fields.as_array().unwrap() {
        assert!(!row[1].is_null(), "{row}");
        assert_eq!(row[1], row[2], "client_dn_field({})", row[0]);
    }
    let issuer = cluster.psql_json(
        &conninfo,
        "SELECT json_build_array(pgssl.issuer_field('CN'), ssl_issuer_field('CN'), pgssl.issuer_field('O'), pgssl.client_dn_field('L'))",
    );
    assert_eq!(
        issuer,
        serde_json::json!(["pgssl test CA", "pgssl test CA", null, null])
    );

    // session_info carries the same values.
    let info = &v["session_info"];
    for (key, field) in [
        ("ssl", "ssl_is_used"),
        ("version", "ssl_version"),
        ("cipher", "ssl_cipher"),
        ("cipher_bits", "ssl_cipher_bits"),
        ("client_cert_present", "client_cert_present"),
        ("client_cn", "client_cn"),
        ("client_dn", "client_dn"),
        ("issuer_dn", "issuer_dn"),
        ("client_serial", "client_serial"),
        ("client_serial_hex", "client_serial_hex"),
        ("fingerprint_sha256", "fingerprint"),
    ] {
        assert_eq!(info[key], v[field], "session_info.{key}");
    }
    assert_eq!(info["client_cert_verified"], true);
    assert_eq!(info["subject_alt_names"], serde_json::json!([]));
    // The authenticated identity is recorded from PostgreSQL 14 on.
    if pgssl_tests::pg_major() >= 14 {
        assert!(
            info["authn_id"].as_str().unwrap().contains("CN=alice"),
            "{}",
            info["authn_id"]
        );
    } else {
        assert_eq!(info["authn_id"], Value::Null);
    }
    // psql offers ALPN `postgresql` from libpq 17 on, and servers from 17
    // on select it; psql and the server come from the same release here.
    let alpn = if pgssl_tests::pg_major() >= 17 {
        Value::from("postgresql")
    } else {
        Value::Null
    };
    assert_eq!(info["alpn"], alpn);
}

#[test]
fn a_long_dn_comes_back_whole() {
    let cluster = start_with_sslinfo();
    // A 60-character role name: the longest CN that still maps to a role.
    let role = format!("user_{}", "x".repeat(55));
    cluster.sql(&format!("CREATE ROLE {role} LOGIN"));
    let files = cluster.client_cert(&[
        (
            "O",
            "The Very Long Organisation Name Of Example Incorporated",
        ),
        ("OU", "Department of Database Reliability Engineering"),
        ("CN", &role),
    ]);
    let v = cluster.psql_json(&cluster.verify_full(&role, Some(&files)), EVERYTHING);
    let expected = format!(
        "CN={role},OU=Department of Database Reliability Engineering,O=The Very Long Organisation Name Of Example Incorporated"
    );
    assert!(expected.len() > 100);
    assert_eq!(v["client_dn"], expected);
    assert_eq!(v["client_cn"], role);
    // What pgssl replaces: sslinfo and pg_stat_ssl keep 63 bytes.
    assert_same_dn(&v["client_dn"], &v["sslinfo_client_dn"]);
    if pgssl_tests::pg_major() >= 14 {
        assert_eq!(v["sslinfo_client_dn"].as_str().unwrap().len(), 63);
    }
    let stat = v["stat_client_dn"].as_str().unwrap();
    assert_eq!(stat.len(), 63, "{stat}");
    assert_eq!(v["view_client_dn"], stat);
}

#[test]
fn a_utf8_cn_comes_back_exactly() {
    let cluster = start_with_sslinfo();
    let name = "Zoë Ångström";
    cluster.sql(&format!("CREATE ROLE \"{name}\" LOGIN"));
    let files = cluster.client_cert(&[("O", "Café Ünïcode"), ("CN", name)]);
    let v = cluster.psql_json(&cluster.verify_full(name, Some(&files)), EVERYTHING);
    assert_eq!(v["client_cn"], name);
    assert_eq!(v["sslinfo_cn"], name);
    assert_eq!(v["client_dn"], "CN=Zoë Ångström,O=Café Ünïcode");
    assert_eq!(v["session_info"]["client_cn"], name);
    let field = cluster.psql_ok(
        &cluster.verify_full(name, Some(&files)),
        "SELECT pgssl.client_dn_field('commonName')",
    );
    assert_eq!(field, name);
}

/// Every function over a session: NULL for values, false for the two booleans.
fn assert_no_certificate_values(v: &Value, tls: bool) {
    assert_eq!(v["ssl_is_used"], tls);
    assert_eq!(v["ssl_is_used"], v["sslinfo_ssl_is_used"]);
    assert_eq!(v["client_cert_present"], false);
    assert_eq!(v["sslinfo_client_cert_present"], false);
    for key in [
        "client_cn",
        "client_dn",
        "issuer_dn",
        "client_serial",
        "client_serial_hex",
        "not_before",
        "not_after",
        "fingerprint",
        "pem",
        "extensions",
    ] {
        assert!(v[key].is_null(), "{key} = {}", v[key]);
    }
    for key in ["ssl_version", "ssl_cipher", "ssl_cipher_bits"] {
        assert_eq!(v[key].is_null(), !tls, "{key} = {}", v[key]);
    }
    let info = &v["session_info"];
    assert_eq!(info["ssl"], tls);
    assert_eq!(info["client_cert_present"], false);
    assert!(
        info["client_dn"].is_null()
            && info["client_cn"].is_null()
            && info["subject_alt_names"].is_null()
    );
}

const NO_CERT_FIELDS: &str =
    "SELECT json_build_array(pgssl.client_dn_field('CN'), pgssl.issuer_field('CN'))";

#[test]
fn nulls_over_tls_without_a_client_certificate() {
    let cluster = start_with_sslinfo();
    cluster.sql("CREATE ROLE bob LOGIN PASSWORD 'secret' IN ROLE scram_users");
    let conninfo = format!("{} password=secret", cluster.verify_full("bob", None));
    let v = cluster.psql_json(&conninfo, EVERYTHING);
    assert_no_certificate_values(&v, true);
    let authn_id = if pgssl_tests::pg_major() >= 14 {
        Value::from("bob")
    } else {
        Value::Null
    };
    assert_eq!(v["session_info"]["authn_id"], authn_id);
    assert_eq!(
        cluster.psql_json(&conninfo, NO_CERT_FIELDS),
        serde_json::json!([null, null])
    );
}

#[test]
fn nulls_without_tls() {
    let cluster = start_with_sslinfo();
    cluster.sql("CREATE ROLE carol LOGIN PASSWORD 'secret'");
    let conninfo = cluster.conninfo("user=carol password=secret sslmode=disable");
    let v = cluster.psql_json(&conninfo, EVERYTHING);
    assert_no_certificate_values(&v, false);
    assert_eq!(
        cluster.psql_json(&conninfo, NO_CERT_FIELDS),
        serde_json::json!([null, null])
    );
}

#[test]
fn an_unknown_field_is_an_error_with_sqlstate_22023() {
    let cluster = TlsCluster::start();
    cluster.sql("CREATE ROLE alice LOGIN");
    let files = cluster.client_cert(&[("CN", "alice")]);
    for sql in [
        "SELECT pgssl.client_dn_field('nosuchfield')",
        "SELECT pgssl.issuer_field('CN=x')",
    ] {
        let out = cluster
            .psql_command(&cluster.verify_full("alice", Some(&files)))
            .args(["-v", "VERBOSITY=verbose", "-c", sql])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("ERROR:  22023: unknown X.509 name field"),
            "{stderr}"
        );
    }
    // The backend survived: the same cluster still answers.
    assert_eq!(cluster.sql("SELECT 1"), "1");
}

#[test]
fn the_connections_view_shows_who_is_connected_without_tls() {
    let cluster = TlsCluster::start();
    cluster.sql("CREATE ROLE alice LOGIN; CREATE ROLE dave LOGIN PASSWORD 'secret'");
    let files = cluster.client_cert(&[("CN", "alice")]);
    // Two sessions held open while the DBA looks: one plaintext, one TLS.
    let hold = |conninfo: String| {
        cluster
            .psql_command(&conninfo)
            .args(["-c", "SELECT pg_sleep(30)"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut sessions = [
        hold(cluster.conninfo("user=dave password=secret sslmode=disable application_name=plain")),
        hold(format!(
            "{} application_name=tls",
            cluster.verify_full("alice", Some(&files))
        )),
    ];
    let query = "SELECT coalesce(json_agg(json_build_object('app', application_name, 'user', usename,
                   'ssl', ssl, 'version', version, 'client_dn', client_dn, 'addr', host(client_addr))
                   ORDER BY application_name), '[]') FROM pgssl.connections WHERE application_name IN ('plain', 'tls')";
    let deadline = Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let rows: Value = serde_json::from_str(&cluster.sql(query)).unwrap();
        if rows.as_array().unwrap().len() == 2 || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for session in &mut sessions {
        let _ = session.kill();
        let _ = session.wait();
    }
    assert_eq!(
        rows,
        serde_json::json!([
            {"app": "plain", "user": "dave", "ssl": false, "version": null, "client_dn": null, "addr": "127.0.0.1"},
            {"app": "tls", "user": "alice", "ssl": true, "version": "TLSv1.3", "client_dn": "/CN=alice", "addr": "127.0.0.1"},
        ])
    );
    // Non-client backends (checkpointer, walwriter, ...) are not listed.
    let kinds = cluster.sql(
        "SELECT count(*) FROM pgssl.connections c JOIN pg_stat_activity a USING (pid) WHERE a.backend_type <> 'client backend'",
    );
    assert_eq!(kinds, "0");
}

#[test]
fn an_ed25519_client_certificate_works_too() {
    let cluster = TlsCluster::start();
    cluster.sql("CREATE ROLE erin LOGIN");
    let spec =
        pgssl_tests::CertSpec::client(&[("CN", "erin")]).key_type(pgssl_tests::KeyType::Ed25519);
    let files = cluster.issue_client(&spec);
    let out = cluster.psql_ok(
        &cluster.verify_full("erin", Some(&files)),
        "SELECT pgssl.client_cn() || ' ' || pgssl.client_cert_fingerprint()",
    );
    let fingerprint = hex::encode(cert_of(&files).digest(MessageDigest::sha256()).unwrap());
    assert_eq!(out, format!("erin {fingerprint}"));
}

/// Connects with pgssl_client and keeps the connection open.
async fn open(conninfo: &str) -> tokio_postgres::Client {
    let home = tempfile::tempdir().unwrap();
    let config =
        pgssl_client::Config::from_conninfo_with_env(conninfo, &|_| None, Some(home.path()))
            .unwrap();
    let (client, connection) = pgssl_client::Connector::new(config)
        .connect()
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

const FACTS: &str = "SELECT json_build_object(
  'pid', pg_backend_pid(), 'cn', pgssl.client_cn(), 'dn', pgssl.client_dn(),
  'field', pgssl.client_dn_field('CN'), 'issuer_field', pgssl.issuer_field('CN'),
  'serial', pgssl.client_serial()::text, 'fingerprint', pgssl.client_cert_fingerprint(),
  'info', pgssl.session_info())::text";

async fn facts(client: &tokio_postgres::Client) -> Value {
    let text: String = client.query_one(FACTS, &[]).await.unwrap().get(0);
    serde_json::from_str(&text).unwrap()
}

/// What `FACTS` must say for the certificate in `files`.
fn assert_facts_of(v: &Value, files: &CertFiles, cn: &str) {
    let cert = cert_of(files);
    let fingerprint = hex::encode(cert.digest(MessageDigest::sha256()).unwrap());
    let serial = cert.serial_number().to_bn().unwrap().to_dec_str().unwrap();
    assert_eq!(v["cn"], cn, "{v}");
    assert_eq!(v["dn"], format!("CN={cn}"), "{v}");
    assert_eq!(v["field"], cn, "{v}");
    assert_eq!(v["serial"], serial.to_string(), "{v}");
    assert_eq!(v["fingerprint"], fingerprint, "{v}");
    assert_eq!(v["info"]["client_cn"], cn, "{v}");
    assert_eq!(v["info"]["fingerprint_sha256"], fingerprint, "{v}");
    assert_eq!(v["info"]["client_serial"], serial.to_string(), "{v}");
}

#[tokio::test(flavor = "current_thread")]
async fn each_connection_gets_the_facts_of_its_own_certificate() {
    // The facts are cached per connection: connections open side by side,
    // and new ones after them, each see their own certificate, however often
    // the functions were called on another connection before.
    let cluster = TlsCluster::start();
    cluster.sql("CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN");
    let alice = cluster.client_cert(&[("CN", "alice")]);
    let bob = cluster.client_cert(&[("CN", "bob")]);
    let a = open(&cluster.verify_full("alice", Some(&alice))).await;
    let first = facts(&a).await;
    assert_facts_of(&first, &alice, "alice");
    let b = open(&cluster.verify_full("bob", Some(&bob))).await;
    let other = facts(&b).await;
    assert_facts_of(&other, &bob, "bob");
    assert_ne!(first["pid"], other["pid"]);
    // Asked again, after the other connection computed its own.
    assert_eq!(facts(&a).await, first);
    assert_eq!(facts(&b).await, other);
    // A session reset changes nothing the TLS handshake decided.
    a.batch_execute("DISCARD ALL").await.unwrap();
    assert_eq!(facts(&a).await, first);
    // New connections, one after the other, with the two certificates and with none.
    for _ in 0..3 {
        for (files, cn) in [(&alice, "alice"), (&bob, "bob")] {
            let c = open(&cluster.verify_full(cn, Some(files))).await;
            assert_facts_of(&facts(&c).await, files, cn);
        }
    }
    cluster.sql("CREATE ROLE carol LOGIN PASSWORD 'secret' IN ROLE scram_users");
    let c = open(&format!(
        "{} password=secret",
        cluster.verify_full("carol", None)
    ))
    .await;
    let none = facts(&c).await;
    assert_eq!(none["cn"], Value::Null, "{none}");
    assert_eq!(none["fingerprint"], Value::Null, "{none}");
    assert_eq!(none["info"]["client_cert_present"], false, "{none}");
    assert_eq!(none["info"]["ssl"], true, "{none}");
}

//! `pgssl.expiring()` and `pgssl report` (`--json`, `--prometheus`) end to end:
//! a server certificate expiring in 5 days, a CRL due tomorrow and a client
//! certificate expiring in 10 days, listed in order with the right days; the
//! metrics parsed by the Python `prometheus_client` parser (Debian package
//! python3-prometheus-client, which scripts/setup.sh installs).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use pgssl_tests::{clean_command, csr_pem, stdout_ok, CertSpec, KeyType, TlsCluster};
use serde_json::{json, Value};

fn pgssl(cluster: &TlsCluster, args: &[&str]) -> Output {
    clean_command(Path::new(env!("CARGO_BIN_EXE_pgssl")), &cluster.dir("home"))
        .args(args)
        .output()
        .expect("pgssl runs")
}

fn superuser(cluster: &TlsCluster) -> String {
    format!(
        "host={} port={} dbname=postgres user=postgres",
        cluster.socket_dir.display(),
        cluster.port
    )
}

/// Every sample of a Prometheus text, as parsed by `prometheus_client`:
/// `[{"name", "labels", "value", "type"}]`.
fn parse_prometheus(text: &str) -> Vec<Value> {
    const PARSER: &str = "
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({'name': s.name, 'labels': s.labels, 'value': s.value, 'type': family.type})
print(json.dumps(out))
";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    serde_json::from_str(&stdout_ok(&out, "the prometheus_client parser")).unwrap()
}

/// A server certificate that expires in 5 days, the pgssl CA's CRL due
/// tomorrow in `ssl_crl_file`, a client certificate (alice) that expires in
/// 10 days and a revoked one (bob).
fn expiring_cluster() -> TlsCluster {
    let cluster = TlsCluster::start();
    let server = cluster
        .ca
        .issue(&CertSpec::server().validity(-300, 5 * 86_400));
    cluster.serve_and_restart(&server);
    cluster.sql("SELECT pgssl.init_ca('expiry CA', 3650) IS NOT NULL");
    let sign = |cn: &str, days: i32| {
        let csr = csr_pem(&[cn], &KeyType::EcP256.generate());
        cluster.sql(&format!(
            "SELECT pgssl.sign_csr('{csr}', {days}) IS NOT NULL"
        ));
    };
    sign("alice", 10);
    sign("bob", 100);
    cluster.sql("SELECT pgssl.revoke(serial) FROM pgssl.issued_certs WHERE common_name = 'bob'");
    cluster.sql("ALTER SYSTEM SET ssl_crl_file = 'pgssl.crl'");
    cluster.sql("SELECT pg_reload_conf()");
    cluster.sql("SELECT pgssl.install_crl(1)");
    cluster
}

fn expiring(cluster: &TlsCluster, within: &str) -> Value {
    serde_json::from_str(&cluster.sql(&format!(
        "SELECT coalesce(json_agg(json_build_object('kind', kind, 'subject', subject, 'days_left', days_left)
                ORDER BY not_after), '[]') FROM pgssl.expiring('{within}')"
    )))
    .unwrap()
}

/// Done when: `pgssl.expiring()` on a server whose certificate expires in 5
/// days, with a CRL due tomorrow and a client certificate expiring in 10
/// days, lists exactly those within '30 days', in order, with the right
/// days; nothing within '1 day' but the CRL. `pgssl report` shows it.
#[test]
fn expiring_lists_what_expires_in_order() {
    let cluster = expiring_cluster();
    let crl = json!({"kind": "CRL", "subject": "CN=expiry CA", "days_left": 1});
    let within_30 = expiring(&cluster, "30 days");
    assert_eq!(
        within_30,
        json!([
            crl,
            {"kind": "server certificate", "subject": "CN=localhost", "days_left": 5},
            {"kind": "issued client certificate", "subject": "CN=alice", "days_left": 10},
        ])
    );
    assert_eq!(expiring(&cluster, "1 day"), json!([crl]));
    // The default is 30 days; each row says what to run.
    assert_eq!(
        cluster.sql(
            "SELECT string_agg(action, ' | ' ORDER BY not_after) FROM pgssl.expiring()"
        ),
        "SELECT pgssl.install_crl() (the pgssl worker re-signs it when preloaded) | \
         renew it with its issuer, replace ".to_string()
            + &cluster.data_dir.join("server.crt").display().to_string()
            + ", then SELECT pg_reload_conf() | as role alice: pgssl enroll (or SELECT pgssl.sign_csr(...) for it)"
    );

    let out = pgssl(&cluster, &["report", "--json", &superuser(&cluster)]);
    let report: Value = serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let days: Vec<_> = report["expiring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["days_left"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        days,
        vec![
            ("CRL", 1),
            ("server certificate", 5),
            ("issued client certificate", 10)
        ]
    );
    let out = pgssl(&cluster, &["report", &superuser(&cluster)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Expiring within 30 days (3)"), "{text}");
}

/// Done when: `pgssl report --prometheus` output parses with a Prometheus
/// text-format parser and matches the SQL figures.
#[test]
fn prometheus_metrics_parse_and_match_sql() {
    let cluster = expiring_cluster();
    // One TLS session held open while the report runs; a password login, as
    // the CRL in ssl_crl_file is the pgssl CA's, not the cluster CA's.
    cluster.sql("CREATE ROLE carol LOGIN PASSWORD 'secret' IN ROLE scram_users");
    let mut held = cluster
        .psql_command(&cluster.conninfo("user=carol password=secret sslmode=require"))
        .args(["-c", "SELECT pg_sleep(20)"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    pgssl_tests::wait_until(
        "the TLS session",
        std::time::Duration::from_secs(20),
        || cluster.sql("SELECT count(*) FROM pgssl.connections WHERE ssl") == "1",
    );
    let out = pgssl(&cluster, &["report", "--prometheus", &superuser(&cluster)]);
    let text = stdout_ok(&out, "pgssl report --prometheus");
    let _ = held.kill();
    let _ = held.wait();
    let samples = parse_prometheus(&text);
    let value = |name: &str, labels: Value| -> f64 {
        let found: Vec<_> = samples
            .iter()
            .filter(|s| s["name"] == name && s["labels"] == labels)
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels} in {text}");
        found[0]["value"].as_f64().unwrap()
    };
    assert!(samples.iter().all(|s| s["type"] == "gauge"));

    // Days left: every server certificate, CA and CRL, as pgssl.expiring() says.
    let sql_days: Value = serde_json::from_str(&cluster.sql(
        "SELECT json_agg(json_build_object('kind', kind, 'subject', subject, 'serial', coalesce(serial, ''),
                'source', source, 'days_left', days_left))
           FROM pgssl.expiring('100000 days') WHERE kind NOT LIKE 'issued %'",
    ))
    .unwrap();
    let sql_days = sql_days.as_array().unwrap();
    let kinds: Vec<_> = sql_days
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for kind in ["CRL", "server certificate", "trusted CA", "pgssl client CA"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert_eq!(
        samples
            .iter()
            .filter(|s| s["name"] == "pgssl_days_left")
            .count(),
        sql_days.len()
    );
    for r in sql_days {
        let labels = json!({"kind": r["kind"], "subject": r["subject"], "serial": r["serial"], "source": r["source"]});
        assert_eq!(
            value("pgssl_days_left", labels),
            r["days_left"].as_f64().unwrap()
        );
    }
    let days = |kind: &str| {
        sql_days.iter().find(|r| r["kind"] == kind).unwrap()["days_left"]
            .as_i64()
            .unwrap()
    };
    assert_eq!((days("CRL"), days("server certificate")), (1, 5));

    // Sessions: the held TLS session, and the report's own, without TLS.
    assert_eq!(
        value(
            "pgssl_sessions",
            json!({"tls": "yes", "version": "TLSv1.3"})
        ),
        1.0
    );
    assert_eq!(
        value("pgssl_sessions", json!({"tls": "no", "version": "none"})),
        1.0
    );

    // The registry: alice and bob issued, bob revoked, alice within 30 days.
    let registry = cluster.sql(
        "SELECT concat_ws(' ', count(*), count(*) FILTER (WHERE revoked_at IS NOT NULL),
                count(*) FILTER (WHERE revoked_at IS NULL AND not_after <= now() + interval '30 days'))
           FROM pgssl.issued_certs",
    );
    assert_eq!(registry, "2 1 1");
    assert_eq!(value("pgssl_certificates_issued", json!({})), 2.0);
    assert_eq!(value("pgssl_certificates_revoked", json!({})), 1.0);
    assert_eq!(value("pgssl_certificates_expiring", json!({})), 1.0);
    // Every check counted once (their statuses depend on the moment: the
    // checks look at live sessions).
    let checks: f64 = cluster
        .sql("SELECT count(*) FROM pgssl.check_config()")
        .parse()
        .unwrap();
    let counted: f64 = ["ok", "warn", "fail"]
        .iter()
        .map(|status| value("pgssl_checks", json!({"status": status})))
        .sum();
    assert_eq!(counted, checks);
}

//! `pgssl.connections` for every session: with pgssl preloaded, each TLS
//! session's whole client certificate facts come from its shared-memory slot
//! (filled at authentication, emptied at exit); without, from `pg_stat_ssl`.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pgssl_tests::{stdout_ok, wait_until, TlsCluster};
use serde_json::Value;

/// A psql session that runs `sql` from its standard input and stays
/// connected, idle, until [`end`] closes that input.
fn hold(cluster: &TlsCluster, conninfo: &str, sql: &str) -> Child {
    let mut child = cluster
        .psql_command(conninfo)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.as_mut().unwrap();
    writeln!(stdin, "{sql}").unwrap();
    stdin.flush().unwrap();
    child
}

/// Ends a held session: psql exits at the end of its input, and its
/// backend with it.
fn end(mut child: Child) {
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

fn slots_in_use(cluster: &TlsCluster) -> i64 {
    cluster
        .sql("SELECT in_use FROM pgssl.session_slot_usage()")
        .parse()
        .unwrap()
}

/// Done when: a client with a DN longer than 200 bytes and another without
/// TLS are connected; a superuser sees the first one's whole DN, serial,
/// not_after and fingerprint, equal to what that session's own
/// `session_info()` says; a role without `pg_read_all_stats` sees neither;
/// after the sessions end their slots are empty.
#[test]
fn a_superuser_sees_every_sessions_whole_certificate() {
    let cluster = TlsCluster::builder()
        .conf("shared_preload_libraries = 'pgssl'")
        .start();
    let role = format!("user_{}", "x".repeat(55));
    cluster.sql(&format!(
        "CREATE ROLE {role} LOGIN; CREATE ROLE dave LOGIN PASSWORD 'secret'; CREATE ROLE watcher LOGIN;
         CREATE TABLE public.seen (pid integer, info jsonb); GRANT INSERT ON public.seen TO PUBLIC"
    ));
    let baseline = slots_in_use(&cluster);
    let files = cluster.client_cert(&[
        (
            "O",
            "The Very Long Organisation Name Of Example Incorporated",
        ),
        (
            "OU",
            "Department of Database Reliability Engineering and Operations",
        ),
        (
            "OU",
            "Team for Certificates, Revocation Lists and Key Ceremonies",
        ),
        ("CN", &role),
    ]);
    let tls = hold(
        &cluster,
        &format!(
            "{} application_name=tls",
            cluster.verify_full(&role, Some(&files))
        ),
        "INSERT INTO public.seen SELECT pg_backend_pid(), pgssl.session_info();",
    );
    let plain = hold(
        &cluster,
        &cluster.conninfo("user=dave password=secret sslmode=disable application_name=plain"),
        "SELECT 1;",
    );
    wait_until("both sessions", Duration::from_secs(20), || {
        cluster.sql(
            "SELECT (SELECT count(*) FROM public.seen) = 1
                AND (SELECT count(*) FROM pgssl.connections WHERE application_name IN ('tls', 'plain')) = 2",
        ) == "t"
    });

    // Other roles do not see application_name: the sessions by pid.
    let pids = cluster.sql(
        "SELECT string_agg(format('WHEN %s THEN %L', pid, application_name), ' ')
           FROM pg_stat_activity WHERE application_name IN ('tls', 'plain')",
    );
    let view = |conninfo: &str| -> Value {
        let text = stdout_ok(
            &cluster.psql(
                conninfo,
                &format!("SELECT json_object_agg(CASE c.pid {pids} END, json_build_object(
                    'ssl', c.ssl, 'source', c.source, 'client_dn', c.client_dn, 'issuer_dn', c.issuer_dn,
                    'client_serial', c.client_serial::text, 'not_after', c.not_after,
                    'fingerprint', c.fingerprint, 'group', c.key_exchange_group, 'version', c.version,
                    'dn_truncated', c.dn_truncated))
                   FROM pgssl.connections c WHERE CASE c.pid {pids} END IS NOT NULL"),
            ),
            "the connections view",
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {conninfo}: {text:?} ({pids})"))
    };
    let superuser = view(&cluster.socket_conninfo("postgres"));
    let info: Value = serde_json::from_str(&cluster.sql("SELECT info FROM public.seen")).unwrap();
    let seen = &superuser["tls"];
    let dn = seen["client_dn"].as_str().unwrap();
    assert!(dn.len() > 200, "{dn}");
    assert_eq!(seen["client_dn"], info["client_dn"]);
    assert_eq!(seen["issuer_dn"], info["issuer_dn"]);
    assert_eq!(seen["client_serial"], info["client_serial"]);
    assert_eq!(seen["fingerprint"], info["fingerprint_sha256"]);
    assert_eq!(seen["version"], info["version"]);
    assert_eq!(seen["source"], "pgssl");
    assert_eq!(seen["dn_truncated"], false);
    assert!(
        seen["group"].as_str().is_some_and(|g| !g.is_empty()),
        "{seen}"
    );
    // The same instant, whatever the text form.
    assert_eq!(
        cluster.sql(
            "SELECT c.not_after = (s.info->>'not_after')::timestamptz
               FROM pgssl.connections c JOIN public.seen s USING (pid)"
        ),
        "t"
    );
    assert_eq!(superuser["plain"]["ssl"], false);
    assert_eq!(superuser["plain"]["source"], "pg_stat_ssl");
    assert_eq!(superuser["plain"]["client_dn"], Value::Null);
    assert_eq!(slots_in_use(&cluster), baseline + 1);

    // A role without pg_read_all_stats sees neither session (pg_stat_activity
    // hides their backend type), nor either one's slot.
    assert_eq!(
        cluster.psql_ok(
            &cluster.socket_conninfo("watcher"),
            &format!(
                "SELECT count(*) FROM pgssl.connections c
                  WHERE CASE c.pid {pids} END IS NOT NULL
                     OR c.client_dn IS NOT NULL OR c.fingerprint IS NOT NULL"
            )
        ),
        "0"
    );
    assert_eq!(
        cluster.psql_ok(
            &cluster.socket_conninfo("watcher"),
            "SELECT count(*) FROM pgssl.session_slots()"
        ),
        "0"
    );

    let pid = cluster.sql("SELECT pid FROM public.seen");
    end(tls);
    end(plain);
    wait_until("the sessions to end", Duration::from_secs(20), || {
        cluster
            .sql("SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('tls', 'plain')")
            == "0"
    });
    assert_eq!(slots_in_use(&cluster), baseline);
    assert_eq!(
        cluster.sql(&format!(
            "SELECT count(*) FROM pgssl.session_slots() WHERE pid = {pid}"
        )),
        "0"
    );
}

/// Done when: 500 connections opened and closed leave shared memory unchanged.
#[test]
fn five_hundred_connections_leave_shared_memory_unchanged() {
    let cluster = TlsCluster::builder()
        .conf("shared_preload_libraries = 'pgssl'")
        .start();
    cluster.sql("CREATE ROLE alice LOGIN");
    let files = cluster.client_cert(&[("CN", "alice")]);
    let memory = "SELECT json_build_object('usage', (SELECT row_to_json(u) FROM pgssl.session_slot_usage() u),
                    'allocated', (SELECT allocated_size FROM pg_shmem_allocations WHERE name = 'pgssl session slots'))";
    let before: Value = serde_json::from_str(&cluster.sql(memory)).unwrap();
    assert_eq!(before["usage"]["preloaded"], true);
    assert!(before["allocated"].as_i64().unwrap() > 0, "{before}");

    // pgbench -C: a new TLS connection with the client certificate for
    // every one of 500 transactions.
    let script = cluster.client_dir.join("select.sql");
    std::fs::write(&script, "SELECT pgssl.client_dn();\n").unwrap();
    let out = Command::new(pgssl_tests::pg_bindir().join("pgbench"))
        .env_clear()
        .env("HOME", &cluster.client_dir)
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &cluster.root_cert)
        .env("PGSSLCERT", &files.cert)
        .env("PGSSLKEY", &files.key)
        .args([
            "-n",
            "-C",
            "-c",
            "4",
            "-t",
            "125",
            "-h",
            "localhost",
            "-U",
            "alice",
            "-d",
            "postgres",
        ])
        .arg("-p")
        .arg(cluster.port.to_string())
        .arg("-f")
        .arg(&script)
        .output()
        .unwrap();
    let text = stdout_ok(&out, "pgbench");
    assert!(
        text.contains("number of transactions actually processed: 500/500"),
        "{text}"
    );
    wait_until("pgbench's sessions to end", Duration::from_secs(20), || {
        cluster.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice'") == "0"
    });
    let after: Value = serde_json::from_str(&cluster.sql(memory)).unwrap();
    assert_eq!(after, before);
}

/// Done when: without the preload, `pgssl.connections` still works from
/// `pg_stat_ssl` and says so.
#[test]
fn without_the_preload_connections_come_from_pg_stat_ssl() {
    let cluster = TlsCluster::start();
    cluster.sql("CREATE ROLE alice LOGIN");
    let files = cluster.client_cert(&[("CN", "alice")]);
    let tls = hold(
        &cluster,
        &format!(
            "{} application_name=tls",
            cluster.verify_full("alice", Some(&files))
        ),
        "SELECT 1;",
    );
    wait_until("the session", Duration::from_secs(20), || {
        cluster.sql("SELECT count(*) FROM pgssl.connections WHERE application_name = 'tls'") == "1"
    });
    let row = cluster.sql(
        "SELECT concat_ws('|', ssl, client_dn, source, fingerprint IS NULL, not_after IS NULL)
           FROM pgssl.connections WHERE application_name = 'tls'",
    );
    assert_eq!(row, "t|/CN=alice|pg_stat_ssl|t|t");
    assert_eq!(
        cluster.sql("SELECT DISTINCT source FROM pgssl.connections"),
        "pg_stat_ssl"
    );
    assert_eq!(
        cluster
            .sql("SELECT concat_ws('|', preloaded, slots, in_use) FROM pgssl.session_slot_usage()"),
        "f|0|0"
    );
    end(tls);
}

//! Upgrading pgssl in place: install an earlier release's SQL, fill the
//! registry with real certificates (issued and revoked), `ALTER EXTENSION
//! pgssl UPDATE`, then compare the catalog with a fresh `CREATE EXTENSION
//! pgssl` in another database, and check that the data survived and the
//! upgraded extension keeps working. From the previous release (one script)
//! and from the first (every script of the chain).
//!
//! Earlier releases' install scripts are kept, frozen, in
//! `pgssl_ext/sql/` next to the upgrade scripts; scripts/setup.sh installs
//! both into the server's extension folder. Run it against an installed
//! build of the extension, not one `cargo pgrx test` installed (that one has
//! a `tests` schema of its own, which a fresh install then shows).

use std::path::PathBuf;
use std::process::Command;

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::{X509NameBuilder, X509ReqBuilder};
use pgssl_tests::{pg_bindir, TlsCluster};

/// The last released version, whose frozen install script the test starts from.
const PREVIOUS: &str = "0.2.0";

/// The first release: an update from it runs every upgrade script in turn.
const FIRST: &str = "0.1.0";

/// Everything about the extension's objects that an upgrade must get right,
/// one line per fact, in a stable order. OIDs and creation order are left out.
const CATALOG: &str = r#"
WITH ext AS (SELECT oid, extversion, extconfig, extcondition FROM pg_extension WHERE extname = 'pgssl'),
     ns AS (SELECT 'pgssl'::regnamespace AS oid)
SELECT line FROM (
  SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid) AS line
    FROM pg_depend d, ext
   WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
  UNION ALL
  SELECT 'config ' || (SELECT string_agg(c::regclass::text, ',' ORDER BY c::regclass::text) FROM unnest(ext.extconfig) c)
         || ' ' || coalesce(array_to_string(ext.extcondition, ','), '')
    FROM ext
  UNION ALL
  SELECT 'schema acl=' || coalesce(n.nspacl::text, '') || ' comment=' || coalesce(obj_description(n.oid, 'pg_namespace'), '')
    FROM pg_namespace n, ns WHERE n.oid = ns.oid
  UNION ALL
  SELECT 'function ' || p.proname || '(' || pg_get_function_arguments(p.oid) || ') returns '
         || pg_get_function_result(p.oid)
         || ' volatile=' || p.provolatile::text || ' strict=' || p.proisstrict
         || ' secdef=' || p.prosecdef || ' parallel=' || p.proparallel::text
         || ' leakproof=' || p.proleakproof || ' retset=' || p.proretset
         || ' cost=' || p.procost || ' rows=' || p.prorows
         || ' lang=' || l.lanname || ' symbol=' || p.prosrc || ' library=' || coalesce(p.probin, '')
         || ' config=' || coalesce(array_to_string(p.proconfig, ','), '')
         || ' acl=' || coalesce(p.proacl::text, '')
         || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang, ns WHERE p.pronamespace = ns.oid
  UNION ALL
  SELECT 'relation ' || c.relname || ' kind=' || c.relkind::text
         || ' acl=' || coalesce(c.relacl::text, '')
         || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '')
         || CASE c.relkind WHEN 'v' THEN ' view=' || pg_get_viewdef(c.oid) ELSE '' END
    FROM pg_class c, ns WHERE c.relnamespace = ns.oid
  UNION ALL
  SELECT 'column ' || c.relname || '.' || lpad(a.attnum::text, 3, '0') || ' ' || a.attname
         || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull
         || ' default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '')
         || ' comment=' || coalesce(col_description(c.oid, a.attnum), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum, ns
   WHERE c.relnamespace = ns.oid AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'constraint ' || cl.relname || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
    FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid, ns WHERE co.connamespace = ns.oid
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid, ns WHERE c.relnamespace = ns.oid
  UNION ALL
  SELECT 'sequence ' || c.relname || ' ' || s.seqtypid::regtype || ' start=' || s.seqstart
         || ' increment=' || s.seqincrement || ' min=' || s.seqmin || ' max=' || s.seqmax
         || ' cycle=' || s.seqcycle
    FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid, ns WHERE c.relnamespace = ns.oid
) facts ORDER BY line
"#;

/// The registry as 0.1.0 knew it, row by row.
const REGISTRY: &str =
    "SELECT serial, common_name, not_before, not_after, fingerprint_sha256, issued_by,
        issued_at, revoked_at, revocation_reason, certificate
   FROM pgssl.issued_certs ORDER BY serial";

fn socket(cluster: &TlsCluster, dbname: &str) -> String {
    format!(
        "host={} port={} dbname={dbname} user=postgres",
        cluster.socket_dir.display(),
        cluster.port
    )
}

/// A PEM CSR for `cn` with a fresh P-256 key.
fn csr(cn: &str) -> String {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let mut req = X509ReqBuilder::new().unwrap();
    req.set_subject_name(&name.build()).unwrap();
    req.set_pubkey(&key).unwrap();
    req.sign(&key, MessageDigest::sha256()).unwrap();
    String::from_utf8(req.build().to_pem().unwrap()).unwrap()
}

fn extension_dir() -> PathBuf {
    let out = Command::new(pg_bindir().join("pg_config"))
        .arg("--sharedir")
        .output()
        .expect("pg_config");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("extension")
}

#[test]
fn update_from_the_previous_release_matches_a_fresh_install_and_keeps_the_data() {
    update_matches_a_fresh_install_and_keeps_the_data(PREVIOUS);
}

#[test]
fn update_from_the_first_release_through_every_script_matches_a_fresh_install() {
    update_matches_a_fresh_install_and_keeps_the_data(FIRST);
}

fn update_matches_a_fresh_install_and_keeps_the_data(from: &str) {
    // The frozen install script and every upgrade script are installed as kept.
    let kept = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pgssl_ext/sql");
    for entry in std::fs::read_dir(&kept).unwrap() {
        let path = entry.unwrap().path();
        let installed = extension_dir().join(path.file_name().unwrap());
        assert!(
            std::fs::read(&installed).ok() == Some(std::fs::read(&path).unwrap()),
            "{} is not installed as kept in {}; scripts/setup.sh installs it",
            installed.display(),
            path.display()
        );
    }

    let cluster = TlsCluster::builder().without_extension().start();
    cluster.sql("CREATE DATABASE upgraded");
    cluster.sql("CREATE DATABASE fresh");
    let upgraded = socket(&cluster, "upgraded");
    let fresh = socket(&cluster, "fresh");

    // The previous release, filled with real rows: issued, revoked, a CRL drawn.
    cluster.psql_ok(
        &upgraded,
        &format!("CREATE EXTENSION pgssl VERSION '{from}'"),
    );
    assert_eq!(
        cluster.psql_ok(
            &upgraded,
            "SELECT extversion FROM pg_extension WHERE extname = 'pgssl'"
        ),
        from
    );
    cluster.psql_ok(
        &upgraded,
        "SELECT pgssl.init_ca('upgrade test CA') IS NOT NULL",
    );
    for cn in ["alice", "bob", "carol"] {
        let out = cluster
            .psql_command(&upgraded)
            .arg("-c")
            .arg(format!("SELECT pgssl.sign_csr('{}', 30)", csr(cn)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    cluster.psql_ok(
        &upgraded,
        "SELECT pgssl.revoke(serial, 'keyCompromise') FROM pgssl.issued_certs
          WHERE common_name = 'bob'",
    );
    cluster.psql_ok(&upgraded, "SELECT pgssl.crl() IS NOT NULL");
    let rows_before = cluster.psql_ok(&upgraded, REGISTRY);
    let crl_number_before = cluster.psql_ok(&upgraded, "SELECT last_value FROM pgssl.crl_number");
    assert_eq!(
        cluster.psql_ok(
            &upgraded,
            "SELECT count(*) || ' ' || count(revoked_at) FROM pgssl.issued_certs"
        ),
        "3 1"
    );

    // Update in place, and install afresh next door.
    cluster.psql_ok(&upgraded, "ALTER EXTENSION pgssl UPDATE");
    cluster.psql_ok(&fresh, "CREATE EXTENSION pgssl");
    let version = "SELECT extversion FROM pg_extension WHERE extname = 'pgssl'";
    let current = cluster.psql_ok(&fresh, version);
    assert_ne!(current, from, "the default version is {from}");
    assert_eq!(cluster.psql_ok(&upgraded, version), current);

    // The same catalog, fact by fact.
    let after_update = cluster.psql_ok(&upgraded, CATALOG);
    let after_install = cluster.psql_ok(&fresh, CATALOG);
    assert!(after_install
        .lines()
        .any(|l| l.starts_with("function enroll(")));
    assert!(after_install
        .lines()
        .any(|l| l.starts_with("function renew(")));
    assert!(after_install
        .lines()
        .any(|l| l.starts_with("column issued_certs.")));
    let missing: Vec<&str> = after_install
        .lines()
        .filter(|l| !after_update.lines().any(|u| u == *l))
        .collect();
    let extra: Vec<&str> = after_update
        .lines()
        .filter(|l| !after_install.lines().any(|f| f == *l))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the update differs from a fresh install\nonly in a fresh install:\n{}\nonly after the update:\n{}",
        missing.join("\n"),
        extra.join("\n")
    );

    // The data survived: every row as it was, all from the client CA.
    assert_eq!(cluster.psql_ok(&upgraded, REGISTRY), rows_before);
    assert_eq!(
        cluster.psql_ok(
            &upgraded,
            "SELECT string_agg(DISTINCT kind, ',') FROM pgssl.issued_certs"
        ),
        "client"
    );
    assert_eq!(
        cluster.psql_ok(&upgraded, "SELECT last_value FROM pgssl.crl_number"),
        crl_number_before
    );

    // And the upgraded extension works: the CRL still lists bob, under a
    // larger number; a server certificate is recorded as one.
    let crl = cluster.psql_ok(&upgraded, "SELECT pgssl.crl()");
    let crl = openssl::x509::X509Crl::from_pem(crl.as_bytes()).unwrap();
    assert_eq!(crl.get_revoked().map(|r| r.len()), Some(1));
    assert!(
        cluster
            .psql_ok(&upgraded, "SELECT last_value FROM pgssl.crl_number")
            .parse::<i64>()
            .unwrap()
            > crl_number_before.parse::<i64>().unwrap()
    );
    cluster.psql_ok(
        &upgraded,
        "SELECT pgssl.issue_server_cert(ARRAY['localhost']) IS NOT NULL",
    );
    assert_eq!(
        cluster.psql_ok(
            &upgraded,
            "SELECT kind || ' ' || common_name FROM pgssl.issued_certs WHERE kind = 'server'"
        ),
        "server localhost"
    );
}

/// With the worker preloaded, a database still on the first release's SQL (no CRL store)
/// is waited for, not written to; after `ALTER EXTENSION pgssl UPDATE` the
/// worker signs a CRL of the revocations made before the update, and a
/// serial the registry does not know can be revoked.
#[test]
fn the_worker_waits_for_the_update_then_keeps_every_revocation() {
    let cluster = TlsCluster::builder()
        .without_extension()
        .conf("shared_preload_libraries = 'pgssl'")
        .start();
    cluster.sql(&format!("CREATE EXTENSION pgssl VERSION '{FIRST}'"));
    cluster.sql("SELECT pgssl.init_ca('upgrade test CA') IS NOT NULL");
    for cn in ["alice", "bob"] {
        cluster.sql(&format!(
            "SELECT pgssl.sign_csr('{}', 30) IS NOT NULL",
            csr(cn)
        ));
    }
    let bob = cluster.sql("SELECT serial FROM pgssl.issued_certs WHERE common_name = 'bob'");
    cluster.sql(&format!("SELECT pgssl.revoke('{bob}', 'keyCompromise')"));
    pgssl_tests::wait_until(
        "the worker waiting for the update",
        std::time::Duration::from_secs(20),
        || {
            cluster
                .log()
                .contains("waiting for CREATE EXTENSION pgssl or ALTER EXTENSION pgssl UPDATE")
        },
    );
    let rows_before = cluster.sql(REGISTRY);

    cluster.sql("ALTER EXTENSION pgssl UPDATE");
    pgssl_tests::wait_until(
        "a CRL signed by the worker",
        std::time::Duration::from_secs(20),
        || cluster.sql("SELECT count(*) FROM pgssl.crls") != "0",
    );
    assert_eq!(cluster.sql(REGISTRY), rows_before, "every row as it was");
    let stored = cluster.sql("SELECT crl FROM pgssl.crls ORDER BY crl_number DESC LIMIT 1");
    let crl = openssl::x509::X509Crl::from_pem(stored.as_bytes()).unwrap();
    let listed: Vec<String> = crl
        .get_revoked()
        .unwrap()
        .iter()
        .map(|r| {
            r.serial_number()
                .to_bn()
                .unwrap()
                .to_hex_str()
                .unwrap()
                .to_lowercase()
        })
        .collect();
    assert_eq!(listed, vec![bob.trim_start_matches('0').to_string()]);

    // A serial that is not in the registry: recorded, and the next CRL lists it.
    assert_eq!(cluster.sql("SELECT pgssl.revoke('0a3f')"), "t");
    pgssl_tests::wait_until(
        "a CRL with both revocations",
        std::time::Duration::from_secs(20),
        || {
            cluster.sql("SELECT revocations FROM pgssl.crls ORDER BY crl_number DESC LIMIT 1")
                == "2"
        },
    );
}

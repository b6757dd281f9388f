//! The `pgssl` binary end to end, on throwaway clusters from the shared fixture.
//! (These live here rather than in the `tests` crate because only this package's own
//! tests can find the binary, through `CARGO_BIN_EXE_pgssl`.)

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use pgssl_tests::{clean_command, seed_recipe, TlsCluster, SEED_HBA};
use serde_json::Value;

/// `pgssl` with no `PG*` variables and `HOME` at `home`, run in `cwd`.
fn pgssl(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    clean_command(Path::new(env!("CARGO_BIN_EXE_pgssl")), home)
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("pgssl runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_with_the_seed_files_as_they_are() {
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    seed_recipe(dir);
    let cluster = TlsCluster::builder().seed_files(dir).hba(SEED_HBA).start();
    // The issue's command line, word for word, plus the test cluster's port; relative file
    // names, run in the folder the openssl commands wrote to.
    let conninfo = format!(
        "sslrootcert=ca.crt sslcert=client.crt sslkey=client.key host=127.0.0.1 dbname=postgres user=postgres sslmode=verify-full port={}",
        cluster.port
    );
    let out = pgssl(dir, dir, &["check", &conninfo]);
    println!("{}", text(&out.stdout));
    assert!(
        out.status.success(),
        "pgssl check failed: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("subject:  CN=127.0.0.1"), "{stdout}");
    assert!(stdout.contains("X.509 v1"), "{stdout}");
    assert!(
        stdout.contains("client DN:    /CN=postgres"),
        "the server saw CN postgres: {stdout}"
    );
    assert!(stdout.contains("and host name \"127.0.0.1\""), "{stdout}");

    let out = pgssl(dir, dir, &["check", &conninfo, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sslmode"], "verify-full");
    assert_eq!(v["server_view"]["client_dn"], "/CN=postgres");
    assert_eq!(
        v["tls"]["server_certificates"][0]["subject"],
        "CN=127.0.0.1"
    );
    assert_eq!(v["tls"]["server_certificates"][0]["version"], 1);
    assert_eq!(
        v["session_info"].is_object(),
        v["pgssl_extension"] == Value::Bool(true)
    );

    // host=localhost: psql refuses, and so does pgssl, with the same reason.
    let localhost = conninfo.replace("host=127.0.0.1", "host=localhost");
    let psql = clean_command(&pgssl_tests::pg_bindir().join("psql"), dir)
        .current_dir(dir)
        .args(["-X", "-c", "SELECT 1", "-d", &localhost])
        .output()
        .unwrap();
    assert!(!psql.status.success());
    let psql_err = text(&psql.stderr);
    let out = pgssl(dir, dir, &["check", &localhost]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    println!("psql:  {psql_err}pgssl: {err}");
    let reason = "server certificate for \"127.0.0.1\" does not match host name \"localhost\"";
    assert!(psql_err.contains(reason), "{psql_err}");
    assert!(err.contains(reason), "{err}");
}

#[test]
fn check_reports_plaintext_and_fails_cleanly() {
    let cluster = TlsCluster::builder().without_extension().start();
    cluster.sql("CREATE ROLE bob LOGIN PASSWORD 'pw'");
    let home = tempfile::tempdir().unwrap();
    let out = pgssl(
        home.path(),
        home.path(),
        &[
            "check",
            &cluster.conninfo("user=bob password=pw sslmode=disable"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("TLS:            none"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains("pgssl extension: not installed"));

    let out = pgssl(home.path(), home.path(), &["check", "sslmode=bogus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("pgssl: invalid sslmode value: \"bogus\""),
        "{}",
        text(&out.stderr)
    );

    // verify-full with no root certificate anywhere: refused before connecting, as libpq does.
    let out = pgssl(
        home.path(),
        home.path(),
        &["check", &cluster.conninfo("user=bob sslmode=verify-full")],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("root certificate file"),
        "{}",
        text(&out.stderr)
    );
}

/// The stand-in for `pgssl.enroll` while the CA branch is not merged: signs the CSR with a
/// CA made by the openssl command line, through COPY FROM PROGRAM.
fn install_enroll_stub(cluster: &TlsCluster) {
    let ca_dir = cluster.dir("stub-ca");
    pgssl_tests::openssl(
        &ca_dir,
        &[
            "req",
            "-new",
            "-x509",
            "-days",
            "2",
            "-nodes",
            "-out",
            "ca.crt",
            "-keyout",
            "ca.key",
            "-subj",
            "/CN=stub enroll CA",
        ],
    );
    std::fs::set_permissions(
        ca_dir.join("ca.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (crt, key) = (ca_dir.join("ca.crt"), ca_dir.join("ca.key"));
    cluster.sql(&format!(
        r#"CREATE FUNCTION pgssl.enroll(csr text, valid_days integer DEFAULT NULL) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE pem text;
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS enroll_out (id serial, line text);
  TRUNCATE enroll_out;
  EXECUTE format('COPY enroll_out (line) FROM PROGRAM %L',
    format('echo %s | base64 -d | openssl x509 -req -CA {crt} -CAkey {key} -days 1 2>/dev/null',
           replace(encode(convert_to(csr, 'UTF8'), 'base64'), E'\n', '')));
  SELECT string_agg(line, E'\n' ORDER BY id) || E'\n' INTO pem FROM enroll_out;
  RETURN pem;
END $f$"#,
        crt = crt.display(),
        key = key.display()
    ));
    cluster.sql(&format!(
        "ALTER SYSTEM SET ssl_ca_file = '{}'",
        crt.display()
    ));
}

#[test]
fn enroll_then_check() {
    let cluster = TlsCluster::start();
    let real = cluster.sql(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = 'pgssl' AND p.proname = 'enroll'",
    ) == "1";
    if real {
        println!("using the extension's pgssl.enroll (init_ca, ssl_ca_file = pgssl_ca.crt)");
        // The CA branch's pgssl.enroll: a CA in the data directory that the server trusts.
        cluster.sql("SELECT pgssl.init_ca('pgssl test client CA') IS NOT NULL");
        cluster.sql("ALTER SYSTEM SET ssl_ca_file = 'pgssl_ca.crt'");
    } else {
        eprintln!("pgssl.enroll is not in this build of the extension: using the test stub");
        install_enroll_stub(&cluster);
    }
    cluster.sql("SELECT pg_reload_conf()");
    cluster.sql("CREATE ROLE alice LOGIN PASSWORD 'pw'");
    cluster.sql("GRANT EXECUTE ON FUNCTION pgssl.enroll(text, integer) TO alice");
    let home = tempfile::tempdir().unwrap();

    for key_type in ["ec-p256", "ec-p384", "rsa-2048", "ed25519"] {
        let out_dir = home.path().join(key_type);
        let out_arg = out_dir.display().to_string();
        // Enroll over a password login (hostnossl scram-sha-256 in the fixture's hba).
        let login = cluster.conninfo(&format!(
            "user=alice password=pw sslmode=disable sslrootcert={}",
            cluster.root_cert.display()
        ));
        let out = pgssl(
            home.path(),
            home.path(),
            &["enroll", &login, "--key-type", key_type, "--out", &out_arg],
        );
        assert!(
            out.status.success(),
            "{key_type}: pgssl enroll failed: {}",
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        println!("{stdout}");
        let key_mode = std::fs::metadata(out_dir.join("postgresql.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(key_mode, 0o600);
        let printed = stdout.lines().last().unwrap().to_string();
        assert!(printed.contains("sslmode=verify-full"), "{printed}");

        // The printed connection string logs in with the certificate (hostssl ... cert).
        let out = pgssl(home.path(), home.path(), &["check", &printed]);
        assert!(
            out.status.success(),
            "{key_type}: pgssl check failed: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("client DN:    /CN=alice"),
            "{}",
            text(&out.stdout)
        );
        // psql agrees.
        assert_eq!(cluster.psql_ok(&printed, "SELECT session_user"), "alice");

        // Existing files are kept unless --force.
        let before = std::fs::read(out_dir.join("postgresql.key")).unwrap();
        let out = pgssl(
            home.path(),
            home.path(),
            &["enroll", &login, "--key-type", key_type, "--out", &out_arg],
        );
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("use --force"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(
            std::fs::read(out_dir.join("postgresql.key")).unwrap(),
            before
        );
        let out = pgssl(
            home.path(),
            home.path(),
            &[
                "enroll",
                &login,
                "--key-type",
                key_type,
                "--out",
                &out_arg,
                "--force",
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_ne!(
            std::fs::read(out_dir.join("postgresql.key")).unwrap(),
            before
        );
        // The new pair matches: the certificate is for the new key.
        let crt =
            openssl::x509::X509::from_pem(&std::fs::read(out_dir.join("postgresql.crt")).unwrap())
                .unwrap();
        let key = openssl::pkey::PKey::private_key_from_pem(
            &std::fs::read(out_dir.join("postgresql.key")).unwrap(),
        )
        .unwrap();
        assert!(crt.public_key().unwrap().public_eq(&key));
    }

    // A dangling symbolic link where a file would go counts as a file there;
    // with --force the link itself is replaced, its target never written.
    let login = cluster.conninfo(&format!(
        "user=alice password=pw sslmode=disable sslrootcert={}",
        cluster.root_cert.display()
    ));
    let out_dir = home.path().join("linked");
    std::fs::create_dir(&out_dir).unwrap();
    let target = home.path().join("elsewhere.crt");
    std::os::unix::fs::symlink(&target, out_dir.join("postgresql.crt")).unwrap();
    let out_arg = out_dir.display().to_string();
    let out = pgssl(
        home.path(),
        home.path(),
        &["enroll", &login, "--out", &out_arg],
    );
    assert!(
        text(&out.stderr).contains("use --force"),
        "{}",
        text(&out.stderr)
    );
    let out = pgssl(
        home.path(),
        home.path(),
        &["enroll", &login, "--out", &out_arg, "--force"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!target.exists(), "enroll wrote through the link");
    assert!(std::fs::symlink_metadata(out_dir.join("postgresql.crt"))
        .unwrap()
        .file_type()
        .is_file());
}

#[test]
fn version_names_the_libpq_behaviour_it_follows() {
    let home = tempfile::tempdir().unwrap();
    let out = pgssl(home.path(), home.path(), &["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!(
            "pgssl {} (sslmode semantics of libpq 15; load_balance_hosts of libpq 16, sslnegotiation of libpq 17)",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn completions_for_each_shell_and_the_manual_page() {
    let home = tempfile::tempdir().unwrap();
    // Each script completes the subcommands, in the shell's own syntax.
    for (shell, marker) in [
        ("bash", "complete -F _pgssl"),
        ("zsh", "#compdef pgssl"),
        ("fish", "complete -c pgssl"),
    ] {
        let out = pgssl(home.path(), home.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}:\n{script}");
        for sub in ["check", "enroll", "renew", "setup", "report"] {
            assert!(script.contains(sub), "{shell} completes {sub}");
        }
    }
    let out = pgssl(home.path(), home.path(), &["completions", "tcsh"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("invalid value 'tcsh'"));

    let out = pgssl(home.path(), home.path(), &["manpage"]);
    assert!(out.status.success());
    let page = text(&out.stdout);
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(page.contains(".TH pgssl 1"), "{page}");
    assert!(page.contains("sslmode semantics of libpq 15"), "{page}");
    assert!(
        page.contains("pgssl\\-renew"),
        "the page lists renew:\n{page}"
    );
}

//! Each expectation is what libpq 15 does with the same string (checked against
//! `fe-connect.c` and, for the error cases, against psql's messages).
use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(s: &str) -> Result<Config, Error> {
    Config::from_conninfo_with_env(s, &no_env, Some(Path::new("/home/u")))
}

fn parse_env(s: &str, env: &[(&str, &str)]) -> Result<Config, Error> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_conninfo_with_env(
        s,
        &move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
        Some(Path::new("/home/u")),
    )
}

/// A text option's value in force, read back from its typed field.
fn value(c: &Config, key: &str) -> Option<String> {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    match key {
        "password" => c.password.clone(),
        "dbname" => Some(c.dbname.clone()),
        "options" => c.options.clone(),
        "application_name" => c.application_name.clone(),
        "sslrootcert" => path(&c.ssl_root_cert),
        "sslcert" => path(&c.ssl_cert),
        "sslkey" => path(&c.ssl_key),
        "sslcrl" => path(&c.ssl_crl),
        "sslcrldir" => path(&c.ssl_crl_dir),
        other => panic!("no text field for {other}"),
    }
}

fn get(s: &str, key: &str) -> Option<String> {
    value(&parse(s).unwrap(), key)
}

fn err(s: &str) -> String {
    parse(s).unwrap_err().to_string()
}

fn tcp(host: &str, port: u16) -> Endpoint {
    Endpoint::Tcp {
        host: Some(host.into()),
        hostaddr: None,
        port,
    }
}

#[test]
fn key_value_quoting_and_escaping() {
    assert!(err("password='it''s'").starts_with("missing \"=\" after \"'s'\""));
    assert_eq!(
        get("password='it\\'s here'", "password").as_deref(),
        Some("it's here")
    );
    assert_eq!(get("password=a\\ b", "password").as_deref(), Some("a b"));
    assert_eq!(
        get("password='a\\\\b'", "password").as_deref(),
        Some("a\\b")
    );
    assert_eq!(
        get("  dbname = mydb   user=u ", "dbname").as_deref(),
        Some("mydb")
    );
    assert_eq!(get("application_name=''", "application_name"), None);
    // libpq skips whitespace after '=', so the next word becomes the value.
    assert_eq!(
        get("application_name= dbname=x", "application_name").as_deref(),
        Some("dbname=x")
    );
    assert_eq!(get("dbname=a dbname=b", "dbname").as_deref(), Some("b"));
    assert_eq!(
        get("options='-c search_path=x'", "options").as_deref(),
        Some("-c search_path=x")
    );
    assert_eq!(
        get("dbname=caf\u{e9}", "dbname").as_deref(),
        Some("caf\u{e9}")
    );
}

#[test]
fn key_value_syntax_errors() {
    assert_eq!(
        err("host"),
        "missing \"=\" after \"host\" in connection info string"
    );
    assert_eq!(
        err("host localhost"),
        "missing \"=\" after \"host\" in connection info string"
    );
    assert_eq!(
        err("password='abc"),
        "unterminated quoted string in connection info string"
    );
    assert_eq!(err("hots=x"), "invalid connection option \"hots\"");
    assert_eq!(parse("requiressl=1").unwrap().ssl_mode(), SslMode::Require);
    assert_eq!(
        parse("sslmode=disable requiressl=0").unwrap().ssl_mode(),
        SslMode::Prefer
    );
    assert_eq!(
        err("sslpasswd=x"),
        "invalid connection option \"sslpasswd\""
    );
    assert!(parse("").is_ok());
}

#[test]
fn invalid_values() {
    assert!(err("sslmode=verify").starts_with("invalid sslmode value: \"verify\""));
    assert!(err("sslmode=Require").starts_with("invalid sslmode value"));
    assert!(err("channel_binding=yes").starts_with("invalid channel_binding value"));
    assert!(err("gssencmode=maybe").starts_with("invalid gssencmode value"));
    assert!(err("target_session_attrs=master").starts_with("invalid target_session_attrs value"));
    assert!(err("ssl_min_protocol_version=TLSv1.4")
        .starts_with("invalid ssl_min_protocol_version value"));
    assert!(err("ssl_max_protocol_version=tls1.3")
        .starts_with("invalid ssl_max_protocol_version value"));
    assert!(
        err("ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2").contains("range")
    );
    assert!(
        parse("ssl_min_protocol_version=tlsv1.3").is_ok(),
        "libpq compares case-insensitively"
    );
    assert!(err("port=abc").starts_with("invalid port value: \"abc\""));
    assert!(err("port=0").starts_with("invalid port value: \"0\""));
    assert!(err("port=65536").starts_with("invalid port value"));
    assert!(
        parse("port=' 5433 '").is_ok(),
        "libpq's parse_int_param allows surrounding blanks"
    );
    assert!(err("connect_timeout=1s").starts_with("invalid connect_timeout value"));
    assert!(err("keepalives=yes").starts_with("invalid keepalives value"));
    assert!(err("hostaddr=localhost").starts_with("invalid hostaddr value"));
    assert!(err("sslnegotiation=tls").starts_with("invalid sslnegotiation value"));
    assert!(err("sslnegotiation=direct sslmode=prefer").contains("sslnegotiation=direct"));
    assert!(parse("sslnegotiation=direct sslmode=require").is_ok());
    assert!(err("host=a,b,c port=1,2").contains("could not match 2 port numbers to 3 hosts"));
    assert!(err("host=a,b hostaddr=127.0.0.1")
        .contains("could not match 2 host names to 1 hostaddr values"));
}

#[test]
fn sslrootcert_system_means_verify_full() {
    assert_eq!(
        parse("sslrootcert=system").unwrap().ssl_mode(),
        SslMode::VerifyFull
    );
    assert!(parse("sslrootcert=system sslmode=require").is_err());
    assert_eq!(
        parse("sslrootcert=system sslmode=verify-full")
            .unwrap()
            .ssl_mode(),
        SslMode::VerifyFull
    );
}

#[test]
fn several_hosts_and_ports() {
    let c = parse("host=a,b,/tmp port=1,2,3").unwrap();
    assert_eq!(
        c.endpoints(),
        &[
            tcp("a", 1),
            tcp("b", 2),
            Endpoint::Unix {
                dir: "/tmp".into(),
                port: 3
            }
        ]
    );
    let c = parse("host=a,b port=7").unwrap();
    assert_eq!(c.endpoints(), &[tcp("a", 7), tcp("b", 7)]);
    let c = parse("host=a,,b port=1,,3").unwrap();
    assert_eq!(
        c.endpoints(),
        &[
            tcp("a", 1),
            Endpoint::Unix {
                dir: DEFAULT_SOCKET_DIR.into(),
                port: 5432
            },
            tcp("b", 3)
        ]
    );
    let c = parse("hostaddr=127.0.0.1 host=db.example").unwrap();
    assert_eq!(
        c.endpoints(),
        &[Endpoint::Tcp {
            host: Some("db.example".into()),
            hostaddr: Some("127.0.0.1".parse().unwrap()),
            port: 5432
        }]
    );
    let c = parse("").unwrap();
    assert_eq!(
        c.endpoints(),
        &[Endpoint::Unix {
            dir: DEFAULT_SOCKET_DIR.into(),
            port: 5432
        }]
    );
}

#[test]
fn uris() {
    let c = parse(
        "postgresql://alice:s%40cret@db1:5433,db2/shop?sslmode=verify-full&application_name=x%20y",
    )
    .unwrap();
    assert_eq!(c.user(), "alice");
    assert_eq!(value(&c, "password").as_deref(), Some("s@cret"));
    assert_eq!(value(&c, "dbname").as_deref(), Some("shop"));
    assert_eq!(c.ssl_mode(), SslMode::VerifyFull);
    assert_eq!(value(&c, "application_name").as_deref(), Some("x y"));
    assert_eq!(c.endpoints(), &[tcp("db1", 5433), tcp("db2", 5432)]);
    let c = parse("postgres://[::1]:5433/db").unwrap();
    assert_eq!(c.endpoints(), &[tcp("::1", 5433)]);
    let c = parse("postgresql://%2Fvar%2Frun%2Fpostgresql/db").unwrap();
    assert_eq!(
        c.endpoints(),
        &[Endpoint::Unix {
            dir: "/var/run/postgresql".into(),
            port: 5432
        }]
    );
    let c = parse("postgresql:///db?host=/tmp&port=5433").unwrap();
    assert_eq!(
        c.endpoints(),
        &[Endpoint::Unix {
            dir: "/tmp".into(),
            port: 5433
        }]
    );
    let c = parse("postgresql://user@").unwrap();
    assert_eq!(c.user(), "user");
    assert_eq!(value(&c, "dbname").as_deref(), Some("user"));
    assert_eq!(
        parse("postgresql://h/?ssl=true").unwrap().ssl_mode(),
        SslMode::Require
    );
    assert_eq!(
        value(&parse("postgresql://h/db?").unwrap(), "dbname").as_deref(),
        Some("db")
    );
    assert_eq!(
        parse("postgresql://h/db?sslmode=disable&")
            .unwrap()
            .ssl_mode(),
        SslMode::Disable
    );
    assert_eq!(parse("postgresql://u%3Ax@h").unwrap().user(), "u:x");
    assert_eq!(
        value(&parse("postgresql://h/a+b").unwrap(), "dbname").as_deref(),
        Some("a+b")
    );
}

#[test]
fn uri_errors() {
    assert!(err("postgresql://[::1")
        .starts_with("end of string reached when looking for matching \"]\""));
    assert!(err("postgresql://[]/db").starts_with("IPv6 host address may not be empty"));
    assert_eq!(
        err("postgresql://[::1]x/db"),
        "unexpected character \"x\" at position 19 in URI (expected \":\" or \"/\"): \"postgresql://[::1]x/db\""
    );
    assert!(err("postgresql://h/db?sslmode").starts_with("missing key/value separator \"=\""));
    assert!(err("postgresql://h/db?a=b=c").starts_with("extra key/value separator \"=\""));
    assert_eq!(
        err("postgresql://h/db?foo=bar"),
        "invalid URI query parameter: \"foo\""
    );
    assert!(err("postgresql://h/d%zz").starts_with("invalid percent-encoded token"));
    assert!(err("postgresql://h/d%2").starts_with("invalid percent-encoded token"));
    assert!(err("postgresql://h/d%00").starts_with("forbidden value %00 in percent-encoded value"));
    assert!(err("postgresql://h/db?sslmode=bogus").starts_with("invalid sslmode value"));
}

#[test]
fn environment_fallbacks() {
    let env = [
        ("PGHOST", "envhost"),
        ("PGPORT", "6000"),
        ("PGUSER", "envuser"),
        ("PGDATABASE", "envdb"),
        ("PGPASSWORD", "pw"),
        ("PGSSLMODE", "verify-ca"),
        ("PGSSLROOTCERT", "/r.crt"),
        ("PGSSLCERT", "/c.crt"),
        ("PGSSLKEY", "/c.key"),
        ("PGSSLCRL", "/x.crl"),
        ("PGSSLCRLDIR", "/crls"),
        ("PGSSLSNI", "0"),
        ("PGAPPNAME", "app"),
        ("PGCHANNELBINDING", "require"),
        ("PGCONNECT_TIMEOUT", "5"),
        ("PGSSLMINPROTOCOLVERSION", "TLSv1.3"),
    ];
    let c = parse_env("", &env).unwrap();
    assert_eq!(c.endpoints(), &[tcp("envhost", 6000)]);
    assert_eq!(c.user(), "envuser");
    assert_eq!(value(&c, "dbname").as_deref(), Some("envdb"));
    assert_eq!(value(&c, "password").as_deref(), Some("pw"));
    assert_eq!(c.ssl_mode(), SslMode::VerifyCa);
    for (k, v) in [
        ("sslrootcert", "/r.crt"),
        ("sslcert", "/c.crt"),
        ("sslkey", "/c.key"),
        ("sslcrl", "/x.crl"),
        ("sslcrldir", "/crls"),
        ("application_name", "app"),
    ] {
        assert_eq!(value(&c, k).as_deref(), Some(v), "{k}");
    }
    assert!(!c.ssl_sni);
    assert_eq!(c.channel_binding, ChannelBinding::Require);
    assert_eq!(c.connect_timeout, Some(Duration::from_secs(5)));
    assert_eq!(c.min_version, Some(TlsVersion::Tls13));
    // The connection string wins over the environment.
    let c = parse_env("host=h sslmode=disable user=me", &env).unwrap();
    assert_eq!(c.endpoints(), &[tcp("h", 6000)]);
    assert_eq!(c.ssl_mode(), SslMode::Disable);
    assert_eq!(c.user(), "me");
    // An invalid environment value is an error, as in libpq.
    assert!(parse_env("", &[("PGSSLMODE", "nope")]).is_err());
    assert_eq!(
        parse_env("", &[("PGREQUIRESSL", "1")]).unwrap().ssl_mode(),
        SslMode::Require
    );
    assert!(parse_env("", &[("PGSERVICE", "x")]).is_err());
}

#[test]
fn defaults() {
    let c = parse("user=u").unwrap();
    assert_eq!(c.ssl_mode(), SslMode::Prefer);
    assert_eq!(
        value(&c, "dbname").as_deref(),
        Some("u"),
        "dbname defaults to the user"
    );
    assert!(c.ssl_sni);
    assert_eq!(c.channel_binding, ChannelBinding::Prefer);
    assert_eq!(c.min_version, Some(TlsVersion::Tls12));
    assert_eq!(
        c.root_cert_file(),
        Some(PathBuf::from("/home/u/.postgresql/root.crt"))
    );
    assert_eq!(
        c.cert_file(),
        Some(PathBuf::from("/home/u/.postgresql/postgresql.crt"))
    );
    assert_eq!(
        c.key_file(),
        Some(PathBuf::from("/home/u/.postgresql/postgresql.key"))
    );
    let c = parse("sslcert=/x.crt").unwrap();
    assert_eq!(c.cert_file(), Some(PathBuf::from("/x.crt")));
    let c = Config::from_conninfo_with_env("user=u", &no_env, None).unwrap();
    assert_eq!(c.root_cert_file(), None);
}

#[test]
fn tokio_postgres_mapping() {
    use tokio_postgres::config::SslMode as Tp;
    for (mode, tp) in [
        ("disable", Tp::Disable),
        ("allow", Tp::Prefer),
        ("prefer", Tp::Prefer),
        ("require", Tp::Require),
        ("verify-ca", Tp::Require),
        ("verify-full", Tp::Require),
    ] {
        let c = parse(&format!("host=h sslmode={mode}")).unwrap();
        assert_eq!(
            c.tokio_config(&c.endpoints()[0]).get_ssl_mode(),
            tp,
            "{mode}"
        );
    }
    let c = parse("host=/tmp sslmode=require").unwrap();
    assert_eq!(
        c.tokio_config(&c.endpoints()[0]).get_ssl_mode(),
        Tp::Disable,
        "never TLS over a Unix socket"
    );
    let c = parse(
        "host=h user=u password=p dbname=d application_name=a connect_timeout=1 keepalives_count=3",
    )
    .unwrap();
    let t = c.tokio_config(&c.endpoints()[0]);
    assert_eq!(t.get_user(), Some("u"));
    assert_eq!(t.get_password(), Some(&b"p"[..]));
    assert_eq!(t.get_dbname(), Some("d"));
    assert_eq!(t.get_application_name(), Some("a"));
    assert_eq!(
        t.get_connect_timeout(),
        Some(&Duration::from_secs(2)),
        "libpq raises 1 s to 2 s"
    );
    assert_eq!(t.get_keepalives_retries(), Some(3));
}

#[test]
fn password_file() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        "# comment\ndb.example:5432:shop:alice:first\n*:*:*:bob:b\\:c\\\\d\nlocalhost:5433:*:carol:sock\n",
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pw = |s: &str| {
        let c = Config::from_conninfo_with_env(s, &no_env, Some(home.path())).unwrap();
        c.passfile_password(&c.endpoints()[0])
    };
    assert_eq!(
        pw("host=db.example dbname=shop user=alice").as_deref(),
        Some("first")
    );
    assert_eq!(pw("host=db.example dbname=other user=alice"), None);
    assert_eq!(pw("host=x user=bob").as_deref(), Some("b:c\\d"));
    assert_eq!(
        pw("port=5433 user=carol").as_deref(),
        Some("sock"),
        "the default socket is localhost"
    );
    assert_eq!(
        pw("host=db.example dbname=shop user=alice password=given"),
        None
    );
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        pw("host=x user=bob"),
        None,
        "a file others can read is ignored"
    );
}

#[test]
fn debug_output_hides_passwords() {
    let c = parse("password=s3cret sslpassword=k3y user=u").unwrap();
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("k3y"),
        "{shown}"
    );
    assert!(shown.contains("user: \"u\""), "{shown}");
}

#[test]
fn recognises_connection_strings() {
    assert!(is_connection_string("host=x"));
    assert!(is_connection_string("postgresql://x"));
    assert!(!is_connection_string("mydb"));
}

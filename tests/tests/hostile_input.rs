//! Hostile input through every SQL function of the `pgssl` schema never ends the backend:
//! each argument of each function, in turn, gets random and malformed text, 1 MiB values,
//! NUL bytes (where the type can carry them), extreme and negative numbers, NULLs and odd
//! arrays, as a superuser and as an ordinary role, over TLS with a client certificate (so
//! the session functions have a certificate to read). After every call the same backend
//! answers, and every refusal is an ERROR with a SQLSTATE.
//!
//! The functions are read from `pg_proc` at run time, so a function added to the schema is
//! covered without touching this file.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use pgssl_client::{Config, Connector};
use pgssl_tests::{csr_pem, CertFiles, TlsCluster};
use tokio_postgres::{Client, SimpleQueryMessage};

/// Functions that write files or replace what the server serves: run after all the others,
/// and the cluster is restarted and checked at the end.
const RUN_LAST: &[&str] = &["init_ca", "issue_server_cert", "install_crl", "renew"];

/// The longest a single call may take before it counts as a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A small deterministic generator (xorshift64*), so a failure reproduces with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Text from every kind of character PostgreSQL's UTF-8 text can hold (no NUL):
    /// controls, ASCII, Latin-1, combining marks, bidi overrides, CJK, emoji, noncharacters.
    fn text(&mut self, len: usize) -> String {
        const RANGES: &[(u32, u32)] = &[
            (0x01, 0x1f),
            (0x20, 0x7e),
            (0x7f, 0xff),
            (0x300, 0x36f),
            (0x202a, 0x202e),
            (0x4e00, 0x4eff),
            (0x1f600, 0x1f64f),
            (0xfff0, 0xffff),
            (0x10fff0, 0x10ffff),
        ];
        (0..len)
            .map(|_| {
                let (lo, hi) = RANGES[self.below(RANGES.len() as u64) as usize];
                char::from_u32(lo + self.below(u64::from(hi - lo + 1)) as u32).unwrap_or('?')
            })
            .collect()
    }

    /// `text` with a few characters replaced by random ones: a malformed copy.
    fn mutate(&mut self, text: &str) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for _ in 0..(1 + self.below(8)) {
            let at = self.below(chars.len() as u64) as usize;
            chars[at] = self.text(1).chars().next().unwrap_or('?');
        }
        chars.into_iter().collect()
    }

    fn hex(&mut self, bytes: usize) -> String {
        (0..bytes)
            .map(|_| format!("{:02x}", self.below(256)))
            .collect()
    }
}

/// A SQL string literal (standard_conforming_strings is on).
fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// SQL expressions of type `ty` (as `format_type` names it) meant to break a function.
fn hostile_values(ty: &str, rng: &mut Rng, csr: &str) -> Vec<String> {
    let cast = |expr: String| format!("({expr})::{ty}");
    let mut values = vec![format!("NULL::{ty}")];
    let text_values = |rng: &mut Rng| -> Vec<String> {
        vec![
            lit(""),
            lit(" \t\r\n "),
            "repeat('x', 1048576)".to_string(),
            // 1 MiB inside a PEM block, past any early "is there a block" test.
            "'-----BEGIN CERTIFICATE REQUEST-----' || chr(10) || repeat('QUFB', 262144) || chr(10) \
             || '-----END CERTIFICATE REQUEST-----'"
                .to_string(),
            lit(&rng.text(200)),
            lit(&rng.text(5000)),
            "(SELECT string_agg(chr(i), '') FROM generate_series(1, 31) i)".to_string(),
            // PostgreSQL itself refuses a NUL in text: an ERROR before the function runs.
            "chr(0)".to_string(),
            lit(&rng.mutate(csr)),
            lit(&rng.mutate(csr)),
            lit(&rng.mutate(csr)),
            lit(&rng.mutate(csr)),
            lit(&csr.replacen(
                "-----\n",
                "-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n",
                1,
            )),
            lit(&format!("{csr}{csr}")),
            lit(csr.split("-----END").next().unwrap_or_default()),
            lit("-----BEGIN CERTIFICATE REQUEST-----\nnot base64 !!\n-----END CERTIFICATE REQUEST-----"),
            lit("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----"),
            "pgssl.ca_cert()".to_string(),
            lit("%s%n%x%p\\\\"),
            lit("../../../../../etc/passwd"),
            lit("'; SELECT pg_sleep(100); --"),
            lit(&format!("0.{}", "9".repeat(10_000))),
            lit("2.5.4.3"),
            lit("-1"),
            lit(&"f".repeat(100_000)),
            lit(&"9".repeat(1000)),
            lit("\u{202e}\u{feff}\u{fffd}\u{1f600}"),
        ]
    };
    match ty {
        "text" | "character varying" | "name" | "character" => {
            values.extend(text_values(rng).into_iter().map(cast))
        }
        "integer" | "smallint" | "bigint" => values.extend(
            [
                "0",
                "-1",
                "1",
                "-2147483648",
                "2147483647",
                "-32768",
                "32767",
                "-9223372036854775808",
                "9223372036854775807",
                "99999999999999999999999999999999",
            ]
            .map(|v| cast(lit(v))),
        ),
        "numeric" => values.extend(
            [
                "0",
                "-1",
                "NaN",
                "1e1000",
                "-1e1000",
                "Infinity",
                "-Infinity",
                "0.5",
            ]
            .map(|v| cast(lit(v))),
        ),
        "boolean" => values.extend(["true", "false"].map(|v| cast(v.to_string()))),
        "interval" => values.extend(
            [
                "0",
                "-1 second",
                "1 microsecond",
                "-178000000 years",
                "178000000 years",
                "infinity",
                "-infinity",
                "1000000 days",
            ]
            .map(|v| cast(lit(v))),
        ),
        "timestamp with time zone" | "timestamp without time zone" | "date" => values.extend(
            [
                "infinity",
                "-infinity",
                "epoch",
                "294276-12-31",
                "4713-01-01 BC",
            ]
            .map(|v| cast(lit(v))),
        ),
        "bytea" => values.extend(
            [
                lit("\\x"),
                lit("\\x00"),
                lit(&format!("\\x00{}00", rng.hex(4096))),
                "decode(repeat('00', 1048576), 'hex')".to_string(),
                format!("convert_to({}, 'UTF8')", lit(csr)),
            ]
            .map(cast),
        ),
        "json" | "jsonb" => values.extend(
            [
                lit("{}"),
                lit("\"x\""),
                "repeat('[', 5000) || repeat(']', 5000)".to_string(),
                lit(&format!("{{\"k\": \"{}\"}}", "v".repeat(1 << 20))),
            ]
            .map(cast),
        ),
        array if array.ends_with("[]") => {
            let element = &array[..array.len() - 2];
            values.extend(
                [
                    lit("{}"),
                    lit("{NULL}"),
                    lit("{NULL,NULL,NULL}"),
                    lit("{{a,b},{c,d}}"),
                    lit("[5:6]={a,b}"),
                    "ARRAY[repeat('x', 1048576)]".to_string(),
                    "array_fill('a'::text, ARRAY[10000])".to_string(),
                    format!("ARRAY['', ' ', {}]", lit(&rng.text(100))),
                    "ARRAY[chr(1), chr(10), chr(127)]".to_string(),
                ]
                .map(|v| {
                    if element == "text" {
                        cast(v)
                    } else {
                        // Element types other than text: only the shapes, as NULLs.
                        cast(lit("{NULL}"))
                    }
                }),
            )
        }
        _ => {}
    }
    values.dedup();
    values
}

/// An ordinary value for an argument not under test that has no default, so that the call
/// gets past its checks of that argument to the one under test: a real CSR for a `csr`, a
/// field name for a `field`, ...
fn benign_value(ty: &str, name: &str, csr: &str) -> String {
    match (ty, name) {
        ("text", "csr") => lit(csr),
        ("text", "field") => lit("CN"),
        ("text", "serial") => lit("01"),
        ("text", _) => lit("alice"),
        (_, _) => benign_of_type(ty),
    }
}

fn benign_of_type(ty: &str) -> String {
    match ty {
        "character varying" | "name" | "character" => format!("'alice'::{ty}"),
        "integer" | "smallint" | "bigint" | "numeric" => format!("1::{ty}"),
        "boolean" => "false".into(),
        "interval" => "'1 day'::interval".into(),
        "text[]" => "'{localhost}'::text[]".into(),
        other => format!("NULL::{other}"),
    }
}

/// One function of the schema, as `pg_proc` describes it.
struct Function {
    name: String,
    identity: String,
    /// `format_type` of each argument.
    types: Vec<String>,
    /// Each argument's name (empty when it has none).
    names: Vec<String>,
    /// Each argument's default expression, if it has one.
    defaults: Vec<Option<String>>,
    /// `p` for a procedure (called with CALL), else `f`.
    kind: String,
}

async fn functions(client: &Client) -> Vec<Function> {
    let rows = client
        .query(
            "SELECT p.proname::text, pg_catalog.pg_get_function_identity_arguments(p.oid),
                    ARRAY(SELECT pg_catalog.format_type(t, NULL)
                            FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, i) ORDER BY i),
                    ARRAY(SELECT pg_catalog.pg_get_function_arg_default(p.oid, i)
                            FROM generate_series(1, p.pronargs) i ORDER BY i),
                    p.prokind::text,
                    ARRAY(SELECT coalesce(p.proargnames[i], '')
                            FROM generate_series(1, p.pronargs) i ORDER BY i)
               FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'pgssl' AND p.prokind IN ('f', 'p')
              ORDER BY p.proname, p.oid",
            &[],
        )
        .await
        .expect("list the pgssl functions");
    rows.iter()
        .map(|row| Function {
            name: row.get(0),
            identity: row.get(1),
            types: row.get(2),
            defaults: row.get(3),
            kind: row.get(4),
            names: row.get(5),
        })
        .collect()
}

/// A TLS session as `role`, with its client certificate.
struct Session {
    role: String,
    client: Client,
    pid: i32,
    calls: usize,
    /// SQLSTATE -> how many calls ended with it.
    codes: BTreeMap<String, usize>,
    /// What went wrong, one line per call.
    problems: Vec<String>,
}

async fn connect(cluster: &TlsCluster, role: &str, cert: &CertFiles, home: &Path) -> Session {
    let conninfo = cluster.verify_full(role, Some(cert));
    let config = Config::from_conninfo_with_env(&conninfo, &|_| None, Some(home)).unwrap();
    let (client, connection) = Connector::new(config)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect as {role}: {e}"));
    tokio::spawn(connection);
    client
        .batch_execute("SET statement_timeout = '50s'")
        .await
        .unwrap();
    let pid = client
        .query_one("SELECT pg_catalog.pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let ssl: bool = client
        .query_one("SELECT pgssl.ssl_is_used()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "the session as {role} runs over TLS");
    Session {
        role: role.to_string(),
        client,
        pid,
        calls: 0,
        codes: BTreeMap::new(),
        problems: Vec::new(),
    }
}

impl Session {
    /// Runs `sql`; records its SQLSTATE; panics if the backend did not survive it.
    async fn call(&mut self, sql: &str) {
        self.calls += 1;
        let shown: String = sql.chars().take(300).collect();
        let started = Instant::now();
        let result = tokio::time::timeout(CALL_TIMEOUT, self.client.simple_query(sql)).await;
        let result = result.unwrap_or_else(|_| {
            panic!(
                "as {}: no answer within {CALL_TIMEOUT:?}: {shown}",
                self.role
            )
        });
        match result {
            Ok(messages) => {
                // Read every row, as a client would.
                let rows = messages
                    .iter()
                    .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
                    .count();
                let outcome = if rows == 0 { "ok, no row" } else { "ok" };
                *self.codes.entry(outcome.into()).or_default() += 1;
            }
            Err(e) => {
                let Some(db) = e.as_db_error() else {
                    panic!(
                        "as {}: the connection broke (backend {} gone?): {e}\ncall: {shown}",
                        self.role, self.pid
                    );
                };
                let code = db.code().code().to_string();
                let well_formed = code.len() == 5
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
                if db.severity() != "ERROR" || !well_formed {
                    self.problems.push(format!(
                        "{} {code} ({}): {shown}",
                        db.severity(),
                        db.message()
                    ));
                }
                // XX000 is an internal error (a Rust panic reaches SQL so); 57014 a call that
                // ran into statement_timeout. Neither is how bad input should be refused.
                if code == "XX000" || code == "57014" {
                    self.problems
                        .push(format!("{code} ({}): {shown}", db.message()));
                }
                *self.codes.entry(code).or_default() += 1;
            }
        }
        let elapsed = started.elapsed();
        if elapsed > Duration::from_secs(20) {
            self.problems.push(format!("took {elapsed:?}: {shown}"));
        }
        self.check_alive(&shown).await;
    }

    /// The same backend still answers.
    async fn check_alive(&self, after: &str) {
        let row = self
            .client
            .query_one("SELECT pg_catalog.pg_backend_pid(), 1", &[])
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "as {}: backend {} does not answer after: {after}\n{e}",
                    self.role, self.pid
                )
            });
        assert_eq!(
            row.get::<_, i32>(0),
            self.pid,
            "as {}: after {after}",
            self.role
        );
        assert_eq!(row.get::<_, i32>(1), 1);
    }

    /// Every hostile value for every argument of `f`, then all arguments NULL.
    async fn attack(&mut self, f: &Function, rng: &mut Rng, csr: &str) {
        let base: Vec<String> = f
            .types
            .iter()
            .zip(&f.defaults)
            .zip(&f.names)
            .map(|((ty, default), name)| match default {
                Some(expr) => format!("({expr})::{ty}"),
                None => benign_value(ty, name, csr),
            })
            .collect();
        let invoke = |args: &[String]| {
            if f.kind == "p" {
                format!("CALL pgssl.{}({})", f.name, args.join(", "))
            } else {
                format!("SELECT * FROM pgssl.{}({})", f.name, args.join(", "))
            }
        };
        if f.types.is_empty() {
            self.call(&invoke(&[])).await;
            return;
        }
        for (position, ty) in f.types.iter().enumerate() {
            for value in hostile_values(ty, rng, csr) {
                let mut args = base.clone();
                args[position] = value;
                self.call(&invoke(&args)).await;
            }
        }
        let nulls: Vec<String> = f.types.iter().map(|ty| format!("NULL::{ty}")).collect();
        self.call(&invoke(&nulls)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn hostile_arguments_never_end_the_backend() {
    let started = Instant::now();
    let cluster = TlsCluster::start();
    cluster.sql("CREATE ROLE hostile_user LOGIN");
    // The ordinary role may execute every function, so each one's own checks are what
    // refuse it, not the privilege system.
    cluster.sql("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgssl TO hostile_user");
    cluster.sql("SELECT pgssl.init_ca()");
    let home = cluster.dir("home");
    let seed = std::env::var("PGSSL_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15_u64);
    eprintln!("seed {seed} (PGSSL_HOSTILE_SEED reproduces a run)");
    // A CSR for the caller's own name, which `enroll` accepts: hostile values of the other
    // arguments then reach their own checks.
    let key = openssl::pkey::PKey::ec_gen("prime256v1").unwrap();

    let superuser_cert = cluster.client_cert(&[("CN", "postgres"), ("O", "Acme, Inc.")]);
    let ordinary_cert = cluster.client_cert(&[
        ("C", "FR"),
        ("O", "Acme + Partners"),
        ("OU", " #lead;trail "),
        ("CN", "hostile_user"),
    ]);
    let mut admin = connect(&cluster, "postgres", &superuser_cert, &home).await;
    let list = functions(&admin.client).await;
    assert!(
        list.iter().any(|f| f.name == "sign_csr")
            && list.iter().any(|f| f.name == "client_dn_field"),
        "the pgssl functions are listed"
    );
    let (mut ordered, last): (Vec<&Function>, Vec<&Function>) = list
        .iter()
        .partition(|f| !RUN_LAST.contains(&f.name.as_str()));
    ordered.extend(last);
    let mut user = connect(&cluster, "hostile_user", &ordinary_cert, &home).await;

    let mut rng = Rng(seed);
    for f in &ordered {
        for session in [&mut user, &mut admin] {
            let before = session.calls;
            let csr = csr_pem(&[session.role.as_str()], &key);
            session.attack(f, &mut rng, &csr).await;
            eprintln!(
                "{}({}) as {}: {} calls",
                f.name,
                f.identity,
                session.role,
                session.calls - before
            );
        }
    }

    for session in [&admin, &user] {
        eprintln!(
            "as {}: {} calls, outcomes {:?}",
            session.role, session.calls, session.codes
        );
    }
    let problems: Vec<String> = [&admin, &user]
        .iter()
        .flat_map(|s| s.problems.iter().map(|p| format!("as {}: {p}", s.role)))
        .collect();
    drop((admin, user));

    let log = cluster.log();
    for bad in [
        "terminated by signal",
        "PANIC:",
        "was terminated by",
        "exited with exit code",
    ] {
        assert!(
            !log.contains(bad),
            "the server log has {bad:?}:\n{log:.5000}"
        );
    }
    // What ran last may have replaced files the server reads: it still restarts and serves TLS.
    cluster.pg_ctl("restart");
    let after = connect(&cluster, "postgres", &superuser_cert, &home).await;
    after.check_alive("the restart").await;
    let row = after
        .client
        .query_one("SELECT length(pgssl.ca_cert()) > 0", &[])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the CA still answers after the run");
    assert!(
        problems.is_empty(),
        "{} calls refused badly:\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!("done in {:?}", started.elapsed());
}

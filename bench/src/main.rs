//! `pgssl-bench`: one command that measures pgssl side by side with what users
//! would use instead — libpq, tokio-postgres with postgres-openssl or stock
//! rustls, contrib/sslinfo, and the openssl command line — on one throwaway TLS
//! cluster, in one run.
//!
//! ```text
//! cargo run --release -p pgssl_bench              # full run, writes docs/benchmarks.md
//! cargo run -p pgssl_bench -- --quick             # smoke run for CI, writes nothing
//! cargo run -p pgssl_bench -- --quick --out F     # smoke run, Markdown to F
//! ```
//!
//! The exit status is non-zero only when a comparison cannot run (a client cannot
//! connect, a function is missing, a tool fails), never because of a timing.

mod clients;
mod connect;
mod cores;
mod instructions;
mod memory;
mod pin;
mod report;
mod session_fns;
mod signing;
mod steady;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use pgssl_tests::{CertSpec, KeyType, TlsCluster};

use clients::{BenchResult, Contender, Provider, Target};
use connect::{Entry, Pgbench, Way};

/// How much work each comparison does.
#[derive(Debug, Clone)]
pub struct Scale {
    /// Rounds per comparison; each figure is the median of this many samples.
    pub rounds: usize,
    /// Connections per sample, sequential (twice as many with 8 tasks).
    pub connections: u32,
    /// `SELECT 1` round trips per sample.
    pub round_trips: u32,
    /// Rows of the table `COPY` reads (about 250 bytes each).
    pub copy_rows: u32,
    /// Rows of `generate_series` per session-function sample.
    pub fn_calls: u32,
    /// Session-function calls across which the backend's memory is watched.
    pub memory_fn_calls: u32,
    /// CSRs per batched `sign_csr` statement.
    pub csr_batch: u32,
    /// `sign_csr` round trips per sample.
    pub sign_single: u32,
    /// `openssl x509 -req` runs per sample.
    pub cli_loop: u32,
    /// Duration of a raw signature sample, in ms.
    pub raw_sign_ms: u64,
    /// Signings across which the backend's memory is watched.
    pub memory_signings: u32,
    /// Connections across which this client's memory is watched.
    pub memory_connections: u32,
}

impl Scale {
    fn full() -> Scale {
        Scale {
            rounds: 7,
            connections: 200,
            round_trips: 5_000,
            copy_rows: 200_000,
            fn_calls: 200_000,
            memory_fn_calls: 1_000_000,
            csr_batch: 1_000,
            sign_single: 300,
            cli_loop: 20,
            raw_sign_ms: 500,
            memory_signings: 100_000,
            memory_connections: 10_000,
        }
    }

    fn quick() -> Scale {
        Scale {
            rounds: 3,
            connections: 20,
            round_trips: 300,
            copy_rows: 10_000,
            fn_calls: 20_000,
            memory_fn_calls: 100_000,
            csr_batch: 100,
            sign_single: 30,
            cli_loop: 3,
            raw_sign_ms: 100,
            memory_signings: 300,
            memory_connections: 200,
        }
    }
}

/// The comparisons, by the names `--skip` takes.
const COMPARISONS: [&str; 6] = [
    "connect",
    "steady",
    "functions",
    "signing",
    "client-memory",
    "instructions",
];

struct Options {
    quick: bool,
    out: Option<PathBuf>,
    skip: Vec<String>,
}

const USAGE: &str = "\
usage: pgssl-bench [--quick] [--out PATH] [--skip COMPARISON]...
  --quick           short smoke run (CI); writes no file unless --out is given
  --out PATH        write the Markdown report to PATH
                    (default for a full run: docs/benchmarks.md of the workspace)
  --skip NAME       leave out one comparison: connect, steady, functions, signing,
                    client-memory, instructions (for development; the report says so)";

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        out: None,
        skip: vec![],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--out" => options.out = Some(args.next().ok_or("--out needs a path")?.into()),
            "--skip" => {
                let name = args.next().ok_or("--skip needs a comparison")?;
                if !COMPARISONS.contains(&name.as_str()) {
                    return Err(format!(
                        "unknown comparison {name:?}; expected one of {COMPARISONS:?}"
                    ));
                }
                options.skip.push(name);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !options.quick && options.out.is_none() {
        options.out = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/benchmarks.md"));
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("pgssl-bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgssl-bench: a comparison could not run: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why missed targets are missed and what would close them; appended to every
/// report, so that a rerun keeps them next to the figures.
const NOTES: &str = include_str!("../notes.md");

/// Trust plaintext from 127.0.0.1, so that the plaintext rows measure the
/// transport rather than a password hash; certificates over TLS.
const BENCH_HBA: &str = "\
local     all all                trust
hostssl   all all  127.0.0.1/32  cert
hostnossl all all  127.0.0.1/32  trust
";

async fn run(options: &Options) -> BenchResult<()> {
    let scale = if options.quick {
        Scale::quick()
    } else {
        Scale::full()
    };
    let skipped = |name: &str| options.skip.iter().any(|s| s == name);
    eprintln!("pgssl-bench: starting a TLS cluster");
    let cluster = TlsCluster::builder()
        .hba(BENCH_HBA)
        .conf("max_connections = 40")
        .start();
    cluster.sql("CREATE ROLE bench LOGIN; CREATE EXTENSION sslinfo");
    let pinning = pin::pin(&cluster.data_dir);
    eprintln!("pgssl-bench: {pinning}");
    if pinning.starts_with("server pinned") {
        cores::enable();
    }
    let ec = cluster.client_cert(&[("CN", "bench")]);
    let rsa =
        cluster.issue_client(&CertSpec::client(&[("CN", "bench")]).key_type(KeyType::Rsa2048));
    let admin = cluster.client_cert(&[("CN", "postgres")]);
    let home = cluster.dir("bench-home");
    let pgbench = Arc::new(Pgbench::new(&home)?);
    let bench = Target {
        port: cluster.port,
        user: "bench".into(),
        root_cert: cluster.root_cert.clone(),
    };
    let superuser = Target {
        user: "postgres".into(),
        ..bench.clone()
    };

    let mut sections = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut memory = Vec::new();

    if !skipped("connect") {
        eprintln!("pgssl-bench: 1. connection set-up");
        let rust = |name: &str, contender: Contender, libpq: &str| Entry {
            name: name.into(),
            way: Way::Rust(Arc::new(contender)),
            libpq: libpq.into(),
        };
        let libpq = |name: &str, conninfo: String| Entry {
            name: name.into(),
            way: Way::Pgbench(conninfo),
            libpq: name.into(),
        };
        const LIBPQ_RSA: &str = "libpq (pgbench -C), RSA-2048";
        const LIBPQ_PLAIN: &str = "libpq (pgbench -C), plaintext";
        let entries = vec![
            rust(
                connect::PGSSL_EC,
                Contender::pgssl(&bench, &ec, &home)?,
                connect::LIBPQ_EC,
            ),
            libpq(connect::LIBPQ_EC, cluster.verify_full("bench", Some(&ec))),
            rust(
                "tokio-postgres + postgres-openssl, EC P-256",
                Contender::openssl(&bench, &ec)?,
                connect::LIBPQ_EC,
            ),
            rust(
                connect::STOCK_EC,
                Contender::stock_rustls(&bench, &ec)?,
                connect::LIBPQ_EC,
            ),
            rust(
                connect::STOCK_EC_OTHER,
                Contender::stock_rustls_with(&bench, &ec, Provider::PGSSL.other())?,
                connect::LIBPQ_EC,
            ),
            rust(
                "pgssl_client, RSA-2048",
                Contender::pgssl(&bench, &rsa, &home)?,
                LIBPQ_RSA,
            ),
            libpq(LIBPQ_RSA, cluster.verify_full("bench", Some(&rsa))),
            rust(
                "tokio-postgres + postgres-openssl, RSA-2048",
                Contender::openssl(&bench, &rsa)?,
                LIBPQ_RSA,
            ),
            rust(
                connect::STOCK_RSA,
                Contender::stock_rustls(&bench, &rsa)?,
                LIBPQ_RSA,
            ),
            rust(
                "tokio-postgres, plaintext",
                Contender::plaintext(&bench),
                LIBPQ_PLAIN,
            ),
            libpq(LIBPQ_PLAIN, cluster.conninfo("user=bench sslmode=disable")),
        ];
        sections.extend(connect::run(&entries, pgbench.clone(), &scale).await?);
    }

    if !skipped("steady") {
        eprintln!("pgssl-bench: 2. steady state");
        cluster.sql(&steady::copy_table_sql(scale.copy_rows));
        cluster.sql("VACUUM ANALYZE bench_copy");
        cluster.sql("GRANT SELECT ON bench_copy TO bench");
        let [pgssl, openssl, plain] = steady::NAMES;
        let mut sessions = Vec::new();
        sessions.push((
            pgssl,
            Contender::pgssl(&bench, &ec, &home)?.connect().await?,
        ));
        sessions.push((openssl, Contender::openssl(&bench, &ec)?.connect().await?));
        sessions.push((
            steady::STOCK,
            Contender::stock_rustls(&bench, &ec)?.connect().await?,
        ));
        sessions.push((
            steady::STOCK_OTHER,
            Contender::stock_rustls_with(&bench, &ec, Provider::PGSSL.other())?
                .connect()
                .await?,
        ));
        sessions.push((plain, Contender::plaintext(&bench).connect().await?));
        let libpq = cluster.verify_full("bench", Some(&ec));
        sections.extend(steady::run(&sessions, &pgbench, &libpq, &scale).await?);
        for (_, session) in sessions {
            session.close().await;
        }
    }

    if !skipped("functions") {
        eprintln!("pgssl-bench: 3. session functions");
        let session = Contender::pgssl(&bench, &ec, &home)?.connect().await?;
        let (section, growth) = session_fns::run(&session, &scale).await?;
        sections.push(section);
        memory.push(growth);
        session.close().await;
    }

    if !skipped("signing") {
        eprintln!("pgssl-bench: 4. signing");
        let session = Contender::pgssl(&superuser, &admin, &home)?
            .connect()
            .await?;
        let work = cluster.dir("signing");
        let (section, growth) = signing::run(&session, &cluster.data_dir, &work, &scale).await?;
        sections.push(section);
        memory.push(growth);
        session.close().await;
    }

    if !skipped("client-memory") {
        eprintln!("pgssl-bench: 5. client memory");
        let contender = Arc::new(Contender::pgssl(&bench, &ec, &home)?);
        connect::rust_rate(&contender, 100, connect::CONCURRENCY).await?;
        let before = memory::Rss::of_self()?;
        let n = scale.memory_connections;
        connect::rust_rate(&contender, n, connect::CONCURRENCY).await?;
        let after = memory::Rss::of_self()?;
        memory.push(memory::Growth {
            what: format!(
                "this client (pgssl_client, one Connector), {} connections, 8 tasks",
                report::fmt_num(f64::from(n))
            ),
            before,
            after,
            backend: false,
        });
    }

    if !skipped("instructions") {
        if options.quick {
            eprintln!("pgssl-bench: 6. instruction counts: full runs only");
        } else if !instructions::available() {
            eprintln!("pgssl-bench: 6. instruction counts: valgrind is not installed");
            notes.push(
                "Instruction counts (section 6): not measured, valgrind is not installed.".into(),
            );
        } else {
            eprintln!("pgssl-bench: 6. instruction counts (callgrind)");
            let csrs: Vec<String> = (0..100)
                .map(|i| pgssl_tests::csr_pem(&[&format!("cg-{i}")], &KeyType::EcP256.generate()))
                .collect();
            let probe = instructions::Probe {
                data_dir: &cluster.data_dir,
                port: cluster.port,
                bench: &Contender::pgssl(&bench, &ec, &home)?,
                admin: &Contender::pgssl(&superuser, &admin, &home)?,
                csrs: &csrs,
                use_ec_ca: "SET pgssl.ca_cert_file = 'bench_ca_ec.crt'; \
                            SET pgssl.ca_key_file = 'bench_ca_ec.key'; \
                            SELECT pgssl.init_ca('pgssl bench CA (EC P-256)', 3650, 'ec-p256') \
                             WHERE pg_catalog.pg_stat_file('bench_ca_ec.crt', true) IS NULL"
                    .into(),
            };
            let section = instructions::run(
                &probe,
                || cluster.pg_ctl("stop"),
                || cluster.pg_ctl("start"),
            )
            .await?;
            sections.push(section);
        }
    }

    let server_version = cluster.sql("SHOW server_version");
    let mut header = vec![
        format!("Machine: {}", machine_line()),
        format!(
            "PostgreSQL {server_version}; pgssl-bench {} build, {} run, {} UTC",
            if cfg!(debug_assertions) {
                "dev-profile"
            } else {
                "release"
            },
            if options.quick { "`--quick`" } else { "full" },
            now_utc()
        ),
    ];
    header.push(extension_build_line());
    header.push(format!("Cores: {pinning}"));
    header.push(format!(
        "pgssl_client's rustls crypto provider: {}",
        Provider::PGSSL.name()
    ));
    header.extend(notes);
    if !options.skip.is_empty() {
        header.push(format!("Left out of this run: {}", options.skip.join(", ")));
    }
    let mut md = report::markdown(&header, &sections, &memory);
    md.push('\n');
    md.push_str(NOTES);
    println!("{md}");
    if let Some(path) = &options.out {
        std::fs::write(path, &md).map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("pgssl-bench: wrote {}", path.display());
    }
    Ok(())
}

/// Which build of the extension the server loads. `cargo pgrx install` builds
/// the dev profile unless given `--release`, and a dev build's session
/// functions and signing are several times slower: the report must say so.
fn extension_build_line() -> String {
    let pkglibdir = std::process::Command::new(pgssl_tests::pg_bindir().join("pg_config"))
        .arg("--pkglibdir")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let path = PathBuf::from(pkglibdir).join("pgssl.so");
    let Ok(bytes) = std::fs::read(&path) else {
        return format!("pgssl extension: {} not readable", path.display());
    };
    // A dev-profile build keeps its DWARF sections; the release profile strips them.
    let dev = bytes.windows(13).any(|w| w == b"\0.debug_info\0");
    if dev {
        format!(
            "pgssl extension: **dev-profile build** ({} has debug info); its figures \
             (session functions, signing) are not representative: install it with \
             `cargo pgrx install --release`",
            path.display()
        )
    } else {
        "pgssl extension: release build (the server's pgssl.so)".to_string()
    }
}

/// `2 cores, Intel(R) Xeon(R) ...`, from /proc/cpuinfo.
fn machine_line() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    format!("{cores} cores, {model}")
}

fn now_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

//! Instruction counts of the in-backend paths, from callgrind: the server is
//! restarted under `valgrind --tool=callgrind`, instructions are collected
//! only inside the functions compared (pgrx's C entry point of each pgssl
//! function, sslinfo's own functions), and each comparison runs in a session
//! of its own whose backend writes its counts when it exits. Counts do not
//! move with the load of the machine, so their ratios are the steadiest
//! figures of the report. Full runs only, and only where valgrind is
//! installed; the report says when they were left out.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::clients::{BenchResult, Contender};
use crate::report::{fmt_num, Row, Section, Target};

/// The functions whose instructions are collected (callgrind's
/// `--toggle-collect`): symbol names, none called inside another, and no
/// function matched by two of them.
const COLLECTED: [&str; 13] = [
    "client_cn_wrapper",
    "client_dn_wrapper",
    "client_dn_field_wrapper",
    "client_serial_wrapper",
    "session_info_wrapper",
    "sign_csr_wrapper",
    // One pattern for both: callgrind matches a name as a prefix, and two
    // patterns matching `ssl_client_dn_field` would toggle collection twice.
    "ssl_client_dn*",
    "ssl_client_serial",
    "ssl_is_used",
    "ssl_version",
    "ssl_cipher",
    "ssl_client_cert_present",
    "ssl_issuer_dn",
];

/// Calls per session-function sample, and certificates per signing sample.
const CALLS: u32 = 2_000;
const SIGNINGS: usize = 100;

/// What the measurements need.
pub struct Probe<'a> {
    /// The server's data directory and port.
    pub data_dir: &'a Path,
    /// Its TCP port.
    pub port: u16,
    /// A session over TLS with the client certificate (`CN=bench`).
    pub bench: &'a Contender,
    /// A superuser session over TLS.
    pub admin: &'a Contender,
    /// CSRs to sign, and the SET commands that select the EC P-256 CA.
    pub csrs: &'a [String],
    /// `SET pgssl.ca_cert_file ...; SET pgssl.ca_key_file ...`.
    pub use_ec_ca: String,
}

/// Whether valgrind can be run.
pub fn available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Restarts the server under callgrind, measures, and restarts it as before
/// with `restart`. Returns the section.
pub async fn run(probe: &Probe<'_>, stop: impl Fn(), restart: impl Fn()) -> BenchResult<Section> {
    let out_dir = probe.data_dir.join("callgrind");
    std::fs::create_dir_all(&out_dir)?;
    let meta = std::fs::metadata(probe.data_dir)?;
    std::os::unix::fs::chown(&out_dir, Some(meta.uid()), Some(meta.gid()))?;
    stop();
    let server = start_under_callgrind(probe, &out_dir)?;
    let result = measure(probe, &out_dir).await;
    // Fast shutdown of the server under valgrind, then the usual one back.
    if let Some(pid) = postmaster_pid(probe.data_dir) {
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        wait_gone(pid, Duration::from_secs(120));
    }
    let _ = server.wait_with_output();
    restart();
    result
}

fn start_under_callgrind(probe: &Probe<'_>, out_dir: &Path) -> BenchResult<std::process::Child> {
    let postgres = pgssl_tests::pg_bindir().join("postgres");
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--", "valgrind", "--tool=callgrind"])
        .args([
            "--collect-atstart=no",
            "--dump-instr=no",
            "--compress-strings=no",
        ])
        .arg(format!("--callgrind-out-file={}/cg.%p", out_dir.display()));
    for f in COLLECTED {
        cmd.arg(format!("--toggle-collect={f}"));
    }
    let log = std::fs::File::create(out_dir.join("valgrind.log"))?;
    let child = cmd
        .arg(postgres)
        .arg("-D")
        .arg(probe.data_dir)
        .args(["-p", &probe.port.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    Ok(child)
}

fn postmaster_pid(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

fn wait_gone(pid: u32, limit: Duration) {
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `sql` (after `setup`) in a new session of `who` and returns the
/// instructions its backend spent in the collected functions.
async fn collected(
    who: &Contender,
    out_dir: &Path,
    setup: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> BenchResult<(u64, PathBuf)> {
    let session = who.connect().await?;
    let pid: i32 = session
        .client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    if !setup.is_empty() {
        session.client.batch_execute(setup).await?;
    }
    session.client.query(sql, params).await?;
    session.close().await;
    let pid = u32::try_from(pid)?;
    wait_gone(pid, Duration::from_secs(120));
    let file = out_dir.join(format!("cg.{pid}"));
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("callgrind output {}: {e}", file.display()))?;
    let total = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|n| n.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("no totals in {}", file.display()))?;
    Ok((total, file))
}

/// The inclusive instructions of `function` in the callgrind output `file`.
fn inclusive(file: &Path, function: &str) -> Option<u64> {
    let out = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(file)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (count, rest) = l.trim().split_once(' ')?;
        let name = rest.split_once(':')?.1.split(' ').next()?;
        (name == function).then(|| count.replace(',', "").parse().ok())?
    })
}

async fn measure(probe: &Probe<'_>, out_dir: &Path) -> BenchResult<Section> {
    // Up to three minutes for a server under valgrind to accept connections.
    let start = Instant::now();
    loop {
        match probe.admin.connect().await {
            Ok(session) => {
                session.close().await;
                break;
            }
            Err(e) if start.elapsed() > Duration::from_secs(180) => {
                return Err(format!("server under callgrind: {e}").into())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let mut s = Section::new(
        "6. Instructions per call (callgrind)",
        "instructions",
        &format!(
            "The server restarted under `valgrind --tool=callgrind`, instructions collected only \
             inside the functions compared (the C entry point of each function: for pgssl's, \
             pgrx's wrapper included; not the executor around them). Session functions: \
             `SELECT count(f) FROM generate_series(1, {CALLS})` in a session of its own over TLS \
             with the client certificate, divided by {CALLS}. Signing: {SIGNINGS} CSRs (EC P-256 \
             keys) in one `SELECT count(pgssl.sign_csr(c)) FROM unnest($1::text[]) c` with the \
             EC P-256 CA; the CA's signature is `X509_sign` (encoding, hash and ECDSA \
             signature), the CSR's proof of possession `ASN1_item_verify_ex`, both counted \
             inside `sign_csr`. Counts do not depend on the machine's load; ratios as in the \
             sections above."
        ),
    );
    for (name, expr, _, _) in crate::session_fns::CALLS {
        let sql = format!("SELECT count({expr}) FROM generate_series(1, {CALLS})");
        let (total, _) = collected(probe.bench, out_dir, "", &sql, &[]).await?;
        s.rows
            .push(Row::new(name, &[total as f64 / f64::from(CALLS)]));
    }
    for (name, _, counterpart, goal) in crate::session_fns::CALLS {
        if counterpart.is_empty() {
            continue;
        }
        let (mine, theirs) = (s.median(name), s.median(counterpart));
        let row = s.row_mut(name);
        row.ratio = Some(format!("{}× {counterpart}", fmt_num(mine / theirs)));
        row.targets = vec![Target::at_most(
            &format!("≤ {goal}× {counterpart}"),
            mine / theirs,
            goal,
            "×",
        )];
    }

    let csrs: Vec<&str> = probe
        .csrs
        .iter()
        .take(SIGNINGS)
        .map(String::as_str)
        .collect();
    let n = csrs.len() as f64;
    let sql = "SELECT count(pgssl.sign_csr(c)) FROM unnest($1::text[]) AS c";
    let (total, file) = collected(probe.admin, out_dir, &probe.use_ec_ca, sql, &[&csrs]).await?;
    let per_cert = total as f64 / n;
    const SIGN: &str = "pgssl.sign_csr, batched (EC P-256 CA), per certificate";
    const CA_SIGNATURE: &str = "  of which the CA's signature (X509_sign)";
    const VERIFY: &str = "  of which the CSR's verification (ASN1_item_verify_ex)";
    s.rows.push(Row::new(SIGN, &[per_cert]));
    if let Some(sign) = inclusive(&file, "X509_sign") {
        let share = sign as f64 / total as f64;
        s.rows.push(Row {
            ratio: Some(format!("{}× of sign_csr", fmt_num(share))),
            ..Row::new(CA_SIGNATURE, &[sign as f64 / n])
        });
        s.row_mut(SIGN).ratio = Some(format!("the CA's signature is {}× of it", fmt_num(share)));
    }
    if let Some(verify) = inclusive(&file, "ASN1_item_verify_ex") {
        s.rows.push(Row {
            ratio: Some(format!(
                "{}× of sign_csr",
                fmt_num(verify as f64 / total as f64)
            )),
            ..Row::new(VERIFY, &[verify as f64 / n])
        });
    }
    Ok(s)
}

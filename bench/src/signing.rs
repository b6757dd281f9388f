//! Comparison 4, signing: certificates/s from `pgssl.sign_csr`, one per round
//! trip and batched, against a loop of `openssl x509 -req` (the seed document's
//! method) and the raw signature rate of the same CA key in this process.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use pgssl_tests::{csr_pem, KeyType};

use crate::clients::{BenchResult, Session};
use crate::memory::{self, Growth, Rss};
use crate::report::{fmt_num, Row, Section, Target};
use crate::Scale;

/// A CA the benchmark creates with `pgssl.init_ca` and signs with.
struct Authority {
    /// For row names: `EC P-256`, `RSA-2048`.
    label: &'static str,
    /// `init_ca`'s key type.
    key_type: &'static str,
    /// File stem in the data directory.
    stem: &'static str,
    /// Copies of the CA files for the openssl command line, and its work folder.
    dir: PathBuf,
    /// The CA key, for the raw signature rate.
    key: Option<PKey<Private>>,
}

const AUTHORITIES: [(&str, &str, &str); 2] = [
    ("EC P-256", "ec-p256", "bench_ca_ec"),
    ("RSA-2048", "rsa-2048", "bench_ca_rsa"),
];

/// Points the session's pgssl settings at `ca`'s files.
async fn use_ca(session: &Session, ca: &Authority) -> BenchResult<()> {
    session
        .client
        .batch_execute(&format!(
            "SET pgssl.ca_cert_file = '{0}.crt'; SET pgssl.ca_key_file = '{0}.key'",
            ca.stem
        ))
        .await?;
    Ok(())
}

async fn sign_one_per_round_trip(session: &Session, csrs: &[String], n: u32) -> BenchResult<f64> {
    let statement = session.client.prepare("SELECT pgssl.sign_csr($1)").await?;
    let start = Instant::now();
    for i in 0..n as usize {
        let row = session
            .client
            .query_one(&statement, &[&csrs[i % csrs.len()]])
            .await?;
        let pem: String = row.try_get(0)?;
        debug_assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

async fn sign_batch(session: &Session, expected: usize) -> BenchResult<f64> {
    let start = Instant::now();
    let rows = session
        .client
        .query("SELECT pgssl.sign_csr(csr) FROM csrs", &[])
        .await?;
    let elapsed = start.elapsed().as_secs_f64();
    if rows.len() != expected {
        return Err(format!("sign_csr batch: {} rows, expected {expected}", rows.len()).into());
    }
    Ok(rows.len() as f64 / elapsed)
}

/// The seed document's command, `n` times: one process per certificate.
fn openssl_cli_loop(dir: &Path, n: u32) -> BenchResult<f64> {
    let start = Instant::now();
    for _ in 0..n {
        let out = Command::new("openssl")
            .args(["x509", "-req", "-in", "client.csr", "-text", "-days", "365"])
            .args([
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "client.crt",
            ])
            .current_dir(dir)
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "openssl x509 -req failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
    }
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

/// Signatures/s of `key` over a certificate-sized message (SHA-256), for
/// `duration`: per second of wall-clock time, and per second of this thread's
/// CPU time (which a busy machine does not lower).
fn raw_signature_rate(key: &PKey<Private>, duration: Duration) -> BenchResult<(f64, f64)> {
    let tbs = vec![0x5a_u8; 400];
    let (start, cpu_start) = (Instant::now(), thread_cpu_seconds()?);
    let mut n = 0u32;
    while n % 16 != 0 || start.elapsed() < duration {
        let mut signer = Signer::new(MessageDigest::sha256(), key)?;
        signer.update(&tbs)?;
        std::hint::black_box(signer.sign_to_vec()?);
        n += 1;
    }
    let (wall, cpu) = (
        start.elapsed().as_secs_f64(),
        thread_cpu_seconds()? - cpu_start,
    );
    Ok((f64::from(n) / wall, f64::from(n) / cpu.max(1e-6)))
}

/// Rounds/s of what any signer that checks the CSR must do at the least, in
/// this process for `duration`: OpenSSL's check of the CSR's signature
/// (`X509_REQ_verify`, with its public key decoded once) and one signature by
/// `key`, as in [`raw_signature_rate`]. Everything else a certificate costs
/// (its fields, encoding, registry row) comes on top.
fn check_and_sign_rate(key: &PKey<Private>, csr_pem: &str, duration: Duration) -> BenchResult<f64> {
    let csr = openssl::x509::X509Req::from_pem(csr_pem.as_bytes())?;
    let public = csr.public_key()?;
    let tbs = vec![0x5a_u8; 400];
    let start = Instant::now();
    let mut n = 0u32;
    while n % 16 != 0 || start.elapsed() < duration {
        if !csr.verify(&public)? {
            return Err("the benchmark's CSR does not verify".into());
        }
        let mut signer = Signer::new(MessageDigest::sha256(), key)?;
        signer.update(&tbs)?;
        std::hint::black_box(signer.sign_to_vec()?);
        n += 1;
    }
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

/// This thread's CPU time in seconds (`/proc/thread-self/schedstat`, in ns).
fn thread_cpu_seconds() -> BenchResult<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns: f64 = text
        .split_whitespace()
        .next()
        .ok_or("empty schedstat")?
        .parse()?;
    Ok(ns / 1e9)
}

/// Loads/s of the CA's two PEM files (certificate and key) in this process, with
/// OpenSSL as the extension uses it: what re-reading the CA at every call costs.
fn ca_load_rate(dir: &Path, duration: Duration) -> BenchResult<f64> {
    let cert = std::fs::read(dir.join("ca.crt"))?;
    let key = std::fs::read(dir.join("ca.key"))?;
    let start = Instant::now();
    let mut n = 0u32;
    while n % 16 != 0 || start.elapsed() < duration {
        let cert = openssl::x509::X509::from_pem(&cert)?;
        let key = PKey::private_key_from_pem(&key)?;
        std::hint::black_box((cert, key));
        n += 1;
    }
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

fn rows_of(label: &str) -> [String; 6] {
    [
        format!("sign_csr, one per round trip ({label} CA)"),
        format!("sign_csr, batched ({label} CA)"),
        format!("openssl x509 -req loop ({label} CA)"),
        format!("raw signature, in process ({label} CA key)"),
        format!("CA files parsed (PEM certificate + key), in process ({label} CA)"),
        format!("CSR signature check + raw signature, in process ({label} CA key)"),
    ]
}

/// Creates the two CAs, measures, and then measures the backend's memory across
/// `scale.memory_signings` signings. `session` must be a superuser's; `data_dir` the cluster's.
pub async fn run(
    session: &Session,
    data_dir: &Path,
    work_dir: &Path,
    scale: &Scale,
) -> BenchResult<(Section, Growth)> {
    let pid: i32 = session
        .client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    session.client.batch_execute("LOAD 'pgssl'").await?;

    // CSRs for `CN=bench-<i>`, each with a fresh EC P-256 key.
    let csrs: Vec<String> = (0..scale.csr_batch)
        .map(|i| csr_pem(&[&format!("bench-{i}")], &KeyType::EcP256.generate()))
        .collect();
    session
        .client
        .batch_execute("CREATE TEMP TABLE csrs (csr text NOT NULL)")
        .await?;
    session
        .client
        .execute("INSERT INTO csrs SELECT unnest($1::text[])", &[&csrs])
        .await?;

    let mut authorities = Vec::new();
    for (label, key_type, stem) in AUTHORITIES {
        let dir = work_dir.join(stem);
        std::fs::create_dir_all(&dir)?;
        let mut ca = Authority {
            label,
            key_type,
            stem,
            dir,
            key: None,
        };
        use_ca(session, &ca).await?;
        session
            .client
            .query_one(
                "SELECT pgssl.init_ca($1, 3650, $2)",
                &[&format!("pgssl bench CA ({label})"), &ca.key_type],
            )
            .await
            .map_err(|e| format!("pgssl.init_ca({}): {e}", ca.key_type))?;
        // The openssl command line signs with the same files, copied out of the
        // data directory (this process is root, or the server's user).
        std::fs::copy(data_dir.join(format!("{stem}.crt")), ca.dir.join("ca.crt"))?;
        let key_pem = std::fs::read(data_dir.join(format!("{stem}.key")))?;
        pgssl_tests::pki::write_file(&ca.dir.join("ca.key"), &key_pem, 0o600);
        std::fs::write(ca.dir.join("client.csr"), &csrs[0])?;
        std::fs::set_permissions(&ca.dir, std::fs::Permissions::from_mode(0o700))?;
        ca.key = Some(PKey::private_key_from_pem(&key_pem)?);
        // Warm-up, and a clear error if signing cannot run.
        sign_one_per_round_trip(session, &csrs, 2)
            .await
            .map_err(|e| format!("pgssl.sign_csr with the {label} CA: {e}"))?;
        openssl_cli_loop(&ca.dir, 1)?;
        authorities.push(ca);
    }

    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut raw_cpu: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let raw_time = Duration::from_millis(scale.raw_sign_ms);
    for round in 0..scale.rounds {
        eprintln!("  signing, round {}/{}", round + 1, scale.rounds);
        for ca in &authorities {
            let [single, batched, cli, raw, load, floor] = rows_of(ca.label);
            use_ca(session, ca).await?;
            let r = sign_one_per_round_trip(session, &csrs, scale.sign_single).await?;
            samples.entry(single).or_default().push(r);
            let r = sign_batch(session, csrs.len()).await?;
            samples.entry(batched).or_default().push(r);
            let (dir, n) = (ca.dir.clone(), scale.cli_loop);
            let r = tokio::task::spawn_blocking(move || openssl_cli_loop(&dir, n)).await??;
            samples.entry(cli).or_default().push(r);
            let key = ca.key.clone().expect("CA key read");
            let (r, per_cpu) =
                tokio::task::spawn_blocking(move || raw_signature_rate(&key, raw_time)).await??;
            samples.entry(raw).or_default().push(r);
            raw_cpu.entry(ca.label).or_default().push(per_cpu);
            let dir = ca.dir.clone();
            let r = tokio::task::spawn_blocking(move || ca_load_rate(&dir, raw_time)).await??;
            samples.entry(load).or_default().push(r);
            let (key, csr) = (ca.key.clone().expect("CA key read"), csrs[0].clone());
            let r = tokio::task::spawn_blocking(move || check_and_sign_rate(&key, &csr, raw_time))
                .await??;
            samples.entry(floor).or_default().push(r);
        }
    }

    let mut s = Section::new(
        "4. Signing",
        "certificates/s",
        &format!(
            "Both CAs made by `pgssl.init_ca` (EC P-256 signs ECDSA-SHA256, RSA-2048 \
             RSA-SHA256) and selected with `SET pgssl.ca_cert_file / pgssl.ca_key_file`; \
             CSRs for EC P-256 keys; one superuser session over TLS. One per round trip: \
             a prepared `SELECT pgssl.sign_csr($1)`, autocommit (each certificate also \
             recorded in `pgssl.issued_certs`). Batched: `SELECT pgssl.sign_csr(csr) FROM \
             csrs` over {} CSRs in one statement. openssl: the seed document's \
             `openssl x509 -req -in client.csr -text -days 365 -CA ca.crt -CAkey ca.key \
             -CAcreateserial -out client.crt`, one process per certificate, same CA files. \
             Raw signature: the same CA key signing 400 bytes with SHA-256 in this \
             process (openssl crate), the ceiling of any signer. Ratio: against the \
             openssl loop, and the share of the raw signature rate. The last row divides \
             the certificates of the memory loop below by the CPU time the backend \
             used for them (`/proc/<pid>/stat`): when it is close to the wall-clock \
             rate, signing is bound by the backend's own work; next to it, the raw \
             signature per second of this thread's CPU time, so that the two compare \
             without the machine's load. \"CSR signature check + raw signature\" is \
             OpenSSL's check of a CSR's signature (`X509_REQ_verify`, its key decoded \
             once) and one raw signature, in this process: the least any signer that \
             checks proof of possession does per certificate. \"CA files parsed\" is how \
             often this process can parse the CA's two PEM files with OpenSSL: what \
             reading the CA at every call would cost (the extension keeps the CA it \
             loaded until either file changes).",
            csrs.len()
        ),
    );
    for ca in &authorities {
        let names = rows_of(ca.label);
        for name in &names {
            s.rows.push(Row::new(name.as_str(), &samples[name]));
        }
        let [single, batched, cli, raw, _, floor] = names;
        let (cli_rate, raw_rate) = (s.median(&cli), s.median(&raw));
        let floor_rate = s.median(&floor);
        s.row_mut(&floor).ratio = Some(format!(
            "{}× raw signature: the most any signer that checks the CSR can reach",
            fmt_num(floor_rate / raw_rate)
        ));
        for name in [&single, &batched] {
            let mine = s.median(name);
            s.row_mut(name).ratio = Some(format!(
                "{}× openssl CLI; {}× raw signature",
                fmt_num(mine / cli_rate),
                fmt_num(mine / raw_rate)
            ));
        }
        if ca.label == "EC P-256" {
            let rate = s.median(&batched);
            s.row_mut(&batched).targets = vec![
                Target::at_least("≥ 0.25× raw signature", rate / raw_rate, 0.25, "×"),
                Target::at_least("≥ 100× openssl CLI loop", rate / cli_rate, 100.0, "×"),
            ];
            let rate = s.median(&single);
            s.row_mut(&single).targets = vec![Target::at_least(
                "≥ 0.12× raw signature",
                rate / raw_rate,
                0.12,
                "×",
            )];
        }
    }

    // Memory: `scale.memory_signings` signings with the EC CA, in batches.
    let ec = &authorities[0];
    use_ca(session, ec).await?;
    let before = Rss::of_pid(pid)?;
    let batches = scale.memory_signings.div_ceil(scale.csr_batch);
    let (cpu_start, wall_start) = (memory::cpu_seconds(pid)?, Instant::now());
    for _ in 0..batches {
        sign_batch(session, csrs.len()).await?;
    }
    let (cpu, wall) = (
        memory::cpu_seconds(pid)? - cpu_start,
        wall_start.elapsed().as_secs_f64(),
    );
    let after = Rss::of_pid(pid)?;
    let signed = f64::from(batches * scale.csr_batch);
    // Whether signing is bound by the backend's CPU or waits on something:
    // certificates per second of backend CPU time, next to the wall-clock rate.
    let wall_rate = signed / wall;
    let cpu_rate = signed / cpu.max(0.01);
    let raw_per_cpu = crate::report::Stats::of(&raw_cpu["EC P-256"]).median;
    s.rows.push(Row::new(
        "raw signature, per second of CPU time (EC P-256 CA key)",
        &raw_cpu["EC P-256"],
    ));
    s.rows.push(Row {
        ratio: Some(format!(
            "wall-clock rate {}/s over the same loop; {}× the raw signature per CPU second",
            fmt_num(wall_rate),
            fmt_num(cpu_rate / raw_per_cpu)
        )),
        ..Row::new(
            "sign_csr, batched, per second of backend CPU time (EC P-256 CA)",
            &[cpu_rate],
        )
    });
    let growth = Growth {
        what: format!(
            "backend, {} signings (EC P-256 CA)",
            fmt_num(f64::from(batches * scale.csr_batch))
        ),
        before,
        after,
        backend: true,
    };
    Ok((s, growth))
}

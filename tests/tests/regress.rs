//! Expected-output tests of the SQL surface, in the manner of pg_regress:
//! each `regress/sql/NAME.sql` runs through psql as the superuser (echoing
//! every statement, errors with their SQLSTATE) and must print exactly
//! `regress/expected/NAME.out`. Set `PGSSL_REGRESS_UPDATE=1` to rewrite the
//! expected files, then review the diff.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use pgssl_tests::TlsCluster;

fn regress_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regress")
}

/// Runs one script and returns what psql printed, stdout and stderr
/// interleaved as a DBA would see them, without source locations.
fn run_script(cluster: &TlsCluster, script: &Path) -> String {
    let out_path = cluster.dir("regress").join("out.txt");
    let out = fs::File::create(&out_path).unwrap();
    let conninfo = cluster.socket_conninfo("postgres");
    let status =
        pgssl_tests::clean_command(&pgssl_tests::pg_bindir().join("psql"), &cluster.dir("home"))
            .args(["-X", "-a", "-q", "-v", "VERBOSITY=verbose", "-d", &conninfo])
            .stdin(fs::File::open(script).unwrap())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .status()
            .unwrap();
    assert!(status.success(), "psql failed on {}", script.display());
    fs::read_to_string(&out_path)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("LOCATION:"))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn sql_surface_matches_expected_output() {
    let mut scripts: Vec<PathBuf> = fs::read_dir(regress_dir().join("sql"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty());
    let update = std::env::var_os("PGSSL_REGRESS_UPDATE").is_some();
    let mut failures = Vec::new();
    for script in &scripts {
        let cluster = TlsCluster::start();
        let actual = run_script(&cluster, script);
        let name = script.file_stem().unwrap().to_string_lossy().into_owned();
        let expected_path = regress_dir().join("expected").join(format!("{name}.out"));
        if update {
            fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            let actual_path = cluster.dir("keep").join(format!("{name}.out"));
            fs::write(&actual_path, &actual).unwrap();
            let diff = std::process::Command::new("diff")
                .arg("-u")
                .arg(&expected_path)
                .arg(&actual_path)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            failures.push(format!("{name}:\n{diff}"));
        }
    }
    assert!(
        failures.is_empty(),
        "regression output differs:\n{}",
        failures.join("\n")
    );
}

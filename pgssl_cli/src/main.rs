//! The `pgssl` command: `check` shows how a connection is secured, from both ends;
//! `enroll` obtains a client certificate from the database's CA; `setup` turns TLS on for a
//! cluster with certificates from its own CAs, and rotates the server certificate; `report`
//! audits a server's TLS set-up.

mod check;
mod enroll;
mod report;
mod setup;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pgssl_client::{home_dir, is_connection_string, Config};

use enroll::KeyType;

#[derive(Parser)]
#[command(
    name = "pgssl",
    version,
    about = "Check and set up TLS connections to PostgreSQL the way libpq does"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect and show how the connection is secured, as the client and the server see it.
    Check {
        /// A libpq connection string or URI, or a database name (default: environment, then
        /// libpq's defaults, as psql).
        conninfo: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Turn TLS on for a cluster: make the server and client CAs where absent, issue a
    /// server certificate for every --hostname, ALTER SYSTEM the ssl settings, reload, wait
    /// until TLS answers, and write the server CA to --root-cert (a superuser connection).
    Setup {
        /// A libpq connection string or URI, or a database name, for a superuser.
        conninfo: Option<String>,
        /// A DNS name or IP address clients connect by (repeat for each; with --rotate, the
        /// current certificate's names by default).
        #[arg(long = "hostname", value_name = "NAME")]
        hostnames: Vec<String>,
        /// Where to write the server CA certificate: the clients' sslrootcert.
        #[arg(long, value_name = "FILE", default_value = "root.crt")]
        root_cert: PathBuf,
        /// Days the server certificate is valid (default 397).
        #[arg(long)]
        days: Option<i32>,
        /// Replace the server certificate of a cluster that has TLS already, and reload.
        #[arg(long)]
        rotate: bool,
        /// Add TLS-only lines at the top of pg_hba.conf (keeps a backup); run on the database host.
        #[arg(long)]
        edit_hba: bool,
        /// Replace a --root-cert file that holds another certificate.
        #[arg(long)]
        force: bool,
        /// Seconds to wait for TLS to answer after the reload.
        #[arg(long, default_value_t = 10)]
        wait: u64,
    },
    /// Audit the server's TLS set-up (pgssl.check_config) and list who is connected how;
    /// exit status 1 when a check fails.
    Report {
        /// A libpq connection string or URI, or a database name, for a superuser.
        conninfo: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make a key and a CSR for the connecting user, have the server's CA sign it
    /// (pgssl.enroll), and save postgresql.crt and postgresql.key.
    Enroll {
        /// A libpq connection string or URI, or a database name, to connect with (usually a
        /// password login).
        conninfo: Option<String>,
        /// The key to make.
        #[arg(long, value_enum, default_value_t = KeyType::EcP256)]
        key_type: KeyType,
        /// Where to write postgresql.crt and postgresql.key (default ~/.postgresql).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check { conninfo, json } => check::check(conninfo.as_deref(), json).await,
            Command::Enroll {
                conninfo,
                key_type,
                out,
                force,
            } => enroll::enroll(conninfo.as_deref(), key_type, out, force).await,
            Command::Setup {
                conninfo,
                hostnames,
                root_cert,
                days,
                rotate,
                edit_hba,
                force,
                wait,
            } => {
                setup::setup(setup::SetupArgs {
                    conninfo,
                    hostnames,
                    root_cert,
                    days,
                    rotate,
                    edit_hba,
                    force,
                    wait: std::time::Duration::from_secs(wait),
                })
                .await
            }
            Command::Report { conninfo, json } => report::report(conninfo.as_deref(), json).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("pgssl: {message}");
    ExitCode::FAILURE
}

/// psql's reading of its first argument: a connection string, or else a database name.
pub(crate) fn config_from_arg(arg: Option<&str>) -> Result<Config, String> {
    let result = match arg {
        Some(s) if is_connection_string(s) => Config::from_conninfo(s),
        Some(db) => Config::from_pairs(
            [("dbname", db)],
            &|k| std::env::var(k).ok(),
            home_dir().as_deref(),
        ),
        None => Config::from_conninfo(""),
    };
    result.map_err(|e| e.to_string())
}

/// Quotes a value for a libpq connection string when it needs it.
pub(crate) fn conninfo_value(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return v.to_string();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

pub(crate) fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    // An existing file keeps its old mode through open(); set it explicitly.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)?;
    f.write_all(data).map_err(err)
}

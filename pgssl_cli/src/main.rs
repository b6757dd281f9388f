//! The `pgssl` command: `check` shows how a connection is secured, from both ends;
//! `enroll` obtains a client certificate from the database's CA; `setup` turns TLS on for a
//! cluster with certificates from its own CAs, and rotates the server certificate; `renew`
//! replaces the client certificate over a login with it, once or as a daemon; `report`
//! audits a server's TLS set-up; `completions` prints a shell's completion script.

mod check;
mod credentials;
mod enroll;
mod metrics;
mod renew;
mod report;
mod session;
mod setup;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
use pgssl_client::{home_dir, is_connection_string, Config};

use credentials::KeyType;

/// `pgssl --version`: the release, and whose connection-string and sslmode rules it follows
/// (pgssl_client's: libpq 15's, plus the two later options tokio-postgres implements).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (sslmode semantics of libpq 15; load_balance_hosts of libpq 16, sslnegotiation of libpq 17)"
);

#[derive(Parser)]
#[command(
    name = "pgssl",
    version = VERSION,
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
    /// Audit the server's TLS set-up (pgssl.check_config), list who is connected how and
    /// what expires within 30 days (pgssl.expiring), or print metrics (--prometheus);
    /// exit status 1 when a check fails.
    Report {
        /// A libpq connection string or URI, or a database name, for a superuser.
        conninfo: Option<String>,
        /// Print JSON instead of text.
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// Print metrics in the Prometheus text format (for a textfile collector).
        #[arg(long)]
        prometheus: bool,
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
    /// Log in with the current client certificate, have the server's CA sign a CSR for a new
    /// key (pgssl.renew), and replace the certificate and key files; with --daemon, keep
    /// renewing at a fraction of each certificate's lifetime.
    Renew {
        /// A libpq connection string or URI, or a database name, that logs in with the
        /// certificate (sslcert and sslkey, default ~/.postgresql/postgresql.crt and .key):
        /// the files replaced.
        conninfo: Option<String>,
        /// The new key (default: the current key's type, else ec-p256).
        #[arg(long, value_enum)]
        key_type: Option<KeyType>,
        /// Keep running: renew each certificate after --at of its lifetime, plus jitter;
        /// retry failures with backoff; exit (status 1) only once the certificate has expired
        /// without a renewal.
        #[arg(long)]
        daemon: bool,
        /// The fraction of the lifetime (notBefore to notAfter) after which to renew, as
        /// 0.75 or 2/3.
        #[arg(long, value_name = "FRACTION", default_value = "2/3", value_parser = renew::parse_fraction)]
        at: f64,
        /// A shell command to run after each renewal (e.g. to signal a service); PGSSL_CERT
        /// and PGSSL_KEY name the files.
        #[arg(long, value_name = "CMD")]
        exec: Option<String>,
    },
    /// Print the completion script for a shell (e.g. `pgssl completions bash >
    /// /etc/bash_completion.d/pgssl`).
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print the manual page (roff), as packages install it.
    #[command(hide = true)]
    Manpage,
}

fn main() -> ExitCode {
    let command = match Cli::parse().command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "pgssl", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Manpage => {
            return match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("cannot write the manual page: {e}")),
            };
        }
        command => command,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// The commands that talk to a server.
async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Check { conninfo, json } => check::check(conninfo.as_deref(), json).await,
        Command::Enroll {
            conninfo,
            key_type,
            out,
            force,
        } => enroll::enroll(conninfo.as_deref(), key_type, out, force).await,
        Command::Renew {
            conninfo,
            key_type,
            daemon,
            at,
            exec,
        } => {
            renew::renew(renew::RenewArgs {
                conninfo,
                key_type,
                daemon,
                at,
                exec,
            })
            .await
        }
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
        Command::Report {
            conninfo,
            json,
            prometheus,
        } => {
            let format = match (json, prometheus) {
                (_, true) => report::Format::Prometheus,
                (true, false) => report::Format::Json,
                (false, false) => report::Format::Text,
            };
            report::report(conninfo.as_deref(), format).await
        }
        Command::Completions { .. } | Command::Manpage => Ok(()),
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

/// Writes `path` in full under a random name in its folder, then renames it into place: a
/// rename replaces a symbolic link at `path` rather than writing through it, and a failed
/// write leaves the old file as it was.
pub(crate) fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".pgssl-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(err)?;
    // The mode is set again past the umask.
    file.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(data))
        .and_then(|()| file.as_file().sync_all())
        .map_err(err)?;
    file.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

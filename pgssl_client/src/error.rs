//! The one error type of pgssl_client.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a connection string was refused or a connection failed. Each variant names the check
/// that failed and, where there is one, what was expected and what was presented.
///
/// ```
/// use pgssl_client::{Config, Error};
///
/// match Config::from_conninfo_with_env("host=db sslmode=verify-all", &|_| None, None) {
///     Err(Error::InvalidValue { key, value, .. }) => {
///         assert_eq!((key.as_str(), value.as_str()), ("sslmode", "verify-all"));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The connection string is malformed (libpq's own wording is in `message`).
    Syntax {
        /// What is wrong, in libpq's words.
        message: String,
    },
    /// A key that libpq does not know (`invalid connection option`).
    UnknownOption {
        /// The key as written.
        key: String,
    },
    /// A value libpq would refuse for its key.
    InvalidValue {
        /// The key.
        key: String,
        /// The value presented.
        value: String,
        /// What libpq accepts there.
        expected: String,
    },
    /// A libpq option or value that pgssl does not implement, refused rather than ignored.
    Unsupported {
        /// The key.
        key: String,
        /// The value presented.
        value: String,
        /// Why it is not supported.
        reason: String,
    },
    /// A file named by the options (or its `~/.postgresql` default) cannot be used.
    File {
        /// Which file: "root certificate", "certificate", "private key", "CRL".
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// `verify-ca`/`verify-full` without a root certificate file to verify against.
    NoRootCertificate {
        /// The path that was looked for (`None` when there is no home directory).
        path: Option<PathBuf>,
        /// The sslmode that needs it.
        sslmode: &'static str,
    },
    /// A private key file readable by group or others (libpq's permission rule).
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its mode bits.
        presented_mode: u32,
        /// Whether it is owned by root (then up to 0640 is accepted, else up to 0600).
        root_owned: bool,
    },
    /// A client certificate file exists but its private key file does not.
    MissingKey {
        /// The certificate file.
        cert: PathBuf,
        /// The key file that is missing.
        key: PathBuf,
    },
    /// The client certificate and private key are not a pair.
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The server certificate chain failed OpenSSL's verification against the root
    /// certificates (untrusted issuer, expired, not yet valid, revoked, ...).
    UntrustedServerCertificate {
        /// The subject of the certificate that failed.
        subject: String,
        /// Its position in the chain (0 = the server's own certificate).
        depth: u32,
        /// OpenSSL's reason.
        reason: String,
    },
    /// `verify-full`: the host name is not among the certificate's names.
    HostNameMismatch {
        /// The host name connected to.
        expected: String,
        /// The names the certificate presents (DNS and IP SANs, else the CN), in order.
        presented: Vec<String>,
    },
    /// `verify-full`: the certificate carries a name libpq refuses outright (embedded NUL,
    /// IP address of a bad length).
    BadCertificateName {
        /// What is wrong with it.
        reason: String,
    },
    /// `sslmode` requires TLS but the server answered the TLS request with "no".
    ServerRefusedTls {
        /// The sslmode in force.
        sslmode: &'static str,
    },
    /// SCRAM channel binding was wanted (`channel_binding` prefer or require, the server
    /// offering SCRAM-SHA-256-PLUS) but the server certificate's signature algorithm has no
    /// hash for `tls-server-end-point` (Ed25519, Ed448, RSA-PSS): libpq refuses the
    /// connection ("could not find digest for NID UNDEF") rather than authenticate unbound.
    ChannelBindingUnavailable {
        /// The server certificate's signature algorithm.
        signature_algorithm: String,
    },
    /// The TLS handshake failed for a reason other than the certificate checks above.
    Tls {
        /// rustls' description.
        reason: String,
    },
    /// `require_auth`: the server asked for a method the list does not allow, or let the
    /// client in without completing one it requires (libpq checks before answering).
    AuthRequirement {
        /// The `require_auth` value.
        required: String,
        /// What the server did instead.
        presented: String,
    },
    /// `sslcertmode=require`: the server did not ask for a client certificate, or the client
    /// had none to send.
    CertificateNotExchanged {
        /// What happened, in libpq's words.
        reason: &'static str,
    },
    /// The server or the connection failed after TLS was settled (authentication,
    /// unknown database, network error, ...).
    Postgres {
        /// The endpoint tried ("host:port" or the socket path).
        endpoint: String,
        /// tokio-postgres' error.
        source: Arc<tokio_postgres::Error>,
    },
    /// Every host in the list failed; one error per host, in order.
    AllHostsFailed(Vec<Error>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Syntax { message } => f.write_str(message),
            Error::UnknownOption { key } => write!(f, "invalid connection option \"{key}\""),
            Error::InvalidValue { key, value, expected } => {
                write!(f, "invalid {key} value: \"{value}\" (expected {expected})")
            }
            Error::Unsupported { key, value, reason } => {
                write!(f, "{key}=\"{value}\" is not supported: {reason}")
            }
            Error::File { what, path, reason } => {
                write!(f, "{what} file \"{}\": {reason}", path.display())
            }
            Error::NoRootCertificate { path: Some(p), sslmode } => write!(
                f,
                "root certificate file \"{}\" does not exist; sslmode={sslmode} needs it \
                 (provide the file or choose an sslmode that does not verify the server)",
                p.display()
            ),
            Error::NoRootCertificate { path: None, sslmode } => write!(
                f,
                "could not get home directory to locate root certificate file; sslmode={sslmode} needs one"
            ),
            Error::KeyPermissions { path, presented_mode, root_owned } => write!(
                f,
                "private key file \"{}\" has group or world access (mode {:04o}); expected {} ",
                path.display(),
                presented_mode & 0o7777,
                if *root_owned { "u=rw,g=r (0640) or less for a root-owned file" } else { "u=rw (0600) or less" }
            ),
            Error::MissingKey { cert, key } => write!(
                f,
                "certificate present (\"{}\"), but not private key file \"{}\"",
                cert.display(),
                key.display()
            ),
            Error::KeyMismatch { cert, key } => write!(
                f,
                "certificate \"{}\" does not match private key file \"{}\"",
                cert.display(),
                key.display()
            ),
            Error::UntrustedServerCertificate { subject, depth, reason } => write!(
                f,
                "server certificate verification failed at depth {depth} ({subject}): {reason}"
            ),
            Error::HostNameMismatch { expected, presented } => match presented.as_slice() {
                [] => write!(f, "could not get server's host name from server certificate (expected \"{expected}\")"),
                [one] => write!(f, "server certificate for \"{one}\" does not match host name \"{expected}\""),
                names => write!(
                    f,
                    "server certificate for \"{}\" (names: {}) does not match host name \"{expected}\"",
                    names[0],
                    names.join(", ")
                ),
            },
            Error::BadCertificateName { reason } => write!(f, "server certificate name rejected: {reason}"),
            Error::ServerRefusedTls { sslmode } => {
                write!(f, "server does not support SSL, but SSL was required (sslmode={sslmode})")
            }
            Error::ChannelBindingUnavailable { signature_algorithm } => write!(
                f,
                "channel binding: could not find digest for the server certificate's signature \
                 algorithm {signature_algorithm}, so tls-server-end-point cannot be computed \
                 (libpq refuses too; channel_binding=disable authenticates without it)"
            ),
            Error::Tls { reason } => write!(f, "TLS handshake failed: {reason}"),
            Error::AuthRequirement { required, presented } => {
                write!(f, "authentication method requirement \"{required}\" failed: {presented}")
            }
            Error::CertificateNotExchanged { reason } => {
                write!(f, "{reason} (sslcertmode=require)")
            }
            Error::Postgres { endpoint, source } => {
                // tokio-postgres' Display names only the kind ("db error"); the reason is in
                // its sources.
                write!(f, "connection to server at {endpoint} failed: {source}")?;
                let mut cause = std::error::Error::source(&**source);
                while let Some(c) = cause {
                    write!(f, ": {c}")?;
                    cause = c.source();
                }
                Ok(())
            }
            Error::AllHostsFailed(errors) => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Postgres { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

impl Error {
    /// The server's SQLSTATE and message, when the server itself sent the error.
    ///
    /// ```no_run
    /// # async fn run() {
    /// if let Err(e) = pgssl_client::connect("host=db user=mallory sslmode=verify-full").await {
    ///     match e.as_db_error() {
    ///         // 28000 invalid_authorization_specification: no pg_hba.conf line let us in.
    ///         Some(db) if db.code().code() == "28000" => eprintln!("refused: {}", db.message()),
    ///         _ => eprintln!("{e}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn as_db_error(&self) -> Option<&tokio_postgres::error::DbError> {
        match self {
            Error::Postgres { source, .. } => source.as_db_error(),
            Error::AllHostsFailed(v) => v.iter().find_map(Error::as_db_error),
            _ => None,
        }
    }
}

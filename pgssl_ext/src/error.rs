//! Every error pgssl raises in SQL, each kind with its one SQLSTATE.
//!
//! Internal code returns `Result<_, PgsslError>`; SQL functions return
//! `Result<_, ErrorReport>` and turn a `PgsslError` into an `ErrorReport`
//! with `?` (pgrx keeps the SQLSTATE only for an `ErrorReport` returned as
//! the error). The background worker logs the same errors and carries on.
//! docs/reference.md lists the table.

use std::fmt;
use std::path::PathBuf;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgSqlErrorCode;

use crate::ca::authority::{CaError, CaRole};
use crate::ca::csr::CsrError;
use crate::ca::revocation::BadSerial;
use crate::server::profile::HostError;

/// An error reported to the SQL caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PgsslError {
    /// A DN field name that is neither a known attribute nor a dotted OID (22023).
    UnknownField {
        /// The name as given.
        field: String,
    },
    /// A certificate signing request the CA policy refuses (22023).
    Csr(CsrError),
    /// An argument out of range or unknown: days, key type, reason, serial,
    /// a CA common name (22023).
    InvalidArgument {
        /// What is wrong, with what was presented.
        message: String,
        /// What is accepted.
        hint: Option<String>,
    },
    /// `enroll`, `renew`: the CSR's common name is not the session user (42501).
    NotYourName {
        /// The function, e.g. `pgssl.enroll()`.
        function: &'static str,
        /// The CN in the CSR.
        presented: String,
        /// The session user it must equal.
        expected: String,
    },
    /// `enroll`, `renew`: the session user's `VALID UNTIL` has passed (28000). Before it,
    /// the certificate's `notAfter` is clipped to it instead.
    RoleExpired {
        /// The function, e.g. `pgssl.enroll()`.
        function: &'static str,
        /// The role.
        role: String,
        /// Its VALID UNTIL, as PostgreSQL shows it.
        valid_until: String,
    },
    /// `renew`: the session is not authenticated with a current certificate from the pgssl
    /// CA (42501).
    RenewRefused {
        /// Why, with what was presented.
        reason: String,
    },
    /// A NULL where a value is needed (22004).
    NullArgument {
        /// The function, e.g. `pgssl.renew()`.
        function: &'static str,
        /// The argument.
        argument: &'static str,
    },
    /// A superuser-only function called by another role (42501).
    SuperuserOnly {
        /// The function, e.g. `pgssl.init_ca()`.
        function: &'static str,
    },
    /// A CA is missing, unreadable, mismatched or already there, or its key
    /// is encrypted and no passphrase command is set (55000); the passphrase
    /// command failed (58000); its passphrase does not decrypt the key (28P01).
    Ca {
        /// Which CA.
        role: CaRole,
        /// What is wrong with it; never [`CaError::Write`], which becomes
        /// [`PgsslError::FileWrite`].
        error: CaError,
    },
    /// A CA certificate has expired, so it cannot issue (55000).
    CaExpired {
        /// Which CA.
        role: CaRole,
    },
    /// `install_crl` with `ssl_crl_file` unset (55000).
    CrlFileNotSet,
    /// The database still has an older release's SQL objects than the
    /// library needs for this (55000).
    ExtensionNotUpdated {
        /// What needs the update, e.g. "recording server certificates".
        needs: &'static str,
    },
    /// Writing a file failed: a CA file, a server key or certificate, the
    /// CRL (58030).
    FileWrite {
        /// What was being written, e.g. "CRL" or "server CA".
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A file pgssl makes under a new name is already there (58P02).
    FileExists {
        /// What was to be written, e.g. "server certificate".
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A function that writes, called on a standby or in a read-only
    /// transaction (25006).
    ReadOnly {
        /// The function, e.g. `pgssl.sign_csr()`.
        function: &'static str,
        /// Whether the server is a standby (in recovery).
        in_recovery: bool,
    },
    /// OpenSSL or SPI failed while making a key, certificate or CRL, or
    /// while recording it (XX000): not the caller's fault.
    Internal {
        /// What was being done.
        doing: &'static str,
        /// OpenSSL's error text.
        reason: String,
    },
    /// A file the server's TLS settings name cannot be read or holds no
    /// certificate (58P01 when missing, 58030 on other I/O errors, F0000 when
    /// its contents are not what the setting needs).
    ServerFile {
        /// The file, resolved against the data directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
        /// How it went wrong.
        kind: FileProblem,
    },
}

/// How reading a configured file failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileProblem {
    /// It does not exist.
    Missing,
    /// It exists but could not be read.
    Unreadable,
    /// It was read, but its contents are unusable.
    BadContents,
}

impl PgsslError {
    /// The SQLSTATE.
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            Self::UnknownField { .. } | Self::Csr(_) | Self::InvalidArgument { .. } => {
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
            }
            Self::RoleExpired { .. } => PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            Self::NotYourName { .. } | Self::SuperuserOnly { .. } | Self::RenewRefused { .. } => {
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE
            }
            Self::Ca {
                error: CaError::PassphraseCommand { .. },
                ..
            } => PgSqlErrorCode::ERRCODE_SYSTEM_ERROR,
            Self::Ca {
                error: CaError::WrongPassphrase { .. },
                ..
            } => PgSqlErrorCode::ERRCODE_INVALID_PASSWORD,
            Self::NullArgument { .. } => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            Self::Ca { .. }
            | Self::CaExpired { .. }
            | Self::CrlFileNotSet
            | Self::ExtensionNotUpdated { .. } => {
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            Self::FileWrite { .. } => PgSqlErrorCode::ERRCODE_IO_ERROR,
            Self::FileExists { .. } => PgSqlErrorCode::ERRCODE_DUPLICATE_FILE,
            Self::ReadOnly { .. } => PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            Self::Internal { .. } => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            Self::ServerFile {
                kind: FileProblem::Missing,
                ..
            } => PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
            Self::ServerFile {
                kind: FileProblem::Unreadable,
                ..
            } => PgSqlErrorCode::ERRCODE_IO_ERROR,
            Self::ServerFile {
                kind: FileProblem::BadContents,
                ..
            } => PgSqlErrorCode::ERRCODE_CONFIG_FILE_ERROR,
        }
    }

    /// The primary message.
    pub fn message(&self) -> String {
        match self {
            Self::UnknownField { field } => format!("unknown X.509 name field \"{field}\""),
            Self::Csr(e) => e.to_string(),
            Self::InvalidArgument { message, .. } => message.clone(),
            Self::NotYourName {
                presented,
                expected,
                ..
            } => format!(
                "certificate signing request is for common name {presented:?}, \
                 but you are connected as {expected:?}"
            ),
            Self::SuperuserOnly { function } => {
                format!("permission denied: {function} is for superusers only")
            }
            Self::RoleExpired {
                function,
                role,
                valid_until,
            } => format!(
                "role {role:?} is past its VALID UNTIL ({valid_until}): \
                 {function} issues no certificate to it"
            ),
            Self::RenewRefused { reason } => format!("pgssl.renew() refused: {reason}"),
            Self::NullArgument { function, argument } => {
                format!("{argument} must not be NULL in {function}")
            }
            Self::Ca { role, error } => error.message(*role),
            Self::CaExpired { role } => {
                format!("the pgssl {} certificate has expired", role.label())
            }
            Self::CrlFileNotSet => "ssl_crl_file is not set".into(),
            Self::ExtensionNotUpdated { needs } => {
                format!("{needs} needs a newer version of the pgssl extension in this database")
            }
            Self::FileWrite { what, path, reason } => format!(
                "could not write {what} file \"{}\": {reason}",
                path.display()
            ),
            Self::FileExists { what, path } => format!(
                "will not overwrite {what} file \"{}\": it already exists",
                path.display()
            ),
            Self::ReadOnly {
                function,
                in_recovery: true,
            } => format!("cannot execute {function} during recovery"),
            Self::ReadOnly { function, .. } => {
                format!("cannot execute {function} in a read-only transaction")
            }
            Self::Internal { doing, reason } => format!("internal error while {doing}: {reason}"),
            Self::ServerFile { path, reason, .. } => {
                format!(
                    "could not use server certificate file \"{}\": {reason}",
                    path.display()
                )
            }
        }
    }

    /// A hint saying what to do instead, if any.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::UnknownField { .. } => Some(
                "Use a short or long attribute name such as CN, commonName, O, OU, C, emailAddress, \
                 or a dotted OID such as 2.5.4.3."
                    .into(),
            ),
            Self::Csr(e) => e.hint().map(Into::into),
            Self::InvalidArgument { hint, .. } => hint.clone(),
            Self::NotYourName { function, .. } => Some(format!(
                "{function} signs only for the session user; an administrator can use \
                 pgssl.sign_csr() for any name."
            )),
            Self::RenewRefused { .. } => Some(
                "pgssl.renew() renews the certificate a session logged in with (pg_hba.conf \
                 method cert) while it is current and from the pgssl CA; otherwise log in with a \
                 password and use pgssl.enroll()."
                    .into(),
            ),
            Self::NullArgument { .. } => None,
            Self::SuperuserOnly { .. } => None,
            Self::RoleExpired { function, .. } => Some(format!(
                "An administrator can extend the role with ALTER ROLE ... VALID UNTIL; \
                 certificates from {function} never outlive it."
            )),
            Self::Ca { role, error } => error.hint(*role),
            Self::CaExpired {
                role: CaRole::Client,
            } => Some(
                "Make a new CA (move the old files away, then pgssl.init_ca()) and reissue.".into(),
            ),
            Self::CaExpired {
                role: CaRole::Server,
            } => Some(
                "Move pgssl.server_ca_cert_file and pgssl.server_ca_key_file away; the next \
                 pgssl.issue_server_cert() makes a new server CA."
                    .into(),
            ),
            Self::CrlFileNotSet => Some(
                "Set it first, e.g. ALTER SYSTEM SET ssl_crl_file = 'pgssl.crl'; \
                 pgssl.install_crl() then writes that file and reloads."
                    .into(),
            ),
            Self::ExtensionNotUpdated { .. } => Some("Run ALTER EXTENSION pgssl UPDATE.".into()),
            Self::FileWrite { .. } | Self::Internal { .. } => None,
            Self::FileExists { .. } => Some("Call the function again; it picks a new name.".into()),
            Self::ReadOnly {
                in_recovery: true, ..
            } => Some("The CA signs and records on the primary server.".into()),
            Self::ReadOnly { .. } => None,
            Self::ServerFile { .. } => Some("Check ssl_cert_file: it names a PEM file relative to the data directory.".into()),
        }
    }

    /// A CA problem of `role`; a failed write becomes [`Self::FileWrite`].
    pub fn ca(role: CaRole, error: CaError) -> Self {
        match error {
            CaError::Write { path, reason } => Self::FileWrite {
                what: role.label(),
                path,
                reason,
            },
            error => Self::Ca { role, error },
        }
    }

    /// `InvalidArgument` without a hint.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            message: message.into(),
            hint: None,
        }
    }
}

/// `map_err(internal("doing what"))`: OpenSSL or SPI failed, not the caller.
pub fn internal<E: fmt::Display>(doing: &'static str) -> impl FnOnce(E) -> PgsslError {
    move |e| PgsslError::Internal {
        doing,
        reason: e.to_string(),
    }
}

impl fmt::Display for PgsslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for PgsslError {}

impl From<CsrError> for PgsslError {
    fn from(e: CsrError) -> Self {
        Self::Csr(e)
    }
}

impl From<BadSerial> for PgsslError {
    fn from(e: BadSerial) -> Self {
        Self::invalid(e.to_string())
    }
}

impl From<HostError> for PgsslError {
    fn from(e: HostError) -> Self {
        Self::InvalidArgument {
            message: e.to_string(),
            hint: Some(
                "Name every DNS name and IP address clients use to reach this server.".into(),
            ),
        }
    }
}

impl From<PgsslError> for ErrorReport {
    fn from(e: PgsslError) -> Self {
        let report = ErrorReport::new(e.sqlstate(), e.message(), "pgssl");
        match e.hint() {
            Some(hint) => report.set_hint(hint),
            None => report,
        }
    }
}

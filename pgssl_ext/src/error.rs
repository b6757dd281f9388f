//! Every error pgssl raises in SQL, each with its SQLSTATE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

use crate::ca::authority::CaError;
use crate::ca::policy::CsrError;

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
    /// `enroll`: the CSR's common name is not the session user (42501).
    NotYourName {
        /// The CN in the CSR.
        presented: String,
        /// The session user it must equal.
        expected: String,
    },
    /// A superuser-only function called by another role (42501).
    SuperuserOnly {
        /// The function, e.g. `pgssl.init_ca()`.
        function: &'static str,
    },
    /// The CA is missing, unreadable, mismatched or already there (55000),
    /// or one of its files could not be written (58030).
    Ca(CaError),
    /// The CA certificate has expired, so it cannot issue (55000).
    CaExpired,
    /// `install_crl` with `ssl_crl_file` unset (55000).
    CrlFileNotSet,
    /// Writing the CRL file failed (58030).
    CrlWrite {
        /// The path.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// A function that writes, called on a standby or in a read-only
    /// transaction (25006).
    ReadOnly {
        /// The function, e.g. `pgssl.sign_csr()`.
        function: &'static str,
        /// Whether the server is a standby (in recovery).
        in_recovery: bool,
    },
    /// `revoke`: no certificate with this serial in the registry (P0002).
    UnknownSerial {
        /// The serial, normalised.
        serial: String,
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
        path: std::path::PathBuf,
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
            Self::NotYourName { .. } | Self::SuperuserOnly { .. } => {
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE
            }
            Self::Ca(CaError::Write { .. }) | Self::CrlWrite { .. } => {
                PgSqlErrorCode::ERRCODE_IO_ERROR
            }
            Self::Ca(_) | Self::CaExpired | Self::CrlFileNotSet => {
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            Self::UnknownSerial { .. } => PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
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
            } => format!(
                "certificate signing request is for common name {presented:?}, \
                 but you are connected as {expected:?}"
            ),
            Self::SuperuserOnly { function } => {
                format!("permission denied: {function} is for superusers only")
            }
            Self::Ca(e) => e.to_string(),
            Self::CaExpired => "the pgssl CA certificate has expired".into(),
            Self::CrlFileNotSet => "ssl_crl_file is not set".into(),
            Self::CrlWrite { path, reason } => {
                format!("could not write CRL file \"{path}\": {reason}")
            }
            Self::ReadOnly {
                function,
                in_recovery: true,
            } => format!("cannot execute {function} during recovery"),
            Self::ReadOnly { function, .. } => {
                format!("cannot execute {function} in a read-only transaction")
            }
            Self::UnknownSerial { serial } => {
                format!("no certificate with serial {serial} in pgssl.issued_certs")
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
            Self::NotYourName { .. } => Some(
                "pgssl.enroll() signs only for the session user; an administrator can use \
                 pgssl.sign_csr() for any name."
                    .into(),
            ),
            Self::SuperuserOnly { .. } => None,
            Self::Ca(e) => e.hint().map(Into::into),
            Self::CaExpired => Some(
                "Make a new CA (move the old files away, then pgssl.init_ca()) and reissue.".into(),
            ),
            Self::CrlFileNotSet => Some(
                "Set it first, e.g. ALTER SYSTEM SET ssl_crl_file = 'pgssl.crl'; \
                 pgssl.install_crl() then writes that file and reloads."
                    .into(),
            ),
            Self::CrlWrite { .. } | Self::Internal { .. } => None,
            Self::ReadOnly {
                in_recovery: true, ..
            } => Some("The CA signs and records on the primary server.".into()),
            Self::ReadOnly { .. } => None,
            Self::UnknownSerial { .. } => Some(
                "Serials are hex, as in pgssl.issued_certs.serial or openssl x509 -serial.".into(),
            ),
            Self::ServerFile { .. } => Some("Check ssl_cert_file: it names a PEM file relative to the data directory.".into()),
        }
    }

    /// Raises the error in the backend; the current transaction aborts.
    pub fn report(self) -> ! {
        let mut report = ErrorReport::new(self.sqlstate(), self.message(), "pgssl");
        if let Some(hint) = self.hint() {
            report = report.set_hint(hint);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }
}

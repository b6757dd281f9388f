//! Every error pgssl raises in SQL, each with its SQLSTATE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// An error reported to the SQL caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PgsslError {
    /// A DN field name that is neither a known attribute nor a dotted OID (22023).
    UnknownField {
        /// The name as given.
        field: String,
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
            Self::UnknownField { .. } => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
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

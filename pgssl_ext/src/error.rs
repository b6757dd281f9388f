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
}

impl PgsslError {
    /// The SQLSTATE.
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            Self::UnknownField { .. } => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        }
    }

    /// The primary message.
    pub fn message(&self) -> String {
        match self {
            Self::UnknownField { field } => format!("unknown X.509 name field \"{field}\""),
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

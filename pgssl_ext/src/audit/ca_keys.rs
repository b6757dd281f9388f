//! The `ca_key_protection` check of `pgssl.check_config()`: can a role that
//! is not a superuser read a CA private key, which would let it sign a
//! certificate for any role, superusers included?
//!
//! A role counts when it can log in and is not a superuser, and has one of
//! these itself, through inherited membership, or through a role it may
//! `SET ROLE` to (any role it is a member of):
//! - membership of `pg_read_server_files` (`COPY ... FROM` any file the
//!   server can read) or `pg_execute_server_program` (`COPY ... FROM
//!   PROGRAM`): any key file;
//! - `EXECUTE` on server-side `lo_import` (any overload): any key file;
//! - `EXECUTE` on `pg_read_file` or `pg_read_binary_file` (any overload):
//!   a key in the data directory (outside it, these need
//!   `pg_read_server_files` as well);
//! - the `REPLICATION` attribute (its own, as replication connections do not
//!   inherit it): a key in the data directory, which a base backup copies.
//!
//! An encrypted key gives nothing away to such a role, and is `ok` when
//! `pgssl.ca_key_passphrase_command` is set. [`gather`] reads the catalogs
//! and files; [`evaluate`] is pure.

use std::path::{Component, Path, PathBuf};

use pgrx::prelude::*;

use super::checks::{Finding, Status};
use crate::backend::data_directory;
use crate::ca::key_file::is_encrypted_pem;
use crate::gucs;

/// What is known about one CA key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaKeyFacts {
    /// "client CA" or "server CA".
    pub label: &'static str,
    /// The setting naming the file.
    pub setting: &'static str,
    /// Its resolved path.
    pub path: String,
    /// Whether it holds an encrypted key, or why it could not be read.
    pub encrypted: Result<bool, String>,
    /// Whether it lies in the data directory (by its path or by where a
    /// symbolic link leads).
    pub in_data_directory: bool,
}

/// A login role that is not a superuser and can read server files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// The role.
    pub role: String,
    /// How, e.g. `member of pg_read_server_files`.
    pub how: String,
    /// Whether it reaches files anywhere (`true`) or only in the data directory.
    pub anywhere: bool,
}

/// Everything the check looks at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaKeyAudit {
    /// The CA key files that exist.
    pub keys: Vec<CaKeyFacts>,
    /// `pgssl.ca_key_passphrase_command` is set.
    pub command_set: bool,
    /// Roles that can read server files, and how.
    pub readers: Vec<Reader>,
}

const CHECK: &str = "ca_key_protection";

/// One row per CA key file that exists.
pub fn evaluate(audit: &CaKeyAudit) -> Vec<Finding> {
    audit
        .keys
        .iter()
        .map(|key| evaluate_key(audit, key))
        .collect()
}

fn evaluate_key(audit: &CaKeyAudit, key: &CaKeyFacts) -> Finding {
    let (status, detail) = match &key.encrypted {
        Err(why) => (
            Status::Warn,
            format!("could not read the {} private key {}: {why}", key.label, key.path),
        ),
        Ok(true) if audit.command_set => (
            Status::Ok,
            format!(
                "the {} private key {} is encrypted; pgssl.ca_key_passphrase_command gives its passphrase",
                key.label, key.path
            ),
        ),
        Ok(true) => (
            Status::Warn,
            format!(
                "the {} private key {} is encrypted, but pgssl.ca_key_passphrase_command is not set: the CA cannot \
                 sign certificates or CRLs. Set it in postgresql.conf and reload.",
                key.label, key.path
            ),
        ),
        Ok(false) => unencrypted(audit, key),
    };
    Finding {
        check: CHECK,
        status,
        detail,
    }
}

fn unencrypted(audit: &CaKeyAudit, key: &CaKeyFacts) -> (Status, String) {
    let readers: Vec<String> = audit
        .readers
        .iter()
        .filter(|r| r.anywhere || key.in_data_directory)
        .map(|r| format!("{} ({})", r.role, r.how))
        .collect();
    let encrypt = "Encrypt it and set pgssl.ca_key_passphrase_command (see docs/ca.md)";
    if !readers.is_empty() {
        return (
            Status::Fail,
            format!(
                "the {} private key {} ({}) is not encrypted, and roles that are not superusers can read it: {}. \
                 With it they can sign a certificate for any role, superusers included. {encrypt}, \
                 or take those rights away.",
                key.label,
                key.path,
                key.setting,
                readers.join(", ")
            ),
        );
    }
    if key.in_data_directory {
        return (
            Status::Warn,
            format!(
                "the {} private key {} ({}) is not encrypted and lies in the data directory: a base backup or copy of \
                 the data directory gives it away, as would a later grant of pg_read_server_files, pg_read_file or \
                 REPLICATION. {encrypt}.",
                key.label, key.path, key.setting
            ),
        );
    }
    (
        Status::Ok,
        format!(
            "the {} private key {} is not encrypted, but lies outside the data directory and no role that is not a \
             superuser can read server files",
            key.label, key.path
        ),
    )
}

/// `path` without `.` and `..` components, as far as it can be told without
/// following links.
fn lexically_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether `path` is in `dir`: by its own name (what `pg_read_file` takes,
/// following any link), or where it really is (what a base backup copies).
fn inside(path: &Path, dir: &Path) -> bool {
    if lexically_normal(path).starts_with(lexically_normal(dir)) {
        return true;
    }
    match (path.canonicalize(), dir.canonicalize()) {
        (Ok(path), Ok(dir)) => path.starts_with(dir),
        _ => false,
    }
}

fn key_facts(label: &'static str, setting: &'static str, path: PathBuf) -> Option<CaKeyFacts> {
    let encrypted = match std::fs::read(&path) {
        Ok(pem) => Ok(is_encrypted_pem(&zeroize::Zeroizing::new(pem))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => Err(e.to_string()),
    };
    Some(CaKeyFacts {
        label,
        setting,
        in_data_directory: inside(&path, &data_directory()),
        path: path.display().to_string(),
        encrypted,
    })
}

/// The login roles, not superusers, that can read server files, and how.
const READERS: &str = "
WITH logins AS (
    SELECT oid, rolname FROM pg_catalog.pg_roles WHERE rolcanlogin AND NOT rolsuper
)
SELECT DISTINCT rolname::text, how, anywhere FROM (
    SELECT l.rolname, 'member of ' || g.rolname AS how, true AS anywhere
      FROM logins l, pg_catalog.pg_roles g
     WHERE g.rolname IN ('pg_read_server_files', 'pg_execute_server_program')
       AND pg_catalog.pg_has_role(l.oid, g.oid, 'MEMBER')
    UNION ALL
    SELECT l.rolname, 'EXECUTE on ' || p.oid::pg_catalog.regprocedure::text, p.proname = 'lo_import'
      FROM logins l, pg_catalog.pg_proc p, pg_catalog.pg_roles r
     WHERE p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
       AND p.proname IN ('pg_read_file', 'pg_read_binary_file', 'lo_import')
       AND NOT r.rolsuper
       AND pg_catalog.pg_has_role(l.oid, r.oid, 'MEMBER')
       AND pg_catalog.has_function_privilege(r.oid, p.oid, 'EXECUTE')
    UNION ALL
    SELECT rolname, 'REPLICATION: a base backup copies the data directory', false
      FROM pg_catalog.pg_roles WHERE rolcanlogin AND rolreplication AND NOT rolsuper
) AS r
ORDER BY 1, 2";

fn readers() -> Result<Vec<Reader>, pgrx::spi::Error> {
    Spi::connect(|client| {
        let mut out = Vec::new();
        for row in client.select(READERS, None, &[])? {
            out.push(Reader {
                role: row.get::<String>(1)?.unwrap_or_default(),
                how: row.get::<String>(2)?.unwrap_or_default(),
                anywhere: row.get::<bool>(3)?.unwrap_or(true),
            });
        }
        Ok(out)
    })
}

/// Reads the two CA key files and the roles that can read server files.
pub fn gather() -> CaKeyAudit {
    let keys: Vec<CaKeyFacts> = [
        ("client CA", "pgssl.ca_key_file", gucs::ca_key_file()),
        (
            "server CA",
            "pgssl.server_ca_key_file",
            gucs::server_ca_key_file(),
        ),
    ]
    .into_iter()
    .filter_map(|(label, setting, path)| key_facts(label, setting, path))
    .collect();
    let readers = if keys.is_empty() {
        Vec::new()
    } else {
        readers().unwrap_or_else(|e| {
            vec![Reader {
                role: "(unknown)".into(),
                how: format!("the roles could not be read: {e}"),
                anywhere: true,
            }]
        })
    };
    CaKeyAudit {
        keys,
        command_set: gucs::ca_key_passphrase_command().is_some(),
        readers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(encrypted: Result<bool, String>, in_data_directory: bool) -> CaKeyFacts {
        CaKeyFacts {
            label: "client CA",
            setting: "pgssl.ca_key_file",
            path: "/data/pgssl_ca.key".into(),
            encrypted,
            in_data_directory,
        }
    }

    fn reader(role: &str, how: &str, anywhere: bool) -> Reader {
        Reader {
            role: role.into(),
            how: how.into(),
            anywhere,
        }
    }

    fn one(audit: &CaKeyAudit) -> Finding {
        let mut rows = evaluate(audit);
        assert_eq!(rows.len(), 1);
        rows.remove(0)
    }

    #[test]
    fn an_unencrypted_key_fails_when_others_can_read_it() {
        let mut audit = CaKeyAudit {
            keys: vec![key(Ok(false), true)],
            command_set: false,
            readers: vec![
                reader("alice", "member of pg_read_server_files", true),
                reader(
                    "rep",
                    "REPLICATION: a base backup copies the data directory",
                    false,
                ),
            ],
        };
        let row = one(&audit);
        assert_eq!(row.status, Status::Fail);
        assert!(row
            .detail
            .contains("alice (member of pg_read_server_files)"));
        assert!(row.detail.contains("rep (REPLICATION"));
        // Outside the data directory, only who reads anywhere counts.
        audit.keys = vec![key(Ok(false), false)];
        let row = one(&audit);
        assert_eq!(row.status, Status::Fail);
        assert!(!row.detail.contains("rep"));
        audit.readers.remove(0);
        assert_eq!(one(&audit).status, Status::Ok);
        // In the data directory with nobody to read it: still a warning.
        audit.keys = vec![key(Ok(false), true)];
        audit.readers.clear();
        assert_eq!(one(&audit).status, Status::Warn);
    }

    #[test]
    fn an_encrypted_key_is_ok_with_its_command() {
        let mut audit = CaKeyAudit {
            keys: vec![key(Ok(true), true)],
            command_set: true,
            readers: vec![reader("alice", "member of pg_read_server_files", true)],
        };
        assert_eq!(one(&audit).status, Status::Ok);
        audit.command_set = false;
        let row = one(&audit);
        assert_eq!(row.status, Status::Warn);
        assert!(row
            .detail
            .contains("pgssl.ca_key_passphrase_command is not set"));
        audit.keys = vec![key(Err("Permission denied".into()), true)];
        assert_eq!(one(&audit).status, Status::Warn);
        audit.keys.clear();
        assert!(evaluate(&audit).is_empty());
    }

    #[test]
    fn the_data_directory_is_told_by_name_and_by_link() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let outside = dir.path().join("keys");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("ca.key"), "k").unwrap();
        assert!(inside(&data.join("ca.key"), &data));
        assert!(inside(&data.join("sub/../ca.key"), &data));
        assert!(!inside(&data.join("../keys/ca.key"), &data));
        assert!(!inside(&outside.join("ca.key"), &data));
        // A link in the data directory to a key elsewhere: pg_read_file
        // reads it by the link's name.
        std::os::unix::fs::symlink(outside.join("ca.key"), data.join("link.key")).unwrap();
        assert!(inside(&data.join("link.key"), &data));
        // A link elsewhere to a key in the data directory: a base backup copies it.
        std::fs::write(data.join("real.key"), "k").unwrap();
        std::os::unix::fs::symlink(data.join("real.key"), outside.join("link.key")).unwrap();
        assert!(inside(&outside.join("link.key"), &data));
    }
}

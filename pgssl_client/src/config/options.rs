//! libpq's table of connection options: every key pgssl accepts, the environment variable
//! libpq reads for it and libpq's compiled-in default; and the step that fills what the
//! connection string left out from the environment, then from the defaults
//! (libpq's `conninfo_add_defaults`).

use std::collections::BTreeMap;

use crate::error::Error;

/// Option values as text, by canonical key: what a connection string sets, then what the
/// environment and the defaults add. [`super::Config`] turns them into typed fields.
pub(super) type Options = BTreeMap<&'static str, String>;

/// Every key pgssl accepts, with the environment variable libpq reads for it and libpq's
/// compiled-in default. This is libpq 15's list, plus `sslnegotiation` (libpq 17) and
/// `sslcertmode`, `require_auth` and `load_balance_hosts` (libpq 16).
const OPTIONS: &[(&str, Option<&str>, Option<&str>)] = &[
    ("service", Some("PGSERVICE"), None),
    ("user", Some("PGUSER"), None),
    ("password", Some("PGPASSWORD"), None),
    ("passfile", Some("PGPASSFILE"), None),
    ("channel_binding", Some("PGCHANNELBINDING"), Some("prefer")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT"), None),
    ("dbname", Some("PGDATABASE"), None),
    ("host", Some("PGHOST"), None),
    ("hostaddr", Some("PGHOSTADDR"), None),
    ("port", Some("PGPORT"), Some("5432")),
    ("client_encoding", Some("PGCLIENTENCODING"), None),
    ("options", Some("PGOPTIONS"), Some("")),
    ("application_name", Some("PGAPPNAME"), None),
    ("fallback_application_name", None, None),
    ("keepalives", None, None),
    ("keepalives_idle", None, None),
    ("keepalives_interval", None, None),
    ("keepalives_count", None, None),
    ("tcp_user_timeout", None, None),
    ("sslmode", Some("PGSSLMODE"), Some("prefer")),
    ("sslnegotiation", Some("PGSSLNEGOTIATION"), Some("postgres")),
    ("sslcompression", Some("PGSSLCOMPRESSION"), Some("0")),
    ("sslcertmode", Some("PGSSLCERTMODE"), Some("allow")),
    ("sslcert", Some("PGSSLCERT"), None),
    ("sslkey", Some("PGSSLKEY"), None),
    ("sslpassword", None, None),
    ("sslrootcert", Some("PGSSLROOTCERT"), None),
    ("sslcrl", Some("PGSSLCRL"), None),
    ("sslcrldir", Some("PGSSLCRLDIR"), None),
    ("sslsni", Some("PGSSLSNI"), Some("1")),
    ("requirepeer", Some("PGREQUIREPEER"), None),
    ("require_auth", Some("PGREQUIREAUTH"), None),
    (
        "ssl_min_protocol_version",
        Some("PGSSLMINPROTOCOLVERSION"),
        Some("TLSv1.2"),
    ),
    (
        "ssl_max_protocol_version",
        Some("PGSSLMAXPROTOCOLVERSION"),
        None,
    ),
    ("gssencmode", Some("PGGSSENCMODE"), Some("prefer")),
    ("krbsrvname", Some("PGKRBSRVNAME"), Some("postgres")),
    ("gsslib", Some("PGGSSLIB"), None),
    ("replication", None, None),
    (
        "target_session_attrs",
        Some("PGTARGETSESSIONATTRS"),
        Some("any"),
    ),
    (
        "load_balance_hosts",
        Some("PGLOADBALANCEHOSTS"),
        Some("disable"),
    ),
];

/// The canonical spelling of a key libpq knows.
fn known_key(key: &str) -> Option<&'static str> {
    OPTIONS.iter().map(|o| o.0).find(|k| *k == key)
}

/// Stores one option under its canonical key; an unknown key is an error.
pub(super) fn store(values: &mut Options, key: &str, value: String) -> Result<(), Error> {
    let (key, value) =
        canonical(key, value).ok_or_else(|| Error::UnknownOption { key: key.into() })?;
    values.insert(key, value);
    Ok(())
}

/// The key as stored, or `None` for an unknown key. libpq 15 still takes the pre-9.2
/// `requiressl`, as `sslmode`: 1 means require, anything else prefer.
pub(super) fn canonical(key: &str, value: String) -> Option<(&'static str, String)> {
    if key == "requiressl" {
        let mode = if value.starts_with('1') {
            "require"
        } else {
            "prefer"
        };
        return Some(("sslmode", mode.to_string()));
    }
    known_key(key).map(|k| (k, value))
}

/// Fills the options the connection string did not set: from `env`, else from libpq's
/// defaults; the user from the operating system and the database from the user.
pub(super) fn add_defaults(
    values: &mut Options,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Error> {
    if let Some(service) = values.get("service").cloned().or_else(|| env("PGSERVICE")) {
        if !service.is_empty() {
            return Err(Error::Unsupported {
                key: "service".into(),
                value: service,
                reason: "connection service files (pg_service.conf) are not read by pgssl".into(),
            });
        }
    }
    for &(key, envvar, default) in OPTIONS {
        if values.contains_key(key) {
            continue;
        }
        if let Some(v) = envvar.and_then(env) {
            values.insert(key, v);
            continue;
        }
        // libpq 15 still honours the pre-9.2 PGREQUIRESSL=1.
        if key == "sslmode" && env("PGREQUIRESSL").is_some_and(|v| v.starts_with('1')) {
            values.insert(key, "require".into());
            continue;
        }
        if let Some(d) = default {
            values.insert(key, d.to_string());
        }
    }
    if !values.contains_key("user") {
        let user = whoami::username().map_err(|e| Error::Unsupported {
            key: "user".into(),
            value: String::new(),
            reason: format!("no user given and the OS user name is unknown: {e}"),
        })?;
        values.insert("user", user);
    }
    if values.get("dbname").is_none_or(|d| d.is_empty()) {
        let user = values["user"].clone();
        values.insert("dbname", user);
    }
    Ok(())
}

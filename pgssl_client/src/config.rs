//! libpq connection strings: `key=value` lists and `postgresql://` URIs, with libpq's
//! environment variables and defaults.
//!
//! The parser follows libpq's `conninfo_parse` and `conninfo_uri_parse_options`
//! (PostgreSQL 15 `fe-connect.c`) character for character, including its quirks: a value may
//! start right after the whitespace that follows `=`, a backslash escapes any character in
//! both quoted and unquoted values, and `%00` is refused in URIs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;

/// Where the server's Unix socket is when no host is given (Debian's libpq default).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Every key pgssl accepts, with the environment variable libpq reads for it and libpq's
/// compiled-in default. This is libpq 15's list, plus `sslnegotiation` (libpq 17) and
/// `load_balance_hosts` (libpq 16), which tokio-postgres implements.
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
    ("sslcert", Some("PGSSLCERT"), None),
    ("sslkey", Some("PGSSLKEY"), None),
    ("sslpassword", None, None),
    ("sslrootcert", Some("PGSSLROOTCERT"), None),
    ("sslcrl", Some("PGSSLCRL"), None),
    ("sslcrldir", Some("PGSSLCRLDIR"), None),
    ("sslsni", Some("PGSSLSNI"), Some("1")),
    ("requirepeer", Some("PGREQUIREPEER"), None),
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

/// libpq's `sslmode`: how hard the client insists on TLS and what it verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// Plaintext first; TLS if the server refuses the plaintext attempt.
    Allow,
    /// TLS first; plaintext if the server says no or the TLS attempt fails.
    Prefer,
    /// TLS only; the chain is verified only if a root certificate file exists.
    Require,
    /// TLS only, the chain must lead to a trusted root.
    VerifyCa,
    /// TLS only, trusted chain and the host name must match the certificate.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// A TLS protocol version as libpq names it in `ssl_min_protocol_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0 (not offered by rustls).
    Tls10,
    /// TLS 1.1 (not offered by rustls).
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    fn parse(value: &str) -> Option<TlsVersion> {
        Some(match value.to_ascii_lowercase().as_str() {
            "tlsv1" => TlsVersion::Tls10,
            "tlsv1.1" => TlsVersion::Tls11,
            "tlsv1.2" => TlsVersion::Tls12,
            "tlsv1.3" => TlsVersion::Tls13,
            _ => return None,
        })
    }
}

/// Where one connection attempt goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// TCP to a host name or address literal; `hostaddr`, when given, is where to connect and
    /// the name is only used for certificate checks and SNI.
    Tcp {
        /// The `host` entry, if any (absent when only `hostaddr` was given).
        host: Option<String>,
        /// The `hostaddr` entry, if any.
        hostaddr: Option<IpAddr>,
        /// The port.
        port: u16,
    },
    /// A Unix-domain socket directory. libpq never uses TLS over these.
    Unix {
        /// The socket directory.
        dir: PathBuf,
        /// The port, which names the socket file.
        port: u16,
    },
}

/// A parsed libpq connection string with libpq's environment fallbacks and defaults applied.
#[derive(Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    home: Option<PathBuf>,
    pub(crate) ssl_mode: SslMode,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) min_version: Option<TlsVersion>,
    pub(crate) max_version: Option<TlsVersion>,
}

impl std::fmt::Debug for Config {
    /// Passwords are not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: BTreeMap<&str, &str> = self
            .values
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    if matches!(*k, "password" | "sslpassword") {
                        "********"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("Config")
            .field("options", &shown)
            .field("ssl_mode", &self.ssl_mode)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl std::str::FromStr for Config {
    type Err = Error;

    fn from_str(s: &str) -> Result<Config, Error> {
        Config::from_conninfo(s)
    }
}

impl Config {
    /// Parses a connection string (`key=value ...` or a URI) with the process environment
    /// and home directory as fallbacks, as libpq's `PQconnectdb` does.
    pub fn from_conninfo(conninfo: &str) -> Result<Config, Error> {
        Config::from_conninfo_with_env(
            conninfo,
            &|name| std::env::var(name).ok(),
            home_dir().as_deref(),
        )
    }

    /// Parses like [`Config::from_conninfo`], but reads environment variables through `env`
    /// and takes `home` as the home directory (`~/.postgresql` lives there); for tests and
    /// for programs that must not read the process environment.
    pub fn from_conninfo_with_env(
        conninfo: &str,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Config, Error> {
        let explicit = parse_conninfo(conninfo)?;
        Config::from_options(explicit, env, home)
    }

    /// Builds a configuration from keyword/value pairs (libpq's `PQconnectdbParams` without
    /// `expand_dbname`).
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Config, Error> {
        let mut explicit = BTreeMap::new();
        for (key, value) in pairs {
            store(&mut explicit, key, value.to_string())?;
        }
        Config::from_options(explicit, env, home)
    }

    fn from_options(
        mut values: BTreeMap<&'static str, String>,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Config, Error> {
        if let Some(service) = values.get("service").cloned().or_else(|| env("PGSERVICE")) {
            if !service.is_empty() {
                return Err(Error::Unsupported {
                    key: "service".into(),
                    value: service,
                    reason: "connection service files (pg_service.conf) are not read by pgssl",
                });
            }
        }
        let sslmode_given = values.contains_key("sslmode") || env("PGSSLMODE").is_some();
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
                reason: leak_reason(format!(
                    "no user given and the OS user name is unknown: {e}"
                )),
            })?;
            values.insert("user", user);
        }
        if values.get("dbname").is_none_or(|d| d.is_empty()) {
            let user = values["user"].clone();
            values.insert("dbname", user);
        }

        let mode_text = values["sslmode"].clone();
        let mut ssl_mode =
            SslMode::parse(&mode_text).ok_or_else(|| invalid("sslmode", &mode_text, SSLMODES))?;
        // libpq 16: the system store is only trusted with the host name checked.
        if values.get("sslrootcert").map(String::as_str) == Some("system") {
            if !sslmode_given {
                ssl_mode = SslMode::VerifyFull;
                values.insert("sslmode", "verify-full".into());
            } else if ssl_mode != SslMode::VerifyFull {
                return Err(invalid("sslmode", &mode_text, "verify-full with sslrootcert=system (weak sslmode may not be used with sslrootcert=system)"));
            }
        }
        check_choice(
            &values,
            "channel_binding",
            &["disable", "prefer", "require"],
        )?;
        check_choice(&values, "gssencmode", &["disable", "prefer", "require"])?;
        if values["gssencmode"] == "require" {
            return Err(Error::Unsupported {
                key: "gssencmode".into(),
                value: "require".into(),
                reason: "pgssl has no GSSAPI encryption",
            });
        }
        check_choice(
            &values,
            "target_session_attrs",
            &[
                "any",
                "read-write",
                "read-only",
                "primary",
                "standby",
                "prefer-standby",
            ],
        )?;
        let tsa = values["target_session_attrs"].as_str();
        if !matches!(tsa, "any" | "read-write" | "read-only") {
            return Err(Error::Unsupported {
                key: "target_session_attrs".into(),
                value: tsa.into(),
                reason: "tokio-postgres implements only any, read-write and read-only",
            });
        }
        check_choice(&values, "sslnegotiation", &["postgres", "direct"])?;
        if values["sslnegotiation"] == "direct"
            && !matches!(
                ssl_mode,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
            )
        {
            return Err(Error::InvalidValue {
                key: "sslnegotiation".into(),
                value: "direct".into(),
                expected: "sslmode require, verify-ca or verify-full with sslnegotiation=direct",
            });
        }
        check_choice(&values, "load_balance_hosts", &["disable", "random"])?;
        let min_version = protocol_version(&values, "ssl_min_protocol_version")?;
        let max_version = protocol_version(&values, "ssl_max_protocol_version")?;
        if let (Some(min), Some(max)) = (min_version, max_version) {
            if min > max {
                return Err(Error::InvalidValue {
                    key: "ssl_min_protocol_version".into(),
                    value: format!("{} > {}", values["ssl_min_protocol_version"], values["ssl_max_protocol_version"]),
                    expected: "a minimum not above ssl_max_protocol_version (invalid SSL protocol version range)",
                });
            }
        }
        for key in [
            "connect_timeout",
            "keepalives",
            "keepalives_idle",
            "keepalives_interval",
            "keepalives_count",
            "tcp_user_timeout",
        ] {
            if let Some(v) = values.get(key) {
                if !v.is_empty() {
                    parse_int(key, v)?;
                }
            }
        }
        if let Some(enc) = values.get("client_encoding") {
            if !enc.is_empty()
                && !enc.eq_ignore_ascii_case("utf8")
                && !enc.eq_ignore_ascii_case("auto")
            {
                return Err(Error::Unsupported {
                    key: "client_encoding".into(),
                    value: enc.clone(),
                    reason: "tokio-postgres always uses UTF8",
                });
            }
        }
        for key in ["requirepeer", "replication"] {
            if let Some(v) = values.get(key).filter(|v| !v.is_empty()) {
                return Err(Error::Unsupported {
                    key: key.into(),
                    value: v.clone(),
                    reason: "not implemented by tokio-postgres",
                });
            }
        }
        let endpoints = endpoints(&values)?;
        Ok(Config {
            values,
            home: home.map(Path::to_path_buf),
            ssl_mode,
            endpoints,
            min_version,
            max_version,
        })
    }

    /// The value in force for a libpq keyword (given, from the environment, or the default).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The `sslmode` in force.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// Where connection attempts go, in order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The user name in force.
    pub fn user(&self) -> &str {
        &self.values["user"]
    }

    /// The home directory used for `~/.postgresql` files, if known.
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }

    /// A file option: the value given, else `~/.postgresql/<default_name>`.
    pub(crate) fn file_option(&self, key: &str, default_name: &str) -> Option<PathBuf> {
        match self.get(key) {
            Some(v) => Some(PathBuf::from(v)),
            None => self
                .home
                .as_ref()
                .map(|h| h.join(".postgresql").join(default_name)),
        }
    }

    /// The `tokio_postgres::Config` for one endpoint: every non-TLS option, with `sslmode`
    /// mapped onto tokio-postgres' three modes (`allow` becomes `prefer`; see
    /// [`crate::MakeTls`]).
    pub fn tokio_config(&self, endpoint: &Endpoint) -> tokio_postgres::Config {
        let mut c = self.tokio_config_without_hosts();
        if let Some(p) = self.passfile_password(endpoint) {
            c.password(p);
        }
        match endpoint {
            Endpoint::Tcp {
                host,
                hostaddr,
                port,
            } => {
                if let Some(h) = host {
                    c.host(h);
                }
                if let Some(a) = hostaddr {
                    c.hostaddr(*a);
                    if host.is_none() {
                        c.host(a.to_string());
                    }
                }
                c.port(*port);
            }
            Endpoint::Unix { dir, port } => {
                c.host_path(dir);
                c.port(*port);
                // libpq never asks for TLS over a Unix socket, whatever sslmode says.
                c.ssl_mode(tokio_postgres::config::SslMode::Disable);
            }
        }
        c
    }

    /// The `tokio_postgres::Config` for all endpoints at once, for pools.
    pub fn to_tokio_postgres(&self) -> tokio_postgres::Config {
        let mut c = self.tokio_config_without_hosts();
        // One password for all hosts: the password file's entry for the first.
        if let Some(p) = self
            .endpoints
            .first()
            .and_then(|e| self.passfile_password(e))
        {
            c.password(p);
        }
        for e in &self.endpoints {
            match e {
                Endpoint::Tcp {
                    host,
                    hostaddr,
                    port,
                } => {
                    c.host(
                        host.clone()
                            .unwrap_or_else(|| hostaddr.map(|a| a.to_string()).unwrap_or_default()),
                    );
                    if let Some(a) = hostaddr {
                        c.hostaddr(*a);
                    }
                    c.port(*port);
                }
                Endpoint::Unix { dir, port } => {
                    c.host_path(dir);
                    c.port(*port);
                }
            }
        }
        c
    }

    /// The password from the password file (`passfile`, else `~/.pgpass`) for this endpoint,
    /// as libpq's `passwordFromFile` finds it; `None` when a password was given.
    pub fn passfile_password(&self, endpoint: &Endpoint) -> Option<String> {
        if self.get("password").is_some() {
            return None;
        }
        let path = match self.get("passfile") {
            Some(p) => PathBuf::from(p),
            None => self.home.as_ref()?.join(".pgpass"),
        };
        let (host, port) = match endpoint {
            Endpoint::Tcp {
                host,
                hostaddr,
                port,
            } => (
                host.clone()
                    .or_else(|| hostaddr.map(|a| a.to_string()))
                    .unwrap_or_default(),
                *port,
            ),
            Endpoint::Unix { dir, port } => (dir.display().to_string(), *port),
        };
        // 'localhost' matches the default socket directory.
        let host = if host.is_empty() || host == DEFAULT_SOCKET_DIR {
            "localhost".to_string()
        } else {
            host
        };
        let meta = std::fs::metadata(&path).ok()?;
        {
            use std::os::unix::fs::PermissionsExt;
            // libpq ignores (with a warning) a file others can read.
            if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
                return None;
            }
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let wanted = [
            host.as_str(),
            &port.to_string(),
            &self.values["dbname"],
            self.user(),
        ]
        .map(str::to_string);
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|line| pgpass_match(line, &wanted))
    }

    fn tokio_config_without_hosts(&self) -> tokio_postgres::Config {
        use tokio_postgres::config::{
            ChannelBinding, LoadBalanceHosts, SslMode as TpMode, SslNegotiation, TargetSessionAttrs,
        };
        let mut c = tokio_postgres::Config::new();
        c.user(self.user());
        if let Some(p) = self.get("password") {
            c.password(p);
        }
        c.dbname(&self.values["dbname"]);
        if let Some(o) = self.get("options") {
            c.options(o);
        }
        if let Some(a) = self
            .get("application_name")
            .or_else(|| self.get("fallback_application_name"))
        {
            c.application_name(a);
        }
        c.ssl_mode(match self.ssl_mode {
            SslMode::Disable => TpMode::Disable,
            SslMode::Allow | SslMode::Prefer => TpMode::Prefer,
            _ => TpMode::Require,
        });
        if self.get("sslnegotiation") == Some("direct") {
            c.ssl_negotiation(SslNegotiation::Direct);
        }
        c.channel_binding(match self.get("channel_binding") {
            Some("disable") => ChannelBinding::Disable,
            Some("require") => ChannelBinding::Require,
            _ => ChannelBinding::Prefer,
        });
        c.target_session_attrs(match self.get("target_session_attrs") {
            Some("read-write") => TargetSessionAttrs::ReadWrite,
            Some("read-only") => TargetSessionAttrs::ReadOnly,
            _ => TargetSessionAttrs::Any,
        });
        if self.get("load_balance_hosts") == Some("random") {
            c.load_balance_hosts(LoadBalanceHosts::Random);
        }
        if let Some(t) = self.int("connect_timeout").filter(|t| *t > 0) {
            // libpq raises timeouts below 2 s to 2 s.
            c.connect_timeout(Duration::from_secs(t.max(2) as u64));
        }
        if let Some(t) = self.int("tcp_user_timeout").filter(|t| *t > 0) {
            c.tcp_user_timeout(Duration::from_millis(t as u64));
        }
        if let Some(k) = self.int("keepalives") {
            c.keepalives(k != 0);
        }
        if let Some(t) = self.int("keepalives_idle").filter(|t| *t > 0) {
            c.keepalives_idle(Duration::from_secs(t as u64));
        }
        if let Some(t) = self.int("keepalives_interval").filter(|t| *t > 0) {
            c.keepalives_interval(Duration::from_secs(t as u64));
        }
        if let Some(t) = self.int("keepalives_count").filter(|t| *t > 0) {
            c.keepalives_retries(t as u32);
        }
        c
    }

    fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|v| parse_int(key, v).ok())
    }
}

const SSLMODES: &str = "disable, allow, prefer, require, verify-ca or verify-full";

fn leak_reason(s: String) -> &'static str {
    // Only reached once per process for an unusual environment; keeps the variant's field a
    // plain `&'static str` like the other reasons.
    Box::leak(s.into_boxed_str())
}

/// The home directory as libpq 15 finds it (`~/.postgresql` and `~/.pgpass` live there):
/// `$HOME`, else the password database's entry for the user running the process.
pub fn home_dir() -> Option<PathBuf> {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Some(PathBuf::from(h)),
        _ => passwd_home(),
    }
}

fn passwd_home() -> Option<PathBuf> {
    let user = whoami::username().ok()?;
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[0] == user).then(|| PathBuf::from(f[5]))
    })
}

/// One `.pgpass` line against host, port, database and user: the password if it matches.
/// Fields are `:`-separated, `\` escapes the next character, and `*` matches anything.
fn pgpass_match(line: &str, wanted: &[String; 4]) -> Option<String> {
    let mut fields = Vec::with_capacity(5);
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    field.push(n);
                }
            }
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    if fields.len() != 5 || fields[4].is_empty() {
        return None;
    }
    let matches = fields[..4]
        .iter()
        .zip(wanted)
        .all(|(f, w)| f == "*" || f == w);
    matches.then(|| fields.pop().expect("five fields"))
}

fn invalid(key: &str, value: &str, expected: &'static str) -> Error {
    Error::InvalidValue {
        key: key.into(),
        value: value.into(),
        expected,
    }
}

fn check_choice(
    values: &BTreeMap<&'static str, String>,
    key: &str,
    allowed: &[&str],
) -> Result<(), Error> {
    let v = &values[key];
    if allowed.contains(&v.as_str()) {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            key: key.into(),
            value: v.clone(),
            expected: leak_reason(allowed.join(", ")),
        })
    }
}

fn protocol_version(
    values: &BTreeMap<&'static str, String>,
    key: &str,
) -> Result<Option<TlsVersion>, Error> {
    match values.get(key).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => TlsVersion::parse(v)
            .map(Some)
            .ok_or_else(|| invalid(key, v, "TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3")),
    }
}

/// libpq's `parse_int_param`: `strtol` with surrounding whitespace allowed.
fn parse_int(key: &str, value: &str) -> Result<i64, Error> {
    let s = value.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let sign_len = usize::from(s.starts_with(['+', '-']));
    let digits = s[sign_len..].bytes().take_while(u8::is_ascii_digit).count();
    let (number, rest) = s.split_at(sign_len + digits);
    if digits > 0 && rest.bytes().all(|b| b.is_ascii_whitespace()) {
        if let Ok(n) = number.parse::<i32>() {
            return Ok(n.into());
        }
    }
    Err(invalid(key, value, "an integer"))
}

fn split_list(value: Option<&String>) -> Vec<String> {
    match value {
        None => Vec::new(),
        Some(v) if v.is_empty() => Vec::new(),
        Some(v) => v.split(',').map(str::to_string).collect(),
    }
}

/// libpq's `connectOptions2` host/hostaddr/port pairing.
fn endpoints(values: &BTreeMap<&'static str, String>) -> Result<Vec<Endpoint>, Error> {
    let hosts = split_list(values.get("host"));
    let addrs = split_list(values.get("hostaddr"));
    let ports = split_list(values.get("port"));
    let count = hosts.len().max(addrs.len()).max(1);
    if !hosts.is_empty() && !addrs.is_empty() && hosts.len() != addrs.len() {
        return Err(Error::Syntax {
            message: format!(
                "could not match {} host names to {} hostaddr values",
                hosts.len(),
                addrs.len()
            ),
        });
    }
    if ports.len() > 1 && ports.len() != count {
        return Err(Error::Syntax {
            message: format!(
                "could not match {} port numbers to {} hosts",
                ports.len(),
                count
            ),
        });
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let port_text = if ports.len() == 1 {
            ports[0].as_str()
        } else {
            ports.get(i).map_or("", String::as_str)
        };
        let port = if port_text.is_empty() {
            5432
        } else {
            let n = parse_int("port", port_text)?;
            if !(1..=65535).contains(&n) {
                return Err(invalid("port", port_text, "a port number from 1 to 65535"));
            }
            n as u16
        };
        let host = hosts.get(i).filter(|h| !h.is_empty()).cloned();
        let addr_text = addrs.get(i).filter(|a| !a.is_empty());
        let hostaddr = match addr_text {
            Some(a) => Some(
                a.parse::<IpAddr>()
                    .map_err(|_| invalid("hostaddr", a, "a numeric IPv4 or IPv6 address"))?,
            ),
            None => None,
        };
        out.push(match (host, hostaddr) {
            (host, Some(addr)) => Endpoint::Tcp {
                host,
                hostaddr: Some(addr),
                port,
            },
            (Some(h), None) if h.starts_with('/') => Endpoint::Unix {
                dir: PathBuf::from(h),
                port,
            },
            (Some(h), None) => Endpoint::Tcp {
                host: Some(h),
                hostaddr: None,
                port,
            },
            (None, None) => Endpoint::Unix {
                dir: PathBuf::from(DEFAULT_SOCKET_DIR),
                port,
            },
        });
    }
    Ok(out)
}

fn known_key(key: &str) -> Option<&'static str> {
    OPTIONS.iter().map(|o| o.0).find(|k| *k == key)
}

fn store(
    values: &mut BTreeMap<&'static str, String>,
    key: &str,
    value: String,
) -> Result<(), Error> {
    let (key, value) =
        canonical(key, value).ok_or_else(|| Error::UnknownOption { key: key.into() })?;
    values.insert(key, value);
    Ok(())
}

/// The key as stored, or `None` for an unknown key. libpq 15 still takes the pre-9.2
/// `requiressl`, as `sslmode`: 1 means require, anything else prefer.
fn canonical(key: &str, value: String) -> Option<(&'static str, String)> {
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

/// Parses a connection string into the options it sets explicitly.
pub(crate) fn parse_conninfo(s: &str) -> Result<BTreeMap<&'static str, String>, Error> {
    if uri_prefix_len(s).is_some() {
        parse_uri(s)
    } else {
        parse_key_values(s)
    }
}

/// True when `s` is a connection string rather than a bare database name (libpq's
/// `recognized_connection_string`), as psql decides for its first argument.
pub fn is_connection_string(s: &str) -> bool {
    uri_prefix_len(s).is_some() || s.contains('=')
}

fn uri_prefix_len(s: &str) -> Option<usize> {
    ["postgresql://", "postgres://"]
        .iter()
        .find(|p| s.starts_with(*p))
        .map(|p| p.len())
}

fn parse_key_values(s: &str) -> Result<BTreeMap<&'static str, String>, Error> {
    let b = s.as_bytes();
    let mut values = BTreeMap::new();
    let mut i = 0;
    let ws = |c: u8| c.is_ascii_whitespace() || c == 0x0b;
    loop {
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && !ws(b[i]) {
            i += 1;
        }
        let key = &s[key_start..i];
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(Error::Syntax {
                message: format!("missing \"=\" after \"{key}\" in connection info string"),
            });
        }
        i += 1;
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            loop {
                if i >= b.len() {
                    return Err(Error::Syntax {
                        message: "unterminated quoted string in connection info string".into(),
                    });
                }
                match b[i] {
                    b'\\' => {
                        i += 1;
                        if i < b.len() {
                            value.push(b[i]);
                            i += 1;
                        }
                    }
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && !ws(b[i]) {
                if b[i] == b'\\' {
                    i += 1;
                    if i < b.len() {
                        value.push(b[i]);
                        i += 1;
                    }
                } else {
                    value.push(b[i]);
                    i += 1;
                }
            }
        }
        // Only ASCII bytes were removed, so the rest is still UTF-8.
        let value = String::from_utf8(value).expect("valid UTF-8");
        store(&mut values, key, value)?;
    }
    Ok(values)
}

fn uri_decode(s: &str, whole: &str) -> Result<String, Error> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
            match (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                (Some(h), Some(l)) => {
                    let c = (h * 16 + l) as u8;
                    if c == 0 {
                        return Err(Error::Syntax {
                            message: format!(
                                "forbidden value %00 in percent-encoded value: \"{s}\""
                            ),
                        });
                    }
                    out.push(c);
                    i += 3;
                }
                _ => {
                    return Err(Error::Syntax {
                        message: format!("invalid percent-encoded token: \"{s}\""),
                    })
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Syntax {
        message: format!("percent-decoded value is not UTF-8 in URI: \"{whole}\""),
    })
}

fn store_uri(
    values: &mut BTreeMap<&'static str, String>,
    key: &str,
    raw: &str,
    whole: &str,
) -> Result<(), Error> {
    let v = uri_decode(raw, whole)?;
    store(values, key, v)
}

fn parse_uri(uri: &str) -> Result<BTreeMap<&'static str, String>, Error> {
    let mut values = BTreeMap::new();
    let start = uri_prefix_len(uri).expect("caller checked the prefix");
    let b = uri.as_bytes();
    let mut p = start;
    while p < b.len() && b[p] != b'@' && b[p] != b'/' {
        p += 1;
    }
    if p < b.len() && b[p] == b'@' {
        let creds = &uri[start..p];
        let (user, password) = match creds.find(':') {
            Some(c) => (&creds[..c], Some(&creds[c + 1..])),
            None => (creds, None),
        };
        if !user.is_empty() {
            store_uri(&mut values, "user", user, uri)?;
        }
        if let Some(pw) = password.filter(|p| !p.is_empty()) {
            store_uri(&mut values, "password", pw, uri)?;
        }
        p += 1;
    } else {
        p = start;
    }
    let mut hosts = String::new();
    let mut ports = String::new();
    let mut terminator: Option<u8>;
    loop {
        if p < b.len() && b[p] == b'[' {
            p += 1;
            let h = p;
            while p < b.len() && b[p] != b']' {
                p += 1;
            }
            if p >= b.len() {
                return Err(Error::Syntax {
                    message: format!("end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"{uri}\""),
                });
            }
            if p == h {
                return Err(Error::Syntax {
                    message: format!("IPv6 host address may not be empty in URI: \"{uri}\""),
                });
            }
            hosts.push_str(&uri[h..p]);
            p += 1;
            if p < b.len() && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                return Err(Error::Syntax {
                    message: format!(
                        "unexpected character \"{}\" at position {} in URI (expected \":\" or \"/\"): \"{uri}\"",
                        b[p] as char,
                        p + 1
                    ),
                });
            }
        } else {
            let h = p;
            while p < b.len() && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                p += 1;
            }
            hosts.push_str(&uri[h..p]);
        }
        terminator = b.get(p).copied();
        if terminator == Some(b':') {
            p += 1;
            let s = p;
            while p < b.len() && !matches!(b[p], b'/' | b'?' | b',') {
                p += 1;
            }
            ports.push_str(&uri[s..p]);
            terminator = b.get(p).copied();
        }
        if terminator != Some(b',') {
            break;
        }
        p += 1;
        hosts.push(',');
        ports.push(',');
    }
    if !hosts.is_empty() {
        store_uri(&mut values, "host", &hosts, uri)?;
    }
    if !ports.is_empty() {
        store_uri(&mut values, "port", &ports, uri)?;
    }
    if terminator.is_some() && terminator != Some(b'?') {
        p += 1;
        let s = p;
        while p < b.len() && b[p] != b'?' {
            p += 1;
        }
        if p > s {
            store_uri(&mut values, "dbname", &uri[s..p], uri)?;
        }
        terminator = b.get(p).copied();
    }
    if terminator.is_some() {
        p += 1;
        parse_uri_params(&uri[p..], &mut values)?;
    }
    Ok(values)
}

fn parse_uri_params(
    params: &str,
    values: &mut BTreeMap<&'static str, String>,
) -> Result<(), Error> {
    // libpq stops at the end of the string, so one trailing '&' is harmless.
    let params = if params.len() > 1 {
        params.strip_suffix('&').unwrap_or(params)
    } else {
        params
    };
    if params.is_empty() {
        return Ok(());
    }
    for pair in params.split('&') {
        let mut parts = pair.splitn(3, '=');
        let key = parts.next().unwrap_or("");
        let value = parts.next();
        if parts.next().is_some() {
            return Err(Error::Syntax {
                message: format!(
                    "extra key/value separator \"=\" in URI query parameter: \"{key}\""
                ),
            });
        }
        let Some(value) = value else {
            return Err(Error::Syntax {
                message: format!(
                    "missing key/value separator \"=\" in URI query parameter: \"{pair}\""
                ),
            });
        };
        let key = uri_decode(key, params)?;
        let value = uri_decode(value, params)?;
        // libpq's JDBC compatibility spelling.
        let (key, value) = if key == "ssl" && value == "true" {
            ("sslmode".to_string(), "require".to_string())
        } else {
            (key, value)
        };
        match canonical(&key, value) {
            Some((k, v)) => {
                values.insert(k, v);
            }
            None => {
                return Err(Error::Syntax {
                    message: format!("invalid URI query parameter: \"{key}\""),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Each expectation is what libpq 15 does with the same string (checked against
    //! `fe-connect.c` and, for the error cases, against psql's messages).
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(s: &str) -> Result<Config, Error> {
        Config::from_conninfo_with_env(s, &no_env, Some(Path::new("/home/u")))
    }

    fn parse_env(s: &str, env: &[(&str, &str)]) -> Result<Config, Error> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_conninfo_with_env(
            s,
            &move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            Some(Path::new("/home/u")),
        )
    }

    fn get(s: &str, key: &str) -> Option<String> {
        parse(s).unwrap().get(key).map(str::to_string)
    }

    fn err(s: &str) -> String {
        parse(s).unwrap_err().to_string()
    }

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: Some(host.into()),
            hostaddr: None,
            port,
        }
    }

    #[test]
    fn key_value_quoting_and_escaping() {
        assert!(err("password='it''s'").starts_with("missing \"=\" after \"'s'\""));
        assert_eq!(
            get("password='it\\'s here'", "password").as_deref(),
            Some("it's here")
        );
        assert_eq!(get("password=a\\ b", "password").as_deref(), Some("a b"));
        assert_eq!(
            get("password='a\\\\b'", "password").as_deref(),
            Some("a\\b")
        );
        assert_eq!(
            get("  dbname = mydb   user=u ", "dbname").as_deref(),
            Some("mydb")
        );
        assert_eq!(get("application_name=''", "application_name"), None);
        // libpq skips whitespace after '=', so the next word becomes the value.
        assert_eq!(
            get("application_name= dbname=x", "application_name").as_deref(),
            Some("dbname=x")
        );
        assert_eq!(get("dbname=a dbname=b", "dbname").as_deref(), Some("b"));
        assert_eq!(
            get("options='-c search_path=x'", "options").as_deref(),
            Some("-c search_path=x")
        );
        assert_eq!(
            get("dbname=caf\u{e9}", "dbname").as_deref(),
            Some("caf\u{e9}")
        );
    }

    #[test]
    fn key_value_syntax_errors() {
        assert_eq!(
            err("host"),
            "missing \"=\" after \"host\" in connection info string"
        );
        assert_eq!(
            err("host localhost"),
            "missing \"=\" after \"host\" in connection info string"
        );
        assert_eq!(
            err("password='abc"),
            "unterminated quoted string in connection info string"
        );
        assert_eq!(err("hots=x"), "invalid connection option \"hots\"");
        assert_eq!(parse("requiressl=1").unwrap().ssl_mode(), SslMode::Require);
        assert_eq!(
            parse("sslmode=disable requiressl=0").unwrap().ssl_mode(),
            SslMode::Prefer
        );
        assert_eq!(
            err("sslpasswd=x"),
            "invalid connection option \"sslpasswd\""
        );
        assert!(parse("").is_ok());
    }

    #[test]
    fn invalid_values() {
        assert!(err("sslmode=verify").starts_with("invalid sslmode value: \"verify\""));
        assert!(err("sslmode=Require").starts_with("invalid sslmode value"));
        assert!(err("channel_binding=yes").starts_with("invalid channel_binding value"));
        assert!(err("gssencmode=maybe").starts_with("invalid gssencmode value"));
        assert!(
            err("target_session_attrs=master").starts_with("invalid target_session_attrs value")
        );
        assert!(err("ssl_min_protocol_version=TLSv1.4")
            .starts_with("invalid ssl_min_protocol_version value"));
        assert!(err("ssl_max_protocol_version=tls1.3")
            .starts_with("invalid ssl_max_protocol_version value"));
        assert!(
            err("ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2")
                .contains("range")
        );
        assert!(
            parse("ssl_min_protocol_version=tlsv1.3").is_ok(),
            "libpq compares case-insensitively"
        );
        assert!(err("port=abc").starts_with("invalid port value: \"abc\""));
        assert!(err("port=0").starts_with("invalid port value: \"0\""));
        assert!(err("port=65536").starts_with("invalid port value"));
        assert!(
            parse("port=' 5433 '").is_ok(),
            "libpq's parse_int_param allows surrounding blanks"
        );
        assert!(err("connect_timeout=1s").starts_with("invalid connect_timeout value"));
        assert!(err("keepalives=yes").starts_with("invalid keepalives value"));
        assert!(err("hostaddr=localhost").starts_with("invalid hostaddr value"));
        assert!(err("sslnegotiation=tls").starts_with("invalid sslnegotiation value"));
        assert!(err("sslnegotiation=direct sslmode=prefer").contains("sslnegotiation=direct"));
        assert!(parse("sslnegotiation=direct sslmode=require").is_ok());
        assert!(err("host=a,b,c port=1,2").contains("could not match 2 port numbers to 3 hosts"));
        assert!(err("host=a,b hostaddr=127.0.0.1")
            .contains("could not match 2 host names to 1 hostaddr values"));
    }

    #[test]
    fn sslrootcert_system_means_verify_full() {
        assert_eq!(
            parse("sslrootcert=system").unwrap().ssl_mode(),
            SslMode::VerifyFull
        );
        assert!(parse("sslrootcert=system sslmode=require").is_err());
        assert_eq!(
            parse("sslrootcert=system sslmode=verify-full")
                .unwrap()
                .ssl_mode(),
            SslMode::VerifyFull
        );
    }

    #[test]
    fn several_hosts_and_ports() {
        let c = parse("host=a,b,/tmp port=1,2,3").unwrap();
        assert_eq!(
            c.endpoints(),
            &[
                tcp("a", 1),
                tcp("b", 2),
                Endpoint::Unix {
                    dir: "/tmp".into(),
                    port: 3
                }
            ]
        );
        let c = parse("host=a,b port=7").unwrap();
        assert_eq!(c.endpoints(), &[tcp("a", 7), tcp("b", 7)]);
        let c = parse("host=a,,b port=1,,3").unwrap();
        assert_eq!(
            c.endpoints(),
            &[
                tcp("a", 1),
                Endpoint::Unix {
                    dir: DEFAULT_SOCKET_DIR.into(),
                    port: 5432
                },
                tcp("b", 3)
            ]
        );
        let c = parse("hostaddr=127.0.0.1 host=db.example").unwrap();
        assert_eq!(
            c.endpoints(),
            &[Endpoint::Tcp {
                host: Some("db.example".into()),
                hostaddr: Some("127.0.0.1".parse().unwrap()),
                port: 5432
            }]
        );
        let c = parse("").unwrap();
        assert_eq!(
            c.endpoints(),
            &[Endpoint::Unix {
                dir: DEFAULT_SOCKET_DIR.into(),
                port: 5432
            }]
        );
    }

    #[test]
    fn uris() {
        let c = parse("postgresql://alice:s%40cret@db1:5433,db2/shop?sslmode=verify-full&application_name=x%20y").unwrap();
        assert_eq!(c.user(), "alice");
        assert_eq!(c.get("password"), Some("s@cret"));
        assert_eq!(c.get("dbname"), Some("shop"));
        assert_eq!(c.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(c.get("application_name"), Some("x y"));
        assert_eq!(c.endpoints(), &[tcp("db1", 5433), tcp("db2", 5432)]);
        let c = parse("postgres://[::1]:5433/db").unwrap();
        assert_eq!(c.endpoints(), &[tcp("::1", 5433)]);
        let c = parse("postgresql://%2Fvar%2Frun%2Fpostgresql/db").unwrap();
        assert_eq!(
            c.endpoints(),
            &[Endpoint::Unix {
                dir: "/var/run/postgresql".into(),
                port: 5432
            }]
        );
        let c = parse("postgresql:///db?host=/tmp&port=5433").unwrap();
        assert_eq!(
            c.endpoints(),
            &[Endpoint::Unix {
                dir: "/tmp".into(),
                port: 5433
            }]
        );
        let c = parse("postgresql://user@").unwrap();
        assert_eq!(c.user(), "user");
        assert_eq!(c.get("dbname"), Some("user"));
        assert_eq!(
            parse("postgresql://h/?ssl=true").unwrap().ssl_mode(),
            SslMode::Require
        );
        assert_eq!(
            parse("postgresql://h/db?").unwrap().get("dbname"),
            Some("db")
        );
        assert_eq!(
            parse("postgresql://h/db?sslmode=disable&")
                .unwrap()
                .ssl_mode(),
            SslMode::Disable
        );
        assert_eq!(parse("postgresql://u%3Ax@h").unwrap().user(), "u:x");
        assert_eq!(
            parse("postgresql://h/a+b").unwrap().get("dbname"),
            Some("a+b")
        );
    }

    #[test]
    fn uri_errors() {
        assert!(err("postgresql://[::1")
            .starts_with("end of string reached when looking for matching \"]\""));
        assert!(err("postgresql://[]/db").starts_with("IPv6 host address may not be empty"));
        assert_eq!(
            err("postgresql://[::1]x/db"),
            "unexpected character \"x\" at position 19 in URI (expected \":\" or \"/\"): \"postgresql://[::1]x/db\""
        );
        assert!(err("postgresql://h/db?sslmode").starts_with("missing key/value separator \"=\""));
        assert!(err("postgresql://h/db?a=b=c").starts_with("extra key/value separator \"=\""));
        assert_eq!(
            err("postgresql://h/db?foo=bar"),
            "invalid URI query parameter: \"foo\""
        );
        assert!(err("postgresql://h/d%zz").starts_with("invalid percent-encoded token"));
        assert!(err("postgresql://h/d%2").starts_with("invalid percent-encoded token"));
        assert!(
            err("postgresql://h/d%00").starts_with("forbidden value %00 in percent-encoded value")
        );
        assert!(err("postgresql://h/db?sslmode=bogus").starts_with("invalid sslmode value"));
    }

    #[test]
    fn environment_fallbacks() {
        let env = [
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("PGPASSWORD", "pw"),
            ("PGSSLMODE", "verify-ca"),
            ("PGSSLROOTCERT", "/r.crt"),
            ("PGSSLCERT", "/c.crt"),
            ("PGSSLKEY", "/c.key"),
            ("PGSSLCRL", "/x.crl"),
            ("PGSSLCRLDIR", "/crls"),
            ("PGSSLSNI", "0"),
            ("PGAPPNAME", "app"),
            ("PGCHANNELBINDING", "require"),
            ("PGCONNECT_TIMEOUT", "5"),
            ("PGSSLMINPROTOCOLVERSION", "TLSv1.3"),
        ];
        let c = parse_env("", &env).unwrap();
        assert_eq!(c.endpoints(), &[tcp("envhost", 6000)]);
        assert_eq!(c.user(), "envuser");
        assert_eq!(c.get("dbname"), Some("envdb"));
        assert_eq!(c.get("password"), Some("pw"));
        assert_eq!(c.ssl_mode(), SslMode::VerifyCa);
        for (k, v) in [
            ("sslrootcert", "/r.crt"),
            ("sslcert", "/c.crt"),
            ("sslkey", "/c.key"),
            ("sslcrl", "/x.crl"),
            ("sslcrldir", "/crls"),
            ("sslsni", "0"),
            ("application_name", "app"),
            ("channel_binding", "require"),
            ("connect_timeout", "5"),
        ] {
            assert_eq!(c.get(k), Some(v), "{k}");
        }
        assert_eq!(c.min_version, Some(TlsVersion::Tls13));
        // The connection string wins over the environment.
        let c = parse_env("host=h sslmode=disable user=me", &env).unwrap();
        assert_eq!(c.endpoints(), &[tcp("h", 6000)]);
        assert_eq!(c.ssl_mode(), SslMode::Disable);
        assert_eq!(c.user(), "me");
        // An invalid environment value is an error, as in libpq.
        assert!(parse_env("", &[("PGSSLMODE", "nope")]).is_err());
        assert_eq!(
            parse_env("", &[("PGREQUIRESSL", "1")]).unwrap().ssl_mode(),
            SslMode::Require
        );
        assert!(parse_env("", &[("PGSERVICE", "x")]).is_err());
    }

    #[test]
    fn defaults() {
        let c = parse("user=u").unwrap();
        assert_eq!(c.ssl_mode(), SslMode::Prefer);
        assert_eq!(c.get("dbname"), Some("u"), "dbname defaults to the user");
        assert_eq!(c.get("sslsni"), Some("1"));
        assert_eq!(c.get("channel_binding"), Some("prefer"));
        assert_eq!(c.min_version, Some(TlsVersion::Tls12));
        assert_eq!(
            c.file_option("sslrootcert", "root.crt"),
            Some(PathBuf::from("/home/u/.postgresql/root.crt"))
        );
        assert_eq!(
            c.file_option("sslcert", "postgresql.crt"),
            Some(PathBuf::from("/home/u/.postgresql/postgresql.crt"))
        );
        assert_eq!(
            c.file_option("sslkey", "postgresql.key"),
            Some(PathBuf::from("/home/u/.postgresql/postgresql.key"))
        );
        let c = parse("sslcert=/x.crt").unwrap();
        assert_eq!(
            c.file_option("sslcert", "postgresql.crt"),
            Some(PathBuf::from("/x.crt"))
        );
        let c = Config::from_conninfo_with_env("user=u", &no_env, None).unwrap();
        assert_eq!(c.file_option("sslrootcert", "root.crt"), None);
    }

    #[test]
    fn tokio_postgres_mapping() {
        use tokio_postgres::config::SslMode as Tp;
        for (mode, tp) in [
            ("disable", Tp::Disable),
            ("allow", Tp::Prefer),
            ("prefer", Tp::Prefer),
            ("require", Tp::Require),
            ("verify-ca", Tp::Require),
            ("verify-full", Tp::Require),
        ] {
            let c = parse(&format!("host=h sslmode={mode}")).unwrap();
            assert_eq!(
                c.tokio_config(&c.endpoints()[0]).get_ssl_mode(),
                tp,
                "{mode}"
            );
        }
        let c = parse("host=/tmp sslmode=require").unwrap();
        assert_eq!(
            c.tokio_config(&c.endpoints()[0]).get_ssl_mode(),
            Tp::Disable,
            "never TLS over a Unix socket"
        );
        let c = parse("host=h user=u password=p dbname=d application_name=a connect_timeout=1 keepalives_count=3").unwrap();
        let t = c.tokio_config(&c.endpoints()[0]);
        assert_eq!(t.get_user(), Some("u"));
        assert_eq!(t.get_password(), Some(&b"p"[..]));
        assert_eq!(t.get_dbname(), Some("d"));
        assert_eq!(t.get_application_name(), Some("a"));
        assert_eq!(
            t.get_connect_timeout(),
            Some(&Duration::from_secs(2)),
            "libpq raises 1 s to 2 s"
        );
        assert_eq!(t.get_keepalives_retries(), Some(3));
    }

    #[test]
    fn password_file() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let pgpass = home.path().join(".pgpass");
        std::fs::write(
            &pgpass,
            "# comment\ndb.example:5432:shop:alice:first\n*:*:*:bob:b\\:c\\\\d\nlocalhost:5433:*:carol:sock\n",
        )
        .unwrap();
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let pw = |s: &str| {
            let c = Config::from_conninfo_with_env(s, &no_env, Some(home.path())).unwrap();
            c.passfile_password(&c.endpoints()[0])
        };
        assert_eq!(
            pw("host=db.example dbname=shop user=alice").as_deref(),
            Some("first")
        );
        assert_eq!(pw("host=db.example dbname=other user=alice"), None);
        assert_eq!(pw("host=x user=bob").as_deref(), Some("b:c\\d"));
        assert_eq!(
            pw("port=5433 user=carol").as_deref(),
            Some("sock"),
            "the default socket is localhost"
        );
        assert_eq!(
            pw("host=db.example dbname=shop user=alice password=given"),
            None
        );
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            pw("host=x user=bob"),
            None,
            "a file others can read is ignored"
        );
    }

    #[test]
    fn debug_output_hides_passwords() {
        let c = parse("password=s3cret sslpassword=k3y user=u").unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("k3y"),
            "{shown}"
        );
        assert!(shown.contains("\"user\": \"u\""), "{shown}");
    }

    #[test]
    fn recognises_connection_strings() {
        assert!(is_connection_string("host=x"));
        assert!(is_connection_string("postgresql://x"));
        assert!(!is_connection_string("mydb"));
    }
}

//! libpq connection strings: `key=value` lists and `postgresql://` URIs, with libpq's
//! environment variables and defaults, as one typed [`Config`].
//!
//! A connection string goes through four steps, one module each: [`parse`] reads it into
//! option values as text, [`options`] adds the environment's and the defaults, [`values`]
//! checks them and fills the typed fields ([`hosts`] pairs hosts and ports), and [`tokio_config`]
//! hands the result to tokio-postgres. [`pgpass`] and [`home`] find the files libpq reads.

mod auth;
mod home;
mod hosts;
mod options;
mod parse;
mod pgpass;
mod tokio_config;
mod values;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::tokio_postgres::config::TargetSessionAttrs;

use crate::error::Error;

pub use self::auth::{AuthMethod, RequireAuth, SslCertMode};
pub use self::home::home_dir;
pub use self::parse::is_connection_string;

/// Where the server's Unix socket is when no host is given (Debian's libpq default).
///
/// ```
/// use pgssl_client::{Config, Endpoint, DEFAULT_SOCKET_DIR};
///
/// let config = Config::from_conninfo_with_env("dbname=app", &|_| None, None)?;
/// let Endpoint::Unix { dir, port } = &config.endpoints()[0] else { panic!("a socket") };
/// assert_eq!(dir.to_str(), Some(DEFAULT_SOCKET_DIR));
/// assert_eq!(*port, 5432);
/// # Ok::<(), pgssl_client::Error>(())
/// ```
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// libpq's `sslmode`: how hard the client insists on TLS and what it verifies.
///
/// Without `sslmode` (and `PGSSLMODE`), libpq's default is `prefer`.
///
/// ```
/// use pgssl_client::{Config, SslMode};
///
/// let parse = |s: &str| Config::from_conninfo_with_env(s, &|_| None, None);
/// assert_eq!(parse("host=db")?.ssl_mode(), SslMode::Prefer);
/// assert_eq!(parse("host=db sslmode=verify-full")?.ssl_mode(), SslMode::VerifyFull);
/// assert_eq!(SslMode::VerifyFull.as_str(), "verify-full");
/// # Ok::<(), pgssl_client::Error>(())
/// ```
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
///
/// ```
/// use pgssl_client::TlsVersion;
///
/// assert!(TlsVersion::Tls12 < TlsVersion::Tls13);
/// assert_eq!(TlsVersion::Tls13.as_str(), "TLSv1.3");
/// ```
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
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLSv1",
            TlsVersion::Tls11 => "TLSv1.1",
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }

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
///
/// ```
/// use pgssl_client::{Config, Endpoint};
///
/// let config = Config::from_conninfo_with_env(
///     "host=db1,db2 port=5432,5433 hostaddr=,10.0.0.2",
///     &|_| None,
///     None,
/// )?;
/// assert_eq!(
///     config.endpoints(),
///     [
///         Endpoint::Tcp { host: Some("db1".into()), hostaddr: None, port: 5432 },
///         Endpoint::Tcp {
///             host: Some("db2".into()),
///             hostaddr: Some("10.0.0.2".parse().unwrap()),
///             port: 5433,
///         },
///     ]
/// );
/// # Ok::<(), pgssl_client::Error>(())
/// ```
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

/// libpq's `channel_binding`: whether SCRAM authentication binds to the TLS channel.
///
/// ```
/// use pgssl_client::{ChannelBinding, Config};
///
/// let config = Config::from_conninfo_with_env("channel_binding=require", &|_| None, None)?;
/// assert_eq!(config.channel_binding(), ChannelBinding::Require);
/// assert_eq!(ChannelBinding::Prefer.as_str(), "prefer");
/// # Ok::<(), pgssl_client::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
    /// Never bind.
    Disable,
    /// Bind when the server offers SCRAM-SHA-256-PLUS.
    Prefer,
    /// Refuse to authenticate without channel binding.
    Require,
}

impl ChannelBinding {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelBinding::Disable => "disable",
            ChannelBinding::Prefer => "prefer",
            ChannelBinding::Require => "require",
        }
    }
}

/// A parsed libpq connection string with libpq's environment fallbacks and defaults applied.
///
/// Each libpq option that pgssl implements is a typed field; options given as empty strings
/// count as not given, as in libpq. It also parses with `str::parse`, like
/// [`Config::from_conninfo`].
///
/// ```
/// use pgssl_client::{ChannelBinding, Config, SslMode};
///
/// let config: Config = "postgresql://alice@db.example.com/app?sslmode=verify-full\
///     &sslrootcert=root.crt&channel_binding=require"
///     .parse()?;
/// assert_eq!(config.user(), "alice");
/// assert_eq!(config.dbname(), "app");
/// assert_eq!(config.ssl_mode(), SslMode::VerifyFull);
/// assert_eq!(config.channel_binding(), ChannelBinding::Require);
/// assert_eq!(config.ssl_root_cert(), Some(std::path::Path::new("root.crt")));
/// # Ok::<(), pgssl_client::Error>(())
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) passfile: Option<PathBuf>,
    pub(crate) dbname: String,
    pub(crate) options: Option<String>,
    /// `application_name`, else `fallback_application_name`.
    pub(crate) application_name: Option<String>,
    pub(crate) channel_binding: ChannelBinding,
    /// At least 2 s, as libpq raises it.
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) keepalives: Option<bool>,
    pub(crate) keepalives_idle: Option<Duration>,
    pub(crate) keepalives_interval: Option<Duration>,
    pub(crate) keepalives_count: Option<u32>,
    pub(crate) tcp_user_timeout: Option<Duration>,
    pub(crate) target_session_attrs: TargetSessionAttrs,
    /// `load_balance_hosts=random`.
    pub(crate) load_balance_random: bool,
    pub(crate) ssl_mode: SslMode,
    /// `sslnegotiation=direct`.
    pub(crate) direct_ssl: bool,
    /// `sslcertmode` (libpq 16).
    pub(crate) ssl_cert_mode: SslCertMode,
    /// `require_auth` (libpq 16).
    pub(crate) require_auth: Option<RequireAuth>,
    pub(crate) ssl_cert: Option<PathBuf>,
    pub(crate) ssl_key: Option<PathBuf>,
    pub(crate) ssl_password: Option<String>,
    pub(crate) ssl_root_cert: Option<PathBuf>,
    pub(crate) ssl_crl: Option<PathBuf>,
    pub(crate) ssl_crl_dir: Option<PathBuf>,
    pub(crate) ssl_sni: bool,
    pub(crate) min_version: Option<TlsVersion>,
    pub(crate) max_version: Option<TlsVersion>,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) home: Option<PathBuf>,
    /// Whether changed TLS files are read again for the next connection (the default).
    pub(crate) reload_tls_files: bool,
}

impl std::fmt::Debug for Config {
    /// Passwords are not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |p: &Option<String>| p.as_ref().map(|_| "********");
        f.debug_struct("Config")
            .field("user", &self.user)
            .field("password", &hidden(&self.password))
            .field("dbname", &self.dbname)
            .field("endpoints", &self.endpoints)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("ssl_cert", &self.ssl_cert)
            .field("ssl_key", &self.ssl_key)
            .field("ssl_password", &hidden(&self.ssl_password))
            .field("ssl_crl", &self.ssl_crl)
            .field("ssl_crl_dir", &self.ssl_crl_dir)
            .field("channel_binding", &self.channel_binding)
            .field("application_name", &self.application_name)
            .finish_non_exhaustive()
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
    ///
    /// ```
    /// let config = pgssl_client::Config::from_conninfo("host=db.example.com sslmode=require")?;
    /// assert_eq!(config.ssl_mode().as_str(), "require");
    /// // A typo is an error, as in libpq.
    /// let err = pgssl_client::Config::from_conninfo("host=db sslmode=verify_full").unwrap_err();
    /// assert!(err.to_string().contains("sslmode"), "{err}");
    /// # Ok::<(), pgssl_client::Error>(())
    /// ```
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
    ///
    /// ```
    /// use std::path::Path;
    ///
    /// let env = |name: &str| (name == "PGSSLMODE").then(|| "verify-ca".to_string());
    /// let config = pgssl_client::Config::from_conninfo_with_env(
    ///     "host=db.example.com",
    ///     &env,
    ///     Some(Path::new("/home/alice")),
    /// )?;
    /// assert_eq!(config.ssl_mode(), pgssl_client::SslMode::VerifyCa);
    /// assert_eq!(config.home(), Some(Path::new("/home/alice")));
    /// # Ok::<(), pgssl_client::Error>(())
    /// ```
    pub fn from_conninfo_with_env(
        conninfo: &str,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Config, Error> {
        let explicit = parse::parse_conninfo(conninfo)?;
        Config::from_options(explicit, env, home)
    }

    /// Builds a configuration from keyword/value pairs (libpq's `PQconnectdbParams` without
    /// `expand_dbname`).
    ///
    /// ```
    /// let config = pgssl_client::Config::from_pairs(
    ///     [("host", "db.example.com"), ("user", "alice"), ("sslmode", "verify-full")],
    ///     &|_| None,
    ///     None,
    /// )?;
    /// assert_eq!(config.user(), "alice");
    /// // The database name defaults to the user name.
    /// assert_eq!(config.dbname(), "alice");
    /// # Ok::<(), pgssl_client::Error>(())
    /// ```
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Config, Error> {
        let mut explicit = options::Options::new();
        for (key, value) in pairs {
            options::store(&mut explicit, key, value.to_string())?;
        }
        Config::from_options(explicit, env, home)
    }

    fn from_options(
        mut values: options::Options,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Config, Error> {
        let sslmode_given = values.contains_key("sslmode") || env("PGSSLMODE").is_some();
        options::add_defaults(&mut values, env)?;
        Config::from_values(&values, sslmode_given, home)
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
        &self.user
    }

    /// The password given (`password`, `PGPASSWORD`), if any; the password file is read per
    /// endpoint by [`Config::passfile_password`].
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The database name in force (the user name when none was given).
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The application name sent to the server (`application_name`, else
    /// `fallback_application_name`).
    pub fn application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }

    /// The `channel_binding` in force.
    pub fn channel_binding(&self) -> ChannelBinding {
        self.channel_binding
    }

    /// The `sslrootcert` given, if any (`system` stands for the system's trust store).
    pub fn ssl_root_cert(&self) -> Option<&Path> {
        self.ssl_root_cert.as_deref()
    }

    /// The `sslcert` given, if any (without it, `~/.postgresql/postgresql.crt` is used when it
    /// exists).
    pub fn ssl_cert(&self) -> Option<&Path> {
        self.ssl_cert.as_deref()
    }

    /// The `sslkey` given, if any (without it, `~/.postgresql/postgresql.key`).
    pub fn ssl_key(&self) -> Option<&Path> {
        self.ssl_key.as_deref()
    }

    /// The home directory used for `~/.postgresql` files, if known.
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }

    /// Whether a [`crate::Connector`] or [`crate::MakeTls`] built from this configuration
    /// follows its TLS files (`sslrootcert`, `sslcrl`, `sslcrldir`, `sslcert`, `sslkey`)
    /// when they change: on by default, as libpq reads them for every connection.
    pub fn reload_tls_files(&self) -> bool {
        self.reload_tls_files
    }

    /// Turns following the TLS files off (or on again) for what is built from this
    /// configuration afterwards. Off, the files are read once, at the first connection,
    /// and changing or deleting them has no effect on later connections.
    ///
    /// ```
    /// let mut config: pgssl_client::Config = "host=db sslmode=verify-full".parse()?;
    /// assert!(config.reload_tls_files());
    /// config.set_reload_tls_files(false);
    /// assert!(!config.reload_tls_files());
    /// # Ok::<(), pgssl_client::Error>(())
    /// ```
    pub fn set_reload_tls_files(&mut self, reload: bool) -> &mut Config {
        self.reload_tls_files = reload;
        self
    }

    /// `sslrootcert=system`: the system's trust store instead of a file.
    pub(crate) fn system_roots(&self) -> bool {
        self.ssl_root_cert.as_deref() == Some(Path::new("system"))
    }

    /// A file option: the path given, else `~/.postgresql/<default_name>`.
    fn file_or_default(&self, given: &Option<PathBuf>, default_name: &str) -> Option<PathBuf> {
        given.clone().or_else(|| {
            self.home
                .as_ref()
                .map(|h| h.join(".postgresql").join(default_name))
        })
    }

    /// The root certificate file libpq would read.
    pub(crate) fn root_cert_file(&self) -> Option<PathBuf> {
        self.file_or_default(&self.ssl_root_cert, "root.crt")
    }

    /// The client certificate file libpq would read.
    pub(crate) fn cert_file(&self) -> Option<PathBuf> {
        self.file_or_default(&self.ssl_cert, "postgresql.crt")
    }

    /// The client key file libpq would read.
    pub(crate) fn key_file(&self) -> Option<PathBuf> {
        self.file_or_default(&self.ssl_key, "postgresql.key")
    }

    /// The CRL file libpq would read: `sslcrl`, else `~/.postgresql/root.crl` when
    /// `sslcrldir` is not given either.
    pub(crate) fn crl_file(&self) -> Option<PathBuf> {
        match (&self.ssl_crl, &self.ssl_crl_dir) {
            (None, None) => self.home.as_ref().map(|h| h.join(".postgresql/root.crl")),
            (file, _) => file.clone(),
        }
    }
}

#[cfg(test)]
mod tests;

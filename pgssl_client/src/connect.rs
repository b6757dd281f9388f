//! Connection attempts in libpq's order: each host in turn, and per host the
//! `allow`/`prefer` retries of `PQconnectPoll`.

use std::sync::{Arc, Mutex};

use tokio_postgres::config::SslMode as TpMode;
use tokio_postgres::{Client, Connection, Socket};

use crate::config::{Config, Endpoint, SslCertMode, SslMode};
use crate::error::Error;
use crate::tls::{AttemptLog, MakeTls, TlsFiles, TlsInfo, TlsSetup, TlsStream};

/// The connection type [`connect`] returns; poll it (usually `tokio::spawn`) to drive the
/// client.
///
/// ```no_run
/// # async fn run() -> Result<(), pgssl_client::Error> {
/// let (client, connection): (tokio_postgres::Client, pgssl_client::PgConnection) =
///     pgssl_client::connect("host=db.example.com sslmode=verify-full").await?;
/// tokio::spawn(async move {
///     if let Err(e) = connection.await {
///         eprintln!("connection error: {e}");
///     }
/// });
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
pub type PgConnection = Connection<Socket, TlsStream<Socket>>;

/// How a successful connection was made; see [`Connector::connect_with_info`].
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The endpoint that accepted.
    pub endpoint: Endpoint,
    /// The sslmode in force.
    pub ssl_mode: SslMode,
    /// The TLS session, or `None` for a plaintext connection.
    pub tls: Option<TlsInfo>,
}

/// Connects with libpq's policy: `Config` parsed from `conninfo` with the process
/// environment, the TLS configuration built once, every host tried in order.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let (client, connection) = pgssl_client::connect(
///     "host=db.example.com user=alice sslmode=verify-full \
///      sslrootcert=root.crt sslcert=alice.crt sslkey=alice.key",
/// )
/// .await?;
/// tokio::spawn(connection);
/// let user: String = client.query_one("SELECT current_user::text", &[]).await?.get(0);
/// # let _ = user;
/// # Ok(())
/// # }
/// ```
///
/// A connection string that libpq would refuse fails before any network traffic:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let err = pgssl_client::connect("host=db sslmode=verify-full sslrootcert=/nonexistent/root.crt")
///     .await
///     .err()
///     .expect("no root certificate file");
/// assert!(err.to_string().contains("/nonexistent/root.crt"), "{err}");
/// # }
/// ```
pub async fn connect(conninfo: &str) -> Result<(Client, PgConnection), Error> {
    let config = Config::from_conninfo(conninfo)?;
    Connector::new(config).connect().await
}

/// A [`Config`] and its TLS files; connect as often as needed. The files are read at the
/// first connection and again whenever they change, as libpq reads them for every
/// connection (see [`MakeTls`] on certificates that change).
///
/// ```no_run
/// # async fn run() -> Result<(), pgssl_client::Error> {
/// use pgssl_client::{Config, Connector};
///
/// let connector = Connector::new(Config::from_conninfo(
///     "host=db1.example.com,db2.example.com sslmode=verify-full sslrootcert=root.crt",
/// )?);
/// let (client, connection, info) = connector.connect_with_info().await?;
/// tokio::spawn(connection);
/// if let Some(tls) = &info.tls {
///     println!("{:?}: {} {}", info.endpoint, tls.version, tls.cipher);
/// }
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
pub struct Connector {
    config: Config,
    /// `None` with `sslmode=disable`.
    files: Option<Arc<TlsFiles>>,
}

impl Connector {
    /// A connector for `config`; its certificate files are read when connecting. A file
    /// problem is not an error yet: like libpq, `prefer` then connects in plaintext and the
    /// other modes report it when they try TLS.
    pub fn new(config: Config) -> Connector {
        let files =
            (config.ssl_mode != SslMode::Disable).then(|| Arc::new(TlsFiles::new(config.clone())));
        Connector { config, files }
    }

    /// The TLS setup for the next connection, from the files as they are now.
    fn tls(&self) -> Result<Arc<TlsSetup>, Error> {
        match &self.files {
            Some(files) => files.current(),
            None => Err(Error::Tls {
                reason: "sslmode=disable".into(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A [`MakeTls`] sharing this connector's TLS files (for
    /// `tokio_postgres::Config::connect` or a pool); an error when the files cannot be
    /// read now or sslmode is `disable`.
    ///
    /// ```
    /// use pgssl_client::{Config, Connector};
    ///
    /// let plain = Connector::new(Config::from_conninfo_with_env("sslmode=disable", &|_| None, None)?);
    /// assert!(plain.make_tls().is_err());
    /// let tls = Connector::new(Config::from_conninfo_with_env("sslmode=require", &|_| None, None)?);
    /// assert!(tls.make_tls().is_ok());
    /// # Ok::<(), pgssl_client::Error>(())
    /// ```
    pub fn make_tls(&self) -> Result<MakeTls, Error> {
        self.tls()?;
        let files = self
            .files
            .clone()
            .expect("TLS files unless sslmode=disable");
        Ok(MakeTls::from_files(
            files,
            Some(Arc::new(Mutex::new(AttemptLog::default()))),
        ))
    }

    /// Connects to the first host that accepts.
    pub async fn connect(&self) -> Result<(Client, PgConnection), Error> {
        self.connect_with_info().await.map(|(c, conn, _)| (c, conn))
    }

    /// Connects, and also tells how (endpoint, TLS version, certificates, checks made).
    pub async fn connect_with_info(&self) -> Result<(Client, PgConnection, ConnectionInfo), Error> {
        // One version of the files for all the hosts of this connection.
        let tls = self.tls();
        let mut errors = Vec::new();
        for endpoint in &self.config.endpoints {
            match self.connect_endpoint(endpoint, &tls).await {
                Ok((client, conn, tls)) => {
                    let info = ConnectionInfo {
                        endpoint: endpoint.clone(),
                        ssl_mode: self.config.ssl_mode,
                        tls,
                    };
                    return Ok((client, conn, info));
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.len() == 1 {
            Err(errors.pop().expect("one error"))
        } else {
            Err(Error::AllHostsFailed(errors))
        }
    }

    async fn connect_endpoint(
        &self,
        endpoint: &Endpoint,
        tls: &Result<Arc<TlsSetup>, Error>,
    ) -> Result<(Client, PgConnection, Option<TlsInfo>), Error> {
        if let Endpoint::Unix { .. } = endpoint {
            return self
                .attempt(endpoint, tls, TpMode::Disable)
                .await
                .map_err(|(e, _)| e);
        }
        if self.config.ssl_mode == SslMode::VerifyFull {
            if let Endpoint::Tcp { host: None, .. } = endpoint {
                // libpq: "host name must be specified for a verified SSL connection".
                return Err(Error::InvalidValue {
                    key: "host".into(),
                    value: String::new(),
                    expected: "a host name to check the certificate against (sslmode=verify-full with only hostaddr)"
                        .into(),
                });
            }
        }
        match self.config.ssl_mode {
            SslMode::Disable => self
                .attempt(endpoint, tls, TpMode::Disable)
                .await
                .map_err(|(e, _)| e),
            SslMode::Allow => match self.attempt(endpoint, tls, TpMode::Disable).await {
                Ok(c) => Ok(c),
                Err((e, _)) if refused_before_authentication(&e) => {
                    tls.clone()?;
                    self.attempt(endpoint, tls, TpMode::Require)
                        .await
                        .map_err(|(e, _)| e)
                }
                Err((e, _)) => Err(e),
            },
            SslMode::Prefer => {
                if tls.is_err() {
                    return self
                        .attempt(endpoint, tls, TpMode::Disable)
                        .await
                        .map_err(|(e, _)| e);
                }
                match self.attempt(endpoint, tls, TpMode::Prefer).await {
                    Ok(c) => Ok(c),
                    Err((e, tls_used))
                        if tls_used
                            && (is_handshake_error(&e) || refused_before_authentication(&e)) =>
                    {
                        self.attempt(endpoint, tls, TpMode::Disable)
                            .await
                            .map_err(|(e, _)| e)
                    }
                    Err((e, _)) => Err(e),
                }
            }
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tls.clone()?;
                self.attempt(endpoint, tls, TpMode::Require)
                    .await
                    .map_err(|(e, _)| e)
            }
        }
    }

    /// One connection attempt; on failure also says whether a TLS handshake was started.
    async fn attempt(
        &self,
        endpoint: &Endpoint,
        tls: &Result<Arc<TlsSetup>, Error>,
        mode: TpMode,
    ) -> Result<(Client, PgConnection, Option<TlsInfo>), (Error, bool)> {
        let mut config = self.config.tokio_config(endpoint);
        if !matches!(endpoint, Endpoint::Unix { .. }) {
            config.ssl_mode(mode);
        }
        let log = Arc::new(Mutex::new(AttemptLog::default()));
        let setup = match tls {
            Ok(setup) => Some(setup.clone()),
            // tokio-postgres does not ask for TLS with sslmode=disable.
            Err(_) if mode == TpMode::Disable => None,
            Err(e) => return Err((e.clone(), false)),
        };
        let plaintext = mode == TpMode::Disable || matches!(endpoint, Endpoint::Unix { .. });
        if plaintext {
            if let Some(rule) = &self.config.require_auth {
                return Err((
                    Error::Unsupported {
                        key: "require_auth".into(),
                        value: rule.text.clone(),
                        reason: "pgssl checks the server's authentication requests over TLS only"
                            .into(),
                    },
                    false,
                ));
            }
        }
        let make_tls = MakeTls::with_log(setup, log.clone());
        let result = config.connect(make_tls).await;
        let log = std::mem::take(&mut *log.lock().expect("attempt log"));
        match result {
            Ok(_) if log.info.is_none() && self.config.ssl_cert_mode == SslCertMode::Require => {
                Err((
                    Error::CertificateNotExchanged {
                        reason: "server did not request an SSL certificate",
                    },
                    false,
                ))
            }
            // prefer against a server without TLS continued in plaintext, unwatched.
            Ok(_) if log.info.is_none() && self.config.require_auth.is_some() => Err((
                Error::Unsupported {
                    key: "require_auth".into(),
                    value: self
                        .config
                        .require_auth
                        .as_ref()
                        .map(|r| r.text.clone())
                        .unwrap_or_default(),
                    reason: "pgssl checks the server's authentication requests over TLS only"
                        .into(),
                },
                false,
            )),
            Ok((client, conn)) => Ok((client, conn, log.info)),
            Err(e) => Err((classify(endpoint, e, self.config.ssl_mode), log.tls_started)),
        }
    }
}

fn endpoint_text(e: &Endpoint) -> String {
    match e {
        Endpoint::Tcp {
            host,
            hostaddr,
            port,
        } => match (host, hostaddr) {
            (Some(h), Some(a)) => format!("\"{h}\" ({a}), port {port}"),
            (Some(h), None) => format!("\"{h}\", port {port}"),
            (None, Some(a)) => format!("\"{a}\", port {port}"),
            (None, None) => format!("port {port}"),
        },
        Endpoint::Unix { dir, port } => format!("socket \"{}/.s.PGSQL.{port}\"", dir.display()),
    }
}

/// Our own error from inside tokio-postgres' chain (a certificate check), else the
/// tokio-postgres error with the endpoint.
fn classify(endpoint: &Endpoint, e: tokio_postgres::Error, mode: SslMode) -> Error {
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(mine) = s.downcast_ref::<Error>() {
            return mine.clone();
        }
        // A refusal from inside the stream (channel binding, require_auth) comes wrapped in an io::Error,
        // whose `source` skips the wrapped error itself.
        if let Some(mine) = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<Error>())
        {
            return mine.clone();
        }
        source = s.source();
    }
    if e.as_db_error().is_none() && e.to_string().contains("server does not support TLS") {
        return Error::ServerRefusedTls {
            sslmode: mode.as_str(),
        };
    }
    Error::Postgres {
        endpoint: endpoint_text(endpoint),
        source: Arc::new(e),
    }
}

/// A failed TLS handshake (libpq's `pqsecure_open_client` failing).
fn is_handshake_error(e: &Error) -> bool {
    // libpq fails sslcertmode and require_auth while authenticating, with no retry.
    !matches!(
        e,
        Error::Postgres { .. }
            | Error::ServerRefusedTls { .. }
            | Error::AuthRequirement { .. }
            | Error::CertificateNotExchanged { .. }
    )
}

/// An error the server sent before authentication completed, which is when libpq retries
/// `allow` with TLS and `prefer` without. tokio-postgres does not say at which step an
/// error came, so the SQLSTATE decides: authentication failures (class 28, which includes
/// "no pg_hba.conf entry"), too many connections, and "cannot connect now".
fn refused_before_authentication(e: &Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        let code = db.code().code();
        code.starts_with("28") || code == "53300" || code == "57P03"
    })
}

//! The Rust clients compared: pgssl_client, tokio-postgres with postgres-openssl,
//! tokio-postgres-rustls with a stock rustls configuration, and plaintext.
//!
//! Each contender builds its TLS configuration once, as an application with a
//! connection pool would, and then connects as often as asked.

use std::path::Path;
use std::sync::Arc;

use openssl::ssl::{SslConnector, SslFiletype, SslMethod};
use pgssl_client::{Config, Connector};
use pgssl_tests::CertFiles;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

/// What the benchmark's functions return; any error means a comparison could not run.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Where to connect and as whom.
#[derive(Clone)]
pub struct Target {
    /// The server's TCP port on 127.0.0.1.
    pub port: u16,
    /// The role.
    pub user: String,
    /// The CA certificate that signed the server's certificate.
    pub root_cert: std::path::PathBuf,
}

/// rustls' crypto providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// ring.
    Ring,
    /// aws-lc-rs.
    AwsLc,
}

impl Provider {
    /// The one pgssl_client uses.
    pub const PGSSL: Provider = Provider::AwsLc;

    /// The crate's name, for row names.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Ring => "ring",
            Provider::AwsLc => "aws-lc-rs",
        }
    }

    /// The other one.
    pub fn other(self) -> Provider {
        match self {
            Provider::Ring => Provider::AwsLc,
            Provider::AwsLc => Provider::Ring,
        }
    }
}

enum Kind {
    Pgssl(Box<Connector>),
    Openssl(tokio_postgres::Config, postgres_openssl::MakeTlsConnector),
    Rustls(
        tokio_postgres::Config,
        tokio_postgres_rustls::MakeRustlsConnect,
    ),
    Plain(tokio_postgres::Config),
}

/// One client library with its configuration, ready to connect.
pub struct Contender {
    kind: Kind,
}

/// An open connection: the client and the task that drives it.
pub struct Session {
    /// The tokio-postgres client.
    pub client: Client,
    driver: JoinHandle<()>,
}

impl Session {
    /// Sends Terminate and waits until the connection is closed.
    pub async fn close(self) {
        drop(self.client);
        let _ = self.driver.await;
    }
}

fn spawn_driver<F>(connection: F) -> JoinHandle<()>
where
    F: std::future::Future + Send + 'static,
{
    tokio::spawn(async move {
        let _ = connection.await;
    })
}

fn tokio_config(target: &Target, mode: SslMode) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(target.port)
        .user(&target.user)
        .dbname("postgres")
        .ssl_mode(mode);
    config
}

impl Contender {
    /// pgssl_client with `sslmode=verify-full` and the client certificate, from the
    /// conninfo psql would take; no environment, `home` as the home directory.
    pub fn pgssl(target: &Target, files: &CertFiles, home: &Path) -> BenchResult<Contender> {
        let conninfo =
            pgssl_tests::conninfo::verify_full(target.port, &target.user, &target.root_cert, files);
        let config = Config::from_conninfo_with_env(&conninfo, &|_| None, Some(home))?;
        Ok(Contender {
            kind: Kind::Pgssl(Box::new(Connector::new(config))),
        })
    }

    /// tokio-postgres with postgres-openssl: OpenSSL's chain and host-name checks
    /// (the server certificate has SANs), the client certificate.
    pub fn openssl(target: &Target, files: &CertFiles) -> BenchResult<Contender> {
        let mut builder = SslConnector::builder(SslMethod::tls())?;
        builder.set_ca_file(&target.root_cert)?;
        builder.set_certificate_chain_file(&files.cert)?;
        builder.set_private_key_file(&files.key, SslFiletype::PEM)?;
        let tls = postgres_openssl::MakeTlsConnector::new(builder.build());
        Ok(Contender {
            kind: Kind::Openssl(tokio_config(target, SslMode::Require), tls),
        })
    }

    /// tokio-postgres-rustls with a stock rustls configuration: rustls' own
    /// WebPKI verifier (certificates with SANs, X.509 v3), the client certificate,
    /// with pgssl_client's crypto provider.
    pub fn stock_rustls(target: &Target, files: &CertFiles) -> BenchResult<Contender> {
        Self::stock_rustls_with(target, files, Provider::PGSSL)
    }

    /// [`Contender::stock_rustls`] with the crypto provider given.
    pub fn stock_rustls_with(
        target: &Target,
        files: &CertFiles,
        provider: Provider,
    ) -> BenchResult<Contender> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in read_certs(&target.root_cert)? {
            roots.add(cert)?;
        }
        let chain = read_certs(&files.cert)?;
        let key = openssl::pkey::PKey::private_key_from_pem(&std::fs::read(&files.key)?)?;
        let key = PrivateKeyDer::try_from(key.private_key_to_pkcs8()?)?;
        let provider = Arc::new(match provider {
            Provider::Ring => rustls::crypto::ring::default_provider(),
            Provider::AwsLc => rustls::crypto::aws_lc_rs::default_provider(),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
        Ok(Contender {
            kind: Kind::Rustls(tokio_config(target, SslMode::Require), tls),
        })
    }

    /// tokio-postgres without TLS (the server trusts plaintext connections from
    /// 127.0.0.1 in the benchmark's cluster).
    pub fn plaintext(target: &Target) -> Contender {
        Contender {
            kind: Kind::Plain(tokio_config(target, SslMode::Disable)),
        }
    }

    /// Opens a connection.
    pub async fn connect(&self) -> BenchResult<Session> {
        Ok(match &self.kind {
            Kind::Pgssl(connector) => {
                let (client, connection) = connector.connect().await?;
                Session {
                    client,
                    driver: spawn_driver(connection),
                }
            }
            Kind::Openssl(config, tls) => {
                let (client, connection) = config.connect(tls.clone()).await?;
                Session {
                    client,
                    driver: spawn_driver(connection),
                }
            }
            Kind::Rustls(config, tls) => {
                let (client, connection) = config.connect(tls.clone()).await?;
                Session {
                    client,
                    driver: spawn_driver(connection),
                }
            }
            Kind::Plain(config) => {
                let (client, connection) = config.connect(NoTls).await?;
                Session {
                    client,
                    driver: spawn_driver(connection),
                }
            }
        })
    }

    /// One cycle of the connection set-up benchmark: connect, `SELECT 1`, close.
    pub async fn cycle(&self) -> BenchResult<()> {
        let session = self.connect().await?;
        session.client.simple_query("SELECT 1").await?;
        session.close().await;
        Ok(())
    }
}

fn read_certs(path: &Path) -> BenchResult<Vec<CertificateDer<'static>>> {
    let certs = openssl::x509::X509::stack_from_pem(&std::fs::read(path)?)?;
    certs
        .iter()
        .map(|c| Ok(CertificateDer::from(c.to_der()?)))
        .collect()
}

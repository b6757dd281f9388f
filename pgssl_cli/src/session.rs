//! One connection for the commands that run SQL: the argument read as psql reads it, libpq's
//! connection policy, and the connection driven on the runtime until [`Session::close`].

use pgssl_client::{Config, ConnectionInfo, Connector};
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use crate::config_from_arg;

/// An open connection and how it was made.
pub(crate) struct Session {
    /// The client to run SQL on.
    pub client: Client,
    /// The endpoint, sslmode and TLS session that accepted.
    pub info: ConnectionInfo,
    driver: JoinHandle<Result<(), tokio_postgres::Error>>,
}

impl Session {
    /// Connects as psql would with `arg` (a connection string, a database name, or nothing).
    pub(crate) async fn open_arg(arg: Option<&str>) -> Result<(Session, Config), String> {
        let config = config_from_arg(arg)?;
        let session = Session::open(&config).await?;
        Ok((session, config))
    }

    /// Connects with `config`.
    pub(crate) async fn open(config: &Config) -> Result<Session, String> {
        let (client, connection, info) = Connector::new(config.clone())
            .connect_with_info()
            .await
            .map_err(|e| e.to_string())?;
        Ok(Session {
            client,
            info,
            driver: tokio::spawn(connection),
        })
    }

    /// `session_user`, the role the server logged in.
    pub(crate) async fn session_user(&self) -> Result<String, String> {
        Ok(self
            .client
            .query_one("SELECT session_user::text", &[])
            .await
            .map_err(|e| format!("query failed: {e}"))?
            .get(0))
    }

    /// Ends the connection and waits for it to close.
    pub(crate) async fn close(self) {
        drop(self.client);
        let _ = self.driver.await;
    }
}

/// What to say when a pgssl function refuses: the server's message with its SQLSTATE.
pub(crate) fn refusal(function: &'static str) -> impl Fn(tokio_postgres::Error) -> String {
    move |e| match e.as_db_error() {
        Some(db) => format!(
            "{function} refused the request: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        ),
        None => format!("{function} failed: {e}"),
    }
}

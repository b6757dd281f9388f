//! diesel-async over a bb8 pool, with `sslmode=verify-full` and a client certificate.
//!
//! ```text
//! cargo run -p pgssl_client --example diesel_async -- \
//!     "host=db.example.com dbname=app user=alice sslmode=verify-full \
//!      sslrootcert=root.crt sslcert=alice.crt sslkey=alice.key"
//! ```
//!
//! diesel-async connects without TLS unless told otherwise: its pool manager takes a
//! `custom_setup` function that makes each connection, which is where pgssl_client comes in.
//! The connection string reaches that function as the pool's "URL".

use diesel::sql_types::Text;
use diesel::{ConnectionError, ConnectionResult, QueryableByName};
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::future::{BoxFuture, FutureExt};
use pgssl_client::{Config, MakeTls};

/// diesel's error for a failed connection, with every cause (tokio-postgres says "error
/// performing TLS handshake"; its source says which certificate check failed).
fn bad(e: &dyn std::error::Error) -> ConnectionError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    ConnectionError::BadConnection(text)
}

/// One connection: libpq's reading of the connection string, then pgssl_client's TLS.
fn establish(conninfo: &str) -> BoxFuture<'_, ConnectionResult<AsyncPgConnection>> {
    async move {
        let config = Config::from_conninfo(conninfo).map_err(|e| bad(&e))?;
        let tls = MakeTls::new(&config).map_err(|e| bad(&e))?;
        let (client, connection) = config
            .to_tokio_postgres()
            .connect(tls)
            .await
            .map_err(|e| bad(&e))?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    }
    .boxed()
}

#[derive(QueryableByName)]
struct Session {
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Text)]
    client_dn: String,
    #[diesel(sql_type = Text)]
    role: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let conninfo = std::env::args().nth(1).unwrap_or_default();
    let mut setup = ManagerConfig::default();
    setup.custom_setup = Box::new(establish);
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(conninfo, setup);
    // `build` opens one connection before it returns, without retrying: a refused
    // connection (a certificate that does not verify, say) fails here with pgssl_client's
    // error. bb8 would otherwise retry in the background and `get` report a timeout.
    let pool = Pool::builder()
        .max_size(4)
        .min_idle(Some(1))
        .retry_connection(false)
        .build(manager)
        .await?;

    let mut conn = pool.get().await?;
    let session: Session = diesel::sql_query(
        "SELECT version, client_dn, current_user::text AS role FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .get_result(&mut *conn)
    .await?;
    println!(
        "diesel-async: {} as {}, client certificate {}",
        session.version, session.role, session.client_dn
    );
    Ok(())
}

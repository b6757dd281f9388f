//! A bb8 pool (bb8-postgres) whose connections use `sslmode=verify-full` and a client
//! certificate.
//!
//! ```text
//! cargo run -p pgssl_client --example bb8_postgres -- \
//!     "host=db.example.com dbname=app user=alice sslmode=verify-full \
//!      sslrootcert=root.crt sslcert=alice.crt sslkey=alice.key"
//! ```

use bb8_postgres::PostgresConnectionManager;
use pgssl_client::{Config, MakeTls};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let conninfo = std::env::args().nth(1).unwrap_or_default();
    let config = Config::from_conninfo(&conninfo)?;
    let manager =
        PostgresConnectionManager::new(config.to_tokio_postgres(), MakeTls::new(&config)?);
    // `build` opens one connection before it returns, without retrying: a refused
    // connection (a certificate that does not verify, say) fails here with pgssl_client's
    // error. bb8 would otherwise retry in the background and `get` report a timeout.
    let pool = bb8::Pool::builder()
        .max_size(4)
        .min_idle(Some(1))
        .retry_connection(false)
        .build(manager)
        .await?;

    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT version, client_dn, current_user::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    let (version, client_dn, user): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    println!("bb8-postgres: {version} as {user}, client certificate {client_dn}");
    Ok(())
}

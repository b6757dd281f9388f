//! One connection through tokio-postgres, with `sslmode=verify-full` and a client
//! certificate.
//!
//! ```text
//! cargo run -p pgssl_client --example tokio_postgres -- \
//!     "host=db.example.com dbname=app user=alice sslmode=verify-full \
//!      sslrootcert=root.crt sslcert=alice.crt sslkey=alice.key"
//! ```
//!
//! The argument is a libpq connection string or URI; without one, the `PG*` environment
//! variables and `~/.postgresql` files decide, as for psql.

use pgssl_client::{Config, MakeTls};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let conninfo = std::env::args().nth(1).unwrap_or_default();
    // Parsed as libpq parses it: sslrootcert, sslcert, sslkey and sslmode decide the TLS
    // set-up; the rest goes to tokio-postgres.
    let config = Config::from_conninfo(&conninfo)?;
    let tls = MakeTls::new(&config)?;
    let (client, connection) = config.to_tokio_postgres().connect(tls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("connection error: {e}");
        }
    });

    let row = client
        .query_one(
            "SELECT version, client_dn, current_user::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    let (version, client_dn, user): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    println!("tokio-postgres: {version} as {user}, client certificate {client_dn}");
    Ok(())
}

//! A deadpool-postgres pool whose connections use `sslmode=verify-full` and a client
//! certificate.
//!
//! ```text
//! cargo run -p pgssl_client --example deadpool_postgres -- \
//!     "host=db.example.com dbname=app user=alice sslmode=verify-full \
//!      sslrootcert=root.crt sslcert=alice.crt sslkey=alice.key"
//! ```

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use pgssl_client::{Config, MakeTls};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let conninfo = std::env::args().nth(1).unwrap_or_default();
    let config = Config::from_conninfo(&conninfo)?;
    // The certificate files are read here, and again for a new connection only when they
    // change: a renewed certificate needs no restart.
    let tls = MakeTls::new(&config)?;
    let manager = Manager::from_config(
        config.to_tokio_postgres(),
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager).max_size(4).build()?;

    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT version, client_dn, current_user::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    let (version, client_dn, user): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    println!("deadpool-postgres: {version} as {user}, client certificate {client_dn}");
    Ok(())
}

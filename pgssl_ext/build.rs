//! Compiles the small C shim that reads the TLS fields of the backend's `Port`
//! against the server headers of the PostgreSQL version being built for.

use pgrx_pg_config::{PgConfig, Pgrx};

const VERSIONS: [&str; 6] = ["pg13", "pg14", "pg15", "pg16", "pg17", "pg18"];

fn main() {
    println!("cargo:rerun-if-changed=src/port_shim.c");
    println!("cargo:rerun-if-changed=src/ca/csr_shim.c");
    println!("cargo:rerun-if-env-changed=PGRX_PG_CONFIG_PATH");

    let pg_config = selected_pg_config();
    let include = pg_config
        .includedir_server()
        .expect("pg_config --includedir-server failed");

    cc::Build::new()
        .file("src/port_shim.c")
        .file("src/ca/csr_shim.c")
        .include(&include)
        .warnings(true)
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-missing-field-initializers")
        .flag_if_supported("-Wno-sign-compare")
        .compile("pgssl_port_shim");
}

/// The pg_config that pgrx itself builds against: `PGRX_PG_CONFIG_PATH` when
/// cargo-pgrx sets it, else the entry of `~/.pgrx/config.toml` for the enabled
/// `pgNN` feature.
fn selected_pg_config() -> PgConfig {
    if let Ok(path) = std::env::var("PGRX_PG_CONFIG_PATH") {
        return PgConfig::new_with_defaults(path.into());
    }
    let label = VERSIONS
        .iter()
        .find(|v| std::env::var(format!("CARGO_FEATURE_{}", v.to_uppercase())).is_ok())
        .expect("enable exactly one of the pg13..pg18 features");
    Pgrx::from_config()
        .and_then(|pgrx| pgrx.get(label))
        .unwrap_or_else(|e| panic!("no pg_config for {label}: {e}; run `cargo pgrx init`"))
}

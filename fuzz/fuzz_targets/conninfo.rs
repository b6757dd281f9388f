//! The connection-string parser: `key=value` lists and `postgresql://` URIs, with `PG*`
//! environment variables as fallbacks.
//!
//! The input is the connection string, then optionally a NUL and `NAME=value` lines standing
//! for the environment (so the fallbacks are fuzzed too).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pgssl_client::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (conninfo, env_text) = text.split_once('\0').unwrap_or((text, ""));
    let env: Vec<(&str, &str)> = env_text
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    let lookup = |name: &str| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    };
    let _ = pgssl_client::is_connection_string(conninfo);
    let Ok(config) = Config::from_conninfo_with_env(conninfo, &lookup, Some(Path::new("/home/u")))
    else {
        return;
    };
    let _ = format!("{config:?}");
    let _ = (
        config.ssl_mode().as_str(),
        config.user(),
        config.dbname(),
        config.password(),
        config.application_name(),
        config.channel_binding().as_str(),
        config.ssl_root_cert(),
        config.ssl_cert(),
        config.ssl_key(),
        config.home(),
    );
    assert!(!config.endpoints().is_empty());
    let _ = config.to_tokio_postgres();
});

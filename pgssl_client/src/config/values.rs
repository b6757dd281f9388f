//! Option values into [`Config`]'s typed fields, refused where libpq refuses them
//! (`connectOptions2`'s checks), or where pgssl does not implement what they ask for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::config::TargetSessionAttrs;

use super::auth::{RequireAuth, SslCertMode};
use super::hosts::endpoints;
use super::options::Options;
use super::{ChannelBinding, Config, SslMode, TlsVersion};
use crate::error::Error;

const SSLMODES: &str = "disable, allow, prefer, require, verify-ca or verify-full";

impl Config {
    /// The configuration from complete option values (the connection string's, then the
    /// environment's and the defaults). `sslmode_given` says whether the connection string
    /// or `PGSSLMODE` set `sslmode` (`sslrootcert=system` then leaves it alone).
    pub(super) fn from_values(
        values: &Options,
        sslmode_given: bool,
        home: Option<&Path>,
    ) -> Result<Config, Error> {
        let text = |key: &str| values.get(key).filter(|v| !v.is_empty()).cloned();
        let path = |key: &str| text(key).map(PathBuf::from);

        let mode_text = &values["sslmode"];
        let mut ssl_mode =
            SslMode::parse(mode_text).ok_or_else(|| invalid("sslmode", mode_text, SSLMODES))?;
        // libpq 16: the system store is only trusted with the host name checked.
        if text("sslrootcert").as_deref() == Some("system") {
            if !sslmode_given {
                ssl_mode = SslMode::VerifyFull;
            } else if ssl_mode != SslMode::VerifyFull {
                return Err(invalid(
                    "sslmode",
                    mode_text,
                    "verify-full with sslrootcert=system (weak sslmode may not be used with sslrootcert=system)",
                ));
            }
        }
        let channel_binding =
            match choice(values, "channel_binding", &["disable", "prefer", "require"])? {
                "disable" => ChannelBinding::Disable,
                "require" => ChannelBinding::Require,
                _ => ChannelBinding::Prefer,
            };
        if choice(values, "gssencmode", &["disable", "prefer", "require"])? == "require" {
            return Err(Error::Unsupported {
                key: "gssencmode".into(),
                value: "require".into(),
                reason: "pgssl has no GSSAPI encryption".into(),
            });
        }
        let target_session_attrs = match choice(
            values,
            "target_session_attrs",
            &[
                "any",
                "read-write",
                "read-only",
                "primary",
                "standby",
                "prefer-standby",
            ],
        )? {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            other => {
                return Err(Error::Unsupported {
                    key: "target_session_attrs".into(),
                    value: other.into(),
                    reason: "tokio-postgres implements only any, read-write and read-only".into(),
                })
            }
        };
        let direct_ssl = choice(values, "sslnegotiation", &["postgres", "direct"])? == "direct";
        if direct_ssl
            && !matches!(
                ssl_mode,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
            )
        {
            return Err(invalid(
                "sslnegotiation",
                "direct",
                "sslmode require, verify-ca or verify-full with sslnegotiation=direct",
            ));
        }
        let ssl_cert_mode = SslCertMode::parse(&values["sslcertmode"])?;
        let require_auth = text("require_auth")
            .map(|t| RequireAuth::parse(&t))
            .transpose()?;
        let load_balance_random =
            choice(values, "load_balance_hosts", &["disable", "random"])? == "random";
        let min_version = protocol_version(values, "ssl_min_protocol_version")?;
        let max_version = protocol_version(values, "ssl_max_protocol_version")?;
        if let (Some(min), Some(max)) = (min_version, max_version) {
            if min > max {
                return Err(invalid(
                    "ssl_min_protocol_version",
                    &format!(
                        "{} > {}",
                        values["ssl_min_protocol_version"], values["ssl_max_protocol_version"]
                    ),
                    "a minimum not above ssl_max_protocol_version (invalid SSL protocol version range)",
                ));
            }
        }
        let int = |key: &str| -> Result<Option<i64>, Error> {
            text(key).map(|v| parse_int(key, &v)).transpose()
        };
        let positive = |key: &str| -> Result<Option<u64>, Error> {
            Ok(int(key)?.filter(|n| *n > 0).map(|n| n as u64))
        };
        // libpq raises connection timeouts below 2 s to 2 s.
        let connect_timeout = positive("connect_timeout")?.map(|t| Duration::from_secs(t.max(2)));
        let keepalives = int("keepalives")?.map(|k| k != 0);
        let keepalives_idle = positive("keepalives_idle")?.map(Duration::from_secs);
        let keepalives_interval = positive("keepalives_interval")?.map(Duration::from_secs);
        let keepalives_count = positive("keepalives_count")?.map(|n| n as u32);
        let tcp_user_timeout = positive("tcp_user_timeout")?.map(Duration::from_millis);
        if let Some(enc) = text("client_encoding") {
            if !enc.eq_ignore_ascii_case("utf8") && !enc.eq_ignore_ascii_case("auto") {
                return Err(Error::Unsupported {
                    key: "client_encoding".into(),
                    value: enc,
                    reason: "tokio-postgres always uses UTF8".into(),
                });
            }
        }
        for key in ["requirepeer", "replication"] {
            if let Some(v) = text(key) {
                return Err(Error::Unsupported {
                    key: key.into(),
                    value: v,
                    reason: "not implemented by tokio-postgres".into(),
                });
            }
        }
        Ok(Config {
            user: values["user"].clone(),
            password: text("password"),
            passfile: path("passfile"),
            dbname: values["dbname"].clone(),
            options: text("options"),
            application_name: text("application_name")
                .or_else(|| text("fallback_application_name")),
            channel_binding,
            connect_timeout,
            keepalives,
            keepalives_idle,
            keepalives_interval,
            keepalives_count,
            tcp_user_timeout,
            target_session_attrs,
            load_balance_random,
            ssl_mode,
            direct_ssl,
            ssl_cert_mode,
            require_auth,
            ssl_cert: path("sslcert"),
            ssl_key: path("sslkey"),
            ssl_password: text("sslpassword"),
            ssl_root_cert: path("sslrootcert"),
            ssl_crl: path("sslcrl"),
            ssl_crl_dir: path("sslcrldir"),
            ssl_sni: text("sslsni").is_some_and(|v| v.starts_with('1')),
            min_version,
            max_version,
            endpoints: endpoints(values)?,
            home: home.map(Path::to_path_buf),
            reload_tls_files: true,
        })
    }
}

/// An [`Error::InvalidValue`] for `key`.
pub(super) fn invalid(key: &str, value: &str, expected: &str) -> Error {
    Error::InvalidValue {
        key: key.into(),
        value: value.into(),
        expected: expected.into(),
    }
}

/// The value of `key`, which must be one of `allowed`.
fn choice<'a>(values: &'a Options, key: &str, allowed: &[&str]) -> Result<&'a str, Error> {
    let v = values[key].as_str();
    if allowed.contains(&v) {
        Ok(v)
    } else {
        Err(invalid(key, v, &allowed.join(", ")))
    }
}

fn protocol_version(values: &Options, key: &str) -> Result<Option<TlsVersion>, Error> {
    match values.get(key).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => TlsVersion::parse(v)
            .map(Some)
            .ok_or_else(|| invalid(key, v, "TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3")),
    }
}

/// libpq's `parse_int_param`: `strtol` with surrounding whitespace allowed.
pub(super) fn parse_int(key: &str, value: &str) -> Result<i64, Error> {
    let s = value.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let sign_len = usize::from(s.starts_with(['+', '-']));
    let digits = s[sign_len..].bytes().take_while(u8::is_ascii_digit).count();
    let (number, rest) = s.split_at(sign_len + digits);
    if digits > 0 && rest.bytes().all(|b| b.is_ascii_whitespace()) {
        if let Ok(n) = number.parse::<i32>() {
            return Ok(n.into());
        }
    }
    Err(invalid(key, value, "an integer"))
}

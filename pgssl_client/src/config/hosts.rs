//! libpq's `connectOptions2` pairing of `host`, `hostaddr` and `port` into the endpoints tried
//! in order.

use std::net::IpAddr;
use std::path::PathBuf;

use super::options::Options;
use super::values::{invalid, parse_int};
use super::{Endpoint, DEFAULT_SOCKET_DIR};
use crate::error::Error;

fn split_list(value: Option<&String>) -> Vec<String> {
    match value {
        None => Vec::new(),
        Some(v) if v.is_empty() => Vec::new(),
        Some(v) => v.split(',').map(str::to_string).collect(),
    }
}

/// libpq's `connectOptions2` host/hostaddr/port pairing.
pub(super) fn endpoints(values: &Options) -> Result<Vec<Endpoint>, Error> {
    let hosts = split_list(values.get("host"));
    let addrs = split_list(values.get("hostaddr"));
    let ports = split_list(values.get("port"));
    let count = hosts.len().max(addrs.len()).max(1);
    if !hosts.is_empty() && !addrs.is_empty() && hosts.len() != addrs.len() {
        return Err(Error::Syntax {
            message: format!(
                "could not match {} host names to {} hostaddr values",
                hosts.len(),
                addrs.len()
            ),
        });
    }
    if ports.len() > 1 && ports.len() != count {
        return Err(Error::Syntax {
            message: format!(
                "could not match {} port numbers to {} hosts",
                ports.len(),
                count
            ),
        });
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let port_text = if ports.len() == 1 {
            ports[0].as_str()
        } else {
            ports.get(i).map_or("", String::as_str)
        };
        let port = if port_text.is_empty() {
            5432
        } else {
            let n = parse_int("port", port_text)?;
            if !(1..=65535).contains(&n) {
                return Err(invalid("port", port_text, "a port number from 1 to 65535"));
            }
            n as u16
        };
        let host = hosts.get(i).filter(|h| !h.is_empty()).cloned();
        let addr_text = addrs.get(i).filter(|a| !a.is_empty());
        let hostaddr = match addr_text {
            Some(a) => Some(
                a.parse::<IpAddr>()
                    .map_err(|_| invalid("hostaddr", a, "a numeric IPv4 or IPv6 address"))?,
            ),
            None => None,
        };
        out.push(match (host, hostaddr) {
            (host, Some(addr)) => Endpoint::Tcp {
                host,
                hostaddr: Some(addr),
                port,
            },
            (Some(h), None) if h.starts_with('/') => Endpoint::Unix {
                dir: PathBuf::from(h),
                port,
            },
            (Some(h), None) => Endpoint::Tcp {
                host: Some(h),
                hostaddr: None,
                port,
            },
            (None, None) => Endpoint::Unix {
                dir: PathBuf::from(DEFAULT_SOCKET_DIR),
                port,
            },
        });
    }
    Ok(out)
}

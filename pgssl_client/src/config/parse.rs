//! The two connection-string syntaxes, as libpq's `conninfo_parse` and `conninfo_uri_parse`
//! (PostgreSQL 15 `fe-connect.c`) read them, character for character, including their quirks:
//! a value may start right after the whitespace that follows `=`, a backslash escapes any
//! character in both quoted and unquoted values, and `%00` is refused in URIs. The result is
//! the options the string sets explicitly, still as text.

use super::options::{canonical, store, Options};
use crate::error::Error;

/// Parses a connection string into the options it sets explicitly.
pub(super) fn parse_conninfo(s: &str) -> Result<Options, Error> {
    if uri_prefix_len(s).is_some() {
        parse_uri(s)
    } else {
        parse_key_values(s)
    }
}

/// True when `s` is a connection string rather than a bare database name (libpq's
/// `recognized_connection_string`), as psql decides for its first argument.
pub fn is_connection_string(s: &str) -> bool {
    uri_prefix_len(s).is_some() || s.contains('=')
}

fn uri_prefix_len(s: &str) -> Option<usize> {
    ["postgresql://", "postgres://"]
        .iter()
        .find(|p| s.starts_with(*p))
        .map(|p| p.len())
}

fn parse_key_values(s: &str) -> Result<Options, Error> {
    let b = s.as_bytes();
    let mut values = Options::new();
    let mut i = 0;
    let ws = |c: u8| c.is_ascii_whitespace() || c == 0x0b;
    loop {
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && !ws(b[i]) {
            i += 1;
        }
        let key = &s[key_start..i];
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(Error::Syntax {
                message: format!("missing \"=\" after \"{key}\" in connection info string"),
            });
        }
        i += 1;
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            loop {
                if i >= b.len() {
                    return Err(Error::Syntax {
                        message: "unterminated quoted string in connection info string".into(),
                    });
                }
                match b[i] {
                    b'\\' => {
                        i += 1;
                        if i < b.len() {
                            value.push(b[i]);
                            i += 1;
                        }
                    }
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && !ws(b[i]) {
                if b[i] == b'\\' {
                    i += 1;
                    if i < b.len() {
                        value.push(b[i]);
                        i += 1;
                    }
                } else {
                    value.push(b[i]);
                    i += 1;
                }
            }
        }
        // Only ASCII bytes were removed, so the rest is still UTF-8.
        let value = String::from_utf8(value).expect("valid UTF-8");
        store(&mut values, key, value)?;
    }
    Ok(values)
}

fn uri_decode(s: &str, whole: &str) -> Result<String, Error> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
            match (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                (Some(h), Some(l)) => {
                    let c = (h * 16 + l) as u8;
                    if c == 0 {
                        return Err(Error::Syntax {
                            message: format!(
                                "forbidden value %00 in percent-encoded value: \"{s}\""
                            ),
                        });
                    }
                    out.push(c);
                    i += 3;
                }
                _ => {
                    return Err(Error::Syntax {
                        message: format!("invalid percent-encoded token: \"{s}\""),
                    })
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Syntax {
        message: format!("percent-decoded value is not UTF-8 in URI: \"{whole}\""),
    })
}

fn store_uri(values: &mut Options, key: &str, raw: &str, whole: &str) -> Result<(), Error> {
    let v = uri_decode(raw, whole)?;
    store(values, key, v)
}

fn parse_uri(uri: &str) -> Result<Options, Error> {
    let mut values = Options::new();
    let start = uri_prefix_len(uri).expect("caller checked the prefix");
    let b = uri.as_bytes();
    let mut p = start;
    while p < b.len() && b[p] != b'@' && b[p] != b'/' {
        p += 1;
    }
    if p < b.len() && b[p] == b'@' {
        let creds = &uri[start..p];
        let (user, password) = match creds.find(':') {
            Some(c) => (&creds[..c], Some(&creds[c + 1..])),
            None => (creds, None),
        };
        if !user.is_empty() {
            store_uri(&mut values, "user", user, uri)?;
        }
        if let Some(pw) = password.filter(|p| !p.is_empty()) {
            store_uri(&mut values, "password", pw, uri)?;
        }
        p += 1;
    } else {
        p = start;
    }
    let mut hosts = String::new();
    let mut ports = String::new();
    let mut terminator: Option<u8>;
    loop {
        if p < b.len() && b[p] == b'[' {
            p += 1;
            let h = p;
            while p < b.len() && b[p] != b']' {
                p += 1;
            }
            if p >= b.len() {
                return Err(Error::Syntax {
                    message: format!("end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"{uri}\""),
                });
            }
            if p == h {
                return Err(Error::Syntax {
                    message: format!("IPv6 host address may not be empty in URI: \"{uri}\""),
                });
            }
            hosts.push_str(&uri[h..p]);
            p += 1;
            if p < b.len() && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                return Err(Error::Syntax {
                    message: format!(
                        "unexpected character \"{}\" at position {} in URI (expected \":\" or \"/\"): \"{uri}\"",
                        b[p] as char,
                        p + 1
                    ),
                });
            }
        } else {
            let h = p;
            while p < b.len() && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                p += 1;
            }
            hosts.push_str(&uri[h..p]);
        }
        terminator = b.get(p).copied();
        if terminator == Some(b':') {
            p += 1;
            let s = p;
            while p < b.len() && !matches!(b[p], b'/' | b'?' | b',') {
                p += 1;
            }
            ports.push_str(&uri[s..p]);
            terminator = b.get(p).copied();
        }
        if terminator != Some(b',') {
            break;
        }
        p += 1;
        hosts.push(',');
        ports.push(',');
    }
    if !hosts.is_empty() {
        store_uri(&mut values, "host", &hosts, uri)?;
    }
    if !ports.is_empty() {
        store_uri(&mut values, "port", &ports, uri)?;
    }
    if terminator.is_some() && terminator != Some(b'?') {
        p += 1;
        let s = p;
        while p < b.len() && b[p] != b'?' {
            p += 1;
        }
        if p > s {
            store_uri(&mut values, "dbname", &uri[s..p], uri)?;
        }
        terminator = b.get(p).copied();
    }
    if terminator.is_some() {
        p += 1;
        parse_uri_params(&uri[p..], &mut values)?;
    }
    Ok(values)
}

fn parse_uri_params(params: &str, values: &mut Options) -> Result<(), Error> {
    // libpq stops at the end of the string, so one trailing '&' is harmless.
    let params = if params.len() > 1 {
        params.strip_suffix('&').unwrap_or(params)
    } else {
        params
    };
    if params.is_empty() {
        return Ok(());
    }
    for pair in params.split('&') {
        let mut parts = pair.splitn(3, '=');
        let key = parts.next().unwrap_or("");
        let value = parts.next();
        if parts.next().is_some() {
            return Err(Error::Syntax {
                message: format!(
                    "extra key/value separator \"=\" in URI query parameter: \"{key}\""
                ),
            });
        }
        let Some(value) = value else {
            return Err(Error::Syntax {
                message: format!(
                    "missing key/value separator \"=\" in URI query parameter: \"{pair}\""
                ),
            });
        };
        let key = uri_decode(key, params)?;
        let value = uri_decode(value, params)?;
        // libpq's JDBC compatibility spelling.
        let (key, value) = if key == "ssl" && value == "true" {
            ("sslmode".to_string(), "require".to_string())
        } else {
            (key, value)
        };
        match canonical(&key, value) {
            Some((k, v)) => {
                values.insert(k, v);
            }
            None => {
                return Err(Error::Syntax {
                    message: format!("invalid URI query parameter: \"{key}\""),
                })
            }
        }
    }
    Ok(())
}

//! The password file (`passfile`, else `~/.pgpass`), as libpq's `passwordFromFile` reads it.

use super::{Config, Endpoint, DEFAULT_SOCKET_DIR};

impl Config {
    /// The password from the password file (`passfile`, else `~/.pgpass`) for this endpoint,
    /// as libpq's `passwordFromFile` finds it; `None` when a password was given.
    pub fn passfile_password(&self, endpoint: &Endpoint) -> Option<String> {
        if self.password.is_some() {
            return None;
        }
        let path = match &self.passfile {
            Some(p) => p.clone(),
            None => self.home.as_ref()?.join(".pgpass"),
        };
        let (host, port) = match endpoint {
            Endpoint::Tcp {
                host,
                hostaddr,
                port,
            } => (
                host.clone()
                    .or_else(|| hostaddr.map(|a| a.to_string()))
                    .unwrap_or_default(),
                *port,
            ),
            Endpoint::Unix { dir, port } => (dir.display().to_string(), *port),
        };
        // 'localhost' matches the default socket directory.
        let host = if host.is_empty() || host == DEFAULT_SOCKET_DIR {
            "localhost".to_string()
        } else {
            host
        };
        let meta = std::fs::metadata(&path).ok()?;
        {
            use std::os::unix::fs::PermissionsExt;
            // libpq ignores (with a warning) a file others can read.
            if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
                return None;
            }
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let wanted =
            [host.as_str(), &port.to_string(), &self.dbname, &self.user].map(str::to_string);
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|line| pgpass_match(line, &wanted))
    }
}

/// One `.pgpass` line against host, port, database and user: the password if it matches.
/// Fields are `:`-separated, `\` escapes the next character, and `*` matches anything.
fn pgpass_match(line: &str, wanted: &[String; 4]) -> Option<String> {
    let mut fields = Vec::with_capacity(5);
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    field.push(n);
                }
            }
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    if fields.len() != 5 || fields[4].is_empty() {
        return None;
    }
    let matches = fields[..4]
        .iter()
        .zip(wanted)
        .all(|(f, w)| f == "*" || f == w);
    matches.then(|| fields.pop().expect("five fields"))
}

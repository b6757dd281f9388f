//! `pgssl.ca_key_passphrase_command`: the command that prints the passphrase
//! of an encrypted CA key, run the way PostgreSQL runs `ssl_passphrase_command`
//! (`/bin/sh -c`, `%p` replaced by a prompt, `%%` by `%`, the first line of its
//! standard output is the passphrase).
//!
//! The passphrase lives in one zeroed-on-drop buffer and appears in no message:
//! errors say how the command failed (its exit status), never what it printed,
//! and not the command itself either, which a careless set-up may have given
//! the passphrase as an argument. The command's standard input is
//! `/dev/null`, so it can never wait on a terminal; its standard error goes
//! where the server's does (the server log), as with `ssl_passphrase_command`.

use std::fmt;
use std::io::Read;
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use super::authority::CaRole;

/// The longest passphrase: OpenSSL's PEM passphrase buffer (`PEM_BUFSIZE`)
/// less its final NUL.
pub const MAX_PASSPHRASE_BYTES: usize = 1023;

/// How much of the command's output is read: the first line must end within it.
const READ_LIMIT: usize = 4096;

/// How much output after the first line is read and dropped before the
/// pipe is closed on a command that keeps printing.
const DROP_LIMIT: usize = 64 * 1024;

/// A passphrase, zeroed when dropped.
pub type Passphrase = Zeroizing<Vec<u8>>;

/// Why no passphrase came from the command. Never holds any of its output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PassphraseError {
    /// The shell could not be started.
    Start {
        /// The operating system's reason.
        reason: String,
    },
    /// The command exited with a status other than 0, or was killed.
    Failed {
        /// E.g. `exit status: 3` or `signal: 9 (SIGKILL)`.
        status: String,
    },
    /// Its first line of output is empty.
    Empty,
    /// Its first line is longer than [`MAX_PASSPHRASE_BYTES`].
    TooLong,
    /// Two runs for a new key printed different passphrases: a key encrypted
    /// with the first could never be opened again.
    Unstable,
}

impl fmt::Display for PassphraseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Start { reason } => write!(f, "could not be started: {reason}"),
            Self::Failed { status } => write!(f, "failed ({status})"),
            Self::Empty => f.write_str("printed no passphrase (its first line is empty)"),
            Self::TooLong => write!(
                f,
                "printed a first line longer than {MAX_PASSPHRASE_BYTES} bytes"
            ),
            Self::Unstable => f.write_str("printed a different passphrase when run again"),
        }
    }
}

/// The prompt `%p` stands for. Fixed text with no quote or shell character,
/// so a command may use `%p` quoted or not; it tells the two CAs apart.
pub fn prompt(role: CaRole) -> &'static str {
    match role {
        CaRole::Client => "Enter PEM pass phrase for the pgssl CA key:",
        CaRole::Server => "Enter PEM pass phrase for the pgssl server CA key:",
    }
}

/// The command line to run: `%p` becomes `prompt`, `%%` becomes `%`, any
/// other `%` stays, as PostgreSQL expands `ssl_passphrase_command`.
pub fn expand(template: &str, prompt: &str) -> String {
    let mut out = String::with_capacity(template.len() + prompt.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('%', Some('p')) => {
                out.push_str(prompt);
                chars.next();
            }
            ('%', Some('%')) => {
                out.push('%');
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// Runs `template` (expanded with `prompt`) with `/bin/sh -c` and returns
/// the first line of its standard output, without the line end (`\n` or
/// `\r\n`). The command must exit with status 0 and print a non-empty line.
pub fn run(template: &str, prompt: &str) -> Result<Passphrase, PassphraseError> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(expand(template, prompt))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| PassphraseError::Start {
            reason: e.to_string(),
        })?;
    // One buffer of fixed size, never reallocated, so no copy of the
    // passphrase is left behind unzeroed.
    let mut output = Zeroizing::new(vec![0u8; READ_LIMIT]);
    let mut filled = 0;
    if let Some(mut stdout) = child.stdout.take() {
        // What follows the first line is read and dropped, up to a limit, so
        // that a command printing more lines is not killed by a closed pipe.
        let mut rest = Zeroizing::new([0u8; 512]);
        let mut dropped = 0;
        loop {
            let first_line_done = filled == READ_LIMIT || output[..filled].contains(&b'\n');
            let into = if !first_line_done {
                &mut output[filled..]
            } else if dropped < DROP_LIMIT {
                &mut rest[..]
            } else {
                break;
            };
            match stdout.read(into) {
                Ok(0) => break,
                Ok(n) if !first_line_done => filled += n,
                Ok(n) => dropped += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // Closing the pipe here ends a command that keeps printing.
    }
    let status = loop {
        match child.wait() {
            Ok(status) => break status,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(PassphraseError::Failed {
                    status: format!("could not wait for it: {e}"),
                })
            }
        }
    };
    if !status.success() {
        return Err(PassphraseError::Failed {
            status: status.to_string(),
        });
    }
    let line_end = output[..filled].iter().position(|&b| b == b'\n');
    let mut line = &output[..line_end.unwrap_or(filled)];
    if line_end.is_none() && filled == READ_LIMIT {
        return Err(PassphraseError::TooLong);
    }
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    if line.is_empty() {
        return Err(PassphraseError::Empty);
    }
    if line.len() > MAX_PASSPHRASE_BYTES {
        return Err(PassphraseError::TooLong);
    }
    Ok(Zeroizing::new(line.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_ssl_passphrase_command() {
        assert_eq!(expand("get '%p'", "P:"), "get 'P:'");
        assert_eq!(expand("100%% %x %", "P"), "100% %x %");
        assert_eq!(expand("%%p", "P"), "%p");
        assert_eq!(expand("%p%p", "ab"), "abab");
    }

    #[test]
    fn the_first_line_is_the_passphrase() {
        assert_eq!(
            run("printf 'pass word\\r\\nsecond\\n'", "P")
                .unwrap()
                .as_slice(),
            b"pass word"
        );
        assert_eq!(run("printf x", "P").unwrap().as_slice(), b"x");
        assert_eq!(run("echo \"%p\"", "P: x").unwrap().as_slice(), b"P: x");
        // The command's standard input is not a terminal, nor anything to read.
        assert_eq!(
            run("read line; echo \"[$line]\"", "P").unwrap().as_slice(),
            b"[]"
        );
    }

    #[test]
    fn failures_say_how_without_the_output() {
        let failed = run("echo secret-words; exit 3", "P").unwrap_err();
        assert_eq!(
            failed,
            PassphraseError::Failed {
                status: "exit status: 3".into()
            }
        );
        assert!(!failed.to_string().contains("secret"));
        assert_eq!(run("true", "P").unwrap_err(), PassphraseError::Empty);
        assert_eq!(
            run("echo; echo x", "P").unwrap_err(),
            PassphraseError::Empty
        );
        assert!(matches!(
            run("kill -9 $$", "P").unwrap_err(),
            PassphraseError::Failed { .. }
        ));
        assert_eq!(
            run("head -c 2000 /dev/zero | tr '\\0' a", "P").unwrap_err(),
            PassphraseError::TooLong
        );
        // Endless output is cut off, and the command ended.
        assert!(run("yes", "P").is_err());
    }
}

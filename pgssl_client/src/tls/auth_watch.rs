//! `require_auth` enforced on the wire: the server's authentication requests are read as
//! they arrive, before tokio-postgres answers them, and a request the list does not allow
//! ends the connection, as libpq's `check_expected_areq` does.

use crate::config::{AuthMethod, RequireAuth};
use crate::error::Error;

/// `AuthenticationOk`, the last request of a successful exchange.
const AUTH_OK: u32 = 0;

/// Follows the backend messages up to the end of authentication.
#[derive(Debug)]
pub(super) struct AuthWatch {
    rule: RequireAuth,
    /// The bytes of the current message header: type, length and request code.
    header: Vec<u8>,
    /// Bytes of the current message body still to pass by.
    skip: usize,
    /// A method the list allows was asked for.
    method_used: bool,
    /// Authentication is over (or an error message came): nothing more to watch.
    done: bool,
}

impl AuthWatch {
    pub(super) fn new(rule: RequireAuth) -> AuthWatch {
        AuthWatch {
            rule,
            header: Vec::with_capacity(9),
            skip: 0,
            method_used: false,
            done: false,
        }
    }

    /// Whether authentication is over, so nothing more needs watching.
    pub(super) fn done(&self) -> bool {
        self.done
    }

    /// Reads the next bytes from the server; an error when a request breaks the rule.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        while !bytes.is_empty() && !self.done {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            self.header.push(bytes[0]);
            bytes = &bytes[1..];
            if self.header[0] != b'R' {
                // An error or the first message after authentication: the exchange is over.
                self.done = true;
                break;
            }
            if self.header.len() == 9 {
                let length = u32::from_be_bytes(self.header[1..5].try_into().expect("4 bytes"));
                let code = u32::from_be_bytes(self.header[5..9].try_into().expect("4 bytes"));
                self.header.clear();
                self.skip = (length as usize).saturating_sub(8);
                self.request(code)?;
            }
        }
        Ok(())
    }

    fn fail(&self, presented: String) -> Result<(), Error> {
        Err(Error::AuthRequirement {
            required: self.rule.text.clone(),
            presented,
        })
    }

    fn request(&mut self, code: u32) -> Result<(), Error> {
        let method = match code {
            AUTH_OK => {
                self.done = true;
                if !self.method_used && !self.rule.allows_none() {
                    return self.fail("server did not complete authentication".into());
                }
                return Ok(());
            }
            3 => AuthMethod::Password,
            5 => AuthMethod::Md5,
            7 => AuthMethod::Gss,
            9 => AuthMethod::Sspi,
            10 => AuthMethod::ScramSha256,
            // GSS and SASL continuations belong to an exchange already allowed.
            8 | 11 | 12 => return Ok(()),
            other => return self.fail(format!("server requested authentication type {other}")),
        };
        if self.rule.allows(method) {
            self.method_used = true;
            Ok(())
        } else {
            self.fail(format!(
                "server requested {} authentication",
                method.describe()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(code: u32, body: &[u8]) -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend(((8 + body.len()) as u32).to_be_bytes());
        m.extend(code.to_be_bytes());
        m.extend(body);
        m
    }

    fn watch(rule: &str) -> AuthWatch {
        AuthWatch::new(RequireAuth::parse(rule).unwrap())
    }

    /// A SCRAM exchange: SASL, continue, final, ok, then ParameterStatus.
    fn scram() -> Vec<u8> {
        let mut bytes = request(10, b"SCRAM-SHA-256\0\0");
        bytes.extend(request(11, b"r=abc,s=def,i=4096"));
        bytes.extend(request(12, b"v=xyz"));
        bytes.extend(request(AUTH_OK, b""));
        bytes.extend(b"S\0\0\0\x08a\0b\0");
        bytes
    }

    #[test]
    fn an_allowed_exchange_passes_in_any_split() {
        let bytes = scram();
        for split in 0..bytes.len() {
            let mut w = watch("scram-sha-256");
            w.feed(&bytes[..split]).unwrap();
            w.feed(&bytes[split..]).unwrap();
            assert!(w.done);
        }
    }

    #[test]
    fn a_request_outside_the_list_fails_before_it_is_answered() {
        let e = watch("password").feed(&scram()).unwrap_err().to_string();
        assert_eq!(
            e,
            "authentication method requirement \"password\" failed: server requested SASL authentication"
        );
        let e = watch("scram-sha-256")
            .feed(&request(3, b""))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("server requested a cleartext password authentication"),
            "{e}"
        );
        assert!(watch("!scram-sha-256").feed(&scram()).is_err());
        assert!(watch("none").feed(&scram()).is_err());
        assert!(watch("!password").feed(&scram()).is_ok());
    }

    #[test]
    fn no_request_at_all_needs_none() {
        // cert or trust: AuthenticationOk straight away.
        let ok = request(AUTH_OK, b"");
        assert!(watch("none").feed(&ok).is_ok());
        assert!(watch("!password").feed(&ok).is_ok());
        let e = watch("scram-sha-256").feed(&ok).unwrap_err().to_string();
        assert!(e.ends_with("server did not complete authentication"), "{e}");
        assert!(watch("!none").feed(&ok).is_err());
    }

    #[test]
    fn a_server_error_ends_the_watch() {
        let mut w = watch("scram-sha-256");
        w.feed(b"E\0\0\0\x10SFATAL\0\0").unwrap();
        assert!(w.done);
        w.feed(&request(3, b"")).unwrap();
    }
}

//! `sslcertmode` and `require_auth` (libpq 16): what the client demands of the server's
//! authentication, parsed with libpq's rules and wording.

use super::values::invalid;
use crate::error::Error;

/// `sslcertmode`: whether the client sends its certificate, and whether the server must ask
/// for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslCertMode {
    /// Never send a client certificate, even when one is configured.
    Disable,
    /// Send one when configured and the server asks (the default).
    #[default]
    Allow,
    /// Fail unless the server asked for a certificate and the client sent one.
    Require,
}

impl SslCertMode {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslCertMode::Disable => "disable",
            SslCertMode::Allow => "allow",
            SslCertMode::Require => "require",
        }
    }

    pub(super) fn parse(value: &str) -> Result<SslCertMode, Error> {
        Ok(match value {
            "disable" => SslCertMode::Disable,
            "allow" => SslCertMode::Allow,
            "require" => SslCertMode::Require,
            other => return Err(invalid("sslcertmode", other, "disable, allow or require")),
        })
    }
}

/// An authentication method `require_auth` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Cleartext password (`password`).
    Password,
    /// `md5`.
    Md5,
    /// GSSAPI (`gss`).
    Gss,
    /// SSPI (`sspi`).
    Sspi,
    /// SASL with SCRAM-SHA-256 (`scram-sha-256`).
    ScramSha256,
    /// SASL with OAUTHBEARER (`oauth`, libpq 18).
    OAuth,
}

const METHODS: [(&str, AuthMethod); 6] = [
    ("password", AuthMethod::Password),
    ("md5", AuthMethod::Md5),
    ("gss", AuthMethod::Gss),
    ("sspi", AuthMethod::Sspi),
    ("scram-sha-256", AuthMethod::ScramSha256),
    ("oauth", AuthMethod::OAuth),
];

impl AuthMethod {
    /// The name libpq's messages use for a request of this kind.
    pub fn describe(self) -> &'static str {
        match self {
            AuthMethod::Password => "a cleartext password",
            AuthMethod::Md5 => "a hashed password",
            AuthMethod::Gss | AuthMethod::Sspi => "GSSAPI",
            AuthMethod::ScramSha256 | AuthMethod::OAuth => "SASL",
        }
    }
}

/// `require_auth`: the authentication methods the server may use; anything else fails the
/// connection before the client answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequireAuth {
    /// The option as written, for messages.
    pub text: String,
    allowed: Vec<AuthMethod>,
    none_allowed: bool,
}

impl RequireAuth {
    /// Parses libpq's list: methods separated by commas, either all plain or all negated
    /// with `!`; `none` is the server asking for nothing (as with `trust` or `cert`).
    pub(crate) fn parse(text: &str) -> Result<RequireAuth, Error> {
        let bad = |expected: &str| invalid("require_auth", text, expected);
        let mut negated = None;
        let mut listed = Vec::new();
        let mut none_listed = false;
        for word in text.split(',') {
            let (neg, name) = match word.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, word),
            };
            if *negated.get_or_insert(neg) != neg {
                return Err(bad(
                    "methods all negated with ! or none (negative methods cannot be mixed with non-negative methods)",
                ));
            }
            if name == "none" {
                if none_listed {
                    return Err(bad("each method once (\"none\" is listed more than once)"));
                }
                none_listed = true;
                continue;
            }
            let Some((_, method)) = METHODS.iter().find(|(n, _)| *n == name) else {
                return Err(bad(
                    "password, md5, gss, sspi, scram-sha-256, oauth or none, optionally each with a leading !",
                ));
            };
            if listed.contains(method) {
                return Err(bad(&format!(
                    "each method once (\"{name}\" is listed more than once)"
                )));
            }
            listed.push(*method);
        }
        let (allowed, none_allowed) = if negated == Some(true) {
            let rest = METHODS
                .iter()
                .map(|(_, m)| *m)
                .filter(|m| !listed.contains(m))
                .collect();
            (rest, !none_listed)
        } else {
            (listed, none_listed)
        };
        Ok(RequireAuth {
            text: text.to_string(),
            allowed,
            none_allowed,
        })
    }

    /// Whether the server may ask for `method`.
    pub fn allows(&self, method: AuthMethod) -> bool {
        self.allowed.contains(&method)
    }

    /// Whether the server may let the client in without asking for anything.
    pub fn allows_none(&self) -> bool {
        self.none_allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lists_allow_what_they_name() {
        let r = RequireAuth::parse("password,scram-sha-256").unwrap();
        assert!(r.allows(AuthMethod::Password) && r.allows(AuthMethod::ScramSha256));
        assert!(!r.allows(AuthMethod::Md5) && !r.allows_none());
        let r = RequireAuth::parse("none").unwrap();
        assert!(r.allows_none() && !r.allows(AuthMethod::ScramSha256));
    }

    #[test]
    fn negated_lists_allow_everything_else() {
        let r = RequireAuth::parse("!password").unwrap();
        assert!(r.allows(AuthMethod::ScramSha256) && r.allows_none());
        assert!(!r.allows(AuthMethod::Password));
        let r = RequireAuth::parse("!none").unwrap();
        assert!(!r.allows_none() && r.allows(AuthMethod::Md5));
    }

    #[test]
    fn libpq_refuses_these_lists() {
        for bad in [
            "bogus",
            "password,!md5",
            "!md5,password",
            "md5,md5",
            "none,none",
        ] {
            let e = RequireAuth::parse(bad).unwrap_err().to_string();
            assert!(e.contains("require_auth"), "{bad}: {e}");
        }
    }

    #[test]
    fn sslcertmode_values() {
        assert_eq!(SslCertMode::parse("require").unwrap(), SslCertMode::Require);
        assert_eq!(SslCertMode::default(), SslCertMode::Allow);
        assert!(SslCertMode::parse("on").is_err());
    }
}

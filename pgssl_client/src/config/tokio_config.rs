//! The seam to tokio-postgres: a [`Config`] as the `tokio_postgres::Config` for one endpoint
//! or for all of them.

use tokio_postgres::config::{
    ChannelBinding as TpBinding, LoadBalanceHosts, SslMode as TpMode, SslNegotiation,
};

use super::{ChannelBinding, Config, Endpoint, SslMode};

impl Config {
    /// The `tokio_postgres::Config` for one endpoint: every non-TLS option, with `sslmode`
    /// mapped onto tokio-postgres' three modes (`allow` becomes `prefer`; see
    /// [`crate::MakeTls`]).
    pub fn tokio_config(&self, endpoint: &Endpoint) -> tokio_postgres::Config {
        let mut c = self.tokio_config_without_hosts();
        if let Some(p) = self.passfile_password(endpoint) {
            c.password(p);
        }
        match endpoint {
            Endpoint::Tcp {
                host,
                hostaddr,
                port,
            } => {
                if let Some(h) = host {
                    c.host(h);
                }
                if let Some(a) = hostaddr {
                    c.hostaddr(*a);
                    if host.is_none() {
                        c.host(a.to_string());
                    }
                }
                c.port(*port);
            }
            Endpoint::Unix { dir, port } => {
                c.host_path(dir);
                c.port(*port);
                // libpq never asks for TLS over a Unix socket, whatever sslmode says.
                c.ssl_mode(TpMode::Disable);
            }
        }
        c
    }

    /// The `tokio_postgres::Config` for all endpoints at once, for pools.
    pub fn to_tokio_postgres(&self) -> tokio_postgres::Config {
        let mut c = self.tokio_config_without_hosts();
        // One password for all hosts: the password file's entry for the first.
        if let Some(p) = self
            .endpoints
            .first()
            .and_then(|e| self.passfile_password(e))
        {
            c.password(p);
        }
        for e in &self.endpoints {
            match e {
                Endpoint::Tcp {
                    host,
                    hostaddr,
                    port,
                } => {
                    c.host(
                        host.clone()
                            .unwrap_or_else(|| hostaddr.map(|a| a.to_string()).unwrap_or_default()),
                    );
                    if let Some(a) = hostaddr {
                        c.hostaddr(*a);
                    }
                    c.port(*port);
                }
                Endpoint::Unix { dir, port } => {
                    c.host_path(dir);
                    c.port(*port);
                }
            }
        }
        c
    }

    fn tokio_config_without_hosts(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.user(&self.user);
        if let Some(p) = &self.password {
            c.password(p);
        }
        c.dbname(&self.dbname);
        if let Some(o) = &self.options {
            c.options(o);
        }
        if let Some(a) = &self.application_name {
            c.application_name(a);
        }
        c.ssl_mode(match self.ssl_mode {
            SslMode::Disable => TpMode::Disable,
            SslMode::Allow | SslMode::Prefer => TpMode::Prefer,
            _ => TpMode::Require,
        });
        if self.direct_ssl {
            c.ssl_negotiation(SslNegotiation::Direct);
        }
        c.channel_binding(match self.channel_binding {
            ChannelBinding::Disable => TpBinding::Disable,
            ChannelBinding::Prefer => TpBinding::Prefer,
            ChannelBinding::Require => TpBinding::Require,
        });
        c.target_session_attrs(self.target_session_attrs);
        if self.load_balance_random {
            c.load_balance_hosts(LoadBalanceHosts::Random);
        }
        if let Some(t) = self.connect_timeout {
            c.connect_timeout(t);
        }
        if let Some(t) = self.tcp_user_timeout {
            c.tcp_user_timeout(t);
        }
        if let Some(k) = self.keepalives {
            c.keepalives(k);
        }
        if let Some(t) = self.keepalives_idle {
            c.keepalives_idle(t);
        }
        if let Some(t) = self.keepalives_interval {
            c.keepalives_interval(t);
        }
        if let Some(n) = self.keepalives_count {
            c.keepalives_retries(n);
        }
        c
    }
}

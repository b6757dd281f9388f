//! Server chains the verifier has already accepted. Servers present the same chain on every
//! connection, and OpenSSL 3 needs most of a millisecond to parse and verify it again.

use std::sync::Mutex;

use rustls::pki_types::CertificateDer;

/// How many distinct server chains one configuration remembers.
const CACHED_CHAINS: usize = 8;

/// A server chain that passed, the time window in which that outcome cannot change, and the
/// host names it matched.
struct VerifiedChain {
    ders: Vec<Vec<u8>>,
    valid_from: i64,
    valid_until: i64,
    hosts: Vec<String>,
}

impl VerifiedChain {
    fn is(&self, end_entity: &[u8], intermediates: &[CertificateDer<'_>]) -> bool {
        self.ders.len() == intermediates.len() + 1
            && self.ders[0] == end_entity
            && self.ders[1..]
                .iter()
                .zip(intermediates)
                .all(|(a, b)| a.as_slice() == b.as_ref())
    }
}

/// The chains one verifier accepted, most recent last. Only used when no CRL is checked: a
/// CRL can expire or be replaced, and then the same chain may no longer pass.
#[derive(Default)]
pub(super) struct ChainCache(Mutex<Vec<VerifiedChain>>);

impl ChainCache {
    /// Whether this chain was accepted, for `host` when `host` is given, and `now` (Unix
    /// seconds) is still in its window.
    pub(super) fn contains(
        &self,
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
        host: Option<&str>,
        now: i64,
    ) -> bool {
        let chains = self.0.lock().expect("verifier cache");
        chains.iter().any(|c| {
            c.is(end_entity, intermediates)
                && c.valid_from <= now
                && now < c.valid_until
                && host.is_none_or(|host| c.hosts.iter().any(|h| h == host))
        })
    }

    /// Records an accepted chain, its validity `window` (Unix seconds) and the host it
    /// matched; the oldest chain goes when the cache is full.
    pub(super) fn remember(
        &self,
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
        window: (i64, i64),
        host: &str,
    ) {
        let mut chains = self.0.lock().expect("verifier cache");
        if let Some(c) = chains.iter_mut().find(|c| c.is(end_entity, intermediates)) {
            (c.valid_from, c.valid_until) = window;
            if !c.hosts.iter().any(|h| h == host) {
                c.hosts.push(host.to_string());
            }
            return;
        }
        if chains.len() >= CACHED_CHAINS {
            chains.remove(0);
        }
        let mut ders = vec![end_entity.to_vec()];
        ders.extend(intermediates.iter().map(|c| c.to_vec()));
        chains.push(VerifiedChain {
            ders,
            valid_from: window.0,
            valid_until: window.1,
            hosts: vec![host.to_string()],
        });
    }
}

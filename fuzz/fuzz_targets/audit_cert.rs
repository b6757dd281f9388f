//! Certificate files as `pgssl.server_cert()`, `check_config()` and `expiring()` read them:
//! PEM chains (with any text around the blocks) or a DER certificate, and every fact taken
//! from each certificate, fed into the audit's checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openssl::x509::X509;
use pgssl_fuzz::audit::checks::{evaluate, Facts, ServerCertFacts};
use pgssl_fuzz::cert;

fn facts_of(c: &X509, now: i64) -> ServerCertFacts {
    let _ = (
        cert::name_rfc2253(c.subject_name()),
        cert::name_rfc2253(c.issuer_name()),
        cert::serial_decimal(c),
        cert::serial_hex(c),
        cert::unix_seconds(c.not_before()),
        cert::signature_algorithm(c),
        cert::fingerprint_sha256(c),
        cert::extensions(c),
    );
    ServerCertFacts::of(c, now)
}

fuzz_target!(|data: &[u8]| {
    let mut certs = cert::certificates_from_pem(data).unwrap_or_default();
    if let Ok(c) = X509::from_der(data) {
        certs.push(c);
    }
    let now = 1_800_000_000;
    for c in &certs {
        let facts = Facts {
            now,
            ssl: true,
            server_cert: Some(Ok(facts_of(c, now))),
            key_matches: Some(Ok(true)),
            client_ca_not_after: cert::unix_seconds(c.not_after()),
            ..Facts::default()
        };
        assert!(!evaluate(&facts).is_empty());
    }
});

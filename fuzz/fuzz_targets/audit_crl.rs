//! CRL files as the CA's CRL install and `check_config()` read them: the PEM blocks of
//! `ssl_crl_file` (text around them ignored, a bad block refused), the facts taken from each
//! CRL, and the merge that keeps other issuers' CRLs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openssl::x509::X509Crl;
use pgssl_fuzz::{cert, crl_file};

fuzz_target!(|data: &[u8]| {
    let mut crls: Vec<X509Crl> = Vec::new();
    if let Ok(crl) = X509Crl::from_der(data) {
        crls.push(crl);
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(blocks) = crl_file::parse(&text) {
        crls.extend(blocks.into_iter().map(|(_, crl)| crl));
    }
    for crl in &crls {
        let _ = cert::name_rfc2253(crl.issuer_name());
        let _ = crl.next_update().and_then(cert::unix_seconds);
        let _ = cert::unix_seconds(crl.last_update());
        if let Some(list) = crl.get_revoked() {
            for revoked in list {
                if let Ok(bn) = revoked.serial_number().to_bn() {
                    let _ = cert::bignum_hex(&bn);
                }
            }
        }
        assert!(crl_file::same_name(crl.issuer_name(), crl.issuer_name()));
        // Replacing this issuer's CRL keeps every block of another issuer.
        if let Ok(merged) = crl_file::merge(&text, "ours", crl.issuer_name()) {
            assert!(merged.ends_with("ours\n"));
            let kept = crl_file::parse(&merged).expect("a merged file parses again");
            assert!(kept
                .iter()
                .all(|(_, other)| !crl_file::same_name(other.issuer_name(), crl.issuer_name())));
        }
    }
});

//! The CSR policy (`pgssl.sign_csr`'s first step): PEM text as a client sends it, or DER.
//!
//! The first byte picks the form: even, the rest is the PEM text as given; odd, the rest is
//! a DER request, which the target wraps in a PEM block. Whatever passes must meet the
//! policy the certificate is built from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgssl_fuzz::csr::{check_common_name, check_csr, KeyKind, MAX_COMMON_NAME_CHARS, MIN_RSA_BITS};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = if mode % 2 == 0 {
        match std::str::from_utf8(rest) {
            Ok(text) => text.to_string(),
            Err(_) => return,
        }
    } else {
        let base64 = openssl::base64::encode_block(rest);
        let lines: Vec<&str> = base64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            lines.join("\n")
        )
    };
    let Ok(checked) = check_csr(&text) else {
        return;
    };
    // A request that passed: the name and the key are what the policy says.
    assert!(check_common_name(&checked.common_name).is_ok());
    assert!(checked.common_name.chars().count() <= MAX_COMMON_NAME_CHARS);
    assert!(!checked.common_name.chars().any(char::is_control));
    match checked.key_kind {
        KeyKind::Rsa(bits) => assert!(bits >= MIN_RSA_BITS),
        KeyKind::EcP256 | KeyKind::EcP384 | KeyKind::Ed25519 => {}
    }
    assert_eq!(KeyKind::of(&checked.public_key), Ok(checked.key_kind));
    let _ = format!("{checked:?}");
});

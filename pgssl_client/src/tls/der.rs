//! Handshake signatures checked against the server certificate's key, with a DER walker that
//! reads the key straight from the certificate: rustls' `verify_tls1x_signature` helpers parse
//! the certificate with webpki, which refuses the X.509 v1 certificates libpq accepts, and
//! OpenSSL 3's decoder takes a quarter of a millisecond per certificate, on every connection.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::CertificateDer;
use rustls::{DigitallySignedStruct, SignatureScheme};

fn supported_in_tls13(s: SignatureScheme) -> bool {
    use SignatureScheme as S;
    matches!(
        s,
        S::ECDSA_NISTP256_SHA256
            | S::ECDSA_NISTP384_SHA384
            | S::ECDSA_NISTP521_SHA512
            | S::RSA_PSS_SHA256
            | S::RSA_PSS_SHA384
            | S::RSA_PSS_SHA512
            | S::ED25519
            | S::ED448
    )
}

/// One DER element: (tag, contents, rest).
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let v = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        rest = &rest[n..];
        v
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The contents of a certificate's SubjectPublicKeyInfo, read straight from the DER: OpenSSL
/// 3's decoder takes a quarter of a millisecond per certificate, on every connection.
fn spki_of(cert: &[u8]) -> Option<&[u8]> {
    let (_, cert_body, _) = der_next(cert)?;
    let (_, tbs, _) = der_next(cert_body)?;
    let (tag, _, after_version) = der_next(tbs)?;
    // The version field ([0] EXPLICIT) is absent from X.509 v1 certificates.
    let mut rest = if tag == 0xa0 { after_version } else { tbs };
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        rest = der_next(rest)?.2;
    }
    let (tag, spki, _) = der_next(rest)?;
    (tag == 0x30).then_some(spki)
}

/// The handshake signature, checked with ring's algorithms against the certificate's key.
/// rustls' `verify_tls1x_signature` helpers parse the certificate with webpki, which refuses
/// X.509 v1; the key is taken from the SubjectPublicKeyInfo instead, as webpki itself does.
pub(super) fn verify_signature(
    algs: &WebPkiSupportedAlgorithms,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    tls13: bool,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let bad_cert = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding);
    if tls13 && !supported_in_tls13(dss.scheme) {
        return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let spki_body = spki_of(cert).ok_or_else(bad_cert)?;
    let (_, alg_id, rest) = der_next(spki_body).ok_or_else(bad_cert)?;
    let (_, bits, _) = der_next(rest).ok_or_else(bad_cert)?;
    let key = bits.get(1..).ok_or_else(bad_cert)?;
    let candidates = algs
        .mapping
        .iter()
        .find(|(s, _)| *s == dss.scheme)
        .map(|(_, a)| *a)
        .ok_or(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ))?;
    let candidates = if tls13 { &candidates[..1] } else { candidates };
    for alg in candidates {
        if alg.public_key_alg_id().as_ref() != alg_id {
            continue;
        }
        return alg
            .verify_signature(key, message, dss.signature())
            .map(|_| HandshakeSignatureValid::assertion())
            .map_err(|_| {
                rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
            });
    }
    Err(rustls::Error::InvalidCertificate(
        rustls::CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
            signature_algorithm_id: Vec::new(),
            public_key_algorithm_id: alg_id.to_vec(),
        },
    ))
}

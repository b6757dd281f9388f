//! Handshake signatures checked against the server certificate's key, with a DER walker that
//! reads the key straight from the certificate: rustls' `verify_tls1x_signature` helpers parse
//! the certificate with webpki, which refuses the X.509 v1 certificates libpq accepts, and
//! OpenSSL 3's decoder takes a quarter of a millisecond per certificate, on every connection.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::CertificateDer;
use rustls::{DigitallySignedStruct, SignatureScheme};

/// TLS's `rsa_pss_pss_*` schemes (RFC 8446): RSASSA-PSS by a key whose SubjectPublicKeyInfo
/// says id-RSASSA-PSS, as OpenSSL servers with an RSA-PSS key sign. rustls has no names for
/// them; the signature is the same PSS that `rsa_pss_rsae_*` names, only the key's
/// algorithm identifier differs.
pub(super) const RSA_PSS_PSS: [(u16, SignatureScheme); 3] = [
    (0x0809, SignatureScheme::RSA_PSS_SHA256),
    (0x080a, SignatureScheme::RSA_PSS_SHA384),
    (0x080b, SignatureScheme::RSA_PSS_SHA512),
];

/// The DER of the id-RSASSA-PSS object identifier (1.2.840.113549.1.1.10).
const ID_RSASSA_PSS: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a,
];

/// The `rsa_pss_rsae_*` scheme a `rsa_pss_pss_*` scheme signs with, if it is one.
fn pss_pss(s: SignatureScheme) -> Option<SignatureScheme> {
    RSA_PSS_PSS
        .iter()
        .find(|(code, _)| SignatureScheme::from(*code) == s)
        .map(|(_, rsae)| *rsae)
}

fn supported_in_tls13(s: SignatureScheme) -> bool {
    use SignatureScheme as S;
    pss_pss(s).is_some()
        || matches!(
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

/// The hash named by an RSASSA-PSS certificate signature's parameters, as OpenSSL's
/// `X509_get_signature_info` (which libpq uses for `tls-server-end-point`) reads it:
/// `Some(None)` for the default (SHA-1), `Some(Some(oid))` for an explicit hash's DER object
/// identifier contents, `None` when the signature is not RSASSA-PSS or is unreadable.
pub(super) fn pss_signature_hash(cert: &[u8]) -> Option<Option<&[u8]>> {
    let (_, cert_body, _) = der_next(cert)?;
    let (_, _tbs, rest) = der_next(cert_body)?;
    let (_, alg, _) = der_next(rest)?;
    let oid_len = ID_RSASSA_PSS.len();
    if alg.get(..oid_len)? != ID_RSASSA_PSS {
        return None;
    }
    let Some((0x30, params, _)) = der_next(&alg[oid_len..]) else {
        return Some(None);
    };
    match der_next(params) {
        Some((0xa0, hash_alg, _)) => {
            let (_, hash_alg, _) = der_next(hash_alg)?;
            let (tag, oid, _) = der_next(hash_alg)?;
            (tag == 0x06).then_some(Some(oid))
        }
        _ => Some(None),
    }
}

/// The hash `tls-server-end-point` (RFC 5929) takes for the common certificate signature
/// algorithms, read from the certificate's outer signatureAlgorithm as OpenSSL names it for
/// libpq (SHA-1 upgraded to SHA-256), and computed over the certificate as sent: what the
/// OpenSSL path in `stream` gives, without parsing the certificate with OpenSSL 3, whose key
/// decoder costs more than the rest of a connection's client-side work. `None` for any other
/// algorithm (RSASSA-PSS, Ed25519, DSA, ...), which that path decides.
pub(super) fn end_point_hash(cert: &[u8]) -> Option<Vec<u8>> {
    // sha{1,256,384,512}WithRSAEncryption: 1.2.840.113549.1.1.{5,11,12,13}.
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    // ecdsa-with-SHA1: 1.2.840.10045.4.1; ecdsa-with-SHA{256,384,512}: 1.2.840.10045.4.3.{2,3,4}.
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04];
    let (0x30, cert_body, trailing) = der_next(cert)? else {
        return None;
    };
    if !trailing.is_empty() {
        return None;
    }
    let (0x30, _tbs, rest) = der_next(cert_body)? else {
        return None;
    };
    let (0x30, alg, rest) = der_next(rest)? else {
        return None;
    };
    let (0x03, _signature, rest) = der_next(rest)? else {
        return None;
    };
    if !rest.is_empty() {
        return None;
    }
    let (0x06, oid, params) = der_next(alg)? else {
        return None;
    };
    // RSA signatures carry NULL parameters (or none); ECDSA ones none.
    let no_params = params.is_empty() || params == [0x05, 0x00];
    let bits = match oid.split_at_checked(oid.len().checked_sub(1)?)? {
        (RSA, [5 | 11]) if no_params => 256,
        (RSA, [12]) if no_params => 384,
        (RSA, [13]) if no_params => 512,
        (prefix, [1]) if prefix == ECDSA && params.is_empty() => 256,
        (prefix, [n @ 2..=4])
            if params.is_empty() && prefix.strip_prefix(ECDSA) == Some(&[3u8][..]) =>
        {
            [256, 384, 512][usize::from(*n) - 2]
        }
        _ => return None,
    };
    Some(match bits {
        256 => openssl::sha::sha256(cert).to_vec(),
        384 => openssl::sha::sha384(cert).to_vec(),
        _ => openssl::sha::sha512(cert).to_vec(),
    })
}

/// The raw bytes of every dNSName in a certificate's subjectAltName extension, in order:
/// OpenSSL's Rust binding hides the ones that are not UTF-8, which libpq still counts.
pub(super) fn dns_names(cert: &[u8]) -> Vec<&[u8]> {
    const SAN_OID: &[u8] = &[0x55, 0x1d, 0x11];
    let mut names = Vec::new();
    let Some(extensions) = extensions_of(cert) else {
        return names;
    };
    let mut rest = extensions;
    while let Some((_, ext, next)) = der_next(rest) {
        rest = next;
        let Some((0x06, oid, mut value)) = der_next(ext) else {
            continue;
        };
        if oid != SAN_OID {
            continue;
        }
        if let Some((0x01, _, after)) = der_next(value) {
            value = after;
        }
        let Some((0x04, octets, _)) = der_next(value) else {
            continue;
        };
        let Some((0x30, mut general_names, _)) = der_next(octets) else {
            continue;
        };
        while let Some((tag, name, next)) = der_next(general_names) {
            if tag == 0x82 {
                names.push(name);
            }
            general_names = next;
        }
    }
    names
}

/// The contents of the SEQUENCE inside a certificate's `[3] extensions`.
fn extensions_of(cert: &[u8]) -> Option<&[u8]> {
    let (_, cert_body, _) = der_next(cert)?;
    let (_, mut tbs, _) = der_next(cert_body)?;
    while let Some((tag, contents, rest)) = der_next(tbs) {
        if tag == 0xa3 {
            return der_next(contents).map(|(_, seq, _)| seq);
        }
        tbs = rest;
    }
    None
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
    if let Some(rsae) = pss_pss(dss.scheme) {
        // The key is an RSAPublicKey under an id-RSASSA-PSS identifier; ring verifies the
        // PSS signature from the key alone.
        if !alg_id.starts_with(ID_RSASSA_PSS) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                    signature_algorithm_id: Vec::new(),
                    public_key_algorithm_id: alg_id.to_vec(),
                },
            ));
        }
        let alg = algs
            .mapping
            .iter()
            .find(|(s, _)| *s == rsae)
            .and_then(|(_, a)| a.first())
            .ok_or(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ))?;
        return alg
            .verify_signature(key, message, dss.signature())
            .map(|_| HandshakeSignatureValid::assertion())
            .map_err(|_| {
                rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
            });
    }
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

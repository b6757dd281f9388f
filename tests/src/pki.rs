//! Certificates minted at test time, so nothing committed can expire.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time, Asn1TimeRef, Asn1Type};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{
    X509CrlBuilder, X509Extension, X509Name, X509NameBuilder, X509ReqBuilder, X509RevokedBuilder,
    X509,
};

/// Key algorithms for minted certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA on P-256.
    EcP256,
    /// RSA, 2048 bits.
    Rsa2048,
    /// RSA, 1024 bits: weak, for tests that must see it refused or flagged.
    Rsa1024,
    /// Ed25519.
    Ed25519,
    /// ECDSA on P-384.
    EcP384,
    /// ECDSA on P-521: libpq accepts it; rustls verifies it with aws-lc-rs, not ring.
    EcP521,
    /// RSA-PSS, 2048 bits: a key whose SubjectPublicKeyInfo says id-RSASSA-PSS, so TLS
    /// signs with `rsa_pss_pss_*` and certificates it signs carry an RSASSA-PSS signature.
    RsaPss2048,
}

impl KeyType {
    /// A fresh private key of this type.
    pub fn generate(self) -> PKey<Private> {
        match self {
            KeyType::EcP256 => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
                PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
            }
            KeyType::Rsa2048 => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
            KeyType::Rsa1024 => PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap(),
            KeyType::Ed25519 => PKey::generate_ed25519().unwrap(),
            KeyType::EcP384 => {
                let group = EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
                PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
            }
            KeyType::EcP521 => {
                let group = EcGroup::from_curve_name(Nid::SECP521R1).unwrap();
                PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
            }
            KeyType::RsaPss2048 => {
                // The openssl crate has no RSA-PSS key generation; the openssl tool does.
                let out = std::process::Command::new("openssl")
                    .args(["genpkey", "-algorithm", "RSA-PSS"])
                    .args(["-pkeyopt", "rsa_keygen_bits:2048"])
                    .output()
                    .expect("openssl genpkey");
                assert!(out.status.success(), "openssl genpkey: {out:?}");
                PKey::private_key_from_pem(&out.stdout).unwrap()
            }
        }
    }

    fn digest(self) -> MessageDigest {
        match self {
            KeyType::Ed25519 => MessageDigest::null(),
            KeyType::EcP384 => MessageDigest::sha384(),
            KeyType::EcP521 => MessageDigest::sha512(),
            _ => MessageDigest::sha256(),
        }
    }
}

/// What to put in a certificate.
#[derive(Debug, Clone)]
pub struct CertSpec {
    /// Subject attributes in encoding order, e.g. `[("O", "Acme"), ("CN", "alice")]`.
    pub subject: Vec<(String, String)>,
    /// DNS names for the SAN extension.
    pub dns: Vec<String>,
    /// IP addresses for the SAN extension.
    pub ips: Vec<IpAddr>,
    /// Valid from now + this many seconds (negative: in the past).
    pub not_before_secs: i64,
    /// Valid until now + this many seconds.
    pub not_after_secs: i64,
    /// The key type.
    pub key_type: KeyType,
    /// Server (serverAuth) or client (clientAuth) usage.
    pub server: bool,
}

impl CertSpec {
    /// A client certificate with the given subject, valid for a day.
    pub fn client(subject: &[(&str, &str)]) -> Self {
        CertSpec {
            subject: subject
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dns: vec![],
            ips: vec![],
            not_before_secs: -300,
            not_after_secs: 86_400,
            key_type: KeyType::EcP256,
            server: false,
        }
    }

    /// A server certificate for `CN=localhost` with SANs `localhost` and
    /// `127.0.0.1`, valid for a year.
    pub fn server() -> Self {
        CertSpec {
            subject: vec![("CN".into(), "localhost".into())],
            dns: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
            server: true,
            not_after_secs: 365 * 86_400,
            ..CertSpec::client(&[])
        }
    }

    /// The same with another key type.
    pub fn key_type(mut self, key_type: KeyType) -> Self {
        self.key_type = key_type;
        self
    }

    /// The same without subject alternative names.
    pub fn without_sans(mut self) -> Self {
        self.dns.clear();
        self.ips.clear();
        self
    }

    /// The same with another validity window, relative to now.
    pub fn validity(mut self, not_before_secs: i64, not_after_secs: i64) -> Self {
        self.not_before_secs = not_before_secs;
        self.not_after_secs = not_after_secs;
        self
    }
}

/// A certificate and its private key.
pub struct Issued {
    /// The certificate.
    pub cert: X509,
    /// Its private key.
    pub key: PKey<Private>,
}

/// A certificate and key written to files (key mode 0600).
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The PEM certificate.
    pub cert: PathBuf,
    /// The PEM private key (PKCS#8).
    pub key: PathBuf,
}

impl Issued {
    /// Writes `<stem>.crt` and `<stem>.key` into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> CertFiles {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        write_file(&cert, &self.cert.to_pem().unwrap(), 0o644);
        write_file(&key, &self.key.private_key_to_pem_pkcs8().unwrap(), 0o600);
        CertFiles { cert, key }
    }
}

/// A certificate authority for tests.
#[derive(Clone)]
pub struct Ca {
    /// The self-signed CA certificate.
    pub cert: X509,
    key: PKey<Private>,
    key_type: KeyType,
}

impl Ca {
    /// A new EC P-256 CA valid for a year, with subject `CN=<cn>`.
    pub fn new(cn: &str) -> Ca {
        Ca::with_key_type(cn, KeyType::EcP256)
    }

    /// A new CA with the given key type, valid for a year.
    pub fn with_key_type(cn: &str, key_type: KeyType) -> Ca {
        Ca::with_validity(cn, key_type, 365)
    }

    /// A new CA valid from now for `days` days.
    pub fn with_validity(cn: &str, key_type: KeyType, days: u32) -> Ca {
        let key = key_type.generate();
        let name = build_name(&[("CN".into(), cn.into())]);
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&random_serial()).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(days).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(ski).unwrap();
        b.sign(&key, key_type.digest()).unwrap();
        Ca {
            cert: b.build(),
            key,
            key_type,
        }
    }

    /// An existing EC P-256 CA from its PEM certificate and key, e.g. the pgssl CA that
    /// `pgssl.init_ca()` made in a test cluster's data directory, so that a test can issue
    /// what the extension cannot (a certificate valid for seconds).
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Ca {
        Ca {
            cert: X509::from_pem(cert).unwrap(),
            key: PKey::private_key_from_pem(key).unwrap(),
            key_type: KeyType::EcP256,
        }
    }

    /// Issues a certificate per `spec`.
    pub fn issue(&self, spec: &CertSpec) -> Issued {
        let key = spec.key_type.generate();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&random_serial()).unwrap();
        b.set_subject_name(&build_name(&spec.subject)).unwrap();
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&time_from_now(spec.not_before_secs))
            .unwrap();
        b.set_not_after(&time_from_now(spec.not_after_secs))
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()
                .unwrap(),
        )
        .unwrap();
        let eku = if spec.server {
            ExtendedKeyUsage::new().server_auth().build()
        } else {
            ExtendedKeyUsage::new().client_auth().build()
        };
        b.append_extension(eku.unwrap()).unwrap();
        let ctx = b.x509v3_context(Some(&self.cert), None);
        let ski = SubjectKeyIdentifier::new().build(&ctx).unwrap();
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&ctx)
            .unwrap();
        let san = if spec.dns.is_empty() && spec.ips.is_empty() {
            None
        } else {
            let mut san = SubjectAlternativeName::new();
            spec.dns.iter().for_each(|d| {
                san.dns(d);
            });
            spec.ips.iter().for_each(|ip| {
                san.ip(&ip.to_string());
            });
            Some(san.build(&ctx).unwrap())
        };
        b.append_extension(ski).unwrap();
        b.append_extension(aki).unwrap();
        if let Some(san) = san {
            b.append_extension(san).unwrap();
        }
        b.sign(&self.key, self.key_type.digest()).unwrap();
        Issued {
            cert: b.build(),
            key,
        }
    }

    /// A CRL from this CA, valid from an hour ago for a day, revoking `revoked`
    /// (PEM). An empty list gives a CRL that revokes nothing.
    pub fn crl(&self, revoked: &[&X509]) -> Vec<u8> {
        let mut b = X509CrlBuilder::new().unwrap();
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        b.set_last_update(&time_from_now(-3600)).unwrap();
        b.set_next_update(&time_from_now(86_400)).unwrap();
        // The openssl crate insists on an authorityKeyIdentifier: the CA's key id.
        let key_id = self
            .cert
            .subject_key_id()
            .expect("the CA has a key id")
            .as_slice();
        let mut aki = vec![0x30, key_id.len() as u8 + 2, 0x80, key_id.len() as u8];
        aki.extend_from_slice(key_id);
        let aki = X509Extension::new_from_der(
            &Asn1Object::from_str("2.5.29.35").unwrap(),
            false,
            &Asn1OctetString::new_from_bytes(&aki).unwrap(),
        )
        .unwrap();
        b.append_extension(aki).unwrap();
        // ... and a cRLNumber (1).
        let number = X509Extension::new_from_der(
            &Asn1Object::from_str("2.5.29.20").unwrap(),
            false,
            &Asn1OctetString::new_from_bytes(&[0x02, 0x01, 0x01]).unwrap(),
        )
        .unwrap();
        b.append_extension(number).unwrap();
        for cert in revoked {
            let mut r = X509RevokedBuilder::new().unwrap();
            r.set_serial_number(cert.serial_number()).unwrap();
            r.set_revocation_date(&time_from_now(-60)).unwrap();
            b.add_revoked(r.build()).unwrap();
        }
        b.sign(&self.key, self.key_type.digest()).unwrap();
        b.build().unwrap().to_pem().unwrap()
    }

    /// Writes the CA certificate to `path`.
    pub fn write_cert(&self, path: &Path) {
        write_file(path, &self.cert.to_pem().unwrap(), 0o644);
    }
}

fn build_name(attrs: &[(String, String)]) -> X509Name {
    let mut name = X509NameBuilder::new().unwrap();
    for (k, v) in attrs {
        name.append_entry_by_text(k, v)
            .unwrap_or_else(|e| panic!("{k}={v}: {e}"));
    }
    name.build()
}

fn random_serial() -> Asn1Integer {
    let mut bn = BigNum::new().unwrap();
    bn.rand(120, MsbOption::MAYBE_ZERO, false).unwrap();
    bn.to_asn1_integer().unwrap()
}

/// A PEM certificate signing request whose subject is these `CN` entries
/// (raw UTF8String values, so NUL and newline can be put in), signed by `key`.
pub fn csr_pem(common_names: &[&str], key: &PKey<Private>) -> String {
    let mut name = X509NameBuilder::new().unwrap();
    for cn in common_names {
        name.append_entry_by_nid_with_type(Nid::COMMONNAME, cn, Asn1Type::UTF8STRING)
            .unwrap();
    }
    let mut req = X509ReqBuilder::new().unwrap();
    req.set_subject_name(&name.build()).unwrap();
    req.set_pubkey(key).unwrap();
    let digest = match key.id() {
        openssl::pkey::Id::ED25519 => MessageDigest::null(),
        _ => MessageDigest::sha256(),
    };
    req.sign(key, digest).unwrap();
    String::from_utf8(req.build().to_pem().unwrap()).unwrap()
}

/// A key and CSR made with the openssl command line in `dir`, as a user
/// would (`openssl req -new -nodes <key_args> -subj <subject>`), the key
/// mode 0600; returns the paths of `<stem>.key` and `<stem>.csr`.
pub fn openssl_csr(dir: &Path, stem: &str, subject: &str, key_args: &[&str]) -> (PathBuf, PathBuf) {
    let key = format!("{stem}.key");
    let csr = format!("{stem}.csr");
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend_from_slice(key_args);
    args.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", subject]);
    crate::openssl(dir, &args);
    fs::set_permissions(dir.join(&key), fs::Permissions::from_mode(0o600)).unwrap();
    (dir.join(key), dir.join(csr))
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An ASN.1 time as seconds since the Unix epoch.
pub fn unix_time(time: &Asn1TimeRef) -> i64 {
    let diff = Asn1Time::from_unix(0).unwrap().diff(time).unwrap();
    i64::from(diff.days) * 86_400 + i64::from(diff.secs)
}

/// The ASN.1 time `secs` seconds from now (negative: in the past).
pub fn time_from_now(secs: i64) -> Asn1Time {
    Asn1Time::from_unix(unix_now() + secs).unwrap()
}

/// Whole days from now until `time`, as `Asn1Time::diff` counts them
/// (towards zero).
pub fn days_until(time: &Asn1TimeRef) -> i64 {
    (unix_time(time) - unix_now()) / 86_400
}

/// Writes `contents` to `path` with `mode`.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

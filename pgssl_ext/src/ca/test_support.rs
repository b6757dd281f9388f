//! Helpers for the CA's unit tests: keys, CSRs and a test CA.

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509Req, X509ReqBuilder, X509};

use super::profile::signing_digest;

pub(crate) fn ec_key(curve: Nid) -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(curve).unwrap()).unwrap()).unwrap()
}

pub(crate) fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

/// A CSR with the given subject entries, signed by `key`.
pub(crate) fn csr_with(key: &PKey<Private>, cns: &[&str], extras: bool) -> X509Req {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("O", "Acme").unwrap();
    for cn in cns {
        name.append_entry_by_nid_with_type(
            Nid::COMMONNAME,
            cn,
            openssl::asn1::Asn1Type::UTF8STRING,
        )
        .unwrap();
    }
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_version(0).unwrap();
    b.set_subject_name(&name.build()).unwrap();
    b.set_pubkey(key).unwrap();
    if extras {
        let mut exts = Stack::new().unwrap();
        exts.push(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        exts.push(
            ExtendedKeyUsage::new()
                .server_auth()
                .client_auth()
                .build()
                .unwrap(),
        )
        .unwrap();
        exts.push(
            SubjectAlternativeName::new()
                .dns("evil.example.com")
                .build(&b.x509v3_context(None))
                .unwrap(),
        )
        .unwrap();
        b.add_extensions(&exts).unwrap();
    }
    b.sign(key, signing_digest(key)).unwrap();
    b.build()
}

pub(crate) fn pem(req: &X509Req) -> String {
    String::from_utf8(req.to_pem().unwrap()).unwrap()
}

pub(crate) fn csr_pem(key: &PKey<Private>, cn: &str) -> String {
    pem(&csr_with(key, &[cn], false))
}

pub(crate) fn test_ca() -> (X509, PKey<Private>) {
    let key = ec_key(Nid::X9_62_PRIME256V1);
    let cert = crate::ca::authority::self_signed_ca("test CA", 3650, &key, now()).unwrap();
    (cert, key)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

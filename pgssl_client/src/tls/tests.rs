//! The file loaders, the verifier and the seam, with certificates minted at test time.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::store::X509Store;
use openssl::x509::X509;
use pgssl_tests::{seed_recipe, Ca, CertSpec};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::{AlertDescription, CertificateError};

use super::files::load_private_key;
use super::hostname::check_host_name;
use super::stream::tls_server_end_point;
use super::verifier::verify_chain;
use super::*;

fn config(conninfo: &str) -> Config {
    Config::from_conninfo_with_env(conninfo, &|_| None, None).unwrap()
}

fn roots(dir: &Path, extra: &str) -> Arc<X509Store> {
    load_roots(&config(&format!(
        "sslmode=verify-ca sslrootcert={}/root.crt {extra}",
        dir.display()
    )))
    .unwrap()
    .expect("a store")
    .0
}

fn chain_error(store: &X509Store, cert: &X509) -> Option<String> {
    verify_chain(store, cert, &[]).err().map(|e| e.to_string())
}

#[test]
fn chains_are_checked_as_openssl_checks_them_for_libpq() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("unit CA");
    // Text before the PEM block, as `openssl x509 -text` writes it.
    let mut root = b"Certificate:\n    Data: (text that OpenSSL skips)\n".to_vec();
    root.extend(ca.cert.to_pem().unwrap());
    fs::write(d.join("root.crt"), root).unwrap();
    let store = roots(d, "");

    assert_eq!(
        chain_error(&store, &ca.issue(&CertSpec::server()).cert),
        None
    );
    let expired = ca.issue(&CertSpec::server().validity(-7200, -3600)).cert;
    assert!(chain_error(&store, &expired)
        .unwrap()
        .contains("certificate has expired"));
    let future = ca.issue(&CertSpec::server().validity(3600, 7200)).cert;
    assert!(chain_error(&store, &future)
        .unwrap()
        .contains("certificate is not yet valid"));
    let stranger = Ca::new("other CA").issue(&CertSpec::server()).cert;
    let err = chain_error(&store, &stranger).unwrap();
    assert!(
        err.contains("unable to get local issuer certificate") && err.contains("depth 0"),
        "{err}"
    );
    // A client-only certificate is not a server certificate (OpenSSL's "SSL server" purpose).
    let client_only = ca.issue(&CertSpec::client(&[("CN", "x")])).cert;
    let err = chain_error(&store, &client_only);
    assert!(
        err.as_deref()
            .unwrap_or("")
            .contains("unsuitable certificate purpose"),
        "{err:?}"
    );

    // Revoked by the CRL given in sslcrl; the CRL check then covers the whole chain.
    let revoked = ca.issue(&CertSpec::server()).cert;
    fs::write(d.join("x.crl"), ca.crl(&[&revoked])).unwrap();
    let with_crl = roots(d, &format!("sslcrl={}/x.crl", d.display()));
    assert!(chain_error(&with_crl, &revoked)
        .unwrap()
        .contains("certificate revoked"));
    assert_eq!(
        chain_error(&with_crl, &ca.issue(&CertSpec::server()).cert),
        None
    );
    // The same CRL found through sslcrldir (a directory `openssl rehash` indexed).
    let crl_dir = d.join("crls");
    fs::create_dir(&crl_dir).unwrap();
    fs::write(crl_dir.join("ca.crl"), ca.crl(&[&revoked])).unwrap();
    pgssl_tests::openssl(d, &["rehash", crl_dir.to_str().unwrap()]);
    let with_dir = roots(d, &format!("sslcrldir={}", crl_dir.display()));
    assert!(chain_error(&with_dir, &revoked)
        .unwrap()
        .contains("certificate revoked"));
    // An unreadable CRL is ignored, as libpq ignores it.
    let missing_crl = roots(d, &format!("sslcrl={}/none.crl", d.display()));
    assert_eq!(chain_error(&missing_crl, &revoked), None);
    // A CRL file that holds certificates but no CRL: libpq's X509_load_cert_crl_file loads
    // it, turns CRL checking on, and then finds no CRL for any chain: it fails closed.
    fs::write(d.join("certs-only.crl"), ca.cert.to_pem().unwrap()).unwrap();
    let certs_only = roots(d, &format!("sslcrl={}/certs-only.crl", d.display()));
    let err = chain_error(&certs_only, &ca.issue(&CertSpec::server()).cert);
    assert!(
        err.as_deref()
            .unwrap_or("")
            .contains("unable to get certificate CRL"),
        "{err:?}"
    );
}

#[test]
fn weak_keys_are_refused_at_libssls_security_level() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A 512-bit RSA leaf: below security level 1 (80 bits), which libssl applies at the
    // least, so libpq's OpenSSL refuses it.
    pgssl_tests::openssl(
        d,
        &[
            "req",
            "-new",
            "-x509",
            "-days",
            "2",
            "-nodes",
            "-out",
            "root.crt",
            "-keyout",
            "ca.key",
            "-subj",
            "/CN=weak test CA",
        ],
    );
    pgssl_tests::openssl(d, &["genrsa", "-out", "weak.key", "512"]);
    pgssl_tests::openssl(
        d,
        &[
            "req", "-new", "-key", "weak.key", "-out", "weak.csr", "-subj", "/CN=weak",
        ],
    );
    pgssl_tests::openssl(
        d,
        &[
            "x509", "-req", "-in", "weak.csr", "-CA", "root.crt", "-CAkey", "ca.key", "-days", "1",
            "-out", "weak.crt",
        ],
    );
    let store = roots(d, "");
    let weak = X509::from_pem(&fs::read(d.join("weak.crt")).unwrap()).unwrap();
    let err = chain_error(&store, &weak).expect("refused");
    assert!(err.contains("key too weak"), "{err}");
}

#[test]
fn the_seed_documents_v1_certificates_verify_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seed_recipe(d);
    let store = load_roots(&config(&format!(
        "sslmode=verify-full sslrootcert={}/ca.crt",
        d.display()
    )))
    .unwrap()
    .unwrap()
    .0;
    let server = X509::from_pem(&fs::read(d.join("server.crt")).unwrap()).unwrap();
    assert_eq!(server.version(), 0, "openssl x509 -req makes X.509 v1");
    verify_chain(&store, &server, &[]).unwrap();
    check_host_name(&server, "127.0.0.1").unwrap();
    assert!(check_host_name(&server, "localhost").is_err());
    // The v1 client certificate with text before its PEM block loads (rustls' own
    // loader refuses it).
    let c = config(&format!(
        "sslcert={0}/client.crt sslkey={0}/client.key",
        d.display()
    ));
    let (path, key) = load_client_cert(&c).unwrap().expect("a client certificate");
    assert_eq!(path, d.join("client.crt"));
    assert_eq!(key.cert.len(), 1);
}

fn client_files(d: &Path, key_pem: &[u8], mode: u32) -> Config {
    let ca = Ca::new("client CA");
    let issued = ca.issue(&CertSpec::client(&[("CN", "u")]));
    fs::write(d.join("c.crt"), issued.cert.to_pem().unwrap()).unwrap();
    let key_pem = if key_pem.is_empty() {
        issued.key.private_key_to_pem_pkcs8().unwrap()
    } else {
        key_pem.to_vec()
    };
    fs::write(d.join("c.key"), key_pem).unwrap();
    fs::set_permissions(d.join("c.key"), fs::Permissions::from_mode(mode)).unwrap();
    config(&format!("sslcert={0}/c.crt sslkey={0}/c.key", d.display()))
}

#[test]
fn client_certificate_files_follow_libpq() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No certificate file: no certificate, not an error.
    assert!(
        load_client_cert(&config(&format!("sslcert={}/none.crt", d.display())))
            .unwrap()
            .is_none()
    );
    // A certificate without its key: an error.
    let c = client_files(d, b"", 0o600);
    fs::remove_file(d.join("c.key")).unwrap();
    assert!(matches!(
        load_client_cert(&c),
        Err(Error::MissingKey { .. })
    ));
    // Permissions: 0600 fine; group/world access refused (root-owned: up to 0640).
    let c = client_files(d, b"", 0o600);
    assert!(load_client_cert(&c).unwrap().is_some());
    let owned_by_root = fs::metadata(d.join("c.key")).unwrap().uid() == 0;
    fs::set_permissions(d.join("c.key"), fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(load_client_cert(&c).is_ok(), owned_by_root);
    fs::set_permissions(d.join("c.key"), fs::Permissions::from_mode(0o604)).unwrap();
    let err = load_client_cert(&c).expect_err("world-readable key refused");
    assert!(
        err.to_string().contains("has group or world access"),
        "{err}"
    );
    // A key of another pair.
    let other = Ca::new("x").issue(&CertSpec::client(&[("CN", "u")])).key;
    let c = client_files(d, &other.private_key_to_pem_pkcs8().unwrap(), 0o600);
    assert!(matches!(
        load_client_cert(&c),
        Err(Error::KeyMismatch { .. })
    ));
}

#[test]
fn private_key_formats() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let ec = PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let ed = PKey::generate_ed25519().unwrap();
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("PKCS#8 PEM", ed.private_key_to_pem_pkcs8().unwrap(), None),
        (
            "PKCS#1 PEM",
            rsa.rsa().unwrap().private_key_to_pem().unwrap(),
            None,
        ),
        (
            "SEC1 PEM",
            ec.ec_key().unwrap().private_key_to_pem().unwrap(),
            None,
        ),
        ("PKCS#8 DER", ec.private_key_to_pkcs8().unwrap(), None),
        ("PKCS#1 DER", rsa.private_key_to_der().unwrap(), None),
        (
            "encrypted PKCS#8 PEM",
            ec.private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"secret")
                .unwrap(),
            Some("secret"),
        ),
    ];
    for (what, bytes, password) in cases {
        fs::write(&p, &bytes).unwrap();
        assert!(load_private_key(&p, password).is_ok(), "{what}");
    }
    let encrypted = ec
        .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"secret")
        .unwrap();
    fs::write(&p, encrypted).unwrap();
    let err = load_private_key(&p, None).unwrap_err().to_string();
    assert!(err.contains("give sslpassword"), "{err}");
    assert!(load_private_key(&p, Some("wrong")).is_err());
}

#[test]
fn channel_binding_hash_follows_the_signature() {
    let ec = Ca::new("ec").issue(&CertSpec::server()).cert;
    let der = ec.to_der().unwrap();
    assert_eq!(
        tls_server_end_point(&der).unwrap(),
        ec.digest(MessageDigest::sha256()).unwrap().to_vec()
    );
    let ed = Ca::with_key_type("ed", pgssl_tests::KeyType::Ed25519)
        .issue(&CertSpec::server())
        .cert;
    assert_eq!(
        tls_server_end_point(&ed.to_der().unwrap()),
        None,
        "Ed25519 has no hash: libpq cannot bind either"
    );
    let pss = Ca::with_key_type("pss", pgssl_tests::KeyType::RsaPss2048)
        .issue(&CertSpec::server())
        .cert;
    assert_eq!(
        tls_server_end_point(&pss.to_der().unwrap()).unwrap(),
        pss.digest(MessageDigest::sha256()).unwrap().to_vec(),
        "RSASSA-PSS binds with the hash in its parameters, as libpq does"
    );
}

#[test]
fn require_verifies_only_with_a_root_file_and_verify_modes_need_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("root.crt"), Ca::new("r").cert.to_pem().unwrap()).unwrap();
    let setup = |s: &str| {
        TlsSetup::new(&config(&format!("{s} sslcert=/nonexistent"))).map(|t| t.verification)
    };
    let root = format!("sslrootcert={}/root.crt", d.display());
    let none = format!("sslrootcert={}/none.crt", d.display());
    assert_eq!(
        setup(&format!("sslmode=require {none}")).unwrap(),
        Verification::None
    );
    assert_eq!(
        setup(&format!("sslmode=require {root}")).unwrap(),
        Verification::Chain
    );
    assert_eq!(
        setup(&format!("sslmode=prefer {root}")).unwrap(),
        Verification::Chain
    );
    assert_eq!(
        setup(&format!("sslmode=verify-ca {root}")).unwrap(),
        Verification::Chain
    );
    assert_eq!(
        setup(&format!("sslmode=verify-full {root}")).unwrap(),
        Verification::ChainAndHostName
    );
    assert!(matches!(
        setup(&format!("sslmode=verify-ca {none}")),
        Err(Error::NoRootCertificate { .. })
    ));
    assert!(matches!(
        setup("sslmode=verify-full"),
        Err(Error::NoRootCertificate { path: None, .. })
    ));
    assert!(setup(&format!(
        "sslmode=require {root} ssl_min_protocol_version=TLSv1 ssl_max_protocol_version=TLSv1.1"
    ))
    .is_err());
}

#[test]
fn remembered_chains_still_get_the_host_name_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("cache CA");
    fs::write(d.join("root.crt"), ca.cert.to_pem().unwrap()).unwrap();
    let setup = TlsSetup::new(&config(&format!(
        "sslmode=verify-full sslrootcert={}/root.crt sslcert=/nonexistent",
        d.display()
    )))
    .unwrap();
    let v = &setup.trust.verifier;
    let leaf = CertificateDer::from(ca.issue(&CertSpec::server()).cert.to_der().unwrap());
    let name = |h: &str| ServerName::try_from(h.to_string()).unwrap();
    let now = UnixTime::now();
    for _ in 0..2 {
        assert!(v
            .verify_server_cert(&leaf, &[], &name("localhost"), &[], now)
            .is_ok());
    }
    let cache = v.cache.as_ref().expect("a cache without CRLs");
    let secs = |t: UnixTime| t.as_secs() as i64;
    assert!(cache.contains(leaf.as_ref(), &[], Some("localhost"), secs(now)));
    let err = v
        .verify_server_cert(&leaf, &[], &name("db.example.com"), &[], now)
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("NotValidForNameContext"),
        "{err}"
    );
    // Outside the certificate's validity the remembered outcome does not apply.
    let later = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        now.as_secs() + 2 * 365 * 86_400,
    ));
    assert!(!cache.contains(leaf.as_ref(), &[], Some("localhost"), secs(later)));
}

/// The certificate error a verify-full verifier trusting `ca` gives `leaf` for `host`.
fn refusal(d: &Path, ca: &Ca, extra: &str, leaf: &X509, host: &str) -> CertificateError {
    fs::write(d.join("root.crt"), ca.cert.to_pem().unwrap()).unwrap();
    let setup = TlsSetup::new(&config(&format!(
        "sslmode=verify-full sslrootcert={}/root.crt sslcert=/nonexistent {extra}",
        d.display()
    )))
    .unwrap();
    let leaf = CertificateDer::from(leaf.to_der().unwrap());
    let name = ServerName::try_from(host.to_string()).unwrap();
    match setup
        .trust
        .verifier
        .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
    {
        Err(rustls::Error::InvalidCertificate(e)) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn refusals_carry_the_alert_openssl_would_send() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("alert CA");
    let alert = |e: &CertificateError| AlertDescription::from(e.clone());

    let stranger = Ca::new("stranger CA").issue(&CertSpec::server()).cert;
    let e = refusal(d, &ca, "", &stranger, "localhost");
    assert!(matches!(e, CertificateError::UnknownIssuer), "{e:?}");
    assert_eq!(alert(&e), AlertDescription::UnknownCA);

    let expired = ca.issue(&CertSpec::server().validity(-7200, -3600)).cert;
    let e = refusal(d, &ca, "", &expired, "localhost");
    assert!(
        matches!(e, CertificateError::ExpiredContext { .. }),
        "{e:?}"
    );
    assert_eq!(alert(&e), AlertDescription::CertificateExpired);

    let future = ca.issue(&CertSpec::server().validity(3600, 7200)).cert;
    let e = refusal(d, &ca, "", &future, "localhost");
    assert!(
        matches!(e, CertificateError::NotValidYetContext { .. }),
        "{e:?}"
    );

    let revoked = ca.issue(&CertSpec::server()).cert;
    fs::write(d.join("x.crl"), ca.crl(&[&revoked])).unwrap();
    let crl = format!("sslcrl={}/x.crl", d.display());
    let e = refusal(d, &ca, &crl, &revoked, "localhost");
    assert!(matches!(e, CertificateError::Revoked), "{e:?}");
    assert_eq!(alert(&e), AlertDescription::CertificateRevoked);

    let client_only = ca.issue(&CertSpec::client(&[("CN", "x")])).cert;
    let e = refusal(d, &ca, "", &client_only, "localhost");
    assert!(matches!(e, CertificateError::InvalidPurpose), "{e:?}");
    assert_eq!(alert(&e), AlertDescription::UnsupportedCertificate);

    let good = ca.issue(&CertSpec::server()).cert;
    match refusal(d, &ca, "", &good, "db.example.com") {
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            assert_eq!(expected.to_str(), "db.example.com");
            assert_eq!(presented, ["localhost", "127.0.0.1"]);
        }
        e => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn the_caller_still_reads_libpqs_words() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("words CA");
    fs::write(d.join("root.crt"), ca.cert.to_pem().unwrap()).unwrap();
    let setup = TlsSetup::new(&config(&format!(
        "sslmode=verify-full sslrootcert={}/root.crt sslcert=/nonexistent",
        d.display()
    )))
    .unwrap();
    let expired = CertificateDer::from(
        ca.issue(&CertSpec::server().validity(-7200, -3600))
            .cert
            .to_der()
            .unwrap(),
    );
    let name = ServerName::try_from("localhost").unwrap();
    let (outcome, error) = verifier::with_failure_slot(async {
        setup
            .trust
            .verifier
            .verify_server_cert(&expired, &[], &name, &[], UnixTime::now())
    })
    .await;
    assert!(outcome.is_err());
    let error = error.expect("the verifier's own error").to_string();
    assert!(
        error.starts_with("server certificate verification failed at depth 0")
            && error.contains("certificate has expired"),
        "{error}"
    );
}

//! Change detection on real files, and the setup it rebuilds, with certificates minted at
//! test time.

use std::fs::{self, File};
use std::path::Path;
use std::thread::sleep;

use pgssl_tests::pki::write_file;
use pgssl_tests::{Ca, CertFiles, CertSpec, Issued};

use super::*;

/// Long enough for the kernel's coarse clock to move (a tick is at most 10 ms).
const TICK: Duration = Duration::from_millis(25);

fn observe(path: &Path) -> FileSet {
    FileSet::observe(&[path.to_path_buf()])
}

/// The set as if its files had been read long ago: metadata alone decides.
fn without_digests(mut set: FileSet) -> FileSet {
    for (_, seen) in &mut set.files {
        if let Seen::Present { digest, .. } = seen {
            *digest = None;
        }
    }
    set
}

fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn an_untouched_file_is_unchanged_and_a_touched_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.crt");
    fs::write(&f, "one").unwrap();
    let mut set = observe(&f);
    assert!(set.unchanged());
    assert!(set.unchanged());
    sleep(TICK);
    File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    assert!(!set.unchanged(), "touch is a change");
}

#[test]
fn a_file_renamed_over_with_the_same_size_and_mtime_is_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("client.crt");
    fs::write(&f, "certificate one").unwrap();
    let mut set = without_digests(observe(&f));
    let before = mtime(&f);
    // A renewer writes the new file beside the old one and renames it over it; here it
    // even has the same size and modification time.
    let new = dir.path().join("client.crt.new");
    fs::write(&new, "certificate two").unwrap();
    File::options()
        .write(true)
        .open(&new)
        .unwrap()
        .set_modified(before)
        .unwrap();
    fs::rename(&new, &f).unwrap();
    assert_eq!(mtime(&f), before);
    assert_eq!(
        fs::metadata(&f).unwrap().len(),
        "certificate one".len() as u64
    );
    assert!(!set.unchanged(), "another inode");
}

#[test]
fn a_file_rewritten_in_place_with_its_mtime_set_back_is_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("client.key");
    fs::write(&f, "key one").unwrap();
    let before = mtime(&f);
    let mut set = without_digests(observe(&f));
    sleep(TICK);
    fs::write(&f, "key two").unwrap();
    File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(before)
        .unwrap();
    assert_eq!(mtime(&f), before);
    assert!(!set.unchanged(), "the change time moved");
}

#[test]
fn within_the_timestamp_granularity_the_content_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("root.crl");
    fs::write(&f, "crl one").unwrap();
    let set = observe(&f);
    let Seen::Present { digest, .. } = &set.files[0].1 else {
        panic!("present")
    };
    assert!(
        digest.is_some(),
        "a file written just now is remembered by content"
    );

    // A rewrite in the same clock tick leaves every timestamp as it was: the set is given
    // the metadata as it is after the rewrite, and the digest of before.
    fs::write(&f, "crl two").unwrap();
    let now_meta = Stamp::of(&fs::metadata(&f).unwrap());
    let mut same_tick = set.clone();
    if let Seen::Present { stamp, .. } = &mut same_tick.files[0].1 {
        *stamp = now_meta;
    }
    assert!(!same_tick.unchanged(), "the content differs");

    // The same content in the same tick is no change; once the timestamps are old
    // enough, metadata alone is trusted again.
    fs::write(&f, "crl one").unwrap();
    let now_meta = Stamp::of(&fs::metadata(&f).unwrap());
    if let Seen::Present { stamp, .. } = &mut same_tick.files[0].1 {
        *stamp = now_meta;
    }
    assert!(same_tick.unchanged());
    let later = SystemTime::now() + RACY_WINDOW + Duration::from_secs(1);
    assert!(same_tick.unchanged_at(later));
    assert!(matches!(
        same_tick.files[0].1,
        Seen::Present { digest: None, .. }
    ));
}

#[test]
fn a_file_that_appears_or_disappears_is_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("postgresql.crt");
    let mut absent = observe(&f);
    assert!(absent.unchanged());
    fs::write(&f, "now here").unwrap();
    assert!(!absent.unchanged());
    let mut present = observe(&f);
    fs::remove_file(&f).unwrap();
    assert!(!present.unchanged());
    // A path under a file, not a directory, is as absent as a missing one.
    let under = observe(&f.join("x"));
    assert_eq!(under.files[0].1, Seen::Absent);
}

#[test]
fn a_swapped_symbolic_link_is_a_change() {
    // Kubernetes secret volumes swap a `..data` link to a new folder.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for v in ["v1", "v2"] {
        fs::create_dir(d.join(v)).unwrap();
        fs::write(d.join(v).join("tls.crt"), "same size").unwrap();
    }
    std::os::unix::fs::symlink("v1", d.join("data")).unwrap();
    let path = d.join("data/tls.crt");
    let mut set = without_digests(observe(&path));
    assert!(set.unchanged());
    std::os::unix::fs::symlink("v2", d.join("data.tmp")).unwrap();
    fs::rename(d.join("data.tmp"), d.join("data")).unwrap();
    assert!(!set.unchanged());
}

#[test]
fn a_crl_directory_is_watched_with_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let crls = dir.path().join("crls");
    fs::create_dir(&crls).unwrap();
    fs::write(crls.join("1a2b3c4d.r0"), "crl one").unwrap();
    let set = without_digests(observe(&crls));
    assert_eq!(set.files.len(), 2, "{set:?}");

    let mut added = set.clone();
    fs::write(crls.join("1a2b3c4d.r1"), "crl two").unwrap();
    assert!(!added.unchanged(), "a new entry");
    fs::remove_file(crls.join("1a2b3c4d.r1")).unwrap();

    let mut rewritten = without_digests(observe(&crls));
    sleep(TICK);
    fs::write(crls.join("1a2b3c4d.r0"), "crl 1").unwrap();
    assert!(!rewritten.unchanged(), "an entry rewritten in place");
}

// ---------------------------------------------------------------- the setup

struct Files {
    _dir: tempfile::TempDir,
    ca: Ca,
    root: PathBuf,
    crl: PathBuf,
    client: CertFiles,
    config: Config,
}

fn alice(ca: &Ca) -> Issued {
    ca.issue(&CertSpec::client(&[("CN", "alice")]))
}

/// verify-full with a root certificate, a CRL and alice's certificate and key.
fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("reload CA");
    let root = d.join("root.crt");
    ca.write_cert(&root);
    let crl = d.join("root.crl");
    write_file(&crl, &ca.crl(&[]), 0o644);
    let client = alice(&ca).write(d, "alice");
    let config = Config::from_conninfo_with_env(
        &format!(
            "host=localhost sslmode=verify-full sslrootcert={} sslcrl={} sslcert={} sslkey={}",
            root.display(),
            crl.display(),
            client.cert.display(),
            client.key.display()
        ),
        &|_| None,
        None,
    )
    .unwrap();
    Files {
        _dir: dir,
        ca,
        root,
        crl,
        client,
        config,
    }
}

/// Writes `contents` beside `path` and renames it over `path`, as a renewer does.
fn replace(path: &Path, contents: &[u8], mode: u32) {
    let tmp = path.with_extension("tmp");
    write_file(&tmp, contents, mode);
    fs::rename(&tmp, path).unwrap();
}

fn replace_pair(files: &CertFiles, issued: &Issued) {
    replace(
        &files.key,
        &issued.key.private_key_to_pem_pkcs8().unwrap(),
        0o600,
    );
    replace(&files.cert, &issued.cert.to_pem().unwrap(), 0o644);
}

/// The DER of the leaf certificate the setup would send.
fn sent(setup: &TlsSetup) -> Vec<u8> {
    let resolver = setup
        .identity
        .resolver
        .as_ref()
        .expect("a client certificate");
    resolver.0.cert[0].to_vec()
}

#[test]
fn unchanged_files_give_the_same_setup() {
    let f = files();
    let files = TlsFiles::new(f.config.clone());
    let one = files.current().unwrap();
    let two = files.current().unwrap();
    assert!(Arc::ptr_eq(&one, &two));
}

#[test]
fn a_renewed_pair_is_sent_and_the_verifier_is_kept() {
    let f = files();
    let files = TlsFiles::new(f.config.clone());
    let before = files.current().unwrap();
    let renewed = alice(&f.ca);
    replace_pair(&f.client, &renewed);
    let after = files.current().unwrap();
    assert_eq!(sent(&after), renewed.cert.to_der().unwrap());
    assert_ne!(sent(&before), sent(&after));
    // The trust files did not change: the verifier (and the chains it accepted) stay.
    assert!(Arc::ptr_eq(&before.trust.verifier, &after.trust.verifier));
    assert!(after.crl_checked);
}

#[test]
fn a_certificate_beside_another_key_fails_until_the_pair_matches() {
    let f = files();
    let files = TlsFiles::new(f.config.clone());
    let before = files.current().unwrap();
    let renewed = alice(&f.ca);
    // The new certificate is in place, its key not yet.
    replace(&f.client.cert, &renewed.cert.to_pem().unwrap(), 0o644);
    for _ in 0..2 {
        match files.current() {
            Err(Error::KeyMismatch { cert, key }) => {
                assert_eq!((cert, key), (f.client.cert.clone(), f.client.key.clone()));
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a certificate with another key was accepted"),
        }
    }
    let message = files.current().err().unwrap().to_string();
    assert!(
        message.contains(&*f.client.cert.to_string_lossy())
            && message.contains(&*f.client.key.to_string_lossy()),
        "{message}"
    );
    replace(
        &f.client.key,
        &renewed.key.private_key_to_pem_pkcs8().unwrap(),
        0o600,
    );
    let after = files.current().unwrap();
    assert_eq!(sent(&after), renewed.cert.to_der().unwrap());
    assert_ne!(sent(&before), sent(&after));
}

#[test]
fn a_new_root_or_crl_rebuilds_the_verifier() {
    let f = files();
    let files = TlsFiles::new(f.config.clone());
    let first = files.current().unwrap();

    let revoked = f.ca.issue(&CertSpec::server());
    replace(&f.crl, &f.ca.crl(&[&revoked.cert]), 0o644);
    let second = files.current().unwrap();
    assert!(!Arc::ptr_eq(&first.trust.verifier, &second.trust.verifier));
    let error = super::super::verifier::verify_chain(
        second.trust.verifier.store().expect("a store"),
        &revoked.cert,
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("revoked"), "{error}");
    // The client certificate did not change: it is the same key pair, not read again.
    assert!(Arc::ptr_eq(
        first.identity.resolver.as_ref().unwrap(),
        second.identity.resolver.as_ref().unwrap()
    ));

    // The root certificate disappears: verify-full now fails, as libpq would.
    fs::remove_file(&f.root).unwrap();
    assert!(matches!(
        files.current(),
        Err(Error::NoRootCertificate { .. })
    ));
    let other = Ca::new("another CA");
    other.write_cert(&f.root);
    let third = files.current().unwrap();
    let server = other.issue(&CertSpec::server()).cert;
    let store = third.trust.verifier.store().expect("a store");
    // The CRL is from the first CA: libpq fails a chain without a CRL for its CA.
    let error = super::super::verifier::verify_chain(store, &server, &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("CRL"), "{error}");
}

#[test]
fn switched_off_the_files_are_read_once() {
    let f = files();
    let mut config = f.config.clone();
    config.set_reload_tls_files(false);
    let files = TlsFiles::new(config);
    let before = files.current().unwrap();
    replace(&f.client.cert, &alice(&f.ca).cert.to_pem().unwrap(), 0o644);
    fs::remove_file(&f.crl).unwrap();
    let after = files.current().unwrap();
    assert!(Arc::ptr_eq(&before, &after));
}

//! The PKCS#12 layer (`render::pkcs12`) on its own: both encodings of the empty password,
//! read and written, checked against independent implementations (the `openssl` CLI reads
//! both forms; p12-keystore only B.1) and against the Windows export among the Go provider's
//! vectors, whose shape the testkit's fake Key Vault must reproduce.

mod render_support;

use std::path::Path;
use std::process::Command;

use akv_csi_provider::render::pkcs12::{self, EmptyPassword, Encryption, Pkcs12Error, Profile};
use akv_csi_provider::testkit::material::{key_vault_pfx, rsa_certificate};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use render_support::*;

const WINDOWS_EXPORT: &str = "TestDecodePKCS12__value__one-certificate-and-key-in-pfx-data.b64";

fn windows_export() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/research/reference-vectors");
    let path = dir.join(WINDOWS_EXPORT);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the Go provider's reference vectors live in the shared research folder \
             beside the repository; CI always has it)",
            path.display()
        )
    });
    STANDARD.decode(text.trim()).unwrap()
}

/// `openssl pkcs12 -info` of a PFX with the empty password: the structure lines (MAC,
/// safes, bags, bag and key attributes), without certificate and key bodies, subjects and
/// the GUID that names the key container.
fn openssl_outline(openssl: &str, pfx: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.pfx");
    std::fs::write(&path, pfx).unwrap();
    let out = Command::new(openssl)
        .args([
            "pkcs12", "-info", "-legacy", "-nodes", "-passin", "pass:", "-in",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
    let mut lines = Vec::new();
    let mut in_body = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN") {
            in_body = true;
        } else if line.starts_with("-----END") {
            in_body = false;
            lines.push(line.to_owned());
        } else if !in_body && !line.starts_with("subject=") && !line.starts_with("issuer=") {
            let line = match line.find("friendlyName: {") {
                Some(at) => format!("{}friendlyName: {{GUID}}", &line[..at]),
                None => line.to_owned(),
            };
            lines.push(line);
        }
    }
    lines
}

#[test]
fn the_fakes_key_vault_shape_is_the_windows_exports() {
    let Some(openssl) = openssl() else { return };
    let windows = windows_export();
    // One RSA-2048 key and its certificate, as in the Windows export.
    let cert = rsa_certificate();
    let ours = key_vault_pfx(Some(&cert.key_pkcs8), &cert.stored_certs[..1], Some(0));
    let want = openssl_outline(openssl, &windows);
    assert!(
        want.iter().any(|l| l == "MAC: sha1, Iteration 1"),
        "{want:#?}"
    );
    assert_eq!(openssl_outline(openssl, &ours), want);
    for pfx in [&windows, &ours] {
        assert_eq!(
            pkcs12::open(pfx).unwrap().mac,
            Some(EmptyPassword::ZeroLength)
        );
        // What the provider used before: p12-keystore derives only the B.1 key.
        let err = p12_keystore::Pkcs12Archive::from_pkcs12(pfx, "").unwrap_err();
        assert!(err.to_string().to_lowercase().contains("mac"), "{err}");
    }
}

fn profiles() -> Vec<(&'static str, Profile)> {
    let mut mac_less = Profile::key_vault();
    mac_less.mac = None;
    let mut plain = Profile::openssl_legacy();
    plain.keys = Encryption::None;
    plain.certs = Encryption::None;
    vec![
        ("key vault (B.2)", Profile::key_vault()),
        ("openssl -legacy (B.1)", Profile::openssl_legacy()),
        ("modern B.1", Profile::modern(EmptyPassword::Bmp)),
        ("modern B.2", Profile::modern(EmptyPassword::ZeroLength)),
        ("no MAC, B.2 bags", mac_less),
        ("no encryption (B.1 MAC)", plain),
    ]
}

#[test]
fn every_profile_round_trips_and_opens_in_openssl() {
    let chain = chain(Alg::P256, 3, Ids::Full);
    for (name, profile) in profiles() {
        let pfx = pfx_in(profile, Some(&chain.leaf_key), &chain.certs);
        let opened = pkcs12::open(&pfx).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.keys.len(), 1, "{name}");
        assert_eq!(&opened.keys[0][..], &chain.leaf_key[..], "{name}");
        assert_eq!(opened.certs, chain.certs, "{name}");
        assert_eq!(opened.mac, profile.mac.map(|_| profile.password), "{name}");
        // p12-keystore, an independent reader of the B.1 form, agrees where the form is B.1
        // (or irrelevant) and fails on the B.2 MAC.
        let p12 = p12_keystore::Pkcs12Archive::from_pkcs12(&pfx, "");
        match (profile.password, profile.mac) {
            (EmptyPassword::ZeroLength, Some(_)) => assert!(p12.is_err(), "{name}"),
            (EmptyPassword::Bmp, _) => {
                let p12 = p12.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(p12.keys[0].key.as_der(), &chain.leaf_key[..], "{name}");
                let certs: Vec<&[u8]> = p12.certs.iter().map(|c| c.cert.as_der()).collect();
                assert_eq!(
                    certs,
                    chain.certs.iter().map(Vec::as_slice).collect::<Vec<_>>()
                );
            }
            _ => {}
        }
        let Some(openssl) = openssl() else { continue };
        if profile.mac.is_none() {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pfx");
        std::fs::write(&path, &pfx).unwrap();
        let out = Command::new(openssl)
            .args(["pkcs12", "-legacy", "-nodes", "-passin", "pass:", "-in"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            text.matches("-----BEGIN CERTIFICATE-----").count(),
            3,
            "{name}"
        );
        assert_eq!(
            text.matches("-----BEGIN PRIVATE KEY-----").count(),
            1,
            "{name}"
        );
    }
}

#[test]
fn a_pfx_that_opens_with_neither_form_says_so() {
    let one = chain(Alg::P256, 1, Ids::Full);
    // A MAC keyed with another password (p12-keystore, B.1 of "hunter2").
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "c",
        p12_keystore::KeyStoreEntry::Certificate(
            p12_keystore::Certificate::from_der(&one.certs[0]).unwrap(),
        ),
    );
    let other = store.writer("hunter2").write().unwrap();
    let err = pkcs12::open(&other).unwrap_err();
    assert_eq!(err, Pkcs12Error::Mac);
    let message = err.to_string();
    for part in [
        "MAC",
        "empty password Key Vault",
        "B.1",
        "B.2",
        "two NUL bytes",
        "zero bytes",
    ] {
        assert!(message.contains(part), "{message}");
    }
    // Without a MAC, encrypted bags under another password: every bag is tried with both.
    let Some(openssl) = openssl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (key, crt, out) = (
        dir.path().join("k"),
        dir.path().join("c"),
        dir.path().join("p"),
    );
    let pem = |label, der: &[u8]| pem::encode(&pem::Pem::new(label, der.to_vec()));
    std::fs::write(&key, pem("PRIVATE KEY", &one.leaf_key)).unwrap();
    std::fs::write(&crt, pem("CERTIFICATE", &one.certs[0])).unwrap();
    let status = Command::new(openssl)
        .args([
            "pkcs12",
            "-export",
            "-legacy",
            "-nomac",
            "-passout",
            "pass:hunter2",
        ])
        .args(["-certpbe", "PBE-SHA1-3DES"])
        .arg("-inkey")
        .arg(&key)
        .arg("-in")
        .arg(&crt)
        .arg("-out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let err = pkcs12::open(&std::fs::read(&out).unwrap()).unwrap_err();
    assert!(matches!(err, Pkcs12Error::Decrypt(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("safe 1 (encrypted) does not decrypt"),
        "{message}"
    );
    assert!(
        message.contains("B.1") && message.contains("B.2"),
        "{message}"
    );
}

#[test]
fn iteration_counts_over_the_cap_are_refused_before_any_work() {
    let one = chain(Alg::P256, 1, Ids::Full);
    let mut profile = Profile::key_vault();
    profile.keys = Encryption::TripleDes {
        iterations: 2_000_000,
    };
    let keys = [pkcs12::KeyEntry {
        pkcs8: &one.leaf_key,
        attributes: Default::default(),
    }];
    let err = pkcs12::write(&keys, &[], &profile, &mut |b| fastrand::fill(b)).unwrap_err();
    assert!(err.to_string().contains("outside 1..=1000000"), "{err}");
    // A bundle whose MAC claims 8,388,607 iterations is refused as malformed, not computed:
    // written with 65,536 (the last element of the file, `02 03 01 00 00`), then patched.
    let mut profile = Profile::openssl_legacy();
    if let Some(mac) = &mut profile.mac {
        mac.iterations = 65_536;
    }
    let certs = [pkcs12::CertEntry {
        der: &one.certs[0],
        attributes: Default::default(),
    }];
    let mut pfx = pkcs12::write(&[], &certs, &profile, &mut |b| fastrand::fill(b))
        .unwrap()
        .to_vec();
    assert!(pkcs12::open(&pfx).is_ok());
    let tail = pfx.len() - 5;
    assert_eq!(pfx[tail..], [0x02, 0x03, 0x01, 0x00, 0x00]);
    pfx[tail + 2..].copy_from_slice(&[0x7f, 0xff, 0xff]);
    let started = std::time::Instant::now();
    let err = pkcs12::open(&pfx).unwrap_err();
    assert!(matches!(err, Pkcs12Error::Malformed(_)), "{err:?}");
    assert!(err.to_string().contains("8388607"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_millis(100));
}

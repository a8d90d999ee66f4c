//! The Go provider's own test vectors (`shared/research/reference-vectors/`, see its INDEX.md),
//! replayed black-box: each goes into the fake Key Vault as the REST body Key Vault would
//! return, through the provider's gRPC `Mount` over its socket, and the file bytes must equal
//! the vector's expected bytes exactly. The vectors are read at test time, never copied here.
//!
//! §1 PKCS#12 → PEM (the Windows-exported PFX keyed with the B.2 empty password and the
//! OpenSSL-style one keyed with B.1), §2 chain ordering through a PFX in every bag order and
//! both password forms, §4 `TestGetSecret` with and without separate files, §6 a `cer` that is
//! not DER, §10 the key objects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use akv_csi_provider::Config;
use akv_csi_provider::render::pkcs12::{self, CertEntry, KeyEntry, Profile};
use akv_csi_provider::testkit::material::key_vault_pfx;
use akv_csi_provider::testkit::world::VAULT;
use akv_csi_provider::testkit::{Stored, World, objects_yaml};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const PKCS12: &str = "application/x-pkcs12";
const PEM: &str = "application/x-pem-file";

fn vectors() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/research/reference-vectors");
    assert!(
        dir.join("INDEX.md").is_file(),
        "the Go provider's reference vectors are missing: expected {} (the shared research \
         folder beside the repository, which CI always has); these tests replay them and \
         cannot pass without them",
        dir.display()
    );
    dir
}

fn vector(name: &str) -> String {
    let path = vectors().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The DER of every block in PEM text (leading newlines and blank lines are ignored).
fn ders(pem_text: &str) -> Vec<Vec<u8>> {
    pem::parse_many(pem_text)
        .unwrap()
        .into_iter()
        .map(|b| b.contents().to_vec())
        .collect()
}

/// One Go-style PEM block: 64 columns, `\n`, no headers.
fn pem_block(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

async fn mount(world: &World, objects: &[String]) -> BTreeMap<String, Vec<u8>> {
    let items: Vec<&str> = objects.iter().map(String::as_str).collect();
    let attrs = world.spc(&objects_yaml(&items)).build();
    let response = world
        .client()
        .mount(&attrs, None, "420")
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    response
        .files
        .into_iter()
        .map(|f| {
            assert_eq!(f.mode, 0o644, "{}", f.path);
            (f.path, f.contents)
        })
        .collect()
}

fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    assert!(
        got == want,
        "{what}: bytes differ\n--- got\n{}\n--- want\n{}",
        String::from_utf8_lossy(got),
        String::from_utf8_lossy(want)
    );
}

/// §1: both `TestDecodePKCS12` bundles as certificate-backed secrets, default flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_pkcs12_vectors_render_their_expected_pem() {
    let world = World::start(Config::defaults()).await;
    let vault = world.azure.vault(VAULT);
    let cases = [
        "one-certificate-and-key-in-pfx-data",
        "multiple-certificates-and-one-key-in-pfx-data",
    ];
    let mut objects = Vec::new();
    for case in cases {
        let value = vector(&format!("TestDecodePKCS12__value__{case}.b64"));
        let cert = vector(&format!("TestDecodePKCS12__expectedCert__{case}.pem"));
        vault.certificate(case, &value, PKCS12, &ders(&cert)[0]);
        objects.push(format!("objectName: {case}\nobjectType: secret"));
    }
    let files = mount(&world, &objects).await;
    for case in cases {
        let want = vector(&format!("TestDecodePKCS12__expectedKey__{case}.pem"))
            + &vector(&format!("TestDecodePKCS12__expectedCert__{case}.pem"));
        assert_bytes(&files[case], want.as_bytes(), case);
    }
    // The first is the Windows export: its MAC verifies only with the B.2 form (zero bytes),
    // the second's only with B.1 (two NUL bytes).
    for (case, form) in cases.iter().zip(pkcs12::EmptyPassword::BOTH.iter().rev()) {
        let value = vector(&format!("TestDecodePKCS12__value__{case}.b64"));
        let opened = pkcs12::open(&STANDARD.decode(value.trim()).unwrap()).unwrap();
        assert_eq!(opened.mac, Some(*form), "{case}");
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..=p.len() {
            let mut q = p.clone();
            q.insert(at, n - 1);
            out.push(q);
        }
    }
    out
}

/// §2: the `TestFetchCertChain*` certificates bundled in every bag order, once in Key Vault's
/// shape (B.2) and once in OpenSSL's legacy shape (B.1), with the §3 PKCS#8 RSA key (the
/// vectors have no keys of their own; that key is canonical PKCS#8, so its PEM is what the
/// provider writes). Complete chains come out as key, then the expected chain; the incomplete
/// one keeps the bag order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_vectors_order_through_a_pfx_in_every_bag_order_and_both_forms() {
    let world = World::start(Config::defaults()).await;
    let vault = world.azure.vault(VAULT);
    let key_pem = vector("TestParsePrivateKey__privateKey__pkcs8-format-rsa-private-key.pem");
    let key = ders(&key_pem).remove(0);
    let sets: [(&str, &[&str], Option<&str>); 3] = [
        (
            "TestFetchCertChain",
            &["rootCACert", "intermediateCert", "serverCert"],
            Some("TestFetchCertChain__expectedCertChain.pem"),
        ),
        (
            "TestFetchCertChainWithLeafMissingSKI",
            &[
                "rootCACert",
                "intermediateCert1",
                "intermediateCert2",
                "serverCert",
            ],
            Some("TestFetchCertChainWithLeafMissingSKI__expectedCertChain.pem"),
        ),
        // Incomplete (the intermediate is missing): the bag order is kept.
        (
            "TestFetchCertChainWarning",
            &["serverCert", "rootCACert"],
            None,
        ),
    ];
    let mut objects = Vec::new();
    let mut expected = BTreeMap::new();
    for (set, names, chain) in sets {
        let certs: Vec<Vec<u8>> = names
            .iter()
            .map(|n| ders(&vector(&format!("{set}__{n}.pem"))).remove(0))
            .collect();
        for perm in permutations(certs.len()) {
            let bagged: Vec<Vec<u8>> = perm.iter().map(|&i| certs[i].clone()).collect();
            let want = key_pem.clone()
                + &match chain {
                    Some(file) => vector(file),
                    None => bagged.iter().map(|c| pem_block("CERTIFICATE", c)).collect(),
                };
            let leaf = perm.iter().position(|&i| names[i] == "serverCert");
            for (form, pfx) in [
                ("b2", key_vault_pfx(Some(&key), &bagged, leaf)),
                ("b1", openssl_legacy_pfx(&key, &bagged)),
            ] {
                let name = format!(
                    "{}-{form}-{}",
                    set.to_lowercase(),
                    perm.iter().map(usize::to_string).collect::<String>()
                );
                vault.certificate(&name, &STANDARD.encode(&pfx), PKCS12, &certs[0]);
                objects.push(format!("objectName: {name}\nobjectType: secret"));
                expected.insert(name, want.clone());
            }
        }
    }
    // 6 + 24 + 2 bag orders, each in both forms.
    assert_eq!(expected.len(), 64);
    let files = mount(&world, &objects).await;
    assert_eq!(files.len(), expected.len());
    for (name, want) in &expected {
        assert_bytes(&files[name], want.as_bytes(), name);
    }
}

/// Our writer in `openssl pkcs12 -export -legacy`'s shape (B.1), key then certificates.
fn openssl_legacy_pfx(key: &[u8], certs: &[Vec<u8>]) -> Vec<u8> {
    let keys = [KeyEntry {
        pkcs8: key,
        attributes: Default::default(),
    }];
    let certs: Vec<CertEntry<'_>> = certs
        .iter()
        .map(|der| CertEntry {
            der,
            attributes: Default::default(),
        })
        .collect();
    pkcs12::write(&keys, &certs, &Profile::openssl_legacy(), &mut |b| {
        fastrand::fill(b)
    })
    .unwrap()
    .to_vec()
}

/// §4: `TestGetSecret` cases 1-5 (flags as in that test: no chain construction), then case 6
/// with `--write-cert-and-key-in-separate-files`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_secret_vectors_with_and_without_separate_files() {
    let pfx = vector("TestGetSecret__testPFX.b64");
    let cert = vector("TestGetSecret__testCert.pem");
    let key = vector("TestGetSecret__testPrivateKey.pem");
    let cer = ders(&cert).remove(0);
    for split in [false, true] {
        let mut config = Config::defaults();
        config.construct_pem_chain = false;
        config.write_cert_and_key_in_separate_files = split;
        let world = World::start(config).await;
        let vault = world.azure.vault(VAULT);
        vault.secret("plain", "secret1value");
        vault.certificate("pem", &(cert.clone() + &key), PEM, &cer);
        vault.certificate("pfx", &pfx, PKCS12, &cer);
        let objects = [
            "objectName: plain\nobjectType: secret",
            "objectName: pem\nobjectType: secret",
            "objectName: pfx\nobjectType: secret\nobjectFormat: pfx\nobjectAlias: as-pfx",
            "objectName: pfx\nobjectType: secret\nobjectFormat: pem\nobjectAlias: as-pem",
            "objectName: pfx\nobjectType: secret\nobjectAlias: as-default",
        ]
        .map(str::to_owned);
        let attrs = world
            .spc(&objects_yaml(&objects.each_ref().map(String::as_str)))
            .build();
        let response = world.client().mount(&attrs, None, "420").await.unwrap();
        let paths: Vec<&str> = response.files.iter().map(|f| f.path.as_str()).collect();
        let files: BTreeMap<&str, &[u8]> = response
            .files
            .iter()
            .map(|f| (f.path.as_str(), &f.contents[..]))
            .collect();
        assert_bytes(files["plain"], b"secret1value", "case 1");
        assert_bytes(files["pem"], (cert.clone() + &key).as_bytes(), "case 2");
        assert_bytes(files["as-pfx"], pfx.as_bytes(), "case 3");
        let key_then_cert = key.clone() + &cert;
        assert_bytes(files["as-pem"], key_then_cert.as_bytes(), "case 4");
        assert_bytes(files["as-default"], key_then_cert.as_bytes(), "case 5");
        if split {
            // Case 6: .crt, .key, then the combined file.
            let at = paths.iter().position(|p| *p == "as-default.crt").unwrap();
            assert_eq!(
                paths[at..at + 3],
                ["as-default.crt", "as-default.key", "as-default"]
            );
            assert_bytes(files["as-default.crt"], cert.as_bytes(), "case 6 .crt");
            assert_bytes(files["as-default.key"], key.as_bytes(), "case 6 .key");
        } else {
            assert!(!paths.iter().any(|p| p.ends_with(".crt")), "{paths:?}");
        }
    }
}

/// §10 (derived key objects) and §6 (`cer` = the four bytes `test`, not DER). For §6 the
/// provider writes the bytes wrapped as one CERTIFICATE block without parsing them, exactly
/// as the Go provider does; this pins that choice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_and_certificate_object_vectors() {
    let world = World::start(Config::defaults()).await;
    let vault = world.azure.vault(VAULT);
    let keys = ["rsa-key", "ec-p256-key"];
    for name in keys {
        let body: serde_json::Value = serde_json::from_str(&vector(&format!(
            "derived__{name}__keyvault-getkey-response.json"
        )))
        .unwrap();
        let mut jwk = body["key"].clone();
        jwk.as_object_mut().unwrap().remove("kid");
        vault.add(name, Stored::Key { jwk });
    }
    vault.add(
        "cert1",
        Stored::Cert {
            cer: b"test".to_vec(),
        },
    );
    let mut objects: Vec<String> = keys
        .iter()
        .map(|k| format!("objectName: {k}\nobjectType: key"))
        .collect();
    objects.push("objectName: cert1\nobjectType: cert".into());
    let files = mount(&world, &objects).await;
    for name in keys {
        let want = vector(&format!("derived__{name}__expected-public.pem"));
        assert_bytes(&files[name], want.as_bytes(), name);
    }
    let want = vector("TestGetCertificate__content.pem");
    assert_bytes(&files["cert1"], want.as_bytes(), "cert1");
}

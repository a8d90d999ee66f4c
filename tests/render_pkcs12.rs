//! PKCS#12 certificate-backed secrets: OpenSSL-made fixtures (AES and -legacy), bundles written
//! from rcgen chains in every stored order by p12-keystore (B.1 empty password) and by our
//! writer in Key Vault's shape (B.2), chain ordering edge cases, and every output read back by
//! an independent reader.

mod render_support;

use std::path::Path;

use akv_csi_provider::render::pkcs12::{EmptyPassword, Profile};
use akv_csi_provider::render::{CONTENT_TYPE_PKCS12, RenderError, RenderOptions, render};
use akv_csi_provider::spc::plan::{ObjectEncoding, ObjectFormat, ObjectType};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use render_support::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pfx");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap()
}

fn options(chain: bool, split: bool) -> RenderOptions {
    RenderOptions {
        construct_pem_chain: chain,
        write_cert_and_key_in_separate_files: split,
    }
}

fn render_pfx(
    stored_b64: &str,
    opts: RenderOptions,
) -> Result<akv_csi_provider::render::Rendered, RenderError> {
    let spec = spec(ObjectType::Secret, "tls");
    render(
        &spec,
        &[secret(stored_b64, Some(CONTENT_TYPE_PKCS12), true)],
        &opts,
    )
}

#[test]
fn openssl_fixtures_render_like_the_reference() {
    for kind in ["rsa", "ec"] {
        for form in ["aes", "legacy"] {
            let stored = fixture(&format!("{kind}-{form}.pfx.b64"));
            for (chain, want) in [(true, "expected"), (false, "stored-order")] {
                let out = render_pfx(&stored, options(chain, false)).unwrap();
                let want = fixture(&format!("{kind}-{want}.pem"));
                assert_eq!(out.files.len(), 1);
                assert_eq!(
                    std::str::from_utf8(&out.files[0].contents).unwrap(),
                    want,
                    "{kind}-{form} chain={chain}"
                );
                assert!(out.warnings.is_empty(), "{:?}", out.warnings);
            }
        }
    }
}

#[test]
fn separate_files_hold_certificates_and_keys() {
    let stored = fixture("rsa-legacy.pfx.b64");
    let out = render_pfx(&stored, options(true, true)).unwrap();
    let paths: Vec<&str> = out.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["tls.crt", "tls.key", "tls"]);
    let whole = std::str::from_utf8(&out.files[2].contents).unwrap();
    let crt = std::str::from_utf8(&out.files[0].contents).unwrap();
    let key = std::str::from_utf8(&out.files[1].contents).unwrap();
    assert_eq!(format!("{key}{crt}"), whole);
    assert!(
        read_pem(crt.as_bytes())
            .iter()
            .all(|(l, _)| l == "CERTIFICATE")
    );
    assert_eq!(read_pem(key.as_bytes()).len(), 1);
    assert!(
        out.versions
            .iter()
            .all(|v| v.id == "secret/tls" && v.version == "0123abcd")
    );
}

#[test]
fn pfx_format_writes_the_stored_bundle() {
    let stored = fixture("ec-legacy.pfx.b64");
    let mut spec = spec(ObjectType::Secret, "bundle.pfx");
    spec.format = ObjectFormat::Pfx;
    let fetched = [secret(&stored, Some(CONTENT_TYPE_PKCS12), true)];
    let opts = options(true, true);
    let out = render(&spec, &fetched, &opts).unwrap();
    // No .crt/.key companions for pfx (the reference writes two empty files).
    assert_eq!(out.files.len(), 1);
    assert_eq!(&out.files[0].contents[..], stored.as_bytes());

    spec.encoding = ObjectEncoding::Base64;
    let out = render(&spec, &fetched, &opts).unwrap();
    let binary = out.files[0].contents.to_vec();
    assert_eq!(b64(&binary), stored);
    // Second implementation: our own reader and, when present, OpenSSL's.
    p12_keystore::Pkcs12Archive::from_pkcs12(&binary, "").unwrap();
    if let Some(openssl) = openssl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.pfx");
        std::fs::write(&path, &binary).unwrap();
        let status = std::process::Command::new(openssl)
            .args(["pkcs12", "-legacy", "-noout", "-passin", "pass:", "-in"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
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

/// Chains of 1 to 4 certificates, RSA and EC, in every stored order: with construct-pem-chain
/// the output is key, leaf, intermediates, root; without, the stored order.
#[test]
fn every_stored_order_of_every_chain_length() {
    for alg in [Alg::Rsa, Alg::P256, Alg::P384] {
        for len in 1..=4 {
            for ids in [Ids::Full, Ids::LeafWithoutSki] {
                let chain = chain(alg, len, ids);
                for perm in permutations(len) {
                    let stored: Vec<Vec<u8>> =
                        perm.iter().map(|&i| chain.certs[i].clone()).collect();
                    // The B.1 form as p12-keystore writes it, and Key Vault's B.2 shape.
                    let b1 = b64(&pfx(Some(&chain.leaf_key), &stored));
                    let b2 = b64(&pfx_in(
                        Profile::key_vault(),
                        Some(&chain.leaf_key),
                        &stored,
                    ));
                    for construct in [true, false] {
                        let out = render_pfx(&b1, options(construct, false)).unwrap();
                        let out_b2 = render_pfx(&b2, options(construct, false)).unwrap();
                        assert_eq!(
                            out.files[0].contents, out_b2.files[0].contents,
                            "B.1 and B.2 differ: {alg:?} len={len} {ids:?} {perm:?}"
                        );
                        let blocks = read_pem(&out.files[0].contents);
                        assert_eq!(blocks[0].0, "PRIVATE KEY");
                        // Independent reader of the key: aws-lc (through rcgen) parses our
                        // PKCS#8 and derives the same public key as the original.
                        let ours = key_pair(&blocks[0].1);
                        assert_eq!(
                            ours.public_key_raw(),
                            key_pair(&chain.leaf_key).public_key_raw()
                        );
                        let certs: Vec<&Vec<u8>> = blocks[1..].iter().map(|(_, d)| d).collect();
                        let want: Vec<&Vec<u8>> = if construct {
                            chain.certs.iter().collect()
                        } else {
                            stored.iter().collect()
                        };
                        assert_eq!(
                            certs, want,
                            "{alg:?} len={len} {ids:?} {perm:?} chain={construct}"
                        );
                        assert!(out.warnings.is_empty());
                    }
                }
            }
        }
    }
}

#[test]
fn ec_and_rsa_keys_are_reencoded_like_openssl_pkcs8() {
    // OpenSSL's PKCS#8 equals Go's MarshalPKCS8PrivateKey for RSA and named-curve EC keys.
    let Some(openssl) = openssl() else { return };
    for alg in [Alg::Rsa, Alg::P256, Alg::P384] {
        let chain = chain(alg, 1, Ids::Full);
        let out = render_pfx(
            &b64(&pfx(Some(&chain.leaf_key), &chain.certs)),
            options(true, false),
        )
        .unwrap();
        let text = std::str::from_utf8(&out.files[0].contents).unwrap();
        let end = text.find("-----END PRIVATE KEY-----\n").unwrap() + 26;
        let ours = &text[..end];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, ours).unwrap();
        let normalised = std::process::Command::new(openssl)
            .args(["pkey", "-in"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(normalised.status.success(), "{alg:?}");
        assert_eq!(
            String::from_utf8(normalised.stdout).unwrap(),
            ours,
            "{alg:?}"
        );
    }
}

#[test]
fn incomplete_chains_keep_the_stored_order_with_a_warning() {
    let broken = chain(Alg::P256, 4, Ids::IntermediateWithoutSki);
    let stored = vec![
        broken.certs[2].clone(),
        broken.certs[0].clone(),
        broken.certs[3].clone(),
        broken.certs[1].clone(),
    ];
    let out = render_pfx(
        &b64(&pfx(Some(&broken.leaf_key), &stored)),
        options(true, false),
    )
    .unwrap();
    let certs: Vec<Vec<u8>> = read_pem(&out.files[0].contents)[1..]
        .iter()
        .map(|(_, d)| d.clone())
        .collect();
    assert_eq!(certs, stored);
    assert_eq!(out.warnings.len(), 1);
    assert!(out.warnings[0].contains("objects[0]") && out.warnings[0].contains("incomplete"));

    // A missing intermediate: leaf and root only.
    let full = chain(Alg::Rsa, 3, Ids::Full);
    let stored = vec![full.certs[2].clone(), full.certs[0].clone()];
    let out = render_pfx(
        &b64(&pfx(Some(&full.leaf_key), &stored)),
        options(true, false),
    )
    .unwrap();
    let certs: Vec<Vec<u8>> = read_pem(&out.files[0].contents)[1..]
        .iter()
        .map(|(_, d)| d.clone())
        .collect();
    assert_eq!(certs, stored);
    assert_eq!(out.warnings.len(), 1);
}

#[test]
fn cycles_and_missing_leaves_are_errors() {
    // Two certificates issuing each other: no leaf.
    let no_leaf = linked(Alg::P256, &[(Some(1), Some(2)), (Some(2), Some(1))]);
    // A leaf whose issuers loop: leaf -> 1 -> 2 -> 1.
    let cycle = linked(
        Alg::P256,
        &[(None, Some(1)), (Some(1), Some(2)), (Some(2), Some(1))],
    );
    for (certs, want_cycle) in [(no_leaf, false), (cycle, true)] {
        let b = b64(&pfx(None, &certs));
        let err = render_pfx(&b, options(true, false)).unwrap_err();
        match (&err, want_cycle) {
            (RenderError::ChainCycle { .. }, true) | (RenderError::NoLeaf { .. }, false) => {}
            _ => panic!("unexpected {err:?}"),
        }
        assert!(
            err.to_string().contains("objects[0] (objectName \"tls\")"),
            "{err}"
        );
        // Without chain construction the stored order is written.
        let out = render_pfx(&b, options(false, false)).unwrap();
        assert_eq!(read_pem(&out.files[0].contents).len(), certs.len());
    }
}

#[test]
fn bad_bundles_are_clear_errors() {
    let one = chain(Alg::P256, 1, Ids::Full);
    let good = pfx(Some(&one.leaf_key), &one.certs);
    let mut tampered = good.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0xff;
    for (stored, want) in [
        ("not base64!".to_owned(), "not base64"),
        (b64(b"not a pfx"), "cannot be read"),
        (b64(&tampered), "cannot be read"),
        (b64(&good[..good.len() - 10]), "cannot be read"),
    ] {
        let err = render_pfx(&stored, options(true, false)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, RenderError::Pkcs12 { .. }), "{msg}");
        assert!(msg.contains(want) && msg.contains("objects[0]"), "{msg}");
    }
    // PEM output cannot be hex/base64-decoded.
    let mut s = spec(ObjectType::Secret, "tls");
    s.encoding = ObjectEncoding::Base64;
    let err = render(
        &s,
        &[secret(&b64(&good), Some(CONTENT_TYPE_PKCS12), true)],
        &options(true, false),
    )
    .unwrap_err();
    assert!(matches!(err, RenderError::EncodingOnPem { .. }), "{err}");
}

/// The Key Vault shape exactly as the fake serves it (B.2, 2000 iterations, Windows bag
/// attributes, PKCS#8 key attributes), with a four-deep chain in a scrambled bag order: key
/// first, then leaf → intermediates → root, byte-identical to the B.1 bundle of the same key
/// and certificates written by OpenSSL's legacy shape and by p12-keystore.
#[test]
fn key_vault_shaped_bundles_render_like_openssl_shaped_ones() {
    use akv_csi_provider::testkit::material::key_vault_pfx;
    for alg in [Alg::Rsa, Alg::P256] {
        let chain = chain(alg, 4, Ids::Full);
        let order = [2, 0, 3, 1];
        let stored: Vec<Vec<u8>> = order.iter().map(|&i| chain.certs[i].clone()).collect();
        let key_vault = key_vault_pfx(Some(&chain.leaf_key), &stored, Some(1));
        let opened = akv_csi_provider::render::pkcs12::open(&key_vault).unwrap();
        assert_eq!(opened.mac, Some(EmptyPassword::ZeroLength));
        let b1 = [
            pfx(Some(&chain.leaf_key), &stored),
            pfx_in(Profile::openssl_legacy(), Some(&chain.leaf_key), &stored),
        ];
        for split in [false, true] {
            let want = render_pfx(&b64(&key_vault), options(true, split)).unwrap();
            let blocks = read_pem(&want.files.last().unwrap().contents);
            assert_eq!(blocks[0].0, "PRIVATE KEY");
            assert_eq!(
                key_pair(&blocks[0].1).public_key_raw(),
                key_pair(&chain.leaf_key).public_key_raw()
            );
            let certs: Vec<&Vec<u8>> = blocks[1..].iter().map(|(_, d)| d).collect();
            assert_eq!(certs, chain.certs.iter().collect::<Vec<_>>(), "{alg:?}");
            for other in &b1 {
                let got = render_pfx(&b64(other), options(true, split)).unwrap();
                assert_eq!(got.files.len(), want.files.len());
                for (g, w) in got.files.iter().zip(&want.files) {
                    assert_eq!((&g.path, &g.contents), (&w.path, &w.contents), "{alg:?}");
                }
            }
        }
    }
}

/// Regenerates the B.2 seeds of the fuzz corpus (`fuzz/corpus/render_pkcs12/seed-b2-*`,
/// `fuzz/corpus/render_secret/seed-b2-*`): Key Vault's shape for the fixtures' RSA and EC
/// certificates, PBES2 with a B.2 MAC, and B.2 bags without a MAC. The B.1 seeds come from
/// the openssl fixtures through `fuzz/seeds.py`. Run with
/// `cargo test --test render_pkcs12 -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    use akv_csi_provider::testkit::material::{ec_certificate, key_vault_pfx, rsa_certificate};
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let rsa = rsa_certificate();
    let ec = ec_certificate();
    let mut mac_less = Profile::key_vault();
    mac_less.mac = None;
    let seeds = [
        ("keyvault-rsa", STANDARD.decode(&rsa.pfx_base64).unwrap()),
        ("keyvault-ec", STANDARD.decode(&ec.pfx_base64).unwrap()),
        (
            "keyvault-ec-leaf-only",
            key_vault_pfx(Some(&ec.key_pkcs8), &ec.stored_certs[..1], Some(0)),
        ),
        (
            "modern-ec",
            pfx_in(
                Profile::modern(EmptyPassword::ZeroLength),
                Some(&ec.key_pkcs8),
                &ec.stored_certs,
            ),
        ),
        (
            "no-mac-ec",
            pfx_in(mac_less, Some(&ec.key_pkcs8), &ec.stored_certs),
        ),
    ];
    for (name, der) in &seeds {
        std::fs::write(corpus.join(format!("render_pkcs12/seed-b2-{name}")), der).unwrap();
    }
    let kid = "https://kv.vault.azure.net/keys/tls/0123";
    let secret = |flags: u8, value: &str| {
        let mut out = vec![flags];
        out.extend(format!("{value}\0application/x-pkcs12\0{kid}\0").into_bytes());
        out
    };
    let ec_b64 = STANDARD.encode(&seeds[2].1);
    std::fs::write(
        corpus.join("render_secret/seed-b2-keyvault-ec"),
        secret(32 | 8, &ec_b64),
    )
    .unwrap();
    std::fs::write(
        corpus.join("render_secret/seed-b2-keyvault-ec-split"),
        secret(32 | 4 | 2, &ec_b64),
    )
    .unwrap();
}

//! `objectPart` and App Service certificates through the public `render` API: every part of
//! PKCS#12 and PEM certificate bundles, checked against the certificates and keys they were
//! built from; the property that ties the parts to `all` and to the `.crt`/`.key` companions;
//! `kid`-less secrets read as certificates only when the object asks; and the errors.

mod render_support;

use akv_csi_provider::keyvault::Fetched;
use akv_csi_provider::render::{
    CONTENT_TYPE_PEM, CONTENT_TYPE_PKCS12, RenderError, RenderOptions, render,
};
use akv_csi_provider::spc::plan::{
    ObjectEncoding, ObjectFormat, ObjectPart, ObjectSpec, ObjectType,
};
use der::{Decode as _, Encode as _};
use proptest::prelude::*;
use render_support::*;
use zeroize::Zeroizing;

const PARTS: [ObjectPart; 5] = [
    ObjectPart::All,
    ObjectPart::Key,
    ObjectPart::Leaf,
    ObjectPart::Chain,
    ObjectPart::Ca,
];

fn options(construct_pem_chain: bool, split: bool) -> RenderOptions {
    RenderOptions {
        construct_pem_chain,
        write_cert_and_key_in_separate_files: split,
    }
}

fn part_spec(part: Option<ObjectPart>) -> ObjectSpec {
    let mut s = spec(ObjectType::Secret, "tls");
    s.part = part;
    s
}

/// A secret as Key Vault returns it; `kid` false is the App Service shape (`kid: null`).
fn bundle_secret(value: &str, content_type: &str, kid: bool) -> Fetched {
    secret(value, Some(content_type), kid)
}

/// The bytes of the one file `spec` renders to.
fn one_file(spec: &ObjectSpec, fetched: &Fetched, options: &RenderOptions) -> Vec<u8> {
    let out =
        render(spec, std::slice::from_ref(fetched), options).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.files.len(), 1, "{:?}", out.files);
    out.files[0].contents.to_vec()
}

fn ders(text: &[u8], label: &str) -> Vec<Vec<u8>> {
    read_pem(text)
        .into_iter()
        .filter(|(l, _)| l == label)
        .map(|(_, d)| d)
        .collect()
}

#[test]
fn every_part_of_a_pkcs12_certificate() {
    for alg in [Alg::Rsa, Alg::P256, Alg::P384] {
        let c = chain(alg, 3, Ids::Full);
        // Stored root, leaf, intermediate: chain order must be rebuilt.
        let stored = vec![c.certs[2].clone(), c.certs[0].clone(), c.certs[1].clone()];
        let value = b64(&pfx(Some(&c.leaf_key), &stored));
        let fetched = bundle_secret(&value, CONTENT_TYPE_PKCS12, true);
        let opts = options(true, false);
        let all = one_file(&part_spec(None), &fetched, &opts);
        assert_eq!(
            one_file(&part_spec(Some(ObjectPart::All)), &fetched, &opts),
            all
        );

        let key = one_file(&part_spec(Some(ObjectPart::Key)), &fetched, &opts);
        let key_blocks = read_pem(&key);
        assert_eq!(key_blocks.len(), 1, "{alg:?}");
        assert_eq!(key_blocks[0].0, "PRIVATE KEY");
        // The same private key (re-encoded like Go's MarshalPKCS8PrivateKey).
        assert_eq!(
            public_key_of(&key_blocks[0].1),
            public_key_of(&c.leaf_key),
            "{alg:?}"
        );

        let leaf = one_file(&part_spec(Some(ObjectPart::Leaf)), &fetched, &opts);
        assert_eq!(ders(&leaf, "CERTIFICATE"), vec![c.certs[0].clone()]);
        let chain_part = one_file(&part_spec(Some(ObjectPart::Chain)), &fetched, &opts);
        assert_eq!(ders(&chain_part, "CERTIFICATE"), c.certs);
        let ca = one_file(&part_spec(Some(ObjectPart::Ca)), &fetched, &opts);
        assert_eq!(ders(&ca, "CERTIFICATE"), c.certs[1..].to_vec());

        // Without --construct-pem-chain: the stored order; the leaf is still the leaf.
        let stored_opts = options(false, false);
        let chain_part = one_file(&part_spec(Some(ObjectPart::Chain)), &fetched, &stored_opts);
        assert_eq!(ders(&chain_part, "CERTIFICATE"), stored);
        let leaf = one_file(&part_spec(Some(ObjectPart::Leaf)), &fetched, &stored_opts);
        assert_eq!(ders(&leaf, "CERTIFICATE"), vec![c.certs[0].clone()]);
        let ca = one_file(&part_spec(Some(ObjectPart::Ca)), &fetched, &stored_opts);
        assert_eq!(
            ders(&ca, "CERTIFICATE"),
            vec![c.certs[2].clone(), c.certs[1].clone()]
        );
    }
}

/// The SubjectPublicKeyInfo a PKCS#8 key implies, read by rcgen (an independent reader).
fn public_key_of(pkcs8: &[u8]) -> Vec<u8> {
    use rcgen::PublicKeyData as _;
    key_pair(pkcs8).subject_public_key_info()
}

#[test]
fn parts_are_one_file_even_with_separate_files() {
    let c = chain(Alg::P256, 2, Ids::Full);
    let value = b64(&pfx(Some(&c.leaf_key), &c.certs));
    let fetched = bundle_secret(&value, CONTENT_TYPE_PKCS12, true);
    let split = options(true, true);
    for part in PARTS {
        let out = render(
            &part_spec(Some(part)),
            std::slice::from_ref(&fetched),
            &split,
        )
        .unwrap();
        let paths: Vec<&str> = out.files.iter().map(|f| f.path.as_str()).collect();
        if part == ObjectPart::All {
            assert_eq!(paths, ["tls.crt", "tls.key", "tls"]);
        } else {
            assert_eq!(paths, ["tls"], "{part}");
        }
        assert!(out.versions.iter().all(|v| v.id == "secret/tls"));
    }
}

/// PKCS#8 key → the PEM label and DER an upload might carry instead: PKCS#1 for RSA, SEC 1
/// with its named curve (as `openssl ec` writes it) for EC.
fn legacy_key_block(pkcs8: &[u8]) -> (&'static str, Vec<u8>) {
    let info = pkcs8::PrivateKeyInfoRef::from_der(pkcs8).unwrap();
    let inner = info.private_key.as_bytes();
    if info.algorithm.oid.to_string() == "1.2.840.113549.1.1.1" {
        ("RSA PRIVATE KEY", inner.to_vec())
    } else {
        let curve = info
            .algorithm
            .parameters
            .unwrap()
            .decode_as::<der::asn1::ObjectIdentifier>()
            .unwrap();
        let mut ec = sec1::EcPrivateKey::from_der(inner).unwrap();
        ec.parameters = Some(sec1::EcParameters::NamedCurve(curve));
        ("EC PRIVATE KEY", ec.to_der().unwrap())
    }
}

fn pem_text(blocks: &[(&str, &[u8])], crlf: bool) -> String {
    let ending = if crlf {
        pem::LineEnding::CRLF
    } else {
        pem::LineEnding::LF
    };
    blocks
        .iter()
        .map(|(label, der)| {
            pem::encode_config(
                &pem::Pem::new(*label, der.to_vec()),
                pem::EncodeConfig::new().set_line_ending(ending),
            )
        })
        .collect::<Vec<_>>()
        .join(if crlf { "\r\n" } else { "\n" })
}

#[test]
fn every_part_of_a_pem_certificate() {
    for (alg, legacy) in [
        (Alg::Rsa, false),
        (Alg::Rsa, true),
        (Alg::P256, true),
        (Alg::P384, false),
    ] {
        let c = chain(alg, 3, Ids::Full);
        let (label, key_der) = if legacy {
            legacy_key_block(&c.leaf_key)
        } else {
            ("PRIVATE KEY", c.leaf_key.clone())
        };
        // Uploaded root first, with the key last, CRLF and blank lines, and a stray block.
        let stored = pem_text(
            &[
                ("CERTIFICATE", &c.certs[2]),
                ("CERTIFICATE", &c.certs[0]),
                ("CERTIFICATE", &c.certs[1]),
                ("EC PARAMETERS", &[6, 3, 1, 2, 3]),
                (label, &key_der),
            ],
            legacy,
        );
        let fetched = bundle_secret(&stored, CONTENT_TYPE_PEM, true);
        let opts = options(true, false);
        assert_eq!(
            one_file(&part_spec(Some(ObjectPart::All)), &fetched, &opts),
            stored.as_bytes(),
            "all is the stored text"
        );
        let key = one_file(&part_spec(Some(ObjectPart::Key)), &fetched, &opts);
        let blocks = read_pem(&key);
        assert_eq!(blocks.len(), 1, "{alg:?} {legacy}");
        assert_eq!(blocks[0].0, "PRIVATE KEY");
        assert_eq!(public_key_of(&blocks[0].1), public_key_of(&c.leaf_key));
        let chain_part = one_file(&part_spec(Some(ObjectPart::Chain)), &fetched, &opts);
        assert_eq!(ders(&chain_part, "CERTIFICATE"), c.certs);
        let leaf = one_file(&part_spec(Some(ObjectPart::Leaf)), &fetched, &opts);
        assert_eq!(ders(&leaf, "CERTIFICATE"), vec![c.certs[0].clone()]);
        let ca = one_file(&part_spec(Some(ObjectPart::Ca)), &fetched, &opts);
        assert_eq!(ders(&ca, "CERTIFICATE"), c.certs[1..].to_vec());
        // Stored order without the flag.
        let chain_part = one_file(
            &part_spec(Some(ObjectPart::Chain)),
            &fetched,
            &options(false, false),
        );
        assert_eq!(
            ders(&chain_part, "CERTIFICATE"),
            vec![c.certs[2].clone(), c.certs[0].clone(), c.certs[1].clone()]
        );
    }
}

#[test]
fn the_key_part_matches_openssl_pkcs8() {
    let Some(openssl) = openssl() else {
        panic!("the openssl CLI is required (Debian package openssl)")
    };
    for alg in [Alg::Rsa, Alg::P256] {
        let c = chain(alg, 1, Ids::Full);
        let (label, der) = legacy_key_block(&c.leaf_key);
        let stored = pem_text(&[("CERTIFICATE", &c.certs[0]), (label, &der)], false);
        let fetched = bundle_secret(&stored, CONTENT_TYPE_PEM, true);
        let key = one_file(
            &part_spec(Some(ObjectPart::Key)),
            &fetched,
            &options(true, false),
        );
        // openssl pkey converts the legacy block to PKCS#8 on its own.
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("legacy.pem");
        std::fs::write(&input, pem_text(&[(label, &der)], false)).unwrap();
        let out = std::process::Command::new(openssl)
            .args(["pkey", "-in"])
            .arg(&input)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = ders(&out.stdout, "PRIVATE KEY");
        let ours = ders(&key, "PRIVATE KEY");
        // Same algorithm and key; OpenSSL keeps the EC curve inside SEC 1 while Go (and we)
        // leave it to the PKCS#8 header, so compare the keys they imply.
        assert_eq!(ours.len(), 1);
        assert_eq!(
            public_key_of(&ours[0]),
            public_key_of(&theirs[0]),
            "{alg:?}"
        );
        if alg == Alg::Rsa {
            assert_eq!(ours, theirs, "RSA PKCS#8 is canonical");
        }
    }
}

#[test]
fn part_errors_name_the_object_and_the_reason() {
    let c = chain(Alg::P256, 1, Ids::Full);
    let no_key = b64(&pfx(None, &c.certs));
    let with_key = b64(&pfx(Some(&c.leaf_key), &c.certs));
    let encrypted = "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n\
                     -----BEGIN ENCRYPTED PRIVATE KEY-----\nAQID\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let cases: Vec<(ObjectPart, Fetched, &str)> = vec![
        (
            ObjectPart::Key,
            bundle_secret(&no_key, CONTENT_TYPE_PKCS12, true),
            "objectPart key cannot be written: the bundle holds no private key",
        ),
        (
            ObjectPart::Ca,
            bundle_secret(&with_key, CONTENT_TYPE_PKCS12, true),
            "objectPart ca cannot be written: the bundle holds only the leaf certificate",
        ),
        (
            ObjectPart::Key,
            bundle_secret(encrypted, CONTENT_TYPE_PEM, true),
            "private key 1 of the certificate bundle: is encrypted",
        ),
        (
            ObjectPart::Chain,
            secret("hunter2", None, false),
            "objectPart chain needs a secret that holds a certificate bundle",
        ),
        (
            ObjectPart::Leaf,
            secret("hunter2", Some("text/plain"), false),
            "content type \"text/plain\"",
        ),
    ];
    for (part, fetched, fragment) in cases {
        let mut s = part_spec(Some(part));
        s.index = 3;
        let err = render(&s, &[fetched], &options(true, false)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("objects[3] (objectName \"tls\"): "),
            "{msg}"
        );
        assert!(msg.contains(fragment), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }
    let err = render(
        &part_spec(Some(ObjectPart::Key)),
        &[secret("x", None, false)],
        &options(true, false),
    )
    .unwrap_err();
    assert!(
        matches!(err, RenderError::PartOfPlainSecret { .. }),
        "{err}"
    );
}

/// App Service certificates: `kid: null`, a certificate content type.
#[test]
fn app_service_certificates_are_certificates_only_when_asked() {
    let c = chain(Alg::Rsa, 2, Ids::Full);
    let der = pfx(Some(&c.leaf_key), &[c.certs[1].clone(), c.certs[0].clone()]);
    let value = b64(&der);
    let app_service = bundle_secret(&value, CONTENT_TYPE_PKCS12, false);
    let key_vault = bundle_secret(&value, CONTENT_TYPE_PKCS12, true);
    for opts in [
        options(true, false),
        options(true, true),
        options(false, true),
    ] {
        // Nothing asked: today's bytes (the stored base64 text), one file, as the Go provider.
        let out = render(&part_spec(None), std::slice::from_ref(&app_service), &opts).unwrap();
        assert_eq!(out.files.len(), 1);
        assert_eq!(out.files[0].contents.to_vec(), value.as_bytes());
        // objectFormat: pem written out: exactly what a Key Vault certificate renders to.
        let mut pem_spec = part_spec(None);
        pem_spec.format_explicit = true;
        let ours = render(&pem_spec, std::slice::from_ref(&app_service), &opts).unwrap();
        let reference = render(&part_spec(None), std::slice::from_ref(&key_vault), &opts).unwrap();
        assert_eq!(ours.files, reference.files);
        // objectPart on it.
        for part in PARTS {
            assert_eq!(
                one_file(
                    &part_spec(Some(part)),
                    &app_service,
                    &options(opts.construct_pem_chain, false)
                ),
                one_file(
                    &part_spec(Some(part)),
                    &key_vault,
                    &options(opts.construct_pem_chain, false)
                ),
                "{part}"
            );
        }
    }
    // objectFormat: pfx: the same bytes as before (base64 text, or binary with base64).
    let mut pfx_spec = part_spec(None);
    pfx_spec.format = ObjectFormat::Pfx;
    pfx_spec.format_explicit = true;
    assert_eq!(
        one_file(&pfx_spec, &app_service, &options(true, true)),
        value.as_bytes()
    );
    pfx_spec.encoding = ObjectEncoding::Base64;
    assert_eq!(
        one_file(&pfx_spec, &app_service, &options(true, false)),
        der
    );
}

#[test]
fn kid_less_pem_and_plain_secrets_keep_their_bytes() {
    let c = chain(Alg::P256, 2, Ids::Full);
    let stored = pem_text(
        &[("PRIVATE KEY", &c.leaf_key), ("CERTIFICATE", &c.certs[0])],
        false,
    );
    let pem_secret = bundle_secret(&stored, CONTENT_TYPE_PEM, false);
    // objectFormat: pem on kid-less PEM text is what it always was: the text, and no
    // .crt/.key companions appear under --write-cert-and-key-in-separate-files.
    let mut explicit = part_spec(None);
    explicit.format_explicit = true;
    for s in [part_spec(None), explicit.clone()] {
        let out = render(&s, std::slice::from_ref(&pem_secret), &options(true, true)).unwrap();
        assert_eq!(out.files.len(), 1);
        assert_eq!(out.files[0].contents.to_vec(), stored.as_bytes());
    }
    // objectPart makes it a bundle.
    assert_eq!(
        ders(
            &one_file(
                &part_spec(Some(ObjectPart::Leaf)),
                &pem_secret,
                &options(true, true)
            ),
            "CERTIFICATE"
        ),
        vec![c.certs[0].clone()]
    );
    // Another content type with objectFormat written: a plain secret, as before.
    let other = secret("plain-value", Some("text/plain"), false);
    assert_eq!(
        one_file(&explicit, &other, &options(true, true)),
        b"plain-value"
    );
}

fn render_file(spec: &ObjectSpec, fetched: &Fetched, options: &RenderOptions) -> Vec<Vec<u8>> {
    render(spec, std::slice::from_ref(fetched), options)
        .unwrap()
        .files
        .iter()
        .map(|f| f.contents.to_vec())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// For a PKCS#12 certificate in any bag order, of any chain length, with or without
    /// --construct-pem-chain: `key` + `chain` is `all`; `chain` is the `.crt` and `key` the
    /// `.key` that --write-cert-and-key-in-separate-files writes, whose combined file is `all`
    /// again (INDEX.md §4 case 6: `.crt`, `.key`, then key + certificates); `leaf` + `ca` is
    /// `chain`; with chain construction `chain` is leaf → root whatever the bag order.
    #[test]
    fn key_then_chain_is_all_for_any_bag_order(
        alg in prop_oneof![Just(Alg::Rsa), Just(Alg::P256), Just(Alg::P384)],
        perm in (1usize..=4).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle()),
        construct: bool,
    ) {
        let c = chain(alg, perm.len(), Ids::Full);
        let stored: Vec<Vec<u8>> = perm.iter().map(|&i| c.certs[i].clone()).collect();
        let fetched = bundle_secret(
            &b64(&pfx(Some(&c.leaf_key), &stored)),
            CONTENT_TYPE_PKCS12,
            true,
        );
        let one = options(construct, false);
        let part = |p: ObjectPart| -> Vec<u8> { one_file(&part_spec(Some(p)), &fetched, &one) };
        let all = part(ObjectPart::All);
        prop_assert_eq!(&all, &one_file(&part_spec(None), &fetched, &one));
        let key = part(ObjectPart::Key);
        let chain_part = part(ObjectPart::Chain);
        prop_assert_eq!([key.clone(), chain_part.clone()].concat(), all.clone());

        let split = render_file(&part_spec(None), &fetched, &options(construct, true));
        // `.crt`, `.key`, then the combined file.
        prop_assert_eq!(split.len(), 3);
        prop_assert_eq!(&split[0], &chain_part);
        prop_assert_eq!(&split[1], &key);
        prop_assert_eq!(&split[2], &all);
        prop_assert_eq!([split[1].clone(), split[0].clone()].concat(), all.clone());

        let leaf = part(ObjectPart::Leaf);
        prop_assert_eq!(ders(&leaf, "CERTIFICATE"), vec![c.certs[0].clone()]);
        let want: &[Vec<u8>] = if construct { &c.certs } else { &stored };
        prop_assert_eq!(ders(&chain_part, "CERTIFICATE"), want.to_vec());
        if perm.len() > 1 {
            // `ca` is `chain` without the leaf, in chain's order; with chain construction the
            // leaf comes first, so `leaf` + `ca` is `chain` itself.
            let ca = part(ObjectPart::Ca);
            let without_leaf: Vec<Vec<u8>> =
                want.iter().filter(|c2| **c2 != c.certs[0]).cloned().collect();
            prop_assert_eq!(ders(&ca, "CERTIFICATE"), without_leaf);
            if construct {
                prop_assert_eq!([leaf, ca].concat(), chain_part.clone());
            }
        }
    }
}

#[test]
fn parts_never_carry_stored_text_outside_blocks() {
    // Text around the blocks of a PEM upload (comments, bag attributes) stays out of parts.
    let c = chain(Alg::P256, 1, Ids::Full);
    let stored = format!(
        "Bag Attributes\n    localKeyID: 01 00 00 00\nsubject=CN = secret-comment\n{}",
        pem_text(
            &[("CERTIFICATE", &c.certs[0]), ("PRIVATE KEY", &c.leaf_key)],
            false
        )
    );
    let fetched = bundle_secret(&stored, CONTENT_TYPE_PEM, true);
    for part in [ObjectPart::Key, ObjectPart::Leaf, ObjectPart::Chain] {
        let out = one_file(&part_spec(Some(part)), &fetched, &options(true, false));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("-----BEGIN "), "{part}: {text}");
        assert!(!text.contains("secret-comment"), "{part}");
    }
    // The Fetched debug form never shows the value either.
    let shown = format!(
        "{:?}",
        Fetched::Secret {
            id: "https://v.vault.azure.net/secrets/s/1".into(),
            value: Zeroizing::new(stored.clone()),
            content_type: None,
            kid: None,
        }
    );
    assert!(!shown.contains("secret-comment"));
}

/// The Go provider's own vectors (INDEX.md §1, §4): its expected key and certificate PEM are
/// exactly our `key` and `chain` parts — for the Windows-exported PFX (B.2 empty password, one
/// certificate) and the OpenSSL one (B.1, three certificates stored out of chain order).
#[test]
fn parts_of_the_go_providers_reference_vectors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/research/reference-vectors");
    assert!(
        dir.join("INDEX.md").is_file(),
        "the Go provider's reference vectors are missing: expected {} (the shared research \
         folder beside the repository)",
        dir.display()
    );
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    for case in [
        "one-certificate-and-key-in-pfx-data",
        "multiple-certificates-and-one-key-in-pfx-data",
    ] {
        let value = read(&format!("TestDecodePKCS12__value__{case}.b64"));
        let key = read(&format!("TestDecodePKCS12__expectedKey__{case}.pem"));
        let cert = read(&format!("TestDecodePKCS12__expectedCert__{case}.pem"));
        let fetched = bundle_secret(value.trim(), CONTENT_TYPE_PKCS12, true);
        let opts = options(true, false);
        let part = |p| String::from_utf8(one_file(&part_spec(Some(p)), &fetched, &opts)).unwrap();
        assert_eq!(part(ObjectPart::All), format!("{key}{cert}"), "{case}");
        assert_eq!(part(ObjectPart::Key), key, "{case}");
        assert_eq!(part(ObjectPart::Chain), cert, "{case}");
        let certs = ders(cert.as_bytes(), "CERTIFICATE");
        assert_eq!(
            ders(part(ObjectPart::Leaf).as_bytes(), "CERTIFICATE"),
            certs[..1]
        );
        if certs.len() > 1 {
            assert_eq!(
                ders(part(ObjectPart::Ca).as_bytes(), "CERTIFICATE"),
                certs[1..]
            );
        }
        // §4 case 6: .crt, .key, then key + certificates.
        let split = render_file(&part_spec(None), &fetched, &options(true, true));
        assert_eq!(
            split,
            [
                cert.as_bytes(),
                key.as_bytes(),
                format!("{key}{cert}").as_bytes()
            ]
        );
    }
}

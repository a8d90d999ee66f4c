//! `objectFormat: pfx` on a PEM certificate (#1945): the PKCS#12 the provider builds, read back
//! by an independent reader (the openssl CLI, required: Debian package `openssl`) — its
//! algorithms, its MAC under the empty password, the key paired with its leaf, the chain — and
//! written exactly as a PKCS#12-backed certificate would be (base64 text, or binary with
//! `objectEncoding: base64`), the same bytes on every Mount of one version.

mod render_support;

use std::path::Path;
use std::process::Command;

use akv_csi_provider::keyvault::Fetched;
use akv_csi_provider::render::{CONTENT_TYPE_PEM, RenderError, RenderOptions, render};
use akv_csi_provider::spc::plan::{ObjectEncoding, ObjectFormat, ObjectSpec, ObjectType};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use render_support::*;
use zeroize::Zeroizing;

fn openssl_cli() -> &'static str {
    openssl().unwrap_or_else(|| {
        panic!("the openssl CLI is required to read the PFX independently (Debian package openssl)")
    })
}

fn pfx_spec(encoding: ObjectEncoding) -> ObjectSpec {
    let mut s = spec(ObjectType::Secret, "tls.pfx");
    s.format = ObjectFormat::Pfx;
    s.format_explicit = true;
    s.encoding = encoding;
    s
}

fn pem_secret(text: &str, id: &str, kid: bool) -> Fetched {
    Fetched::Secret {
        id: id.to_owned(),
        value: Zeroizing::new(text.to_owned()),
        content_type: Some(CONTENT_TYPE_PEM.to_owned()),
        kid: kid.then(|| id.replace("/secrets/", "/keys/")),
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

fn one_file(spec: &ObjectSpec, fetched: &Fetched, options: &RenderOptions) -> Vec<u8> {
    let out =
        render(spec, std::slice::from_ref(fetched), options).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.files.len(), 1, "no .crt/.key companions for pfx");
    out.files[0].contents.to_vec()
}

/// `openssl pkcs12 -in <file> -passin pass: <args>`: (stdout, stderr); panics on failure.
fn openssl_pkcs12(file: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(openssl_cli())
        .arg("pkcs12")
        .arg("-in")
        .arg(file)
        .args(["-passin", "pass:"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "openssl pkcs12 {args:?}: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

fn ders(text: &str, label: &str) -> Vec<Vec<u8>> {
    pem::parse_many(text)
        .unwrap()
        .into_iter()
        .filter(|b| b.tag() == label)
        .map(|b| b.contents().to_vec())
        .collect()
}

fn public_key_of(pkcs8: &[u8]) -> Vec<u8> {
    use rcgen::PublicKeyData as _;
    key_pair(pkcs8).subject_public_key_info()
}

#[test]
fn openssl_reads_the_pfx_built_from_a_pem_certificate() {
    let dir = tempfile::tempdir().unwrap();
    for alg in [Alg::Rsa, Alg::P256, Alg::P384] {
        let c = chain(alg, 3, Ids::Full);
        // Uploaded root first, key last, as people upload them.
        let stored = [
            pem_block("CERTIFICATE", &c.certs[2]),
            pem_block("CERTIFICATE", &c.certs[1]),
            pem_block("CERTIFICATE", &c.certs[0]),
            pem_block("PRIVATE KEY", &c.leaf_key),
        ]
        .concat();
        let fetched = pem_secret(
            &stored,
            "https://v.vault.azure.net/secrets/tls/0123abcd",
            true,
        );
        let binary = one_file(
            &pfx_spec(ObjectEncoding::Base64),
            &fetched,
            &RenderOptions::default(),
        );
        let file = dir.path().join(format!("{alg:?}.pfx"));
        std::fs::write(&file, &binary).unwrap();

        // The MAC verifies with the empty password; the algorithms are the modern ones.
        let (_, info) = openssl_pkcs12(&file, &["-info", "-noout"]);
        for line in [
            "MAC: sha256, Iteration 2048",
            "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256",
            "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256",
        ] {
            assert!(
                info.lines().any(|l| l == line),
                "{alg:?}: {line:?} not in\n{info}"
            );
        }
        // The key is paired with the leaf (localKeyID): -clcerts is the leaf alone, -cacerts
        // the rest in chain order.
        let (leaf, _) = openssl_pkcs12(&file, &["-nokeys", "-clcerts"]);
        assert_eq!(
            ders(&leaf, "CERTIFICATE"),
            vec![c.certs[0].clone()],
            "{alg:?}"
        );
        let (ca, _) = openssl_pkcs12(&file, &["-nokeys", "-cacerts"]);
        assert_eq!(ders(&ca, "CERTIFICATE"), c.certs[1..].to_vec(), "{alg:?}");
        let (key, _) = openssl_pkcs12(&file, &["-nocerts", "-nodes"]);
        let keys = ders(&key, "PRIVATE KEY");
        assert_eq!(keys.len(), 1, "{key}");
        assert_eq!(
            public_key_of(&keys[0]),
            public_key_of(&c.leaf_key),
            "{alg:?}"
        );
        // openssl's own view of the whole file: the leaf is first in the bag order.
        let (all, _) = openssl_pkcs12(&file, &["-nokeys"]);
        assert_eq!(ders(&all, "CERTIFICATE"), c.certs, "{alg:?}");
    }
}

#[test]
fn it_is_written_exactly_as_a_pkcs12_certificate_is() {
    let c = chain(Alg::P256, 2, Ids::Full);
    let stored = [
        pem_block("PRIVATE KEY", &c.leaf_key),
        pem_block("CERTIFICATE", &c.certs[0]),
        pem_block("CERTIFICATE", &c.certs[1]),
    ]
    .concat();
    let id = "https://v.vault.azure.net/secrets/tls/0123abcd";
    let fetched = pem_secret(&stored, id, true);
    for options in [
        RenderOptions::default(),
        RenderOptions {
            construct_pem_chain: false,
            write_cert_and_key_in_separate_files: true,
        },
    ] {
        let text = one_file(&pfx_spec(ObjectEncoding::Utf8), &fetched, &options);
        let binary = one_file(&pfx_spec(ObjectEncoding::Base64), &fetched, &options);
        // utf-8: base64 text (one line, standard alphabet, as Key Vault stores PFX bundles);
        // base64: that text decoded.
        assert!(
            text.iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b))
        );
        assert_eq!(STANDARD.decode(&text).unwrap(), binary);
        // hex cannot decode base64 text, as for a PKCS#12 certificate.
        let err = render(
            &pfx_spec(ObjectEncoding::Hex),
            std::slice::from_ref(&fetched),
            &options,
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::Decode { .. }), "{err}");
        // The same version gives the same bytes on every Mount; another version other salts.
        assert_eq!(
            one_file(&pfx_spec(ObjectEncoding::Base64), &fetched, &options),
            binary
        );
        let next = pem_secret(&stored, &id.replace("0123abcd", "4567ef01"), true);
        let other = one_file(&pfx_spec(ObjectEncoding::Base64), &next, &options);
        assert_ne!(other, binary);
        assert_eq!(other.len(), binary.len());
    }
    // Our own reader agrees, and the bag order follows --construct-pem-chain.
    let stored_root_first = [
        pem_block("CERTIFICATE", &c.certs[1]),
        pem_block("CERTIFICATE", &c.certs[0]),
        pem_block("PRIVATE KEY", &c.leaf_key),
    ]
    .concat();
    let fetched = pem_secret(&stored_root_first, id, true);
    for (construct, want) in [
        (true, c.certs.clone()),
        (false, vec![c.certs[1].clone(), c.certs[0].clone()]),
    ] {
        let options = RenderOptions {
            construct_pem_chain: construct,
            write_cert_and_key_in_separate_files: false,
        };
        let der = one_file(&pfx_spec(ObjectEncoding::Base64), &fetched, &options);
        let opened = akv_csi_provider::render::pkcs12::open(&der).unwrap();
        assert_eq!(opened.certs, want);
    }
}

#[test]
fn app_service_pem_certificates_become_a_pfx_too() {
    let dir = tempfile::tempdir().unwrap();
    let c = chain(Alg::Rsa, 1, Ids::Full);
    let stored = [
        pem_block("CERTIFICATE", &c.certs[0]),
        pem_block("PRIVATE KEY", &c.leaf_key),
    ]
    .concat();
    // No kid: objectFormat pfx written out asks for a certificate.
    let fetched = pem_secret(&stored, "https://v.vault.azure.net/secrets/app/01", false);
    let binary = one_file(
        &pfx_spec(ObjectEncoding::Base64),
        &fetched,
        &RenderOptions::default(),
    );
    let file = dir.path().join("app.pfx");
    std::fs::write(&file, &binary).unwrap();
    let (leaf, _) = openssl_pkcs12(&file, &["-nokeys", "-clcerts"]);
    assert_eq!(ders(&leaf, "CERTIFICATE"), c.certs);
}

#[test]
fn certificate_only_pem_makes_a_certificate_only_pfx_and_empty_pem_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let c = chain(Alg::P256, 2, Ids::Full);
    let stored = [
        pem_block("CERTIFICATE", &c.certs[0]),
        pem_block("CERTIFICATE", &c.certs[1]),
    ]
    .concat();
    let fetched = pem_secret(&stored, "https://v.vault.azure.net/secrets/ca/01", true);
    let binary = one_file(
        &pfx_spec(ObjectEncoding::Base64),
        &fetched,
        &RenderOptions::default(),
    );
    let file = dir.path().join("ca.pfx");
    std::fs::write(&file, &binary).unwrap();
    let (all, info) = openssl_pkcs12(&file, &["-info", "-nokeys"]);
    assert_eq!(ders(&all, "CERTIFICATE"), c.certs);
    assert!(!info.contains("Keybag"), "{info}");

    let fetched = pem_secret(
        "no blocks here",
        "https://v.vault.azure.net/secrets/x/01",
        true,
    );
    let mut s = pfx_spec(ObjectEncoding::Utf8);
    s.index = 4;
    let err = render(&s, &[fetched], &RenderOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "objects[4] (objectName \"tls.pfx\"): a PFX cannot be built from the certificate's PEM"
        ),
        "{msg}"
    );
}

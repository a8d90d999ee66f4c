//! Secrets, keys and certificates through the public `render` API: encodings, jsonPointer,
//! JWK public keys, cer, PEM certificate secrets, history layout, ObjectVersions, modes, and
//! error messages that name the object and never the secret.

mod render_support;

use akv_csi_provider::keyvault::{Fetched, Jwk};
use akv_csi_provider::render::{CONTENT_TYPE_PEM, RenderError, RenderOptions, Rendered, render};
use akv_csi_provider::spc::plan::{ObjectEncoding, ObjectFormat, ObjectType};
use base64::Engine as _;
use rcgen::PublicKeyData as _;
use render_support::*;
use x509_cert::der::{Decode as _, Encode as _};

fn opts() -> RenderOptions {
    RenderOptions::default()
}

fn contents(out: &Rendered) -> Vec<Vec<u8>> {
    out.files.iter().map(|f| f.contents.to_vec()).collect()
}

#[test]
fn plain_secrets_with_each_encoding() {
    type Row<'a> = (ObjectEncoding, &'a str, Result<&'a [u8], &'a str>);
    let table: &[Row<'_>] = &[
        (ObjectEncoding::Utf8, "pa ss\n", Ok(b"pa ss\n")),
        (
            ObjectEncoding::Hex,
            "DEADbeef",
            Ok(&[0xde, 0xad, 0xbe, 0xef]),
        ),
        (ObjectEncoding::Base64, "AAEC/w==", Ok(&[0, 1, 2, 255])),
        (
            ObjectEncoding::Hex,
            "supersecret",
            Err("objectEncoding hex"),
        ),
        (
            ObjectEncoding::Base64,
            "supersecret",
            Err("objectEncoding base64"),
        ),
    ];
    for (encoding, value, want) in table {
        let mut s = spec(ObjectType::Secret, "db-pass");
        s.index = 2;
        s.encoding = *encoding;
        s.mode = 0o400;
        let got = render(&s, &[secret(value, None, false)], &opts());
        match want {
            Ok(bytes) => {
                let out = got.unwrap();
                assert_eq!(contents(&out), vec![bytes.to_vec()]);
                assert_eq!(out.files[0].path, "db-pass");
                assert_eq!(out.files[0].mode, 0o400);
                assert_eq!(out.versions[0].id, "secret/db-pass");
                assert_eq!(out.versions[0].version, "0123abcd");
            }
            Err(fragment) => {
                let msg = got.unwrap_err().to_string();
                assert!(
                    msg.starts_with("objects[2] (objectName \"db-pass\"): "),
                    "{msg}"
                );
                assert!(
                    msg.contains(fragment) && !msg.contains("supersecret"),
                    "{msg}"
                );
            }
        }
    }
}

#[test]
fn json_pointer_then_encoding() {
    let doc = r#"{"db": {"password": "hunter2", "hex": "cafe", "opts": {"a": [1, 2.0]}}}"#;
    for (pointer, encoding, want) in [
        ("/db/password", ObjectEncoding::Utf8, b"hunter2".to_vec()),
        ("/db/hex", ObjectEncoding::Hex, vec![0xca, 0xfe]),
        (
            "/db/opts",
            ObjectEncoding::Utf8,
            br#"{"a":[1,2.0]}"#.to_vec(),
        ),
    ] {
        let mut s = spec(ObjectType::Secret, "cfg");
        s.json_pointer = Some(pointer.to_owned());
        s.encoding = encoding;
        let out = render(&s, &[secret(doc, None, false)], &opts()).unwrap();
        assert_eq!(contents(&out), vec![want], "{pointer}");
    }
    let mut s = spec(ObjectType::Secret, "cfg");
    s.json_pointer = Some("/db/nope".to_owned());
    let err = render(&s, &[secret(doc, None, false)], &opts()).unwrap_err();
    assert!(matches!(err, RenderError::PointerNotFound { .. }));
    assert!(err.to_string().contains("/db/nope"));
    let err = render(&s, &[secret("hunter2", None, false)], &opts()).unwrap_err();
    assert!(matches!(err, RenderError::NotJson { .. }));
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

fn jwk_of(pkcs8: &[u8]) -> (Jwk, Vec<u8>) {
    let spki_der = key_pair(pkcs8).subject_public_key_info();
    let spki = x509_cert::spki::SubjectPublicKeyInfoRef::from_der(&spki_der).unwrap();
    let bits = spki.subject_public_key.raw_bytes();
    let url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = if spki.algorithm.oid.to_string() == "1.2.840.113549.1.1.1" {
        let rsa = pkcs1::RsaPublicKeyRef::from_der(bits).unwrap();
        // Key Vault prefixes n with a zero byte; the reference strips it.
        let mut n = vec![0u8];
        n.extend_from_slice(rsa.modulus.as_bytes());
        Jwk {
            kty: Some("RSA-HSM".into()),
            n: Some(url(&n)),
            e: Some(url(rsa.public_exponent.as_bytes())),
            ..Jwk::default()
        }
    } else {
        let size = (bits.len() - 1) / 2;
        Jwk {
            kty: Some("EC".into()),
            crv: Some(if size == 32 { "P-256" } else { "P-384" }.into()),
            x: Some(url(&bits[1..1 + size])),
            y: Some(url(&bits[1 + size..])),
            ..Jwk::default()
        }
    };
    (jwk, spki_der)
}

fn key(jwk: Jwk) -> Fetched {
    Fetched::Key {
        id: "https://v.vault.azure.net/keys/k/v1".into(),
        jwk,
    }
}

#[test]
fn keys_become_pkix_public_keys() {
    for alg in [Alg::Rsa, Alg::P256, Alg::P384] {
        let (jwk, want) = jwk_of(&keys(alg)[1]);
        let out = render(&spec(ObjectType::Key, "k"), &[key(jwk)], &opts()).unwrap();
        let blocks = read_pem(&out.files[0].contents);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].0, "PUBLIC KEY");
        assert_eq!(blocks[0].1, want, "{alg:?}");
        assert_eq!(out.versions[0].id, "key/k");
        assert_eq!(out.versions[0].version, "v1");
    }
}

#[test]
fn unsupported_keys_are_clear_errors() {
    let (ec, _) = jwk_of(&keys(Alg::P256)[0]);
    let cases: Vec<(Jwk, &str)> = vec![
        (
            Jwk {
                kty: Some("oct".into()),
                ..Jwk::default()
            },
            "key type \"oct\"",
        ),
        (
            Jwk {
                crv: Some("P-256K".into()),
                ..ec.clone()
            },
            "curve \"P-256K\"",
        ),
        (
            Jwk {
                x: Some("AQ".into()),
                ..ec.clone()
            },
            "not a point",
        ),
        (
            Jwk {
                y: None,
                ..ec.clone()
            },
            "\"y\" is missing",
        ),
        (
            Jwk {
                kty: Some("RSA".into()),
                n: Some("!!".into()),
                e: Some("AQAB".into()),
                ..Jwk::default()
            },
            "\"n\" is not base64url",
        ),
    ];
    for (jwk, fragment) in cases {
        let err = render(&spec(ObjectType::Key, "k"), &[key(jwk)], &opts()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(fragment) && msg.contains("objects[0]"),
            "{msg}"
        );
    }
}

#[test]
fn cert_objects_write_the_cer_as_one_block() {
    let c = chain(Alg::P256, 2, Ids::Full);
    let fetched = Fetched::Cert {
        id: "https://v.vault.azure.net/certificates/c/abc".into(),
        cer: c.certs[0].clone(),
    };
    let out = render(&spec(ObjectType::Cert, "c"), &[fetched], &opts()).unwrap();
    let parsed = x509_cert::Certificate::load_pem_chain(&out.files[0].contents).unwrap();
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].to_der().unwrap(), c.certs[0]);
    assert_eq!(out.versions[0].id, "cert/c");
}

fn pem_bundle(c: &Chain) -> String {
    let key = key_pair(&c.leaf_key).serialize_pem();
    let certs: String = c
        .certs
        .iter()
        .map(|d| pem::encode(&pem::Pem::new("CERTIFICATE", d.clone())))
        .collect();
    // Stored with CRLF and a blank line, as some uploads are.
    format!("{key}\r\n{certs}")
}

#[test]
fn pem_certificate_secrets_are_written_as_stored() {
    let c = chain(Alg::Rsa, 3, Ids::Full);
    let stored = pem_bundle(&c);
    let fetched = [secret(&stored, Some(CONTENT_TYPE_PEM), true)];
    let s = spec(ObjectType::Secret, "tls.pem");
    let out = render(&s, &fetched, &opts()).unwrap();
    assert_eq!(contents(&out), vec![stored.as_bytes().to_vec()]);

    let split = RenderOptions {
        write_cert_and_key_in_separate_files: true,
        ..opts()
    };
    let out = render(&s, &fetched, &split).unwrap();
    let paths: Vec<&str> = out.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["tls.pem.crt", "tls.pem.key", "tls.pem"]);
    let crt = read_pem(&out.files[0].contents);
    assert_eq!(
        crt.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(),
        c.certs
    );
    let key = read_pem(&out.files[1].contents);
    assert_eq!(key, vec![("PRIVATE KEY".to_owned(), c.leaf_key.clone())]);
    assert_eq!(out.versions.len(), 3);
    assert!(
        out.versions
            .iter()
            .all(|v| v.id == "secret/tls.pem" && v.version == "0123abcd")
    );

    // objectFormat pfx on a PEM certificate: the reference writes the PEM text; we build a
    // PKCS#12 of it (#1945; tests/render_pfx.rs reads it with openssl).
    let mut pfx_spec = s.clone();
    pfx_spec.format = ObjectFormat::Pfx;
    let out = render(&pfx_spec, &fetched, &opts()).unwrap();
    assert_eq!(out.files.len(), 1);
    let der = base64::engine::general_purpose::STANDARD
        .decode(&out.files[0].contents[..])
        .unwrap();
    let opened = akv_csi_provider::render::pkcs12::open(&der).unwrap();
    assert_eq!(opened.certs, c.certs);
    assert_eq!(opened.keys.len(), 1);
}

#[test]
fn certificate_secrets_need_a_known_content_type() {
    for content_type in [None, Some("text/plain")] {
        let err = render(
            &spec(ObjectType::Secret, "tls"),
            &[secret("x", content_type, true)],
            &opts(),
        )
        .unwrap_err();
        assert!(
            matches!(err, RenderError::CertificateContentType { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("application/x-pkcs12"), "{err}");
    }
    // Without kid the content type does not matter.
    let out = render(
        &spec(ObjectType::Secret, "tls"),
        &[secret("x", Some("text/plain"), false)],
        &opts(),
    )
    .unwrap();
    assert_eq!(contents(&out), vec![b"x".to_vec()]);
}

#[test]
fn history_writes_numbered_files_and_versions() {
    let mut s = spec(ObjectType::Secret, "pw");
    s.alias = "dir/pw".into();
    s.history = 3;
    let versions: Vec<Fetched> = ["v2", "v1"]
        .iter()
        .map(|v| Fetched::Secret {
            id: format!("https://v.vault.azure.net/secrets/pw/{v}"),
            value: zeroize::Zeroizing::new(format!("value-{v}")),
            content_type: None,
            kid: None,
        })
        .collect();
    let out = render(&s, &versions, &opts()).unwrap();
    let paths: Vec<&str> = out.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["dir/pw/0", "dir/pw/1"]);
    assert_eq!(
        contents(&out),
        vec![b"value-v2".to_vec(), b"value-v1".to_vec()]
    );
    let ids: Vec<(&str, &str)> = out
        .versions
        .iter()
        .map(|v| (v.id.as_str(), v.version.as_str()))
        .collect();
    assert_eq!(ids, [("secret/pw/0", "v2"), ("secret/pw/1", "v1")]);
}

#[test]
fn caller_mistakes_are_internal_errors() {
    let s = spec(ObjectType::Secret, "pw");
    let err = render(&s, &[], &opts()).unwrap_err();
    assert!(matches!(err, RenderError::VersionCount { .. }));
    let two = [secret("a", None, false), secret("b", None, false)];
    assert!(matches!(
        render(&s, &two, &opts()),
        Err(RenderError::VersionCount { .. })
    ));
    let (jwk, _) = jwk_of(&keys(Alg::P256)[0]);
    let err = render(&s, &[key(jwk)], &opts()).unwrap_err();
    assert!(matches!(err, RenderError::WrongKind { .. }), "{err}");
}

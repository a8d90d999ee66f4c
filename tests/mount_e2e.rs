//! Mount end to end: the provider over its socket, as the CSI driver calls it, against fake
//! Entra ID and Key Vault over HTTPS, asserting file bytes, modes, versions and call counts.

use std::collections::BTreeMap;

use akv_csi_provider::Config;
use akv_csi_provider::proto::MountResponse;
use akv_csi_provider::testkit::material::{
    ec_certificate, ec_certificate_openssl, ec_key, rsa_certificate, rsa_certificate_openssl,
    rsa_key,
};
use akv_csi_provider::testkit::world::{CLIENT_ID, VAULT};
use akv_csi_provider::testkit::{Stored, World, objects_yaml};

fn files(response: &MountResponse) -> BTreeMap<String, (u32, Vec<u8>)> {
    response
        .files
        .iter()
        .map(|f| (f.path.clone(), (f.mode as u32, f.contents.clone())))
        .collect()
}

fn versions(response: &MountResponse) -> Vec<(String, String)> {
    response
        .object_version
        .iter()
        .map(|v| (v.id.clone(), v.version.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_keys_and_certificates_render_exactly() {
    let world = World::start(Config::defaults()).await;
    let vault = world.azure.vault(VAULT);
    let plain = vault.secret("db-password", "s3cr3t-value\n");
    let hex = vault.secret("hex-secret", "68656c6c6f");
    let b64 = vault.secret("b64-secret", "aGVsbG8gd29ybGQ=");
    let json = vault.secret(
        "db-config",
        r#"{"db":{"user":"app","password":"p@ss","port":5432}}"#,
    );
    let rsa = rsa_certificate();
    let tls = vault.certificate(
        "tls-cert",
        &rsa.pfx_base64,
        "application/x-pkcs12",
        &rsa.leaf_der,
    );
    let ec = ec_certificate();
    let ec_version = vault.certificate(
        "ec-cert",
        &ec.pfx_base64,
        "application/x-pkcs12",
        &ec.leaf_der,
    );
    // The same certificates as OpenSSL bundles them (the B.1 empty password; -legacy, AES).
    let rsa_openssl = rsa_certificate_openssl();
    vault.certificate(
        "tls-openssl",
        &rsa_openssl.pfx_base64,
        "application/x-pkcs12",
        &rsa_openssl.leaf_der,
    );
    let ec_openssl = ec_certificate_openssl();
    vault.certificate(
        "ec-openssl",
        &ec_openssl.pfx_base64,
        "application/x-pkcs12",
        &ec_openssl.leaf_der,
    );
    let pem_bundle = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let pem_version = vault.certificate(
        "pem-cert",
        pem_bundle,
        "application/x-pem-file",
        &rsa.leaf_der,
    );
    let rsa_jwk = rsa_key();
    let key_version = vault.add(
        "signing-key",
        Stored::Key {
            jwk: rsa_jwk.jwk.clone(),
        },
    );
    let ec_jwk = ec_key(true, true);
    let ec_key_version = vault.add(
        "ec-key",
        Stored::Key {
            jwk: ec_jwk.jwk.clone(),
        },
    );

    let objects = objects_yaml(&[
        "objectName: db-password\nobjectType: secret",
        "objectName: hex-secret\nobjectType: secret\nobjectEncoding: hex\nfilePermission: \"0400\"",
        "objectName: b64-secret\nobjectType: secret\nobjectEncoding: base64",
        "objectName: db-config\nobjectType: secret\njsonPointer: /db/password\nobjectAlias: db/password",
        "objectName: db-config\nobjectType: secret\njsonPointer: /db/port\nobjectAlias: db/port",
        "objectName: tls-cert\nobjectType: secret\nobjectAlias: tls.pem",
        "objectName: tls-cert\nobjectType: secret\nobjectFormat: pfx\nobjectEncoding: base64\nobjectAlias: tls.pfx",
        "objectName: tls-cert\nobjectType: secret\nobjectFormat: pfx\nobjectAlias: tls.pfx.b64",
        "objectName: tls-cert\nobjectType: cert\nobjectAlias: tls.crt",
        "objectName: ec-cert\nobjectType: secret",
        "objectName: pem-cert\nobjectType: secret",
        "objectName: tls-openssl\nobjectType: secret",
        "objectName: ec-openssl\nobjectType: secret",
        "objectName: signing-key\nobjectType: key",
        "objectName: ec-key\nobjectType: key",
    ]);
    let attrs = world.spc(&objects).build();
    let response = world
        .client()
        .mount(&attrs, None, "420")
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let got = files(&response);
    let want: BTreeMap<String, (u32, Vec<u8>)> = [
        ("db-password", 0o644, b"s3cr3t-value\n".to_vec()),
        ("hex-secret", 0o400, b"hello".to_vec()),
        ("b64-secret", 0o644, b"hello world".to_vec()),
        ("db/password", 0o644, b"p@ss".to_vec()),
        ("db/port", 0o644, b"5432".to_vec()),
        ("tls.pem", 0o644, rsa.expected_pem.as_bytes().to_vec()),
        ("tls.pfx", 0o644, base64_decode(&rsa.pfx_base64)),
        ("tls.pfx.b64", 0o644, rsa.pfx_base64.as_bytes().to_vec()),
        ("ec-cert", 0o644, ec.expected_pem.as_bytes().to_vec()),
        ("pem-cert", 0o644, pem_bundle.as_bytes().to_vec()),
        // Byte-identical to the Key Vault-shaped bundles of the same key and certificates.
        ("tls-openssl", 0o644, rsa.expected_pem.as_bytes().to_vec()),
        ("ec-openssl", 0o644, ec.expected_pem.as_bytes().to_vec()),
        ("signing-key", 0o644, rsa_jwk.expected_pem().into_bytes()),
        ("ec-key", 0o644, ec_jwk.expected_pem().into_bytes()),
    ]
    .into_iter()
    .map(|(p, m, c)| (p.to_owned(), (m, c)))
    .chain([(
        "tls.crt".to_owned(),
        (0o644, pem_block("CERTIFICATE", &rsa.leaf_der)),
    )])
    .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (path, (mode, contents)) in &want {
        let (got_mode, got_contents) = &got[path];
        assert_eq!(got_mode, mode, "{path}");
        assert!(
            got_contents == contents,
            "{path}: contents differ:\n{}\n---\n{}",
            String::from_utf8_lossy(got_contents),
            String::from_utf8_lossy(contents)
        );
    }
    let v = versions(&response);
    assert_eq!(v.len(), response.files.len());
    for (id, version) in [
        ("secret/db-password", &plain),
        ("secret/hex-secret", &hex),
        ("secret/b64-secret", &b64),
        ("secret/db-config", &json),
        ("secret/tls-cert", &tls),
        ("cert/tls-cert", &tls),
        ("secret/ec-cert", &ec_version),
        ("secret/pem-cert", &pem_version),
        ("key/signing-key", &key_version),
        ("key/ec-key", &ec_key_version),
    ] {
        assert!(
            v.contains(&(id.to_owned(), version.clone())),
            "{id} {version} in {v:?}"
        );
    }
    // One exchange; db-config and tls-cert (secret, latest) are read once each.
    let counts = world.azure.counts();
    assert_eq!(counts.entra, 1, "{counts:?}");
    assert_eq!(counts.gets, 12, "{counts:?}");
    let call = &world.azure.entra_calls()[0];
    assert_eq!(
        (call.client_id.as_str(), call.scope.as_str(), call.grant),
        (CLIENT_ID, "https://vault.azure.net/.default", "assertion")
    );
    assert_eq!(call.host, "login.microsoftonline.com");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap()
}

fn pem_block(tag: &str, der: &[u8]) -> Vec<u8> {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
    .into_bytes()
}

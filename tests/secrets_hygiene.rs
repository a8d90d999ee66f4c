//! Secrets never leak: full Mounts of every object type and every identity mode (identity binding
//! through the fake token proxy included), successful and failing, with every log target at
//! TRACE (ours, the Azure SDK, reqwest, hyper, h2, tonic), and no secret value, private key,
//! service-account token, client secret or access token may appear in the logs, the error
//! messages, or the `Debug` output of what the provider holds.

use std::io::Write;
use std::sync::{Arc, Mutex};

use akv_csi_provider::Config;
use akv_csi_provider::testkit::material::{
    ec_key, rsa_certificate, service_account_token, service_account_token_for,
};
use akv_csi_provider::testkit::world::VAULT;
use akv_csi_provider::testkit::{
    ClusterOptions, KubeletAttributes, Stored, TENANT, TestServer, World, objects_yaml,
};
use clap::Parser;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const SECRET_VALUE: &str = "plain-secret-value-5f1c";
const JSON_SECRET: &str = r#"{"user":"app","password":"json-password-9a2e"}"#;
const SP_SECRET: &str = "sp-client-secret-3b7d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_secret_reaches_logs_errors_or_debug_output() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(capture.clone())
        .with_ansi(false)
        .init();

    let world = World::start(Config::defaults()).await;
    let vault = world.azure.vault(VAULT);
    vault.secret("plain", SECRET_VALUE);
    vault.secret("json", JSON_SECRET);
    let cert = rsa_certificate();
    vault.certificate(
        "tls",
        &cert.pfx_base64,
        "application/x-pkcs12",
        &cert.leaf_der,
    );
    vault.add(
        "key",
        Stored::Key {
            jwk: ec_key(false, false).jwk,
        },
    );
    world.azure.add_service_principal("sp-client", SP_SECRET);
    vault.grant("sp-client");

    let token = service_account_token("default", "workload-identity-sa", 3600);
    let objects = objects_yaml(&[
        "objectName: plain\nobjectType: secret",
        "objectName: json\nobjectType: secret\njsonPointer: /password\nobjectAlias: pw",
        "objectName: tls\nobjectType: secret\nobjectAlias: tls.pem",
        "objectName: tls\nobjectType: secret\nobjectFormat: pfx\nobjectAlias: tls.pfx",
        "objectName: tls\nobjectType: cert",
        "objectName: key\nobjectType: key",
    ]);
    let mut messages = Vec::new();
    let wi = world.spc_with_token(&objects, &token).build();
    let response = world.client().mount(&wi, None, "420").await.unwrap();
    assert_eq!(response.files.len(), 6);
    // Failing Mounts: unfederated token, a missing object, a wrong client secret.
    let stranger = service_account_token("other", "sa", 3600);
    let bad = world.spc_with_token(&objects, &stranger).build();
    messages.push(
        world
            .client()
            .mount(&bad, None, "420")
            .await
            .unwrap_err()
            .message()
            .to_owned(),
    );
    let missing = world
        .spc_with_token(
            &objects_yaml(&["objectName: nope\nobjectType: secret"]),
            &token,
        )
        .build();
    messages.push(
        world
            .client()
            .mount(&missing, None, "420")
            .await
            .unwrap_err()
            .message()
            .to_owned(),
    );
    let sp = KubeletAttributes::new("default", "app-0", "default", "spc")
        .param("keyvaultName", VAULT)
        .param("tenantID", TENANT)
        .param("objects", &objects)
        .build();
    let secrets = |s: &str| -> std::collections::BTreeMap<String, String> {
        [
            ("clientid".to_owned(), "sp-client".to_owned()),
            ("clientsecret".to_owned(), s.to_owned()),
        ]
        .into()
    };
    world
        .client()
        .mount(&sp, Some(&secrets(SP_SECRET)), "420")
        .await
        .unwrap();
    messages.push(
        world
            .client()
            .mount(&sp, Some(&secrets("wrong-secret-value-77")), "420")
            .await
            .unwrap_err()
            .message()
            .to_owned(),
    );

    // Identity binding through the fake token proxy: a success and an RBAC refusal.
    let proxy = world
        .azure
        .start_token_proxy(ClusterOptions {
            cluster_id: Some("abc123def456".into()),
            server_name: "avimke6u6l2eeq8qc1cneuaq4sl2e1av9t4clqgun97le32hub670.ests.aks".into(),
        })
        .await;
    proxy
        .bind_identity("ib-client")
        .allow("ib-client", "default", "ib-sa");
    vault.grant("ib-client");
    let ca_dir = tempfile::tempdir().unwrap();
    std::fs::write(ca_dir.path().join("ca.crt"), proxy.ca_pem()).unwrap();
    let ib_server = TestServer::start_with_http(
        Config::try_parse_from([
            "akv-csi-provider".to_owned(),
            format!("--token-proxy-url={}", proxy.url()),
            format!(
                "--token-proxy-ca-file={}",
                ca_dir.path().join("ca.crt").display()
            ),
        ])
        .unwrap(),
        world.azure.http_client(),
    )
    .await;
    let ib_token = service_account_token_for("default", "ib-sa", 3600, "api://AKSIdentityBinding");
    let ib_refused =
        service_account_token_for("default", "other-sa", 3600, "api://AKSIdentityBinding");
    let ib = |sa: &str, jwt: &str| {
        KubeletAttributes::new("default", "app-0", sa, "spc")
            .param("keyvaultName", VAULT)
            .param("tenantID", TENANT)
            .param("clientID", "ib-client")
            .param("useAzureTokenProxy", "true")
            .param("objects", &objects)
            .tokens(&[("api://AKSIdentityBinding", jwt)], "2099-01-01T00:00:00Z")
            .build()
    };
    let response = ib_server
        .client()
        .mount(&ib("ib-sa", &ib_token), None, "420")
        .await
        .unwrap();
    assert_eq!(response.files.len(), 6);
    messages.push(
        ib_server
            .client()
            .mount(&ib("other-sa", &ib_refused), None, "420")
            .await
            .unwrap_err()
            .message()
            .to_owned(),
    );

    // What must never appear, anywhere.
    let mut forbidden: Vec<String> = vec![
        ib_token.clone(),
        ib_refused.clone(),
        ib_token.split('.').nth(1).unwrap().to_owned(),
        ib_refused.split('.').nth(1).unwrap().to_owned(),
        SECRET_VALUE.into(),
        "json-password-9a2e".into(),
        SP_SECRET.into(),
        "wrong-secret-value-77".into(),
        token.clone(),
        stranger.clone(),
        // The JWT payloads and signatures on their own.
        token.split('.').nth(1).unwrap().to_owned(),
        stranger.split('.').nth(1).unwrap().to_owned(),
        "fake-access-token".into(),
        cert.pfx_base64[..64].to_owned(),
    ];
    // Every line of the private key's base64.
    let key_block = cert
        .expected_pem
        .split("-----END PRIVATE KEY-----")
        .next()
        .unwrap();
    forbidden.extend(
        key_block
            .lines()
            .filter(|l| l.len() == 64)
            .map(str::to_owned),
    );

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.len() > 10_000,
        "the capture did not see the trace logs ({} bytes)",
        logs.len()
    );
    assert!(logs.contains("mount"), "no per-Mount line");
    for needle in &forbidden {
        assert!(
            !logs.contains(needle.as_str()),
            "logs contain {:?}…",
            &needle[..needle.len().min(16)]
        );
        for m in &messages {
            assert!(
                !m.contains(needle.as_str()),
                "an error message contains {:?}…: {m}",
                &needle[..needle.len().min(16)]
            );
        }
    }

    // Debug output of everything that holds secrets.
    let request = akv_csi_provider::spc::request::decode(
        &serde_json::to_string(&wi).unwrap(),
        &serde_json::to_string(&secrets(SP_SECRET)).unwrap(),
        "420",
    )
    .unwrap();
    let plan = akv_csi_provider::spc::params::parse(
        &request.attributes,
        &request.secrets,
        0o644,
        &Default::default(),
    )
    .unwrap();
    let fetched = akv_csi_provider::keyvault::Fetched::Secret {
        id: "https://kv-demo.vault.azure.net/secrets/plain/1".into(),
        value: zeroize::Zeroizing::new(SECRET_VALUE.into()),
        content_type: None,
        kid: None,
    };
    let rendered = akv_csi_provider::render::render(
        &plan.objects[0],
        std::slice::from_ref(&fetched),
        &Default::default(),
    )
    .unwrap();
    for shown in [
        format!("{request:?}"),
        format!("{plan:?}"),
        format!("{fetched:?}"),
        format!("{rendered:?}"),
        format!("{:?}", plan.identity),
    ] {
        for needle in &forbidden {
            assert!(
                !shown.contains(needle.as_str()),
                "Debug output contains a secret: {shown}"
            );
        }
    }
}

//! Quick start: serve the provider on a temporary socket and call it exactly as the Secrets
//! Store CSI Driver does for a workload-identity SecretProviderClass.
//!
//! `cargo run --example quickstart`

use akv_csi_provider::Config;
use akv_csi_provider::testkit::{KubeletAttributes, TestServer};

const OBJECTS: &str = "array:
  - |
    objectName: db-password
    objectType: secret
  - |
    objectName: tls-cert
    objectType: secret
    objectFormat: pfx
    objectEncoding: base64
    objectAlias: tls.pfx
  - |
    objectName: signing-key
    objectType: key
";

#[tokio::main]
async fn main() {
    let server = TestServer::start(Config::defaults()).await;
    let client = server.client();
    println!("provider serving on {}", server.socket.display());

    let version = client
        .version()
        .await
        .unwrap_or_else(|e| panic!("Version failed: {e}"));
    println!(
        "Version -> {} {} (API {})",
        version.runtime_name, version.runtime_version, version.version
    );

    let attributes = KubeletAttributes::new("default", "quickstart-pod", "workload-identity-sa", "azure-kv-wi")
        .param("keyvaultName", "kv-quickstart")
        .param("tenantID", "72f988bf-86f1-41af-91ab-2d7cd011db47")
        .param("clientID", "0d4c8f3e-5b7a-4c1e-9f2d-3a6b8c1d2e4f")
        .param("objects", OBJECTS)
        .azure_token("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDp3b3JrbG9hZC1pZGVudGl0eS1zYSJ9.c2ln", "2030-01-01T00:00:00Z")
        .build();
    println!(
        "Mount for pod default/quickstart-pod, SecretProviderClass azure-kv-wi, {} objects",
        3
    );
    match client.mount(&attributes, None, "420").await {
        Ok(response) => {
            for file in &response.files {
                println!(
                    "  file {} (mode {:o}, {} bytes)",
                    file.path,
                    file.mode,
                    file.contents.len()
                );
            }
            for v in &response.object_version {
                println!("  version {} = {}", v.id, v.version);
            }
        }
        Err(status) => println!("Mount -> {:?}: {}", status.code(), status.message()),
    }

    let mut broken = attributes.clone();
    broken.insert(
        "objects".into(),
        "array:\n  - |\n    objectName: db-pass\n    objectType: sekret\n".into(),
    );
    if let Err(status) = client.mount(&broken, None, "420").await {
        println!(
            "Mount with a typo -> {:?}: {}",
            status.code(),
            status.message()
        );
    }
    server
        .stop()
        .await
        .unwrap_or_else(|e| panic!("shutdown failed: {e}"));
    println!("provider stopped; socket removed");
}

//! Quick start: the provider serving a Mount end to end, with no Azure account and no cluster.
//!
//! `cargo run --example quickstart`
//!
//! Starts fake Microsoft Entra ID and Key Vault servers (HTTPS with a CA made on the spot)
//! holding sample secrets, a certificate chain and keys; starts the provider on a temporary
//! Unix socket; sends the Mount the Secrets Store CSI Driver sends for the SecretProviderClass
//! below (kubelet's attributes, a workload-identity service-account token, `secrets: null`,
//! `permission: "420"`); and prints the files the pod would see, with their versions.

use akv_csi_provider::Config;
use akv_csi_provider::testkit::material::{ec_key, rsa_certificate};
use akv_csi_provider::testkit::world::VAULT;
use akv_csi_provider::testkit::{Stored, World};

const SECRET_PROVIDER_CLASS: &str = r#"apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: azure-kv-wi
spec:
  provider: azure
  parameters:
    keyvaultName: kv-demo
    clientID: 0d4c8f3e-5b7a-4c1e-9f2d-3a6b8c1d2e4f
    tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47
    objects: |
      array:
        - |
          objectName: db-password
          objectType: secret
        - |
          objectName: app-config
          objectType: secret
          jsonPointer: /db/user
          objectAlias: db-user
        - |
          objectName: tls-cert
          objectType: secret
          objectAlias: tls.pem
        - |
          objectName: tls-cert
          objectType: secret
          objectFormat: pfx
          objectEncoding: base64
          objectAlias: tls.pfx
        - |
          objectName: signing-key
          objectType: key
          filePermission: "0400"
        - |
          objectName: api-token
          objectType: secret
          objectVersionHistory: 2
"#;

#[tokio::main]
async fn main() {
    let world = World::start(Config::defaults()).await;
    let vault = world.azure.vault(VAULT);
    vault.secret("db-password", "correct-horse-battery-staple");
    vault.secret(
        "app-config",
        r#"{"db":{"user":"app","password":"hunter2"}}"#,
    );
    let cert = rsa_certificate();
    vault.certificate(
        "tls-cert",
        &cert.pfx_base64,
        "application/x-pkcs12",
        &cert.leaf_der,
    );
    vault.add(
        "signing-key",
        Stored::Key {
            jwk: ec_key(false, false).jwk,
        },
    );
    vault.secret("api-token", "token-v1");
    vault.secret("api-token", "token-v2");

    println!("SecretProviderClass:\n{SECRET_PROVIDER_CLASS}");
    let client = world.client();
    let version = client
        .version()
        .await
        .unwrap_or_else(|e| panic!("Version failed: {e}"));
    println!(
        "provider on {} -> {} {}",
        world.server.socket.display(),
        version.runtime_name,
        version.runtime_version
    );

    let objects = SECRET_PROVIDER_CLASS
        .split_once("    objects: |\n")
        .map(|(_, rest)| {
            rest.lines()
                .map(|l| l.strip_prefix("      ").unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let attributes = world.spc(&objects).build();
    match client.mount(&attributes, None, "420").await {
        Ok(response) => {
            println!("\nMount OK: {} files", response.files.len());
            for (file, version) in response.files.iter().zip(&response.object_version) {
                let preview = match std::str::from_utf8(&file.contents) {
                    Ok(text) => text
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(48)
                        .collect::<String>(),
                    Err(_) => "<binary>".to_owned(),
                };
                println!(
                    "  {:<14} mode {:o}  {:>5} bytes  {:<20} {}  {}",
                    file.path,
                    file.mode,
                    file.contents.len(),
                    version.id,
                    &version.version[version.version.len().saturating_sub(8)..],
                    preview
                );
            }
        }
        Err(status) => println!("\nMount failed: {:?}: {}", status.code(), status.message()),
    }
    let counts = world.azure.counts();
    println!(
        "\ncalls: {} token exchange, {} Key Vault 401 challenges (one per SDK client), {} Key Vault reads",
        counts.entra,
        counts.challenges,
        counts.gets + counts.lists
    );

    let typo = world
        .spc("array:\n  - |\n    objectName: db-pass\n    objectType: sekret\n")
        .build();
    if let Err(status) = client.mount(&typo, None, "420").await {
        println!(
            "\nMount with a typo -> {:?}: {}",
            status.code(),
            status.message()
        );
    }
    let other = world
        .spc("array:\n  - |\n    objectName: missing\n    objectType: secret\n")
        .build();
    if let Err(status) = client.mount(&other, None, "420").await {
        println!(
            "Mount of a missing object -> {:?}: {}",
            status.code(),
            status.message()
        );
    }
}

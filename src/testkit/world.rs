//! A ready-made test world: fake Azure with a federated workload identity that may read vault
//! `kv-demo`, and the provider serving on a temp socket through the fakes.

use super::fake::FakeAzure;
use super::material::service_account_token;
use super::{DriverClient, KubeletAttributes, TENANT, TestServer};

/// Client ID of the workload identity the world federates.
pub const CLIENT_ID: &str = "0d4c8f3e-5b7a-4c1e-9f2d-3a6b8c1d2e4f";
/// The vault the identity may read.
pub const VAULT: &str = "kv-demo";
/// The pod's namespace and service account.
pub const NAMESPACE: &str = "default";
pub const SERVICE_ACCOUNT: &str = "workload-identity-sa";

/// Starts the fakes with [`CLIENT_ID`] federated for the world's service account and granted
/// read on [`VAULT`].
pub async fn federated_fakes() -> FakeAzure {
    let azure = FakeAzure::start().await;
    azure.federate(
        CLIENT_ID,
        super::material::OIDC_ISSUER,
        &format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"),
    );
    azure.vault(VAULT).grant(CLIENT_ID);
    azure
}

/// Fake Azure plus the provider.
pub struct World {
    pub azure: FakeAzure,
    pub server: TestServer,
}

impl World {
    /// Starts the fakes and the provider with `config`.
    pub async fn start(config: crate::Config) -> Self {
        let azure = federated_fakes().await;
        let server = TestServer::start_with_http(config, azure.http_client()).await;
        World { azure, server }
    }

    /// A driver-like client.
    pub fn client(&self) -> DriverClient {
        self.server.client()
    }

    /// The attributes kubelet sends for a workload-identity SecretProviderClass on vault
    /// [`VAULT`] with `objects`, carrying a fresh service-account token.
    pub fn spc(&self, objects: &str) -> KubeletAttributes {
        self.spc_with_token(
            objects,
            &service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600),
        )
    }

    /// Like [`World::spc`] with a given service-account token.
    pub fn spc_with_token(&self, objects: &str, token: &str) -> KubeletAttributes {
        KubeletAttributes::new(NAMESPACE, "app-0", SERVICE_ACCOUNT, "azure-kv")
            .param("keyvaultName", VAULT)
            .param("tenantID", TENANT)
            .param("clientID", CLIENT_ID)
            .param("objects", objects)
            .azure_token(token, "2099-01-01T00:00:00Z")
    }
}

/// `objects` YAML from item bodies (each a YAML mapping as text).
pub fn objects_yaml(items: &[&str]) -> String {
    let mut s = String::from("array:\n");
    for item in items {
        s.push_str("  - |\n");
        for line in item.lines() {
            s.push_str("    ");
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

//! Every identity mode and every cloud, end to end against the fakes.

use std::collections::BTreeMap;

use akv_csi_provider::Config;
use akv_csi_provider::testkit::world::{NAMESPACE, VAULT};
use akv_csi_provider::testkit::{KubeletAttributes, TENANT, World, objects_yaml};

const ONE_SECRET: &str = "array:\n  - |\n    objectName: app-secret\n    objectType: secret\n";

fn bare(namespace: &str, pod: &str) -> KubeletAttributes {
    KubeletAttributes::new(namespace, pod, "default", "azure-kv")
        .param("keyvaultName", VAULT)
        .param("tenantID", TENANT)
        .param("objects", ONE_SECRET)
}

async fn world_with_secret() -> World {
    let world = World::start(Config::defaults()).await;
    world.azure.vault(VAULT).secret("app-secret", "hello");
    world
}

async fn mount_one(
    world: &World,
    attrs: &BTreeMap<String, String>,
    secrets: Option<&BTreeMap<String, String>>,
) -> Vec<u8> {
    let response = world
        .client()
        .mount(attrs, secrets, "420")
        .await
        .unwrap_or_else(|e| panic!("{:?}: {}", e.code(), e.message()));
    assert_eq!(response.files.len(), 1);
    assert_eq!(response.files[0].path, "app-secret");
    response.files[0].contents.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_principal_from_node_publish_secret() {
    let world = world_with_secret().await;
    world
        .azure
        .add_service_principal("sp-client", "sp-secret-value");
    world.azure.vault(VAULT).grant("sp-client");
    let secrets: BTreeMap<String, String> = [
        ("ClientID", "sp-client"),
        ("ClientSecret", "sp-secret-value"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        mount_one(&world, &bare(NAMESPACE, "app-0").build(), Some(&secrets)).await,
        b"hello"
    );
    let call = &world.azure.entra_calls()[0];
    assert_eq!(
        (call.client_id.as_str(), call.grant, call.tenant.as_str()),
        ("sp-client", "secret", TENANT)
    );

    // A wrong secret is UNAUTHENTICATED, naming the fix and never the secret.
    let mut wrong = secrets.clone();
    wrong.insert("ClientSecret".into(), "not-the-secret".into());
    let status = world
        .client()
        .mount(&bare(NAMESPACE, "app-0").build(), Some(&wrong), "420")
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::Unauthenticated,
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("sp-client") && status.message().contains("clientsecret"),
        "{}",
        status.message()
    );
    assert!(!status.message().contains("not-the-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_managed_identity_system_and_user_assigned() {
    let world = world_with_secret().await;
    world.azure.add_vm_identity(None);
    world.azure.add_vm_identity(Some("uai-client"));
    world
        .azure
        .vault(VAULT)
        .grant("vm-system-assigned")
        .grant("uai-client");
    let system = bare(NAMESPACE, "app-0")
        .param("useVMManagedIdentity", "true")
        .build();
    assert_eq!(mount_one(&world, &system, None).await, b"hello");
    let user = bare(NAMESPACE, "app-0")
        .param("useVMManagedIdentity", "true")
        .param("userAssignedIdentityID", "uai-client")
        .build();
    assert_eq!(mount_one(&world, &user, None).await, b"hello");
    assert_eq!(world.azure.counts().imds, 2);
    assert_eq!(world.azure.counts().entra, 0);

    // An identity the node does not have.
    let missing = bare(NAMESPACE, "app-0")
        .param("useVMManagedIdentity", "true")
        .param("userAssignedIdentityID", "not-on-this-node")
        .build();
    let status = world
        .client()
        .mount(&missing, None, "420")
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::Unauthenticated,
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("not-on-this-node"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_identity_through_nmi() {
    let world = world_with_secret().await;
    world
        .azure
        .add_pod_identity("team-a", "api-7d9", "pod-client");
    world.azure.vault(VAULT).grant("pod-client");
    let attrs = bare("team-a", "api-7d9")
        .param("usePodIdentity", "true")
        .build();
    assert_eq!(mount_one(&world, &attrs, None).await, b"hello");
    assert_eq!(world.azure.counts().nmi, 1);
    // NMI knows no identity for another pod.
    let other = bare("team-a", "other")
        .param("usePodIdentity", "true")
        .build();
    let status = world.client().mount(&other, None, "420").await.unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::Unauthenticated,
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cloud_uses_its_authority_and_vault_suffix() {
    let world = world_with_secret().await;
    for (cloud, login, scope) in [
        (
            "AzurePublicCloud",
            "login.microsoftonline.com",
            "https://vault.azure.net/.default",
        ),
        (
            "AzureUSGovernmentCloud",
            "login.microsoftonline.us",
            "https://vault.usgovcloudapi.net/.default",
        ),
        (
            "azurechinacloud",
            "login.chinacloudapi.cn",
            "https://vault.azure.cn/.default",
        ),
        (
            "AzureGermanCloud",
            "login.microsoftonline.de",
            "https://vault.microsoftazure.de/.default",
        ),
    ] {
        let attrs = world.spc(ONE_SECRET).param("cloudName", cloud).build();
        assert_eq!(mount_one(&world, &attrs, None).await, b"hello", "{cloud}");
        let call = world.azure.entra_calls().pop().unwrap();
        assert_eq!(
            (call.host.as_str(), call.scope.as_str()),
            (login, scope),
            "{cloud}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_stack_reads_its_environment_file_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("azurestackcloud.json");
    std::fs::write(
        &env,
        r#"{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://login.stack.test/",
            "keyVaultEndpoint":"https://vault.stack.test/","keyVaultDNSSuffix":"vault.stack.test",
            "resourceManagerEndpoint":"https://management.stack.test/"}"#,
    )
    .unwrap();
    let world = world_with_secret().await;
    let attrs = world
        .spc(ONE_SECRET)
        .param("cloudName", "AzureStackCloud")
        .param("cloudEnvFileName", env.to_str().unwrap())
        .build();
    assert_eq!(mount_one(&world, &attrs, None).await, b"hello");
    let call = world.azure.entra_calls().pop().unwrap();
    assert_eq!(
        (call.host.as_str(), call.scope.as_str()),
        ("login.stack.test", "https://vault.stack.test/.default")
    );

    // A broken file is the author's to fix: INVALID_ARGUMENT naming the file.
    std::fs::write(&env, "{not json").unwrap();
    let status = world.client().mount(&attrs, None, "420").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("azurestackcloud.json"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_token_from_secrets_on_new_kubernetes() {
    let world = world_with_secret().await;
    let with_token = world.spc(ONE_SECRET).build();
    let tokens = with_token["csi.storage.k8s.io/serviceAccount.tokens"].clone();
    let attrs = world
        .spc(ONE_SECRET)
        .without("csi.storage.k8s.io/serviceAccount.tokens")
        .build();
    let secrets: BTreeMap<String, String> = [(
        "csi.storage.k8s.io/serviceAccount.tokens".to_owned(),
        tokens,
    )]
    .into();
    assert_eq!(mount_one(&world, &attrs, Some(&secrets)).await, b"hello");
    let _ = objects_yaml(&[]);
}

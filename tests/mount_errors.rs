//! Each error class end to end: the gRPC code the driver sees and a message that names the
//! object, the vault, the identity and the fix, never a token or a secret value.

use std::time::{Duration, Instant};

use akv_csi_provider::Config;
use akv_csi_provider::testkit::material::{OIDC_ISSUER, service_account_token};
use akv_csi_provider::testkit::world::{CLIENT_ID, VAULT};
use akv_csi_provider::testkit::{Fault, Recorded, Stored, Target, World, objects_yaml};
use tonic::Code;

const SECRET_VALUE: &str = "top-secret-value-42";

async fn world(timeout: Duration) -> World {
    let mut config = Config::defaults();
    config.mount_timeout = timeout;
    let mut world = World::start(config).await;
    // The driver forwards kubelet's deadline; here it is this short.
    world.server.client_timeout = Some(timeout);
    world.azure.vault(VAULT).secret("app-secret", SECRET_VALUE);
    world
}

async fn fail(world: &World, objects: &[&str]) -> tonic::Status {
    fail_with_token(
        world,
        objects,
        &service_account_token("default", "workload-identity-sa", 3600),
    )
    .await
}

async fn fail_with_token(world: &World, objects: &[&str], token: &str) -> tonic::Status {
    let attrs = world.spc_with_token(&objects_yaml(objects), token).build();
    match world.client().mount(&attrs, None, "420").await {
        Ok(r) => panic!("expected a failure, got {} files", r.files.len()),
        Err(status) => {
            let m = status.message();
            assert!(
                !m.contains(token) && !m.contains(SECRET_VALUE) && !m.contains("fake-access-token"),
                "leak: {m}"
            );
            // Every UNAVAILABLE and RESOURCE_EXHAUSTED comes after our own retries: the driver
            // (grpc-go, retry policy on UNAVAILABLE) must not send the Mount again.
            let pushback = status.metadata().get("grpc-retry-pushback-ms");
            let retryable = matches!(status.code(), Code::Unavailable | Code::ResourceExhausted);
            assert_eq!(
                pushback.map(|v| v.to_str().unwrap()),
                retryable.then_some("-1"),
                "{:?}: {m}",
                status.code()
            );
            status
        }
    }
}

const ONE: &str = "objectName: app-secret\nobjectType: secret";

fn has(status: &tonic::Status, needles: &[&str]) {
    for n in needles {
        assert!(
            status.message().contains(n),
            "{:?} lacks {n:?}",
            status.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_federated_credential_quotes_issuer_subject_and_the_command() {
    let world = world(Duration::from_secs(10)).await;
    let token = service_account_token("payments", "api-sa", 3600);
    let status = fail_with_token(&world, &[ONE], &token).await;
    assert_eq!(status.code(), Code::Unauthenticated);
    has(
        &status,
        &[
            "AADSTS70021",
            CLIENT_ID,
            OIDC_ISSUER,
            "system:serviceaccount:payments:api-sa",
            "az identity federated-credential create",
            "--audience api://AzureADTokenExchange",
        ],
    );
    // One exchange, even though the Mount failed.
    assert_eq!(world.azure.counts().entra, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_client_and_expired_token() {
    let world = world(Duration::from_secs(10)).await;
    let attrs = world
        .spc(&objects_yaml(&[ONE]))
        .param("clientID", "11111111-2222-3333-4444-555555555555")
        .build();
    let status = world.client().mount(&attrs, None, "420").await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    has(
        &status,
        &[
            "AADSTS700016",
            "11111111-2222-3333-4444-555555555555",
            "tenantID",
        ],
    );

    let expired = service_account_token("default", "workload-identity-sa", -60);
    let status = fail_with_token(&world, &[ONE], &expired).await;
    assert_eq!(status.code(), Code::Unauthenticated);
    has(&status, &["expired"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_names_the_role_and_the_policy_command() {
    let world = world(Duration::from_secs(10)).await;
    world
        .azure
        .vault("other-vault")
        .secret("app-secret", SECRET_VALUE);
    world.azure.vault("other-vault").add(
        "app-key",
        Stored::Key {
            jwk: serde_json::json!({"kty": "oct"}),
        },
    );
    let attrs = world
        .spc(&objects_yaml(&[ONE]))
        .param("keyvaultName", "other-vault")
        .build();
    let status = world.client().mount(&attrs, None, "420").await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "{}",
        status.message()
    );
    // The fake vault answers with Key Vault's recorded RBAC refusal (ForbiddenByRbac).
    has(
        &status,
        &[
            "other-vault",
            CLIENT_ID,
            "ForbiddenByRbac",
            "Key Vault Secrets User",
            "az role assignment create --role \"Key Vault Secrets User\"",
        ],
    );

    // An access-policy vault's recorded refusal (AccessDenied) gets the policy command, with
    // the list permission history needs.
    world.azure.push_fault(
        Target::Vault,
        Fault::Replay(Recorded::get("keyvault/forbidden-access-policy-403")),
    );
    let attrs = world
        .spc(&objects_yaml(&[
            "objectName: app-key\nobjectType: key\nobjectVersionHistory: 2",
        ]))
        .build();
    world.azure.vault(VAULT).add(
        "app-key",
        Stored::Key {
            jwk: serde_json::json!({"kty": "oct"}),
        },
    );
    let status = world.client().mount(&attrs, None, "420").await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    has(
        &status,
        &[
            "AccessDenied",
            "az keyvault set-policy --name kv-demo --key-permissions get list",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_and_unresolvable_vaults() {
    let world = world(Duration::from_secs(10)).await;
    let status = fail(&world, &[ONE, "objectName: nope\nobjectType: cert"]).await;
    assert_eq!(status.code(), Code::NotFound);
    has(
        &status,
        &["objects[1] (objectName \"nope\")", "certificate", "kv-demo"],
    );

    let attrs = world
        .spc(&objects_yaml(&[ONE]))
        .param("keyvaultName", "nxdomain-kv")
        .build();
    let status = world.client().mount(&attrs, None, "420").await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
    has(
        &status,
        &[
            "nxdomain-kv.vault.azure.net",
            "does not resolve",
            "keyvaultName",
            "cloudName",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_within_the_deadline() {
    let world = world(Duration::from_secs(20)).await;
    world.azure.push_fault(Target::Vault, Fault::Status(503));
    world.azure.push_fault(Target::Vault, Fault::Reset);
    world.azure.push_fault(
        Target::Vault,
        Fault::Throttle {
            retry_after_secs: 0,
        },
    );
    world.azure.push_fault(Target::Entra, Fault::Status(500));
    let attrs = world.spc(&objects_yaml(&[ONE])).build();
    let r = world
        .client()
        .mount(&attrs, None, "420")
        .await
        .unwrap_or_else(|e| panic!("{}", e.message()));
    assert_eq!(r.files[0].contents, SECRET_VALUE.as_bytes());
    let counts = world.azure.counts();
    assert_eq!(counts.gets, 1, "{counts:?}");
    assert_eq!(counts.entra, 2, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_throttling_is_resource_exhausted_at_the_deadline() {
    let world = world(Duration::from_secs(3)).await;
    world.azure.push_faults(
        Target::Vault,
        Fault::Throttle {
            retry_after_secs: 1,
        },
        100,
    );
    let started = Instant::now();
    let status = fail(&world, &[ONE]).await;
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{}",
        status.message()
    );
    has(&status, &["kv-demo", "429"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_outage_is_unavailable() {
    let world = world(Duration::from_secs(2)).await;
    world
        .azure
        .push_faults(Target::Vault, Fault::Status(503), 1000);
    let status = fail(&world, &[ONE]).await;
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
    has(&status, &["kv-demo", "503"]);

    world.azure.clear_faults();
    world
        .azure
        .push_faults(Target::Entra, Fault::Status(503), 1000);
    let status = fail(&world, &[ONE]).await;
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
    has(&status, &["Entra", "503"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_servers() {
    let world = world(Duration::from_secs(5)).await;
    world.azure.push_fault(Target::Vault, Fault::Garbage);
    let status = fail(&world, &[ONE]).await;
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
    has(&status, &["kv-demo", "not a Key Vault JSON document"]);

    world.azure.push_fault(Target::Vault, Fault::Huge(6 << 20));
    let status = fail(&world, &[ONE]).await;
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{}",
        status.message()
    );
    has(&status, &["larger than 4194304 bytes"]);

    world.azure.push_fault(Target::Vault, Fault::Stall);
    let started = Instant::now();
    let status = fail(&world, &[ONE]).await;
    assert_eq!(
        status.code(),
        Code::DeadlineExceeded,
        "{}",
        status.message()
    );
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrenderable_content_is_failed_precondition_with_no_files() {
    let world = world(Duration::from_secs(5)).await;
    world.azure.vault(VAULT).add(
        "sym",
        Stored::Key {
            jwk: serde_json::json!({"kty": "oct-HSM"}),
        },
    );
    let status = fail(&world, &[ONE, "objectName: sym\nobjectType: key"]).await;
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        status.message()
    );
    has(&status, &["objects[1] (objectName \"sym\")"]);

    world.azure.vault(VAULT).secret("not-json", "plain text");
    let status = fail(
        &world,
        &["objectName: not-json\nobjectType: secret\njsonPointer: /a"],
    )
    .await;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(!status.message().contains("plain text"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_timeout_from_the_driver_is_the_deadline() {
    let world = world(Duration::from_secs(60)).await;
    world.azure.push_fault(Target::Vault, Fault::Stall);
    let attrs = world.spc(&objects_yaml(&[ONE])).build();
    let mut request = tonic::Request::new(akv_csi_provider::proto::MountRequest {
        attributes: serde_json::to_string(&attrs).unwrap(),
        secrets: "null".into(),
        target_path: "/tmp/x".into(),
        permission: "420".into(),
        current_object_version: vec![],
    });
    request.set_timeout(Duration::from_millis(1500));
    let started = Instant::now();
    let channel = akv_csi_provider::client::unix_channel(&world.server.socket);
    let status =
        akv_csi_provider::proto::csi_driver_provider_client::CsiDriverProviderClient::new(channel)
            .mount(request)
            .await
            .unwrap_err();
    assert_eq!(
        status.code(),
        Code::DeadlineExceeded,
        "{}",
        status.message()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

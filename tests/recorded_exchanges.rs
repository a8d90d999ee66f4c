//! One test per recorded real answer (`tests/fixtures/recorded/`, sources in its `INDEX.md`):
//! the fakes serve the recorded bytes, the driver-like client mounts over the real socket, and
//! each test asserts the gRPC code and the message the pod would see: the real cause, the
//! service that said it, the fix. Plus: every corpus entry has its test here.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use akv_csi_provider::Config;
use akv_csi_provider::proto::MountResponse;
use akv_csi_provider::testkit::fake::recorded::CORPUS;
use akv_csi_provider::testkit::material::{OIDC_ISSUER, service_account_token};
use akv_csi_provider::testkit::world::{CLIENT_ID, NAMESPACE, SERVICE_ACCOUNT, VAULT};
use akv_csi_provider::testkit::{
    Fault, KubeletAttributes, Recorded, Stored, TENANT, Target, World, objects_yaml,
};
use tonic::Code;

const SECRET: &str = "objectName: app-secret\nobjectType: secret";

async fn world(timeout_secs: u64) -> World {
    let mut config = Config::defaults();
    config.mount_timeout = Duration::from_secs(timeout_secs);
    let mut world = World::start(config).await;
    // The driver forwards kubelet's deadline; here it is this short.
    world.server.client_timeout = Some(Duration::from_secs(timeout_secs));
    world.azure.vault(VAULT).secret("app-secret", "hello");
    world
}

fn replay(world: &World, target: Target, name: &str) {
    world
        .azure
        .push_fault(target, Fault::Replay(Recorded::get(name)));
}

fn replay_many(world: &World, target: Target, name: &str, n: usize) {
    world
        .azure
        .push_faults(target, Fault::Replay(Recorded::get(name)), n);
}

async fn mount(
    world: &World,
    attrs: &BTreeMap<String, String>,
    secrets: Option<&BTreeMap<String, String>>,
) -> Result<MountResponse, tonic::Status> {
    world.client().mount(attrs, secrets, "420").await
}

/// A workload-identity Mount of the world's secret.
async fn wi_mount(world: &World) -> Result<MountResponse, tonic::Status> {
    mount(world, &world.spc(&objects_yaml(&[SECRET])).build(), None).await
}

/// The Mount fails with `code` and a message holding every `needle` and none of `absent`.
fn expect(
    result: Result<MountResponse, tonic::Status>,
    code: Code,
    needles: &[&str],
    absent: &[&str],
) -> String {
    let status = match result {
        Ok(r) => panic!("expected {code:?}, got {} files", r.files.len()),
        Err(s) => s,
    };
    let m = status.message().to_owned();
    assert_eq!(status.code(), code, "{m}");
    for n in needles {
        assert!(m.contains(n), "{m:?} lacks {n:?}");
    }
    for a in absent.iter().chain(&["fake-access-token", "eyJhbGciOi"]) {
        assert!(!m.contains(a), "{m:?} holds {a:?}");
    }
    m
}

fn ok(result: Result<MountResponse, tonic::Status>) -> MountResponse {
    result.unwrap_or_else(|e| panic!("{:?}: {}", e.code(), e.message()))
}

fn sp_secrets(id: &str, secret: &str) -> BTreeMap<String, String> {
    [("clientid", id), ("clientsecret", secret)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn sp_attrs() -> KubeletAttributes {
    KubeletAttributes::new(NAMESPACE, "app-0", SERVICE_ACCOUNT, "azure-kv")
        .param("keyvaultName", VAULT)
        .param("tenantID", TENANT)
        .param("objects", &objects_yaml(&[SECRET]))
}

fn vm_attrs(client: Option<&str>) -> BTreeMap<String, String> {
    let attrs = sp_attrs().param("useVMManagedIdentity", "true");
    match client {
        Some(id) => attrs.param("userAssignedIdentityID", id),
        None => attrs,
    }
    .build()
}

async fn vm_world(timeout_secs: u64) -> World {
    let world = world(timeout_secs).await;
    world.azure.add_vm_identity(None);
    world.azure.vault(VAULT).grant("vm-system-assigned");
    world
}

async fn nmi_world() -> World {
    let world = world(10).await;
    world
        .azure
        .add_pod_identity(NAMESPACE, "app-0", "pod-client");
    world.azure.vault(VAULT).grant("pod-client");
    world
}

fn nmi_attrs() -> BTreeMap<String, String> {
    sp_attrs().param("usePodIdentity", "true").build()
}

// ---------------------------------------------------------------------------------------
// Entra ID

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_token_v2_success() {
    let world = world(10).await;
    let token = service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600);
    let attrs = world
        .spc_with_token(&objects_yaml(&[SECRET]), &token)
        .build();
    let r = ok(mount(&world, &attrs, None).await);
    assert_eq!(r.files[0].contents, b"hello");
    assert_eq!(world.azure.counts().entra, 1);
    // The pod's service-account token was the assertion, byte for byte.
    use sha2::Digest;
    let call = world.azure.entra_calls().pop().unwrap();
    assert_eq!(
        call.assertion_sha256,
        Some(hex::encode(sha2::Sha256::digest(token.as_bytes())))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadsts70021_no_federated_credential_401() {
    let world = world(10).await;
    replay(
        &world,
        Target::Entra,
        "entra/aadsts70021-no-federated-credential-401",
    );
    expect(
        wi_mount(&world).await,
        Code::Unauthenticated,
        &[
            "Microsoft Entra ID found no federated credential",
            "AADSTS70021",
            CLIENT_ID,
            OIDC_ISSUER,
            "az identity federated-credential create",
            "--subject system:serviceaccount:default:workload-identity-sa",
            "--audience api://AzureADTokenExchange",
        ],
        &["malformed"],
    );
    // Not retried: one POST for the prefetch and the read together.
    assert_eq!(world.azure.counts().entra, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadsts700211_issuer_mismatch_401() {
    let world = world(10).await;
    replay(
        &world,
        Target::Entra,
        "entra/aadsts700211-issuer-mismatch-401",
    );
    expect(
        wi_mount(&world).await,
        Code::Unauthenticated,
        &["AADSTS700211", "issuer", OIDC_ISSUER, "--issuer"],
        &["AADSTS70021;", "AADSTS70021)"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadsts700213_subject_mismatch_401() {
    let world = world(10).await;
    replay(
        &world,
        Target::Entra,
        "entra/aadsts700213-subject-mismatch-401",
    );
    expect(
        wi_mount(&world).await,
        Code::Unauthenticated,
        &[
            "AADSTS700213",
            "subject",
            "system:serviceaccount:default:workload-identity-sa",
            "case-sensitively",
        ],
        &["AADSTS70021;"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadsts7002138_subject_case_401() {
    let world = world(10).await;
    replay(
        &world,
        Target::Entra,
        "entra/aadsts7002138-subject-case-401",
    );
    expect(
        wi_mount(&world).await,
        Code::Unauthenticated,
        &["AADSTS7002138", "case-sensitively", "--subject"],
        &["AADSTS70021;"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadsts700016_unknown_client_400() {
    let world = world(10).await;
    replay(
        &world,
        Target::Entra,
        "entra/aadsts700016-unknown-client-400",
    );
    expect(
        wi_mount(&world).await,
        Code::Unauthenticated,
        &[
            "AADSTS700016",
            CLIENT_ID,
            TENANT,
            "check clientID and tenantID",
        ],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadsts700024_assertion_expired_401() {
    let world = world(10).await;
    replay(
        &world,
        Target::Entra,
        "entra/aadsts700024-assertion-expired-401",
    );
    expect(
        wi_mount(&world).await,
        Code::Unauthenticated,
        &["AADSTS700024", "expired or not yet valid", "node clock"],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadsts700027_invalid_signature_401() {
    let world = world(10).await;
    replay(
        &world,
        Target::Entra,
        "entra/aadsts700027-invalid-signature-401",
    );
    expect(
        wi_mount(&world).await,
        Code::Unauthenticated,
        &["AADSTS700027", "signature", OIDC_ISSUER, "jwks_uri"],
        &["node clock", "expired"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadsts7000215_invalid_secret_401() {
    let world = world(10).await;
    world.azure.add_service_principal("sp-client", "right");
    world.azure.vault(VAULT).grant("sp-client");
    // The fake answers a wrong secret with this recording.
    expect(
        mount(
            &world,
            &sp_attrs().build(),
            Some(&sp_secrets("sp-client", "wrong-secret-value")),
        )
        .await,
        Code::Unauthenticated,
        &["AADSTS7000215", "sp-client", "clientsecret", "not its ID"],
        &["wrong-secret-value"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadsts7000222_expired_secret_401() {
    let world = world(10).await;
    world.azure.add_service_principal("sp-client", "right");
    world.azure.vault(VAULT).grant("sp-client");
    replay(
        &world,
        Target::Entra,
        "entra/aadsts7000222-expired-secret-401",
    );
    expect(
        mount(
            &world,
            &sp_attrs().build(),
            Some(&sp_secrets("sp-client", "right")),
        )
        .await,
        Code::Unauthenticated,
        &[
            "AADSTS7000222",
            "expired",
            "az ad app credential reset --id sp-client",
        ],
        &["right\""],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadsts90002_tenant_not_found_400() {
    let world = world(10).await;
    let attrs = world
        .spc(&objects_yaml(&[SECRET]))
        .param("tenantID", "contoso-typo.onmicrosoft.com")
        .build();
    // The fake answers an unknown tenant with this recording.
    expect(
        mount(&world, &attrs, None).await,
        Code::Unauthenticated,
        &[
            "AADSTS90002",
            "contoso-typo.onmicrosoft.com",
            "check tenantID",
        ],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadsts50027_malformed_jwt_400() {
    let world = world(10).await;
    // The fake answers an assertion that is not a JWT with this recording.
    let attrs = world
        .spc_with_token(&objects_yaml(&[SECRET]), "not-a-jwt-token")
        .build();
    expect(
        mount(&world, &attrs, None).await,
        Code::Unauthenticated,
        &["AADSTS50027", "as a JWT", "api://AzureADTokenExchange"],
        &["not-a-jwt-token"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_aadsts900023_invalid_tenant_400() {
    let world = world(10).await;
    replay(
        &world,
        Target::Entra,
        "entra/aadsts900023-invalid-tenant-400",
    );
    expect(
        wi_mount(&world).await,
        Code::Unauthenticated,
        &["AADSTS900023", TENANT, "check tenantID"],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_throttled_429() {
    // The real 429: plain text and Retry-After: 60, longer than this Mount has.
    let world = world(20).await;
    replay_many(&world, Target::Entra, "entra/throttled-429", 20);
    let started = Instant::now();
    expect(
        wi_mount(&world).await,
        Code::ResourceExhausted,
        &[
            "Microsoft Entra ID is throttling token requests",
            "Too Many Requests",
            "60s",
            "Retry-After",
        ],
        &["malformed"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Retry-After honoured: one POST, shared by the prefetch and the read (was 10 in 8.5 s).
    assert_eq!(world.azure.counts().entra, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_temporarily_unavailable_503() {
    // Retried: once, then the token comes.
    let world = world(10).await;
    replay(&world, Target::Entra, "entra/temporarily-unavailable-503");
    ok(wi_mount(&world).await);
    assert_eq!(world.azure.counts().entra, 2);
    // Until the deadline: UNAVAILABLE, saying what Entra said.
    let world = world_short().await;
    replay_many(
        &world,
        Target::Entra,
        "entra/temporarily-unavailable-503",
        1000,
    );
    expect(
        wi_mount(&world).await,
        Code::Unavailable,
        &[
            "Microsoft Entra ID",
            "HTTP 503 temporarily_unavailable",
            "AADSTS90033",
        ],
        &["malformed"],
    );
}

async fn world_short() -> World {
    world(2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_temporarily_unavailable_is_retried_whatever_the_status() {
    // Entra's `error` decides: temporarily_unavailable under a 400 is retried too.
    let world = world(10).await;
    world.azure.push_fault(
        Target::Entra,
        Fault::Replay(Recorded::get("entra/temporarily-unavailable-503").with_status(400)),
    );
    ok(wi_mount(&world).await);
    assert_eq!(world.azure.counts().entra, 2);
    // …and invalid_client under a 500 is not.
    let world = world_short().await;
    world.azure.push_fault(
        Target::Entra,
        Fault::Replay(
            Recorded::get("entra/aadsts70021-no-federated-credential-401").with_status(500),
        ),
    );
    expect(
        wi_mount(&world).await,
        Code::Unauthenticated,
        &["AADSTS70021"],
        &[],
    );
    assert_eq!(world.azure.counts().entra, 1);
}

// ---------------------------------------------------------------------------------------
// Azure Stack Hub: environment files, AD FS

fn stack_env(file: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("azurestackcloud.json");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/recorded/azurestack")
        .join(file);
    std::fs::copy(src, &path).unwrap();
    let shown = path.to_str().unwrap().to_owned();
    (dir, shown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurestack_environment_entra() {
    let world = world(10).await;
    let (_dir, env) = stack_env("environment-entra.json");
    let attrs = world
        .spc(&objects_yaml(&[SECRET]))
        .param("cloudName", "AzureStackCloud")
        .param("cloudEnvFileName", &env)
        .build();
    ok(mount(&world, &attrs, None).await);
    let call = world.azure.entra_calls().pop().unwrap();
    assert_eq!(
        (call.host.as_str(), call.scope.as_str()),
        (
            "login.microsoftonline.com",
            "https://vault.local.azurestack.external/.default"
        )
    );
}

fn adfs_attrs(env: &str) -> BTreeMap<String, String> {
    sp_attrs()
        .param("tenantID", "adfs")
        .param("cloudName", "AzureStackCloud")
        .param("cloudEnvFileName", env)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurestack_adfs_token_success() {
    let world = world(10).await;
    world
        .azure
        .add_service_principal("stack-app", "stack-secret");
    world.azure.vault(VAULT).grant("stack-app");
    let (_dir, env) = stack_env("environment-adfs.composed.json");
    // The fake AD FS answers only `POST /adfs/oauth2/token` with a `resource`.
    ok(mount(
        &world,
        &adfs_attrs(&env),
        Some(&sp_secrets("stack-app", "stack-secret")),
    )
    .await);
    let call = world.azure.entra_calls().pop().unwrap();
    assert_eq!(
        (
            call.host.as_str(),
            call.tenant.as_str(),
            call.scope.as_str()
        ),
        (
            "adfs.local.azurestack.external",
            "adfs",
            "https://vault.local.azurestack.external/.default"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurestack_adfs_invalid_client_400() {
    let world = world(10).await;
    world
        .azure
        .add_service_principal("stack-app", "stack-secret");
    let (_dir, env) = stack_env("environment-adfs.composed.json");
    expect(
        mount(
            &world,
            &adfs_attrs(&env),
            Some(&sp_secrets("stack-app", "not-it")),
        )
        .await,
        Code::Unauthenticated,
        &["AD FS rejected", "MSIS9622", "stack-app", "clientsecret"],
        &["not-it\"", "Microsoft Entra ID"],
    );
}

// ---------------------------------------------------------------------------------------
// Key Vault

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_challenge_401() {
    // Every Mount of a new client starts with the recorded challenge (login.windows.net).
    let world = world(10).await;
    ok(wi_mount(&world).await);
    assert!(world.azure.counts().challenges >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_akv10032_invalid_issuer_401() {
    let world = world(10).await;
    replay(
        &world,
        Target::Vault,
        "keyvault/akv10032-invalid-issuer-401",
    );
    expect(
        wi_mount(&world).await,
        Code::PermissionDenied,
        &[
            "AKV10032",
            "belongs to tenant 72f988bf-86f1-41af-91ab-2d7cd011db47",
            "from tenant 96be4b7a-defb-4dc2-a31f-49ee6145d5ab",
            "tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47",
        ],
        &["az role assignment"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_forbidden_rbac_403() {
    let world = world(10).await;
    replay(&world, Target::Vault, "keyvault/forbidden-rbac-403");
    expect(
        wi_mount(&world).await,
        Code::PermissionDenied,
        &[
            "ForbiddenByRbac",
            "Key Vault Secrets User",
            &format!("--assignee {CLIENT_ID}"),
        ],
        &["set-policy"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_forbidden_access_policy_403() {
    let world = world(10).await;
    replay(
        &world,
        Target::Vault,
        "keyvault/forbidden-access-policy-403",
    );
    expect(
        wi_mount(&world).await,
        Code::PermissionDenied,
        &[
            "AccessDenied",
            &format!(
                "az keyvault set-policy --name {VAULT} --secret-permissions get --spn {CLIENT_ID}"
            ),
        ],
        &["role assignment"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_forbidden_firewall_403() {
    let world = world(10).await;
    replay(&world, Target::Vault, "keyvault/forbidden-firewall-403");
    expect(
        wi_mount(&world).await,
        Code::PermissionDenied,
        &[
            "firewall",
            "ForbiddenByFirewall",
            "from XXXX",
            "az keyvault network-rule add --name kv-demo",
            "private endpoint",
        ],
        &["Key Vault Secrets User", "set-policy"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_forbidden_firewall_nsp_403() {
    let world = world(10).await;
    replay(&world, Target::Vault, "keyvault/forbidden-firewall-nsp-403");
    expect(
        wi_mount(&world).await,
        Code::PermissionDenied,
        &["ForbiddenByFirewall", "xx.xx.xxx.xx", "network-rule"],
        &["Key Vault Secrets User"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_forbidden_private_link_403() {
    let world = world(10).await;
    replay(&world, Target::Vault, "keyvault/forbidden-private-link-403");
    expect(
        wi_mount(&world).await,
        Code::PermissionDenied,
        &[
            "ForbiddenByConnection",
            "public network access",
            "private endpoint",
            "privatelink.vaultcore.azure.net",
        ],
        &["Key Vault Secrets User"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_secret_disabled_403() {
    let world = world(10).await;
    replay(&world, Target::Vault, "keyvault/secret-disabled-403");
    expect(
        wi_mount(&world).await,
        Code::FailedPrecondition,
        &["objects[0]", "is disabled", "kv-demo"],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_secret_not_found_404() {
    let world = world(10).await;
    replay(&world, Target::Vault, "keyvault/secret-not-found-404");
    expect(
        wi_mount(&world).await,
        Code::NotFound,
        &[
            "has no secret named \"app-secret\"",
            "kv-demo",
            "optional: true",
        ],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_throttled_429() {
    // Without Retry-After, until the deadline.
    let world = world(3).await;
    replay_many(&world, Target::Vault, "keyvault/throttled-429", 1000);
    expect(
        wi_mount(&world).await,
        Code::ResourceExhausted,
        &["kv-demo", "HTTP 429"],
        &[],
    );
    // With Retry-After in seconds: honoured, then the read succeeds.
    let world = world_seconds(20).await;
    world.azure.push_fault(
        Target::Vault,
        Fault::Replay(Recorded::get("keyvault/throttled-429").with_header("Retry-After", "2")),
    );
    let started = Instant::now();
    ok(wi_mount(&world).await);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // With Retry-After as an HTTP date (RFC 9110): honoured as well.
    let world = world_seconds(20).await;
    let at = azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::seconds(3);
    world.azure.push_fault(
        Target::Vault,
        Fault::Replay(
            Recorded::get("keyvault/throttled-429")
                .with_header("Retry-After", &azure_core::time::to_rfc7231(&at)),
        ),
    );
    let started = Instant::now();
    ok(wi_mount(&world).await);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

async fn world_seconds(timeout_secs: u64) -> World {
    world(timeout_secs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_unavailable_503() {
    let world = world(10).await;
    replay(&world, Target::Vault, "keyvault/unavailable-503");
    ok(wi_mount(&world).await);
    let world = world_short().await;
    replay_many(&world, Target::Vault, "keyvault/unavailable-503", 1000);
    expect(
        wi_mount(&world).await,
        Code::Unavailable,
        &["Key Vault kv-demo is unavailable", "HTTP 503"],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_internal_error_500() {
    let world = world(10).await;
    replay(&world, Target::Vault, "keyvault/internal-error-500");
    ok(wi_mount(&world).await);
    assert_eq!(world.azure.counts().gets, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_secret_7_4() {
    let world = world(10).await;
    replay(&world, Target::Vault, "keyvault/secret-7.4");
    let r = ok(wi_mount(&world).await);
    assert_eq!(r.files[0].contents, b"mysecretvalue");
    assert_eq!(
        r.object_version[0].version,
        "4387e9f3d6e14c459867679a90fd0f79"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_key_rsa_7_4() {
    let world = world(10).await;
    world.azure.vault(VAULT).add(
        "CreateSoftKeyTest",
        Stored::Key {
            jwk: serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        },
    );
    replay(&world, Target::Vault, "keyvault/key-rsa-7.4");
    let r = ok(mount(
        &world,
        &world
            .spc(&objects_yaml(&[
                "objectName: CreateSoftKeyTest\nobjectType: key",
            ]))
            .build(),
        None,
    )
    .await);
    let pem = String::from_utf8(r.files[0].contents.clone()).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    assert_eq!(
        r.object_version[0].version,
        "78deebed173b48e48f55abf87ed4cf71"
    );
}

async fn certificate_from(name: &str) -> MountResponse {
    let world = world(10).await;
    replay(&world, Target::Vault, name);
    ok(mount(
        &world,
        &world
            .spc(&objects_yaml(&[
                "objectName: selfSignedCert01\nobjectType: cert",
            ]))
            .build(),
        None,
    )
    .await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_certificate_with_policy_7_4() {
    let r = certificate_from("keyvault/certificate-with-policy-7.4").await;
    // The recorded `cer`, PEM-wrapped at 64 columns (the DER is the example's, unparsed).
    let cer = Recorded::get("keyvault/certificate-with-policy-7.4").json()["cer"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut want = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in cer.as_bytes().chunks(64) {
        want.push_str(std::str::from_utf8(line).unwrap());
        want.push('\n');
    }
    want.push_str("-----END CERTIFICATE-----\n");
    assert_eq!(
        String::from_utf8(r.files[0].contents.clone()).unwrap(),
        want
    );
    assert_eq!(
        r.object_version[0].version,
        "f60f2a4f8ae442cfb41ca2090bd4b769"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_certificate_policy_unknown_action_derived() {
    // A policy value outside the SDK's closed enum no longer fails the read.
    let r = certificate_from("keyvault/certificate-policy-unknown-action.derived").await;
    assert!(
        r.files[0]
            .contents
            .starts_with(b"-----BEGIN CERTIFICATE-----\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_secret_versions_page_7_4() {
    // The recorded page (its nextLink on :443, api-version 7.4, a $skiptoken) is read, its
    // nextLink followed, and its version read.
    let world = world(10).await;
    world.azure.vault(VAULT).add_with_id(
        "app-secret",
        "11a536561da34d6b8b452d880df58f3a",
        1_481_851_699,
        Stored::Secret {
            value: "older".into(),
            content_type: None,
            kid: None,
        },
    );
    world.azure.push_fault(
        Target::Vault,
        Fault::Replay(
            Recorded::get("keyvault/secret-versions-page-7.4")
                .replace("myvault.vault.azure.net", "kv-demo.vault.azure.net")
                .replace("listsecretversionstest", "app-secret"),
        ),
    );
    let attrs = world
        .spc(&objects_yaml(&[
            "objectName: app-secret\nobjectType: secret\nobjectVersionHistory: 2",
        ]))
        .build();
    let r = ok(mount(&world, &attrs, None).await);
    let files: Vec<(&str, &[u8])> = r
        .files
        .iter()
        .map(|f| (f.path.as_str(), &f.contents[..]))
        .collect();
    assert_eq!(
        files,
        vec![
            ("app-secret/0", &b"hello"[..]),
            ("app-secret/1", &b"older"[..])
        ]
    );
    assert_eq!(
        r.object_version[1].version,
        "11a536561da34d6b8b452d880df58f3a"
    );
    // Page 1 was the recording; page 2, behind its nextLink, the fake's listing.
    assert_eq!(world.azure.counts().lists, 1, "{:?}", world.azure.counts());
}

// ---------------------------------------------------------------------------------------
// IMDS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_token_success() {
    let world = vm_world(10).await;
    let r = ok(mount(&world, &vm_attrs(None), None).await);
    assert_eq!(r.files[0].contents, b"hello");
    assert_eq!(
        (world.azure.counts().imds, world.azure.counts().entra),
        (1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_identity_not_found_400() {
    let world = vm_world(10).await;
    // The fake answers an identity the node lacks with this recording.
    expect(
        mount(&world, &vm_attrs(Some("uai-not-on-node")), None).await,
        Code::Unauthenticated,
        &[
            "IMDS has no managed identity with client ID uai-not-on-node",
            "Identity not found",
            "az vmss identity assign",
        ],
        &["Microsoft Entra ID rejected"],
    );
    assert_eq!(world.azure.counts().imds, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_invalid_resource_400() {
    let world = vm_world(10).await;
    replay(&world, Target::Imds, "imds/invalid-resource-400");
    expect(
        mount(&world, &vm_attrs(None), None).await,
        Code::Unauthenticated,
        &[
            "IMDS answered HTTP 400 invalid_resource",
            "AADSTS50001",
            "cloudName",
        ],
        &["has not been assigned"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_invalid_resource_500011_400() {
    let world = vm_world(10).await;
    replay(&world, Target::Imds, "imds/invalid-resource-500011-400");
    expect(
        mount(&world, &vm_attrs(None), None).await,
        Code::Unauthenticated,
        &[
            "IMDS answered HTTP 400 invalid_resource",
            "AADSTS500011",
            "cloudName",
        ],
        &["Trace ID"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_missing_metadata_header_400() {
    let world = vm_world(10).await;
    replay(&world, Target::Imds, "imds/missing-metadata-header-400");
    expect(
        mount(&world, &vm_attrs(None), None).await,
        Code::Unauthenticated,
        &["IMDS refused", "bad_request_102", "Metadata header"],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_updating_404() {
    // "IMDS endpoint is updating": retried within the deadline.
    let world = vm_world(10).await;
    replay(&world, Target::Imds, "imds/updating-404");
    ok(mount(&world, &vm_attrs(None), None).await);
    assert_eq!(world.azure.counts().imds, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_updating_410() {
    // Retried until the deadline, then IMDS's own status, not a bare DEADLINE_EXCEEDED.
    let world = vm_world(3).await;
    replay_many(&world, Target::Imds, "imds/updating-410", 1000);
    let started = Instant::now();
    expect(
        mount(&world, &vm_attrs(None), None).await,
        Code::Unavailable,
        &["IMDS answered", "HTTP 410"],
        &[],
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_throttled_429() {
    let world = vm_world(2).await;
    replay_many(&world, Target::Imds, "imds/throttled-429", 1000);
    expect(
        mount(&world, &vm_attrs(None), None).await,
        Code::ResourceExhausted,
        &["IMDS is throttling token requests", "HTTP 429"],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_unknown_500() {
    let world = vm_world(2).await;
    replay_many(&world, Target::Imds, "imds/unknown-500", 1000);
    expect(
        mount(&world, &vm_attrs(None), None).await,
        Code::Unavailable,
        &[
            "IMDS answered",
            "HTTP 500 unknown",
            "Failed to retrieve token",
        ],
        &[],
    );
}

// ---------------------------------------------------------------------------------------
// NMI

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nmi_token_success_composed() {
    let world = nmi_world().await;
    let r = ok(mount(&world, &nmi_attrs(), None).await);
    assert_eq!(r.files[0].contents, b"hello");
    assert_eq!(world.azure.counts().nmi, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nmi_identity_not_assigned_404() {
    let world = nmi_world().await;
    world.azure.push_fault(
        Target::Nmi,
        Fault::Replay(
            Recorded::get("nmi/identity-not-assigned-404").replace("<POD_NAME>", "default/app-0"),
        ),
    );
    expect(
        mount(&world, &nmi_attrs(), None).await,
        Code::Unauthenticated,
        &[
            "NMI (AAD pod identity) gave no token for pod default/app-0",
            "HTTP 404",
            "Check MIC pod logs for identity assignment errors",
        ],
        &["Microsoft Entra ID"],
    );
    assert_eq!(world.azure.counts().nmi, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nmi_no_azure_identity_403() {
    let world = nmi_world().await;
    let attrs = sp_attrs()
        .param("usePodIdentity", "true")
        .param("csi.storage.k8s.io/pod.name", "other-pod")
        .build();
    // The fake answers a pod without an identity with this recording.
    expect(
        mount(&world, &attrs, None).await,
        Code::Unauthenticated,
        &[
            "NMI",
            "HTTP 403",
            "azureidentity is not configured for the pod",
        ],
        &["Microsoft Entra ID"],
    );
}

// ---------------------------------------------------------------------------------------

/// The corpus entries the tests above replay (by name, as `Recorded::get` takes them).
const TESTED: &[&str] = &[
    "entra/token-v2-success",
    "entra/aadsts70021-no-federated-credential-401",
    "entra/aadsts700211-issuer-mismatch-401",
    "entra/aadsts700213-subject-mismatch-401",
    "entra/aadsts7002138-subject-case-401",
    "entra/aadsts700016-unknown-client-400",
    "entra/aadsts700024-assertion-expired-401",
    "entra/aadsts700027-invalid-signature-401",
    "entra/aadsts7000215-invalid-secret-401",
    "entra/aadsts7000222-expired-secret-401",
    "entra/aadsts90002-tenant-not-found-400",
    "entra/aadsts50027-malformed-jwt-400",
    "entra/aadsts900023-invalid-tenant-400",
    "entra/throttled-429",
    "entra/temporarily-unavailable-503",
    "azurestack/adfs-token-success.composed",
    "azurestack/adfs-invalid-client-400",
    "keyvault/challenge-401",
    "keyvault/akv10032-invalid-issuer-401",
    "keyvault/forbidden-rbac-403",
    "keyvault/forbidden-access-policy-403",
    "keyvault/forbidden-firewall-403",
    "keyvault/forbidden-firewall-nsp-403",
    "keyvault/forbidden-private-link-403",
    "keyvault/secret-disabled-403",
    "keyvault/secret-not-found-404",
    "keyvault/throttled-429",
    "keyvault/unavailable-503",
    "keyvault/internal-error-500",
    "keyvault/secret-7.4",
    "keyvault/key-rsa-7.4",
    "keyvault/certificate-with-policy-7.4",
    "keyvault/certificate-policy-unknown-action.derived",
    "keyvault/secret-versions-page-7.4",
    "imds/token-success",
    "imds/identity-not-found-400",
    "imds/invalid-resource-400",
    "imds/invalid-resource-500011-400",
    "imds/missing-metadata-header-400",
    "imds/updating-404",
    "imds/updating-410",
    "imds/throttled-429",
    "imds/unknown-500",
    "nmi/token-success.composed",
    "nmi/identity-not-assigned-404",
    "nmi/no-azure-identity-403",
];

#[test]
fn every_recorded_answer_has_a_test_and_an_index_row() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recorded");
    let index = std::fs::read_to_string(dir.join("INDEX.md")).unwrap();
    let mut on_disk = Vec::new();
    for sub in std::fs::read_dir(&dir).unwrap() {
        let sub = sub.unwrap().path();
        if !sub.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&sub).unwrap() {
            let file = file.unwrap().path();
            let rel = file
                .strip_prefix(&dir)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                index.contains(&format!("`{rel}`")),
                "{rel} has no row in INDEX.md"
            );
            if let Some(name) = rel.strip_suffix(".http") {
                on_disk.push(name.to_owned());
            }
        }
    }
    on_disk.sort();
    let mut compiled: Vec<String> = CORPUS.iter().map(|(n, _)| (*n).to_owned()).collect();
    compiled.sort();
    assert_eq!(
        on_disk, compiled,
        "src/testkit/fake/recorded.rs CORPUS and the files differ"
    );
    for name in &compiled {
        assert!(TESTED.contains(&name.as_str()), "{name} has no test here");
    }
    // Files stay byte-exact: no recorded JSON body ends in a newline the service did not send.
    for (name, bytes) in CORPUS {
        let r = Recorded::parse(name, bytes);
        if r.body.first() == Some(&b'{') {
            assert!(
                !r.body.ends_with(b"\n"),
                "{name}: trailing newline after the JSON"
            );
        }
    }
}

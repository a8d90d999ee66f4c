//! Identity binding end to end over the real socket: the provider computes the token proxy's
//! server name from the fake API server's certificate, sends the standard client-assertion
//! request to the fake proxy under that name (trusting only the cluster CA file), reads Key
//! Vault directly, and every failure reaches the pod with its cause and fix.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use akv_csi_provider::Config;
use akv_csi_provider::testkit::material::service_account_token_for;
use akv_csi_provider::testkit::{
    ClusterOptions, FakeAzure, FakeTokenProxy, Fault, KubeletAttributes, TENANT, Target,
    TestServer, objects_yaml,
};
use clap::Parser;
use tonic::Code;

/// A cluster ID and the server name the Go provider's formula gives for it (SPEC §4, the
/// reference vectors' INDEX.md §9).
const CLUSTER_ID: &str = "696995ccb303450001b31a18";
const SERVER_NAME: &str = "aeaf29ip1hi5q38ebc3u4daum81u0unk52t5bg50j25234fmuj78g.ests.aks";
const CLIENT_ID: &str = "5b0f3c1e-8d2a-4e6f-9a7b-1c3d5e7f9a0b";
const VAULT: &str = "kv-binding";
const NS: &str = "apps";
const SA: &str = "web";
const IB_AUDIENCE: &str = "api://AKSIdentityBinding";
const WI_AUDIENCE: &str = "api://AzureADTokenExchange";

struct Cluster {
    azure: FakeAzure,
    proxy: FakeTokenProxy,
    server: TestServer,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

struct Setup<'a> {
    cluster_id: Option<&'a str>,
    flags: Vec<String>,
    allow: bool,
    bind: bool,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            cluster_id: Some(CLUSTER_ID),
            flags: Vec::new(),
            allow: true,
            bind: true,
        }
    }
}

async fn cluster(setup: Setup<'_>) -> Cluster {
    let azure = FakeAzure::start().await;
    azure
        .vault(VAULT)
        .grant(CLIENT_ID)
        .secret("app-secret", "hello from the vault");
    let proxy = azure
        .start_token_proxy(ClusterOptions {
            cluster_id: setup.cluster_id.map(str::to_owned),
            server_name: SERVER_NAME.to_owned(),
        })
        .await;
    if setup.bind {
        proxy.bind_identity(CLIENT_ID);
    }
    if setup.allow {
        proxy.allow(CLIENT_ID, NS, SA);
    }
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, proxy.ca_pem()).unwrap();
    let mut args = vec![
        "akv-csi-provider".to_owned(),
        format!("--token-proxy-url={}", proxy.url()),
        "--mount-timeout=4s".to_owned(),
    ];
    if !setup
        .flags
        .iter()
        .any(|f| f.starts_with("--token-proxy-ca-file="))
    {
        args.push(format!("--token-proxy-ca-file={}", ca_file.display()));
    }
    args.extend(setup.flags);
    let config = Config::try_parse_from(args).unwrap();
    let server = TestServer::start_with_http(config, azure.http_client()).await;
    Cluster {
        azure,
        proxy,
        server,
        ca_file,
        _dir: dir,
    }
}

/// kubelet's attributes for an identity-binding SecretProviderClass, with fresh tokens for both
/// audiences (as a CSIDriver listing both sends them).
fn spc() -> KubeletAttributes {
    KubeletAttributes::new(NS, "web-0", SA, "kv-binding")
        .param("keyvaultName", VAULT)
        .param("tenantID", TENANT)
        .param("clientID", CLIENT_ID)
        .param("useAzureTokenProxy", "true")
        .param(
            "objects",
            &objects_yaml(&["objectName: app-secret\nobjectType: secret"]),
        )
        .tokens(
            &[
                (
                    IB_AUDIENCE,
                    &service_account_token_for(NS, SA, 3600, IB_AUDIENCE),
                ),
                (
                    WI_AUDIENCE,
                    &service_account_token_for(NS, SA, 3600, WI_AUDIENCE),
                ),
            ],
            "2099-01-01T00:00:00Z",
        )
}

impl Cluster {
    async fn mount(&self, attrs: KubeletAttributes) -> Result<Vec<u8>, tonic::Status> {
        let response = self
            .server
            .client()
            .mount(&attrs.build(), None, "420")
            .await?;
        assert_eq!(response.files.len(), 1);
        Ok(response.files[0].contents.clone())
    }

    async fn fails(&self, attrs: KubeletAttributes, code: Code) -> String {
        let status = self.mount(attrs).await.unwrap_err();
        assert_eq!(status.code(), code, "{}", status.message());
        let m = status.message().to_owned();
        assert!(!m.contains("eyJ"), "a token leaked: {m}");
        m
    }
}

fn write(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_through_the_proxy_under_the_computed_server_name() {
    let c = cluster(Setup::default()).await;
    assert_eq!(c.mount(spc()).await.unwrap(), b"hello from the vault");

    let calls = c.proxy.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call.server_name.as_deref(), Some(SERVER_NAME));
    // The URL host is the server name, so Host / :authority carry it (the AKS docs' curl).
    assert_eq!(call.host, SERVER_NAME);
    assert_eq!(call.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(call.client_id, CLIENT_ID);
    assert_eq!(call.scope, "https://vault.azure.net/.default");
    // The identity-binding token, not the workload-identity one next to it.
    assert_eq!(call.audiences, [IB_AUDIENCE]);
    // The start-up dial named no server (an IP address) and was shown the API server's
    // certificate; the token request used the computed name.
    assert_eq!(c.proxy.handshakes().first(), Some(&None));
    // Entra itself was never asked; Key Vault was read directly.
    let counts = c.azure.counts();
    assert_eq!((counts.entra, counts.token_proxy), (0, 1));
    assert!(counts.gets >= 1);

    // The same service-account token again: the cached credential, no new exchange.
    let same = spc().param(
        "csi.storage.k8s.io/serviceAccount.tokens",
        &spc().build()["csi.storage.k8s.io/serviceAccount.tokens"],
    );
    c.mount(same.clone()).await.unwrap();
    c.mount(same).await.unwrap();
    assert_eq!(c.azure.counts().token_proxy, 2, "one per distinct token");
    // A new token (kubelet rotated it): a new exchange, proving the key includes the token.
    c.mount(spc()).await.unwrap();
    assert_eq!(c.azure.counts().token_proxy, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_sni_name_needs_no_aks_certificate() {
    let c = cluster(Setup {
        cluster_id: None,
        flags: vec![format!("--sni-name={}", SERVER_NAME.to_uppercase())],
        ..Setup::default()
    })
    .await;
    assert_eq!(c.mount(spc()).await.unwrap(), b"hello from the vault");
    // No detection dial: every connection named the proxy.
    assert!(
        c.proxy
            .handshakes()
            .iter()
            .all(|sni| sni.as_deref() == Some(SERVER_NAME)),
        "{:?}",
        c.proxy.handshakes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_server_name_only_identity_binding_fails_and_says_how_to_fix_it() {
    // Not an AKS cluster: the API server's certificate has no hcp-kubernetes name.
    let c = cluster(Setup {
        cluster_id: None,
        ..Setup::default()
    })
    .await;
    let m = c.fails(spc(), Code::Unauthenticated).await;
    assert!(
        m.contains("--sni-name")
            && m.contains("hcp-kubernetes.<cluster ID>.svc.cluster.local")
            && m.contains(CLIENT_ID),
        "{m}"
    );
    assert_eq!(c.azure.counts().token_proxy, 0);
    // The provider serves every other mode as usual.
    c.azure.add_vm_identity(None);
    c.azure.vault(VAULT).grant("vm-system-assigned");
    let vm = spc()
        .without("clientID")
        .without("useAzureTokenProxy")
        .param("useVMManagedIdentity", "true");
    assert_eq!(c.mount(vm).await.unwrap(), b"hello from the vault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_refusing_the_service_account_names_the_cluster_role() {
    let c = cluster(Setup {
        allow: false,
        ..Setup::default()
    })
    .await;
    let m = c.fails(spc(), Code::Unauthenticated).await;
    for needle in [
        "HTTP 403: forbidden",
        "apps/web",
        "use-managed-identity",
        "cid.wi.aks.azure.com",
        CLIENT_ID,
        "kubectl create clusterrolebinding",
        "--serviceaccount=apps:web",
    ] {
        assert!(m.contains(needle), "{m:?} lacks {needle:?}");
    }
    assert!(!m.contains("Microsoft Entra ID rejected"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_identity_binding_names_az_aks_identity_binding_create() {
    let c = cluster(Setup {
        bind: false,
        ..Setup::default()
    })
    .await;
    let m = c.fails(spc(), Code::Unauthenticated).await;
    assert!(
        m.contains("AADSTS70021")
            && m.contains("az aks identity-binding create")
            && m.contains(CLIENT_ID)
            && !m.contains("Trace ID"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_outages_keep_their_cause() {
    let c = cluster(Setup::default()).await;
    // A transient 503 (Entra's AADSTS90033 passed through) is retried and the mount succeeds.
    c.azure.push_fault(Target::TokenProxy, Fault::Status(503));
    assert_eq!(c.mount(spc()).await.unwrap(), b"hello from the vault");
    // Past the deadline: the cause reaches the pod.
    c.azure
        .push_faults(Target::TokenProxy, Fault::Status(503), 200);
    let m = c.fails(spc(), Code::Unavailable).await;
    assert!(m.contains("HTTP 503") && m.contains("AADSTS90033"), "{m}");
    c.azure.clear_faults();
    c.azure.push_faults(
        Target::TokenProxy,
        Fault::Throttle {
            retry_after_secs: 1,
        },
        200,
    );
    let m = c.fails(spc(), Code::ResourceExhausted).await;
    assert!(
        m.contains("throttling") && m.contains("Too Many Requests"),
        "{m}"
    );
    c.azure.clear_faults();
    // This pod's files are in place (its first Mount succeeded), so while the endpoint
    // throttles its rotation re-mount is not sent at all.
    let before = c.proxy.calls().len();
    let m = c.fails(spc(), Code::ResourceExhausted).await;
    assert!(m.contains("rotation re-mount shed"), "{m}");
    assert_eq!(
        c.proxy.calls().len(),
        before,
        "a shed re-mount reached the proxy"
    );
    // A connection reset is an outage too: seen by a new pod's first Mount.
    c.azure.push_faults(Target::TokenProxy, Fault::Reset, 200);
    let new_pod = spc().param(
        "csi.storage.k8s.io/pod.uid",
        "0b6f5a1e-7c3d-4e2a-9f8b-1d2c3e4f5a6b",
    );
    let m = c.fails(new_pod, Code::Unavailable).await;
    assert!(m.contains("cannot reach the AKS token proxy"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_ca_file_is_reread_and_an_empty_one_keeps_the_last() {
    let c = cluster(Setup::default()).await;
    c.mount(spc()).await.unwrap();
    // Mid-rotation the file is empty: the last good CA still verifies the proxy.
    write(&c.ca_file, "");
    c.mount(spc()).await.unwrap();
    // Another cluster's CA: the proxy's certificate no longer verifies.
    let other = FakeAzure::start()
        .await
        .start_token_proxy(ClusterOptions {
            cluster_id: Some(CLUSTER_ID.into()),
            server_name: SERVER_NAME.into(),
        })
        .await;
    write(&c.ca_file, other.ca_pem());
    let m = c.fails(spc(), Code::Unavailable).await;
    assert!(
        m.contains("cannot reach the AKS token proxy") && m.contains("certificate"),
        "{m}"
    );
    // Rotated to a bundle holding both: trusted again, without a restart.
    write(
        &c.ca_file,
        &format!("{}{}", other.ca_pem(), c.proxy.ca_pem()),
    );
    c.mount(spc()).await.unwrap();
    assert_eq!(c.azure.counts().token_proxy, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cluster_ca_is_reported_with_its_path() {
    let c = cluster(Setup {
        flags: vec![
            format!("--sni-name={SERVER_NAME}"),
            "--token-proxy-ca-file=/nonexistent/ca.crt".to_owned(),
        ],
        ..Setup::default()
    })
    .await;
    let m = c.fails(spc(), Code::Unauthenticated).await;
    assert!(
        m.contains("/nonexistent/ca.crt") && m.contains("kube-root-ca.crt"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_missing_piece_fails_the_mount_with_its_fix() {
    let c = cluster(Setup::default()).await;
    for (attrs, needles) in [
        (
            spc().without("clientID"),
            &["clientID is required", "az aks identity-binding create"][..],
        ),
        (
            spc().without("csi.storage.k8s.io/serviceAccount.tokens"),
            &["no service-account tokens at all", "tokenRequests"][..],
        ),
        (
            spc().tokens(
                &[(
                    WI_AUDIENCE,
                    &service_account_token_for(NS, SA, 3600, WI_AUDIENCE),
                )],
                "2099-01-01T00:00:00Z",
            ),
            &[
                "audience api://AKSIdentityBinding",
                "secrets-store-csi-driver.tokenRequests",
            ][..],
        ),
        (
            spc().param("usePodIdentity", "true"),
            &["only one identity mode can be enabled at a time"][..],
        ),
    ] {
        let m = c.fails(attrs, Code::InvalidArgument).await;
        for needle in needles {
            assert!(m.contains(needle), "{m:?} lacks {needle:?}");
        }
    }
    assert_eq!(c.azure.counts().token_proxy, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_api_server_delays_only_identity_binding() {
    // Accepts TCP, never speaks TLS: detection waits out its 10 s dial timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let azure = FakeAzure::start().await;
    azure.add_vm_identity(None);
    azure
        .vault(VAULT)
        .grant("vm-system-assigned")
        .secret("app-secret", "hello from the vault");
    let dir = tempfile::tempdir().unwrap();
    let ca = azure
        .start_token_proxy(ClusterOptions {
            cluster_id: Some(CLUSTER_ID.into()),
            server_name: SERVER_NAME.into(),
        })
        .await;
    write(&dir.path().join("ca.crt"), ca.ca_pem());
    let config = Config::try_parse_from([
        "akv-csi-provider".to_owned(),
        format!("--token-proxy-url=https://127.0.0.1:{port}"),
        format!(
            "--token-proxy-ca-file={}",
            dir.path().join("ca.crt").display()
        ),
        "--mount-timeout=20s".to_owned(),
    ])
    .unwrap();
    let started = Instant::now();
    let server = TestServer::start_with_http(config, azure.http_client()).await;
    let client = server.client();
    let vm = spc()
        .without("clientID")
        .without("useAzureTokenProxy")
        .param("useVMManagedIdentity", "true");
    client.mount(&vm.build(), None, "420").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "other modes waited for the detection: {:?}",
        started.elapsed()
    );
    let status = client.mount(&spc().build(), None, "420").await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{}", status.message());
    assert!(
        status.message().contains("no TLS answer") && status.message().contains("--sni-name"),
        "{}",
        status.message()
    );
}

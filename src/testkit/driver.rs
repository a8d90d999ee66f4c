//! A client that calls the provider exactly as secrets-store-csi-driver v1.5/v1.6 does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::client::unix_channel;
use crate::proto::csi_driver_provider_client::CsiDriverProviderClient;
use crate::proto::{MountRequest, MountResponse, VersionRequest, VersionResponse};

/// The driver's default `--max-call-recv-msg-size`.
pub const DRIVER_MAX_RECV_BYTES: usize = 4 << 20;

/// kubelet's deadline for NodePublishVolume (`csiTimeout`), which reaches the provider as
/// `grpc-timeout` on every Mount.
pub const KUBELET_TIMEOUT: Duration = Duration::from_secs(120);

/// Plays the CSI driver: `:authority` localhost (v1.6) or any other (v1.5 sends the socket
/// path), 4 MiB receive limit, JSON-in-string fields, kubelet's 120 s deadline on Mount.
#[derive(Clone)]
pub struct DriverClient {
    provider: CsiDriverProviderClient<Channel>,
    health: HealthClient<Channel>,
    timeout: Option<Duration>,
}

impl DriverClient {
    /// A client for the socket at `path` (connects on first call), as driver v1.6 dials it.
    pub fn new(path: &Path) -> Self {
        Self::on(unix_channel(path))
    }

    /// A client whose requests carry `authority` as `:authority` (`None`: no `:authority`),
    /// HPACK-encoded as driver v1.5's grpc-go does; v1.5 sends the socket's path.
    pub fn with_authority(path: &Path, authority: Option<&[u8]>) -> Self {
        Self::on(super::old_driver::channel_with_authority(path, authority))
    }

    /// The same client with another Mount deadline (`None`: no `grpc-timeout`).
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    fn on(channel: Channel) -> Self {
        DriverClient {
            timeout: Some(KUBELET_TIMEOUT),
            provider: CsiDriverProviderClient::new(channel.clone())
                .max_decoding_message_size(DRIVER_MAX_RECV_BYTES),
            health: HealthClient::new(channel),
        }
    }

    /// `Version`, as the driver's health check sends it (5 s deadline).
    pub async fn version(&self) -> Result<VersionResponse, tonic::Status> {
        let mut request = tonic::Request::new(VersionRequest {
            version: "v1alpha1".into(),
        });
        request.set_timeout(Duration::from_secs(5));
        Ok(self.provider.clone().version(request).await?.into_inner())
    }

    /// `Mount` with the given attributes, secrets (`None` = the literal `null`) and permission.
    pub async fn mount(
        &self,
        attributes: &BTreeMap<String, String>,
        secrets: Option<&BTreeMap<String, String>>,
        permission: &str,
    ) -> Result<MountResponse, tonic::Status> {
        let request = MountRequest {
            attributes: to_json(attributes),
            secrets: secrets.map_or_else(|| "null".to_owned(), to_json),
            target_path: "/var/lib/kubelet/pods/0b9f7c56/volumes/kubernetes.io~csi/secrets-store-inline/mount".into(),
            permission: permission.into(),
            current_object_version: Vec::new(),
        };
        self.mount_raw(request).await
    }

    /// `Mount` with a hand-made request (for malformed-input tests).
    pub async fn mount_raw(&self, request: MountRequest) -> Result<MountResponse, tonic::Status> {
        Ok(self.mount_with_metadata(request).await?.into_inner())
    }

    /// `Mount`, keeping the response's metadata (and, on error, the status with its own).
    pub async fn mount_with_metadata(
        &self,
        request: MountRequest,
    ) -> Result<tonic::Response<MountResponse>, tonic::Status> {
        let mut request = tonic::Request::new(request);
        if let Some(timeout) = self.timeout {
            request.set_timeout(timeout);
        }
        self.provider.clone().mount(request).await
    }

    /// `grpc.health.v1.Health/Check` for `service` ("" = the whole server).
    pub async fn health(&self, service: &str) -> Result<ServingStatus, tonic::Status> {
        let response = self
            .health
            .clone()
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await?
            .into_inner();
        Ok(response.status())
    }
}

fn to_json(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map)
        .unwrap_or_else(|e| unreachable!("a string map always serialises: {e}"))
}

/// Builds the `attributes` map the driver sends: SecretProviderClass parameters overlaid with
/// kubelet's keys.
#[derive(Debug, Clone)]
pub struct KubeletAttributes {
    map: BTreeMap<String, String>,
}

impl KubeletAttributes {
    /// kubelet's keys for pod `namespace/name` with service account `sa`, SPC `spc`.
    pub fn new(namespace: &str, name: &str, sa: &str, spc: &str) -> Self {
        let mut map = BTreeMap::new();
        for (k, v) in [
            ("secretProviderClass", spc),
            ("csi.storage.k8s.io/pod.name", name),
            ("csi.storage.k8s.io/pod.namespace", namespace),
            (
                "csi.storage.k8s.io/pod.uid",
                "6f1c3c5e-2f55-4b8e-9a39-5c8a0f6f2b1d",
            ),
            ("csi.storage.k8s.io/serviceAccount.name", sa),
            ("csi.storage.k8s.io/ephemeral", "true"),
        ] {
            map.insert(k.to_owned(), v.to_owned());
        }
        KubeletAttributes { map }
    }

    /// Adds one SecretProviderClass parameter (or overrides a key).
    pub fn param(mut self, key: &str, value: &str) -> Self {
        self.map.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Removes a key.
    pub fn without(mut self, key: &str) -> Self {
        self.map.remove(key);
        self
    }

    /// Adds the service-account token map with `jwt` for `api://AzureADTokenExchange`.
    pub fn azure_token(self, jwt: &str, expires: &str) -> Self {
        let tokens = serde_json::json!({
            "api://AzureADTokenExchange": {"token": jwt, "expirationTimestamp": expires}
        });
        self.param(
            "csi.storage.k8s.io/serviceAccount.tokens",
            &tokens.to_string(),
        )
    }

    /// Adds the token map with one token per `(audience, jwt)`, all expiring at `expires`.
    pub fn tokens(self, entries: &[(&str, &str)], expires: &str) -> Self {
        let tokens: serde_json::Map<String, serde_json::Value> = entries
            .iter()
            .map(|(aud, jwt)| {
                (
                    (*aud).to_owned(),
                    serde_json::json!({"token": jwt, "expirationTimestamp": expires}),
                )
            })
            .collect();
        self.param(
            "csi.storage.k8s.io/serviceAccount.tokens",
            &serde_json::Value::Object(tokens).to_string(),
        )
    }

    /// The finished map.
    pub fn build(self) -> BTreeMap<String, String> {
        self.map
    }
}

/// The provider served in-process on a socket in a temporary directory, as the tests run it.
pub struct TestServer {
    /// Where the socket is.
    pub socket: PathBuf,
    /// The `grpc-timeout` its clients send on Mount: kubelet's 120 s unless a test plays a
    /// kubelet whose deadline is shorter (`None`: no `grpc-timeout`).
    pub client_timeout: Option<Duration>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), crate::RunError>>>,
    _dir: TempDirGuard,
}

impl TestServer {
    /// Starts the provider with `config` on a fresh socket with an HTTP client that trusts
    /// nothing (for tests that never reach Azure); returns once it answers.
    pub async fn start(config: crate::Config) -> Self {
        Self::start_with_http(config, super::client::offline_client()).await
    }

    /// Starts the provider with `config`, sending Entra and Key Vault calls through `http`
    /// (usually [`crate::testkit::FakeAzure::http_client`]); returns once it answers.
    pub async fn start_with_http(
        config: crate::Config,
        http: std::sync::Arc<dyn azure_core::http::HttpClient>,
    ) -> Self {
        let dir = TempDirGuard::new();
        let socket = dir.path.join("azure.sock");
        let bound = crate::server::bind(&socket, false)
            .await
            .unwrap_or_else(|e| panic!("bind test socket: {e}"));
        // The health endpoint checks the socket the config names.
        let mut config = config;
        config.endpoint.path = socket.clone();
        // Parallel tests cannot share the fixed default ports: those mean "off" here; tests of
        // the endpoints pass free ports explicitly.
        let defaults = crate::Config::defaults();
        if config.healthz_port == defaults.healthz_port {
            config.healthz_port = 0;
        }
        if config.prometheus_port == defaults.prometheus_port {
            config.prometheus_port = 0;
        }
        // A test host may itself be a pod: never dial its API server unless told to.
        if config.token_proxy_ca_file == defaults.token_proxy_ca_file {
            config.token_proxy_ca_file = dir.path.join("no-cluster-ca.crt");
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            crate::run_with_http(bound, &config, http, async {
                let _ = rx.await;
            })
            .await
        });
        let server = TestServer {
            socket,
            client_timeout: Some(KUBELET_TIMEOUT),
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        };
        let client = server.client();
        for _ in 0..200 {
            if matches!(client.health("").await, Ok(ServingStatus::Serving)) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("test server did not become healthy");
    }

    /// A driver-like client for this server.
    pub fn client(&self) -> DriverClient {
        DriverClient::new(&self.socket).with_timeout(self.client_timeout)
    }

    /// Triggers graceful shutdown and waits for the server to stop.
    pub async fn stop(mut self) -> Result<(), crate::RunError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .unwrap_or_else(|e| panic!("server task panicked: {e}")),
            None => Ok(()),
        }
    }
}

/// A loopback port that was free a moment ago (for tests of the HTTP endpoints).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("free port: {e}"))
}

/// A temporary directory removed on drop (kept dependency-free for the library's feature).
pub(crate) struct TempDirGuard {
    path: PathBuf,
}

impl TempDirGuard {
    /// Where the directory is.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub(crate) fn new() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "akv-csi-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDirGuard { path }
    }
}

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

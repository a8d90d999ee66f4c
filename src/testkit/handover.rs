//! Running the real `akv-csi-provider` binary against the fakes, and driver-like workers that
//! Mount continuously through it: what the hand-over tests (`tests/handover.rs`) and the
//! hand-over benchmark (`examples/handover.rs`) share.
//!
//! The binary uses its production HTTP stack. It reaches the fakes the way a cluster behind an
//! egress proxy reaches Azure: `HTTPS_PROXY` names a CONNECT proxy on loopback that tunnels
//! every Azure host name to the fake HTTPS server (and nothing else anywhere), and
//! `SSL_CERT_FILE` adds the test CA. TLS, host names and Key Vault's challenge are the real ones.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::material::service_account_token;
use super::world::{CLIENT_ID, NAMESPACE, SERVICE_ACCOUNT, VAULT};
use super::{DriverClient, FakeAzure, KubeletAttributes, TENANT};

/// The one object the workers mount, and its value.
pub const OBJECTS: &str = "array:\n  - |\n    objectName: app-secret\n    objectType: secret\n";
pub const VALUE: &[u8] = b"hello";

/// Fake Azure behind an egress proxy, and the files a provider process needs to reach it.
pub struct Fixture {
    pub azure: FakeAzure,
    /// `http://127.0.0.1:<port>`: the CONNECT proxy.
    pub proxy_url: String,
    dir: super::driver::TempDirGuard,
}

impl Fixture {
    /// Starts the fakes (a federated identity that may read [`VAULT`], holding `app-secret`)
    /// and the proxy.
    pub async fn start() -> Self {
        let azure = super::world::federated_fakes().await;
        azure
            .vault(VAULT)
            .secret("app-secret", std::str::from_utf8(VALUE).unwrap_or_default());
        let dir = super::driver::TempDirGuard::new();
        std::fs::write(dir.path().join("ca.pem"), azure.ca_pem())
            .unwrap_or_else(|e| panic!("write the test CA: {e}"));
        let proxy = start_proxy(azure.https_addr()).await;
        Fixture {
            azure,
            proxy_url: format!("http://{proxy}"),
            dir,
        }
    }

    /// A directory that lives as long as the fixture.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The command that runs `binary` serving on `socket` through the fakes with `extra` flags.
    /// Health and metrics are off unless `extra` names ports.
    pub fn provider(&self, binary: &Path, socket: &Path, extra: &[&str]) -> Command {
        let mut command = Command::new(binary);
        // Parallel tests cannot share the default ports: off unless `extra` names them.
        for flag in ["--healthz-port", "--prometheus-port"] {
            if !extra.iter().any(|e| e.starts_with(flag)) {
                command.arg(format!("{flag}=0"));
            }
        }
        command
            .arg(format!("--endpoint=unix://{}", socket.display()))
            .arg(format!(
                "--token-proxy-ca-file={}",
                self.dir().join("no-cluster-ca.crt").display()
            ))
            .args(extra)
            .env("SSL_CERT_FILE", self.dir().join("ca.pem"))
            .env("HTTPS_PROXY", &self.proxy_url)
            .env("https_proxy", &self.proxy_url)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env_remove("SSL_CERT_DIR")
            // The socket's lifecycle only: a line per Mount would fill an unread stderr pipe
            // and stall the process.
            .env("RUST_LOG", "warn,akv_csi_provider::server=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    /// The attributes kubelet sends for a workload-identity class mounting [`OBJECTS`].
    pub fn attributes(&self) -> BTreeMap<String, String> {
        KubeletAttributes::new(NAMESPACE, "app-0", SERVICE_ACCOUNT, "azure-kv")
            .param("keyvaultName", VAULT)
            .param("tenantID", TENANT)
            .param("clientID", CLIENT_ID)
            .param("objects", OBJECTS)
            .azure_token(
                &service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600),
                "2099-01-01T00:00:00Z",
            )
            .build()
    }
}

/// A CONNECT proxy on loopback that tunnels every request to `target` (the fake HTTPS server,
/// which answers only for the Azure names it holds certificates for).
async fn start_proxy(target: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind the proxy: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("proxy address: {e}"));
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            tokio::spawn(tunnel(inbound, target));
        }
    });
    addr
}

async fn tunnel(mut inbound: TcpStream, target: SocketAddr) -> std::io::Result<()> {
    // The client sends only the request head, then waits for our answer.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || inbound.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"CONNECT ") {
        inbound
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    let mut outbound = TcpStream::connect(target).await?;
    inbound
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await?;
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    Ok(())
}

/// How a worker treats a Mount that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Count it and go on with the next Mount.
    Count,
    /// As the driver's grpc-go client with `waitForReady` does while no server listens: wait
    /// (reconnect backoff 1 s, ×1.6, ±20 %) and try again, until kubelet's 120 s deadline.
    WaitForReady,
}

/// What the workers saw.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Mounts that returned the expected file.
    pub ok: usize,
    /// Mounts that failed (with `WaitForReady`: attempts that failed, each retried).
    pub failed: usize,
    /// The first few failures, for the test's message.
    pub errors: Vec<String>,
    /// Every successful Mount's latency (with `WaitForReady`: including the waiting).
    pub latencies: Vec<Duration>,
    /// Successful Mounts that ended after [`Workers::mark`].
    pub ok_after_mark: usize,
    /// Mounts sent again at once because the first attempt never reached a server (the
    /// connection closed under it: a GOAWAY raced the request), as grpc-go's transparent retry
    /// does. Not failures: the driver's client never reports them.
    pub transparent_retries: usize,
}

impl Tally {
    /// The longest successful Mount.
    pub fn longest(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }

    /// The median successful Mount.
    pub fn median(&self) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(l.len() / 2).copied().unwrap_or_default()
    }
}

/// Driver-like workers, each Mounting back to back on one long-lived connection of its own.
pub struct Workers {
    stop: Arc<AtomicBool>,
    mark: Arc<std::sync::Mutex<Option<Instant>>>,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
}

impl Workers {
    /// Starts `n` workers on `socket`.
    pub fn start(
        n: usize,
        socket: &Path,
        attributes: BTreeMap<String, String>,
        on_failure: OnFailure,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mark = Arc::new(std::sync::Mutex::new(None));
        let tasks = (0..n)
            .map(|_| {
                let client = DriverClient::new(socket);
                let attributes = attributes.clone();
                let (stop, mark) = (stop.clone(), mark.clone());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    while !stop.load(Ordering::Relaxed) {
                        mount_once(&client, &attributes, on_failure, &mut tally, &mark).await;
                    }
                    tally
                })
            })
            .collect();
        Workers { stop, mark, tasks }
    }

    /// From now on, successful Mounts also count in [`Tally::ok_after_mark`].
    pub fn mark(&self) {
        *self.mark.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Stops the workers after their current Mount and sums what they saw.
    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for task in self.tasks {
            let t = task
                .await
                .unwrap_or_else(|e| panic!("worker panicked: {e}"));
            total.ok += t.ok;
            total.failed += t.failed;
            total.ok_after_mark += t.ok_after_mark;
            total.transparent_retries += t.transparent_retries;
            total.latencies.extend(t.latencies);
            total.errors.extend(t.errors);
        }
        total.errors.truncate(10);
        total
    }
}

async fn mount_once(
    client: &DriverClient,
    attributes: &BTreeMap<String, String>,
    on_failure: OnFailure,
    tally: &mut Tally,
    mark: &std::sync::Mutex<Option<Instant>>,
) {
    let started = Instant::now();
    let mut backoff = Duration::from_secs(1);
    let mut transparent = true;
    loop {
        let outcome = match client.mount(attributes, None, "420").await {
            Ok(response) => match response.files.first() {
                Some(file) if file.contents == VALUE => Ok(()),
                _ => Err(format!("unexpected files: {:?}", response.files.len())),
            },
            Err(status) if transparent && never_sent(&status) => {
                transparent = false;
                tally.transparent_retries += 1;
                continue;
            }
            Err(status) => Err(format!("{:?}: {}", status.code(), status.message())),
        };
        match outcome {
            Ok(()) => {
                tally.ok += 1;
                tally.latencies.push(started.elapsed());
                let marked = *mark.lock().unwrap_or_else(|e| e.into_inner());
                if marked.is_some_and(|m| started >= m) {
                    tally.ok_after_mark += 1;
                }
                return;
            }
            Err(error) => {
                tally.failed += 1;
                if tally.errors.len() < 10 {
                    tally.errors.push(error);
                }
                if on_failure == OnFailure::Count || started.elapsed() > super::KUBELET_TIMEOUT {
                    return;
                }
                let jitter = 0.8 + 0.4 * fastrand::f64();
                tokio::time::sleep(backoff.mul_f64(jitter)).await;
                backoff = backoff.mul_f64(1.6).min(Duration::from_secs(120));
            }
        }
    }
}

/// Whether the server never processed the request, the cases grpc-go retries transparently:
/// hyper cancelled it while it was still queued for a connection that closed (after the
/// server's GOAWAY), or the server's GOAWAY or a REFUSED_STREAM dropped the stream before
/// the server took it (its id above the GOAWAY's last stream id).
fn never_sent(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        if error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled)
        {
            return true;
        }
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            let refused = h2.reason() == Some(h2::Reason::REFUSED_STREAM);
            let unprocessed = h2.is_go_away() && h2.is_remote();
            if refused || unprocessed {
                return true;
            }
        }
        source = error.source();
    }
    false
}

/// Where the socket of a test lives, in a directory like the providers' hostPath.
pub fn socket_in(dir: &Path) -> PathBuf {
    dir.join("providers/azure.sock")
}

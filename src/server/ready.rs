//! The readiness probe (`akv-csi-provider ready`, an exec probe): ready only when the socket at
//! the endpoint path is this pod's and answers. "This pod's" is decided by the kernel: the
//! peer credentials of a connection to the path name the serving process's PID as seen from
//! the probe's PID namespace — the container's — and a server in another pod (the previous
//! provider during a surge rollout, or the Go provider) has no PID there (0). The process must
//! also run this very binary, and answer `grpc.health.v1.Health/Check` with SERVING over that
//! same connection. An HTTP probe cannot decide this: with `hostNetwork` both pods share the
//! health port (`SO_REUSEPORT`), and the kernel picks which pod answers a connection.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Endpoint, Uri};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A passed readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The serving process, as this PID namespace numbers it.
    pub pid: u32,
}

/// Checks that the socket at `path` is served by this binary in this PID namespace and
/// answers a health check within `timeout`. The error says why not, for the pod's events.
pub async fn check_ready(path: &Path, timeout: Duration) -> Result<Ready, String> {
    match tokio::time::timeout(timeout, check(path)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "the server on {} did not answer within {timeout:?}",
            path.display()
        )),
    }
}

async fn check(path: &Path) -> Result<Ready, String> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?;
    let pid = stream
        .peer_cred()
        .map_err(|e| format!("cannot read the peer of {}: {e}", path.display()))?
        .pid()
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            format!(
                "{} is served by a process outside this container (another pod: the previous provider, not yet replaced)",
                path.display()
            )
        })?;
    let binary = |p: PathBuf| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    let theirs = binary(PathBuf::from(format!("/proc/{pid}/exe")));
    if theirs.is_none() || theirs != binary(PathBuf::from("/proc/self/exe")) {
        return Err(format!(
            "{} is served by process {pid}, which is not this akv-csi-provider",
            path.display()
        ));
    }
    // The health check goes over the connection whose peer was just checked.
    let once = Arc::new(Mutex::new(Some(stream)));
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let stream = once.lock().unwrap_or_else(|e| e.into_inner()).take();
            async move {
                stream.map(TokioIo::new).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotConnected, "connection used up")
                })
            }
        }))
        .await
        .map_err(|e| format!("cannot speak HTTP/2 on {}: {e}", path.display()))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|s| {
            format!(
                "the health check on {} failed: {:?} {}",
                path.display(),
                s.code(),
                s.message()
            )
        })?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok(Ready { pid }),
        other => Err(format!(
            "the server on {} reports {}",
            path.display(),
            other.as_str_name()
        )),
    }
}

//! The Unix socket the driver dials, and serving the gRPC API on it until shutdown.

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;
use tracing::{info, warn};

use crate::grpc::ProviderService;
use crate::h2front::Front;
use crate::proto::csi_driver_provider_server::CsiDriverProviderServer;

/// Largest request the server decodes: the driver's own limit.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// Why the socket could not be bound or served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The socket's directory could not be created.
    #[error("cannot create the socket directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Something other than a socket sits at the endpoint path.
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: PathBuf },
    /// A live server already answers on the endpoint.
    #[error("another process is already serving on {path}")]
    InUse { path: PathBuf },
    /// Binding, securing or moving the socket failed.
    #[error("cannot bind the socket {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A bound socket; dropping it removes the socket file.
#[derive(Debug)]
pub struct BoundSocket {
    pub listener: UnixListener,
    path: PathBuf,
}

impl BoundSocket {
    /// Where the socket lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Splits off the listener; the returned guard removes the socket file when dropped.
    pub fn into_parts(self) -> (UnixListener, SocketGuard) {
        let identity = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        let BoundSocket { listener, path } = self;
        (listener, SocketGuard { path, identity })
    }
}

/// Removes the socket file when dropped (after shutdown).
#[derive(Debug)]
pub struct SocketGuard {
    path: PathBuf,
    /// (device, inode) of our socket: only that file is removed, never a successor's.
    identity: Option<(u64, u64)>,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let current = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if current.is_some() && current != self.identity {
            info!(path = %self.path.display(), "socket was replaced by another process; leaving it");
            return;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => info!(path = %self.path.display(), "removed socket"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => warn!(path = %self.path.display(), error = %e, "could not remove socket"),
        }
    }
}

/// Binds `path` owner-only: creates the parent directory, refuses to replace a non-socket or a
/// live server, and removes a stale socket. The socket is created in a private directory,
/// restricted to 0600 and then renamed into place, so it is never reachable with wider rights.
pub fn bind(path: &Path) -> Result<BoundSocket, ServeError> {
    let bind_err = |source| ServeError::Bind {
        path: path.to_owned(),
        source,
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(|source| ServeError::CreateDir {
        path: parent.to_owned(),
        source,
    })?;

    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(ServeError::NotASocket {
                path: path.to_owned(),
            });
        }
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServeError::InUse {
                    path: path.to_owned(),
                });
            }
            info!(path = %path.display(), "replacing stale socket");
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_err(e)),
    }

    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let private_dir = parent.join(format!(".akv-csi-provider.{}.{nonce}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private_dir)
        .map_err(bind_err)?;
    let staged = private_dir.join("s.sock");
    let result = (|| {
        let listener = std::os::unix::net::UnixListener::bind(&staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, path)?;
        listener.set_nonblocking(true)?;
        UnixListener::from_std(listener)
    })();
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private_dir);
    let listener = result.map_err(bind_err)?;
    Ok(BoundSocket {
        listener,
        path: path.to_owned(),
    })
}

/// Serves the provider and `grpc.health.v1.Health` on `listener` until `shutdown` resolves,
/// then stops accepting and gives in-flight calls up to `grace` to finish.
pub async fn serve(
    listener: UnixListener,
    service: ProviderService,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<CsiDriverProviderServer<ProviderService>>()
        .await;
    let provider =
        CsiDriverProviderServer::new(service).max_decoding_message_size(MAX_MESSAGE_BYTES);

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = {
        let health = health.clone();
        async move {
            shutdown.await;
            info!("shutting down: no new calls accepted, finishing in-flight calls");
            health
                .set_not_serving::<CsiDriverProviderServer<ProviderService>>()
                .await;
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            let _ = stopping_tx.send(());
        }
    };
    // Every connection goes through the front, which makes h2 accept any `:authority` (its
    // limits are hyper's defaults, which this builder keeps: see h2front::Limits).
    let incoming = UnixListenerStream::new(listener).map(|conn| conn.map(Front::new));
    let server = Server::builder()
        .add_service(health_service)
        .add_service(provider)
        .serve_with_incoming_shutdown(incoming, signal);
    tokio::pin!(server);
    let deadline = async {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = &mut server => Ok(result?),
        () = deadline => {
            warn!(grace_s = grace.as_secs_f64(), "in-flight calls did not finish within the shutdown grace period; exiting");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_guard_never_removes_a_successor_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("azure.sock");
        let (listener, guard) = bind(&path).unwrap().into_parts();
        drop(listener);
        // A new process replaced our (now stale) socket with its own.
        let (successor, successor_guard) = bind(&path).unwrap().into_parts();
        drop(guard);
        assert!(
            path.exists(),
            "the old guard removed the successor's socket"
        );
        drop(successor);
        drop(successor_guard);
        assert!(!path.exists());
    }
}

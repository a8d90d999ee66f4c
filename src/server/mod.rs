//! The Unix socket the driver dials, and serving the gRPC API on it until shutdown:
//! [`socket`] binds it (atomically, owner-only, taking over a live server's path only with
//! `--socket-takeover`), [`watch`] keeps the path served while we run, [`ready`] is the
//! readiness probe (`akv-csi-provider ready`).

mod ready;
mod socket;
mod watch;

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::Server;
use tracing::{info, warn};

use crate::grpc::ProviderService;
use crate::proto::csi_driver_provider_server::CsiDriverProviderServer;

pub use ready::{Ready, check_ready};
pub use socket::{BoundSocket, FileId, SocketGuard, bind, file_id};
pub use watch::WATCH_INTERVAL;

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

/// Serves the provider and `grpc.health.v1.Health` on `socket` until `shutdown` resolves,
/// keeping its path served meanwhile (see [`watch`]); then stops accepting, sends GOAWAY on
/// every connection (the driver reconnects by path, to a successor if one took over), gives
/// in-flight calls up to `grace` to finish, and removes the socket if the path still holds ours.
pub async fn serve(
    socket: BoundSocket,
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

    let path: PathBuf = socket.path().to_owned();
    let ours = Arc::new(Mutex::new(socket.id()));
    let (conn_tx, conn_rx) = tokio::sync::mpsc::channel::<watch::Accepted>(64);
    let acceptor = watch::AbortOnDrop(watch::spawn_acceptor(socket.listener, conn_tx.clone()));
    // The watcher owns the accepting task: aborting it stops accepting altogether.
    let watcher = watch::AbortOnDrop(tokio::spawn(watch::watch(
        path.clone(),
        ours.clone(),
        acceptor,
        conn_tx,
    )));
    let stop_accepting = watcher.0.abort_handle();

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = {
        let health = health.clone();
        async move {
            shutdown.await;
            info!(
                "shutting down: no new connections, GOAWAY on every connection, finishing in-flight calls"
            );
            stop_accepting.abort();
            health
                .set_not_serving::<CsiDriverProviderServer<ProviderService>>()
                .await;
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            let _ = stopping_tx.send(());
        }
    };
    // Every connection goes through the front (`watch::spawn_acceptor`), which makes h2 accept
    // any `:authority` (its limits are hyper's defaults, which this builder keeps: see
    // h2front::Limits).
    let incoming = tokio_stream::wrappers::ReceiverStream::new(conn_rx);
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
    let result = tokio::select! {
        result = &mut server => result.map_err(ServeError::from),
        () = deadline => {
            warn!(grace_s = grace.as_secs_f64(), "in-flight calls did not finish within the shutdown grace period; exiting");
            Ok(())
        }
    };
    drop(watcher);
    let id = *ours.lock().unwrap_or_else(|e| e.into_inner());
    drop(SocketGuard { path, id });
    result
}

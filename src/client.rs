//! Dialing the provider's own socket the way the CSI driver does (plaintext HTTP/2 over a Unix
//! socket, `:authority` = `localhost`). Used by the health endpoint and the test kit.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// A channel to the gRPC server on `socket`. The connection is made lazily per call, so a
/// channel outlives server restarts.
pub fn unix_channel(socket: &Path) -> Channel {
    let socket: PathBuf = socket.to_owned();
    Endpoint::from_static("http://localhost").connect_with_connector_lazy(tower::service_fn(
        move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        },
    ))
}

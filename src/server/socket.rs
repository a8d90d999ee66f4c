//! Binding the socket at the endpoint path: owner-only, atomically (a fresh socket is bound at a
//! private temporary name in the same directory, restricted to 0600 and `rename(2)`d over the
//! path), and only ever over a socket: a stale one always, a live one only with
//! `--socket-takeover`. The file is identified by (device, inode), so we never remove or treat as
//! ours a socket another process put at the path.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::UnixListener;
use tracing::{info, warn};

use super::ServeError;
use crate::proto::VersionRequest;
use crate::proto::csi_driver_provider_client::CsiDriverProviderClient;

/// (device, inode) of a file: which socket sits at the path, whoever named it.
pub type FileId = (u64, u64);

/// What is at the path now.
pub fn file_id(path: &Path) -> Option<FileId> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// How long the previous server may take to say who it is before it is replaced anyway.
const VERSION_TIMEOUT: Duration = Duration::from_secs(1);

/// A bound socket: the listener, where it is and which file it is.
#[derive(Debug)]
pub struct BoundSocket {
    pub listener: UnixListener,
    path: PathBuf,
    id: FileId,
}

impl BoundSocket {
    /// Where the socket lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// (device, inode) of our socket file.
    pub fn id(&self) -> FileId {
        self.id
    }
}

/// Removes our socket file when dropped (after shutdown), and only ours.
#[derive(Debug)]
pub struct SocketGuard {
    pub(super) path: PathBuf,
    /// (device, inode) of our socket: only that file is removed, never a successor's.
    pub(super) id: FileId,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        match file_id(&self.path) {
            None => return,
            Some(current) if current != self.id => {
                info!(path = %self.path.display(), "the socket now belongs to another process (a successor); leaving it");
                return;
            }
            Some(_) => {}
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => info!(path = %self.path.display(), "removed socket"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => warn!(path = %self.path.display(), error = %e, "could not remove socket"),
        }
    }
}

/// What sits at the path before we bind.
enum Occupant {
    Nothing,
    Stale,
    Live,
}

/// Binds `path` owner-only: creates the parent directory, refuses to replace a non-socket,
/// replaces a stale socket, and a live server's socket only when `takeover` is set (then logs
/// what it replaced). Connecting to the path reaches the old listener or ours, never nothing.
pub async fn bind(path: &Path, takeover: bool) -> Result<BoundSocket, ServeError> {
    let parent = parent_of(path);
    std::fs::create_dir_all(parent).map_err(|source| ServeError::CreateDir {
        path: parent.to_owned(),
        source,
    })?;
    match occupant(path).await? {
        Occupant::Nothing => {}
        Occupant::Stale => info!(path = %path.display(), "replacing stale socket"),
        Occupant::Live if !takeover => {
            return Err(ServeError::InUse {
                path: path.to_owned(),
            });
        }
        Occupant::Live => {
            let who = describe_server(path).await;
            info!(path = %path.display(), replaced = %who, "taking over the socket from a running server (--socket-takeover)");
        }
    }
    bind_over(path, Swap::Replace)
}

async fn occupant(path: &Path) -> Result<Occupant, ServeError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => Err(ServeError::NotASocket {
            path: path.to_owned(),
        }),
        Ok(_) if is_live(path).await => Ok(Occupant::Live),
        Ok(_) => Ok(Occupant::Stale),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Occupant::Nothing),
        Err(source) => Err(ServeError::Bind {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Whether something accepts connections on the socket at `path`. A listening socket accepts
/// into its backlog even if its process is busy, so only a dead one refuses.
pub(super) async fn is_live(path: &Path) -> bool {
    matches!(
        tokio::time::timeout(VERSION_TIMEOUT, tokio::net::UnixStream::connect(path)).await,
        Ok(Ok(_)) | Err(_)
    )
}

/// The runtime name and version the server on `path` reports, for the log.
async fn describe_server(path: &Path) -> String {
    let mut client = CsiDriverProviderClient::new(crate::client::unix_channel(path));
    let mut request = tonic::Request::new(VersionRequest {
        version: "v1alpha1".into(),
    });
    request.set_timeout(VERSION_TIMEOUT);
    match tokio::time::timeout(VERSION_TIMEOUT, client.version(request)).await {
        Ok(Ok(v)) => {
            let v = v.into_inner();
            format!("{} {}", v.runtime_name, v.runtime_version)
        }
        Ok(Err(status)) => format!("a server that did not answer Version ({:?})", status.code()),
        Err(_) => format!("a server that did not answer Version within {VERSION_TIMEOUT:?}"),
    }
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("/"))
}

/// How the fresh socket is put at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Swap {
    /// `rename(2)`: atomically replaces whatever socket is there.
    Replace,
    /// `link(2)`: only if the path is free (fails if someone else bound it meanwhile).
    IfFree,
}

/// Binds a fresh socket in a private (0700) directory next to `path`, restricts it to 0600 and
/// moves it to `path` (see [`Swap`]): the swap is atomic, and the socket is never reachable with
/// wider rights. The caller has decided that whatever is at `path` may be replaced.
pub(super) fn bind_over(path: &Path, swap: Swap) -> Result<BoundSocket, ServeError> {
    let bind_err = |source| ServeError::Bind {
        path: path.to_owned(),
        source,
    };
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let private_dir =
        parent_of(path).join(format!(".akv-csi-provider.{}.{nonce}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private_dir)
        .map_err(bind_err)?;
    let staged = private_dir.join("s.sock");
    let result = (|| {
        let listener = std::os::unix::net::UnixListener::bind(&staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        // The inode survives the rename: identify it before anyone else can replace it.
        let meta = std::fs::symlink_metadata(&staged)?;
        match swap {
            Swap::Replace => std::fs::rename(&staged, path)?,
            Swap::IfFree => std::fs::hard_link(&staged, path)?,
        }
        listener.set_nonblocking(true)?;
        Ok::<_, io::Error>((UnixListener::from_std(listener)?, (meta.dev(), meta.ino())))
    })();
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private_dir);
    let (listener, id) = result.map_err(bind_err)?;
    Ok(BoundSocket {
        listener,
        path: path.to_owned(),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_guard_never_removes_a_successor_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("azure.sock");
        let first = bind(&path, false).await.unwrap();
        let guard = SocketGuard {
            path: path.clone(),
            id: first.id(),
        };
        // A successor takes the live socket over.
        assert!(matches!(
            bind(&path, false).await,
            Err(ServeError::InUse { .. })
        ));
        let successor = bind(&path, true).await.unwrap();
        assert_ne!(successor.id(), first.id());
        assert_eq!(file_id(&path), Some(successor.id()));
        drop(guard);
        assert!(
            path.exists(),
            "the old guard removed the successor's socket"
        );
        drop(first);
        let successor_guard = SocketGuard {
            path: path.clone(),
            id: successor.id(),
        };
        drop(successor);
        drop(successor_guard);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_non_socket_is_never_replaced_even_with_takeover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("azure.sock");
        std::fs::write(&path, b"data").unwrap();
        assert!(matches!(
            bind(&path, true).await,
            Err(ServeError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }
}

//! Keeping the path served while we run. A socket can vanish under us: the Go provider's
//! listener unlinks its path by name when it closes (Go's `UnixListener.Close`), even after we
//! took the path over; a successor that took it may die before it is ready, leaving a dead
//! socket (or, if it shut down cleanly, removing its own). In those cases the path is bound
//! again, so connections by path keep reaching a server. A live successor's socket is left
//! alone: that is a hand-over, and we wait for SIGTERM.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::socket::{FileId, Swap, bind_over, file_id, is_live};
use crate::h2front::Front;

/// How often the path is checked for our socket (a `stat`): the longest a vanished socket
/// stays missing.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(50);
/// How often a foreign socket at the path is checked for life (a `connect`).
const FOREIGN_INTERVAL: Duration = Duration::from_secs(1);

pub(super) type Accepted = std::io::Result<Front<UnixStream>>;

/// Accepts on `listener` into `tx` until aborted; accept errors (e.g. out of descriptors) back
/// off instead of spinning.
pub(super) fn spawn_acceptor(
    listener: UnixListener,
    tx: mpsc::Sender<Accepted>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    if tx.send(Ok(Front::new(stream))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

/// Aborts the task when dropped.
pub(super) struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches `path` until aborted; `ours` is the (device, inode) of our current socket, updated
/// when the path is bound again; `acceptor` accepts on our current listener.
pub(super) async fn watch(
    path: PathBuf,
    ours: Arc<Mutex<FileId>>,
    mut acceptor: AbortOnDrop,
    tx: mpsc::Sender<Accepted>,
) {
    let mut foreign_checked: Option<Instant> = None;
    let mut replaced_logged = false;
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let mine = *ours.lock().unwrap_or_else(|e| e.into_inner());
        let swap = match file_id(&path) {
            Some(current) if current == mine => {
                replaced_logged = false;
                continue;
            }
            None => {
                warn!(path = %path.display(), "our socket was removed (a previous server unlinking the path on exit?); binding it again");
                Swap::IfFree
            }
            Some(_) => {
                if foreign_checked.is_some_and(|t| t.elapsed() < FOREIGN_INTERVAL) {
                    continue;
                }
                foreign_checked = Some(Instant::now());
                let is_socket = std::fs::symlink_metadata(&path)
                    .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                    .unwrap_or(false);
                if !is_socket {
                    if !replaced_logged {
                        warn!(path = %path.display(), "something other than a socket replaced ours; never touching it");
                        replaced_logged = true;
                    }
                    continue;
                }
                if is_live(&path).await {
                    if !replaced_logged {
                        info!(path = %path.display(), "another server took over the socket; finishing our connections until SIGTERM");
                        replaced_logged = true;
                    }
                    continue;
                }
                warn!(path = %path.display(), "the server that took over the socket is gone; taking the path back");
                Swap::Replace
            }
        };
        match bind_over(&path, swap) {
            Ok(bound) => {
                *ours.lock().unwrap_or_else(|e| e.into_inner()) = bound.id();
                // Stops accepting on the old listener, which no path reaches any more.
                drop(std::mem::replace(
                    &mut acceptor,
                    AbortOnDrop(spawn_acceptor(bound.listener, tx.clone())),
                ));
                replaced_logged = false;
                info!(path = %path.display(), "serving on the socket again");
            }
            // Someone bound it between our check and our link: look again next time.
            Err(e) => debug!(error = %e, "could not bind the path again"),
        }
    }
}

//! A front on each accepted connection that lets h2 (under tonic) serve clients whose
//! `:authority` it would refuse: driver v1.5.x and older send the socket's path
//! (`/var/run/secrets-store-csi-providers/azure.sock`), h2 fails to parse that as a URI
//! authority and resets every stream (hyperium/h2 PR #487, open since 2020, has no fixed
//! release), while the Go provider's grpc-go accepts anything. h2, hyper and tonic are used as
//! published; the front is ours.
//!
//! [`Front`] wraps the accepted stream. Writes (server→client) pass straight through. Reads
//! (client→server) go through [`Inbound`]: frames other than header blocks are copied as they
//! arrive; each header block (HEADERS + CONTINUATION) is decoded with our own HPACK decoder,
//! whose dynamic table mirrors the client's encoder, and encoded again for h2 with no
//! dynamic-table use at all (static-table references and literals "without indexing",
//! "never indexed" kept as such), with an `:authority` that h2 would refuse replaced by
//! `localhost`. h2's dynamic table therefore stays empty for the life of the connection.
//!
//! Why re-encode rather than patch the authority in place (the other design considered):
//! an in-place patch must keep both sides' tables equal, so a replacement must have the same
//! decoded length as the value it replaces. That fails for the empty authority a client may
//! insert into its table (`""` has no valid same-length replacement: h2 refuses an empty
//! authority), and re-framing is needed either way because a Huffman value rewritten changes
//! the block's length. Re-encoding has no such corner: any replacement of any length, empty
//! included, table-size updates absorbed by our decoder, padding dropped. Its costs are a
//! full decoder instead of a partial one, tested against an independent decoder
//! (`tests/h2front_props.rs`, the `h2front` fuzz target), and a few hundred more bytes per
//! request on the in-memory hop to h2, which BENCHMARKS.md ("The authority front") shows is
//! noise.
//!
//! Limits stay the server's: the decoder enforces the table size h2 advertises (4,096; tonic
//! never changes it), h2's 5-byte integers and its rule that size updates come first; a
//! decoded header list over h2's abuse bound (4 × SETTINGS_MAX_HEADER_LIST_SIZE) or a
//! malformed block makes the front hand h2 an undecodable block, so h2 closes the connection
//! with its own error. h2 still judges everything else (pseudo-header order, header names and
//! values, list size, stream states), on the same bytes the client meant. What the front does
//! not understand at the framing level reaches h2 unchanged (see [`inbound`]).

mod encode;
pub mod hpack;
pub mod huffman;
pub mod inbound;
mod repair;
pub mod tables;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

pub use inbound::{Inbound, Limits, Recode};
pub use repair::{REPLACEMENT_AUTHORITY, Repair, authority_is_valid};

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// An accepted connection whose client→server bytes pass through an [`Inbound`] rewriter.
pub struct Front<S, R = Repair> {
    inner: S,
    inbound: Inbound<R>,
    /// Rewritten bytes not yet read by the server, from `pos` on.
    pending: Vec<u8>,
    pos: usize,
    scratch: Box<[u8]>,
    eof: bool,
}

impl<S> Front<S> {
    /// The front for a connection to a server with hyper's default HTTP/2 limits (the ones
    /// [`crate::server::serve`] runs with).
    pub fn new(inner: S) -> Self {
        Front::with_recoder(inner, Repair::new(), Limits::default())
    }

    /// How many `:authority` values were replaced on this connection so far.
    pub fn replaced(&self) -> u64 {
        self.inbound.recoder().replaced()
    }
}

impl<S, R: Recode> Front<S, R> {
    /// A front with another recoder (the test kit's client impersonates old drivers with one).
    pub fn with_recoder(inner: S, recode: R, limits: Limits) -> Self {
        Front {
            inner,
            inbound: Inbound::new(recode, limits),
            pending: Vec::new(),
            pos: 0,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            eof: false,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin, R: Recode + Unpin> AsyncRead for Front<S, R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.pending.len() {
                let n = buf.remaining().min(this.pending.len() - this.pos);
                buf.put_slice(&this.pending[this.pos..this.pos + n]);
                this.pos += n;
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            this.pending.clear();
            this.pos = 0;
            if read.filled().is_empty() {
                this.eof = true;
                this.inbound.finish(&mut this.pending);
            } else {
                this.inbound.push(read.filled(), &mut this.pending);
            }
            // Nothing to hand on yet (a header block is still arriving): read again rather
            // than return an empty read, which would mean end of stream.
        }
    }
}

impl<S: AsyncWrite + Unpin, R: Unpin> AsyncWrite for Front<S, R> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Request extensions see the wrapped stream's connection info (the peer's credentials).
impl<S: Connected, R> Connected for Front<S, R> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

//! Playing a driver v1.5.x on the wire: its grpc-go v1.56 client sends the socket's path (or
//! whatever it was given) as `:authority`, which tonic's own client cannot. A channel made
//! here runs tonic's client through a local pipe whose client→server bytes are rewritten by
//! the front's machinery in reverse: each header block is decoded and encoded again the way
//! grpc-go's HPACK encoder (golang.org/x/net/http2/hpack) does it — exact table match →
//! indexed; otherwise a literal with incremental indexing (indexed name where one exists);
//! Huffman whenever shorter — with `:authority` set to the chosen bytes. So the first request
//! carries the path as a Huffman literal inserted into the table, and later ones refer to it
//! by dynamic index, as the real driver's do.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::h2front::hpack::{
    self, DEFAULT_TABLE_SIZE, DecodeError, Decoder, ENTRY_OVERHEAD, Field,
};
use crate::h2front::{Front, Limits, Recode, huffman};

/// An HPACK encoder that makes grpc-go's choices.
#[derive(Debug)]
pub struct GoEncoder {
    /// Newest first.
    table: VecDeque<(Bytes, Bytes)>,
    size: usize,
    max_size: usize,
}

impl Default for GoEncoder {
    fn default() -> Self {
        GoEncoder {
            table: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
        }
    }
}

impl GoEncoder {
    /// Appends `field`'s encoding, updating the table as the peer's decoder will.
    pub fn encode(&mut self, field: &Field, out: &mut Vec<u8>) {
        let (exact, by_name) = self.search(&field.name, &field.value);
        if let Some(index) = exact {
            hpack::encode_integer(index, 7, 0x80, out);
            return;
        }
        let size = field.name.len() + field.value.len() + ENTRY_OVERHEAD;
        let index = !field.never_indexed && size <= self.max_size;
        let (prefix, flags) = match (index, field.never_indexed) {
            (true, _) => (6, 0x40),
            (false, true) => (4, 0x10),
            (false, false) => (4, 0x00),
        };
        match by_name {
            Some(i) => hpack::encode_integer(i, prefix, flags, out),
            None => {
                out.push(flags);
                go_string(&field.name, out);
            }
        }
        go_string(&field.value, out);
        if index {
            while self.size + size > self.max_size {
                match self.table.pop_back() {
                    Some((n, v)) => self.size -= n.len() + v.len() + ENTRY_OVERHEAD,
                    None => break,
                }
            }
            self.table
                .push_front((field.name.clone(), field.value.clone()));
            self.size += size;
        }
    }

    fn search(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let (exact, mut by_name) = hpack::static_index(name, value);
        if exact.is_some() {
            return (exact, by_name);
        }
        for (i, (n, v)) in self.table.iter().enumerate() {
            if &n[..] == name {
                if &v[..] == value {
                    return (Some(62 + i), by_name.or(Some(62 + i)));
                }
                by_name = by_name.or(Some(62 + i));
            }
        }
        (None, by_name)
    }
}

/// grpc-go's string choice: Huffman when strictly shorter.
fn go_string(s: &[u8], out: &mut Vec<u8>) {
    hpack::encode_string(s, huffman::encoded_len(s) < s.len(), out);
}

/// Decodes tonic's header blocks and encodes them as grpc-go would, with `:authority` set.
pub struct Impersonate {
    decoder: Decoder,
    encoder: GoEncoder,
    /// `None` drops the field.
    authority: Option<Vec<u8>>,
    fields: Vec<Field>,
}

impl Impersonate {
    /// Sends `authority` (or no `:authority` at all) on every request.
    pub fn new(authority: Option<&[u8]>) -> Self {
        Impersonate {
            decoder: Decoder::new(DEFAULT_TABLE_SIZE),
            encoder: GoEncoder::default(),
            authority: authority.map(<[u8]>::to_vec),
            fields: Vec::new(),
        }
    }
}

impl Recode for Impersonate {
    fn recode(
        &mut self,
        block: &[u8],
        _limits: &Limits,
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        self.fields.clear();
        self.decoder.decode(block, usize::MAX, &mut self.fields)?;
        for field in &self.fields {
            if &field.name[..] != b":authority" {
                self.encoder.encode(field, out);
            } else if let Some(authority) = &self.authority {
                let replaced = Field {
                    value: Bytes::copy_from_slice(authority),
                    ..field.clone()
                };
                self.encoder.encode(&replaced, out);
            }
        }
        Ok(())
    }
}

/// A channel to `socket` whose requests carry `authority` as `:authority` (`None`: none),
/// encoded the way driver v1.5's grpc-go encodes it.
pub fn channel_with_authority(socket: &Path, authority: Option<&[u8]>) -> Channel {
    let socket: PathBuf = socket.to_owned();
    let authority = authority.map(<[u8]>::to_vec);
    Endpoint::from_static("http://localhost").connect_with_connector_lazy(tower::service_fn(
        move |_: Uri| {
            let socket = socket.clone();
            let authority = authority.clone();
            async move {
                let server = UnixStream::connect(&socket).await?;
                let (client_side, pipe) = UnixStream::pair()?;
                let (pipe_read, mut pipe_write) = pipe.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let recode = Impersonate::new(authority.as_deref());
                let mut rewritten = Front::with_recoder(pipe_read, recode, Limits::default());
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut rewritten, &mut server_write).await;
                    let _ = server_write.shutdown().await;
                });
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut pipe_write).await;
                    let _ = pipe_write.shutdown().await;
                });
                Ok::<_, std::io::Error>(TokioIo::new(client_side))
            }
        },
    ))
}

//! The client→server bytes of one HTTP/2 connection, rewritten frame by frame (sans I/O: bytes
//! in, bytes out). Everything but header blocks is copied as it arrives; a header block
//! (HEADERS + CONTINUATION frames up to END_HEADERS) is held until complete, handed to a
//! [`Recode`], and sent on as fresh frames of at most 16,384 bytes — padding dropped, the
//! PRIORITY fields and END_STREAM kept.
//!
//! Framing the server would refuse with a connection error before it decodes anything (a bad
//! preface, an oversized or misplaced header frame, bad padding, stream 0, an interleaved
//! frame) is not ours to judge: the front hands the server the client's original bytes from
//! there on and stops rewriting, so the server answers exactly as it would without the front.
//! A block that fails to decode cannot be handed on (the server's HPACK table is not the
//! client's), so the front sends the server a one-byte block no decoder accepts (index 0), and
//! the server ends the connection with its own error.

use super::hpack::DecodeError;

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frame header length.
pub const HEAD_LEN: usize = 9;
/// The frame size every HTTP/2 peer accepts (the initial SETTINGS_MAX_FRAME_SIZE): the front
/// never emits a larger header frame.
pub const OUT_FRAME: usize = 16_384;

const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// What the server behind the front was configured to accept (hyper's HTTP/2 defaults, which
/// tonic keeps unless `Server::max_frame_size` / `http2_max_header_list_size` are set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// SETTINGS_MAX_FRAME_SIZE the server advertises.
    pub max_frame_size: usize,
    /// SETTINGS_HEADER_TABLE_SIZE the server works with (the client's encoder table bound).
    pub header_table_size: usize,
    /// SETTINGS_MAX_HEADER_LIST_SIZE the server advertises.
    pub max_header_list_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: 16_384,
            header_table_size: super::hpack::DEFAULT_TABLE_SIZE,
            max_header_list_size: 16_384,
        }
    }
}

impl Limits {
    /// The decoded header-list size past which h2 gives up on a connection
    /// (4 × SETTINGS_MAX_HEADER_LIST_SIZE, "header list way too large"); also the most raw
    /// header-block bytes the front holds.
    pub fn abuse_size(&self) -> usize {
        self.max_header_list_size.saturating_mul(4)
    }
}

/// Re-encodes one complete header block for the server.
pub trait Recode {
    /// Appends the new encoding of `block` to `out`; an error ends rewriting.
    fn recode(
        &mut self,
        block: &[u8],
        limits: &Limits,
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError>;
}

#[derive(Debug, Clone, Copy)]
struct Head {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl Head {
    fn parse(b: &[u8; HEAD_LEN]) -> Head {
        Head {
            len: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }
}

/// A header block being collected.
struct Block {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The client's frames as received, in case they must be handed on unchanged.
    raw: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// This many preface bytes seen.
    Preface(usize),
    /// Reading a frame header into `head`.
    Head,
    /// Copying this many more bytes of a frame that is not a header frame.
    Copy(usize),
    /// Reading a header frame (raw, header included) into `frame`.
    Collect(Head),
    /// No longer rewriting: every byte goes through as it is.
    Passthrough,
}

/// The rewriting state of one connection's client→server direction.
pub struct Inbound<R> {
    recode: R,
    limits: Limits,
    state: State,
    head: [u8; HEAD_LEN],
    head_len: usize,
    frame: Vec<u8>,
    block: Option<Block>,
    encoded: Vec<u8>,
    rewritten: u64,
}

impl<R: Recode> Inbound<R> {
    /// A connection that has sent nothing yet.
    pub fn new(recode: R, limits: Limits) -> Self {
        Inbound {
            recode,
            limits,
            state: State::Preface(0),
            head: [0; HEAD_LEN],
            head_len: 0,
            frame: Vec::new(),
            block: None,
            encoded: Vec::new(),
            rewritten: 0,
        }
    }

    /// The recoder (for its counters).
    pub fn recoder(&self) -> &R {
        &self.recode
    }

    /// How many header blocks were decoded and re-encoded so far.
    pub fn rewritten(&self) -> u64 {
        self.rewritten
    }

    /// Whether the front gave up rewriting this connection.
    pub fn passing_through(&self) -> bool {
        matches!(self.state, State::Passthrough)
    }

    /// Bytes held back until a header block completes.
    pub fn held(&self) -> usize {
        self.head_len + self.frame.len() + self.block.as_ref().map_or(0, |b| b.raw.len())
    }

    /// Consumes bytes the client sent, appending what the server should read to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match self.state {
                State::Passthrough => {
                    out.extend_from_slice(input);
                    return;
                }
                State::Preface(seen) => {
                    let want = &PREFACE[seen..];
                    let n = want.len().min(input.len());
                    if input[..n] != want[..n] {
                        self.state = State::Passthrough;
                        continue;
                    }
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if seen + n == PREFACE.len() {
                        State::Head
                    } else {
                        State::Preface(seen + n)
                    };
                }
                State::Copy(remaining) => {
                    let n = remaining.min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if n == remaining {
                        State::Head
                    } else {
                        State::Copy(remaining - n)
                    };
                }
                State::Head => {
                    let n = (HEAD_LEN - self.head_len).min(input.len());
                    self.head[self.head_len..self.head_len + n].copy_from_slice(&input[..n]);
                    self.head_len += n;
                    input = &input[n..];
                    if self.head_len == HEAD_LEN {
                        self.head_len = 0;
                        self.on_head(out);
                    }
                }
                State::Collect(head) => {
                    let n = (HEAD_LEN + head.len - self.frame.len()).min(input.len());
                    self.frame.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.frame.len() == HEAD_LEN + head.len {
                        self.on_frame(head, out);
                    }
                }
            }
        }
    }

    /// The client closed its side: whatever is held goes to the server as it was.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.held() == 0 {
            return;
        }
        let head_len = std::mem::take(&mut self.head_len);
        let head = self.head;
        self.bail(&head[..head_len], out);
    }

    fn on_head(&mut self, out: &mut Vec<u8>) {
        let bytes = self.head;
        let head = Head::parse(&bytes);
        let is_header = head.kind == HEADERS || head.kind == CONTINUATION;
        let continues = match &self.block {
            Some(block) => head.kind == CONTINUATION && head.stream == block.stream,
            None => head.kind != CONTINUATION,
        };
        if !continues {
            return self.bail(&bytes, out);
        }
        if !is_header {
            out.extend_from_slice(&bytes);
            self.state = if head.len == 0 {
                State::Head
            } else {
                State::Copy(head.len)
            };
            return;
        }
        let held = self.block.as_ref().map_or(0, |b| b.raw.len());
        if head.len > self.limits.max_frame_size
            || head.stream == 0
            || held + HEAD_LEN + head.len > self.limits.abuse_size()
        {
            return self.bail(&bytes, out);
        }
        self.frame.clear();
        self.frame.extend_from_slice(&bytes);
        self.state = State::Collect(head);
        if head.len == 0 {
            self.on_frame(head, out);
        }
    }

    fn on_frame(&mut self, head: Head, out: &mut Vec<u8>) {
        self.state = State::Head;
        if head.kind == HEADERS {
            let payload = &self.frame[HEAD_LEN..];
            let mut start = 0;
            let mut pad = 0;
            if head.flags & PADDED != 0 {
                let Some(&n) = payload.first() else {
                    return self.bail(&[], out);
                };
                pad = usize::from(n);
                start = 1;
            }
            let mut priority = None;
            if head.flags & PRIORITY != 0 {
                let Some(fields) = payload.get(start..start + 5) else {
                    return self.bail(&[], out);
                };
                let mut p = [0; 5];
                p.copy_from_slice(fields);
                priority = Some(p);
                start += 5;
            }
            if pad > payload.len() - start {
                return self.bail(&[], out);
            }
            let fragment = payload[start..payload.len() - pad].to_vec();
            self.block = Some(Block {
                stream: head.stream,
                end_stream: head.flags & END_STREAM != 0,
                priority,
                fragment,
                raw: std::mem::take(&mut self.frame),
            });
        } else if let Some(block) = &mut self.block {
            block.fragment.extend_from_slice(&self.frame[HEAD_LEN..]);
            block.raw.extend_from_slice(&self.frame);
            self.frame.clear();
        }
        if head.flags & END_HEADERS != 0 {
            self.end_block(out);
        }
    }

    fn end_block(&mut self, out: &mut Vec<u8>) {
        let Some(block) = self.block.take() else {
            return;
        };
        self.encoded.clear();
        match self
            .recode
            .recode(&block.fragment, &self.limits, &mut self.encoded)
        {
            Ok(()) => {
                self.rewritten += 1;
                write_block(&block, &self.encoded, out);
            }
            Err(_) => {
                // Index 0: a decoding error in every HPACK decoder.
                write_head(out, 1, HEADERS, END_HEADERS, block.stream);
                out.push(0x80);
                self.state = State::Passthrough;
            }
        }
    }

    /// Stops rewriting: held bytes, then `extra`, go to the server unchanged.
    fn bail(&mut self, extra: &[u8], out: &mut Vec<u8>) {
        if let Some(block) = self.block.take() {
            out.extend_from_slice(&block.raw);
        }
        out.extend_from_slice(&self.frame);
        self.frame.clear();
        out.extend_from_slice(extra);
        self.state = State::Passthrough;
    }
}

fn write_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// HEADERS (with the block's priority and END_STREAM) and CONTINUATION frames for `encoded`.
fn write_block(block: &Block, encoded: &[u8], out: &mut Vec<u8>) {
    let priority: &[u8] = block.priority.as_ref().map_or(&[], |p| &p[..]);
    let (first, mut rest) = encoded.split_at(encoded.len().min(OUT_FRAME - priority.len()));
    let mut flags = 0;
    if block.end_stream {
        flags |= END_STREAM;
    }
    if block.priority.is_some() {
        flags |= PRIORITY;
    }
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    write_head(
        out,
        priority.len() + first.len(),
        HEADERS,
        flags,
        block.stream,
    );
    out.extend_from_slice(priority);
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(OUT_FRAME));
        rest = tail;
        let flags = if rest.is_empty() { END_HEADERS } else { 0 };
        write_head(out, chunk.len(), CONTINUATION, flags, block.stream);
        out.extend_from_slice(chunk);
    }
}

//! Property tests for the authority front (`h2front`): random header lists, encoded with
//! random HPACK choices (indexed, incremental, without indexing, never indexed, Huffman or
//! raw, table-size updates, evictions), framed with random CONTINUATION splits, padding,
//! priority and END_STREAM, interleaved with other frames and fed in random chunks. An
//! independent HPACK decoder (loona-hpack) reads both the client's bytes and what the front
//! hands h2: the lists must be equal except for an `:authority` h2 would refuse, which
//! becomes `localhost`; other frames must pass byte for byte; nothing may panic.

use std::collections::VecDeque;

use akv_csi_provider::h2front::hpack::{encode_integer, encode_string, static_index};
use akv_csi_provider::h2front::inbound::{HEAD_LEN, OUT_FRAME, PREFACE};
use akv_csi_provider::h2front::{Inbound, Limits, Repair};
use proptest::prelude::*;

const TABLE: usize = 4096;

#[derive(Debug, Clone)]
struct GenField {
    name: Vec<u8>,
    value: Vec<u8>,
    /// 0 indexed if possible, 1 incremental, 2 without indexing, 3 never indexed.
    rep: u8,
    name_by_index: bool,
    huffman_name: bool,
    huffman_value: bool,
}

#[derive(Debug, Clone)]
struct GenBlock {
    size_updates: Vec<usize>,
    fields: Vec<GenField>,
    splits: Vec<prop::sample::Index>,
    pad: Option<u8>,
    priority: Option<(u32, u8)>,
    end_stream: bool,
    /// A frame of another type after the block: (type, payload length).
    then: Option<(u8, usize)>,
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(b":authority".to_vec()),
        1 => Just(b":path".to_vec()),
        1 => Just(b":method".to_vec()),
        1 => Just(b"content-type".to_vec()),
        1 => Just(b"grpc-timeout".to_vec()),
        1 => Just(b"user-agent".to_vec()),
        2 => "[a-z][a-z0-9-]{0,20}".prop_map(String::into_bytes),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(b"/var/run/secrets-store-csi-providers/azure.sock".to_vec()),
        1 => Just(b"%2Fvar%2Frun%2Fsecrets-store-csi-providers%2Fazure.sock".to_vec()),
        2 => Just(Vec::new()),
        2 => Just(b"localhost".to_vec()),
        1 => Just(b"POST".to_vec()),
        // A small pool, so later fields find earlier ones in the table.
        6 => (0u8..6).prop_map(|i| format!("value-{i}").into_bytes()),
        3 => prop::collection::vec(any::<u8>(), 0..40),
        1 => prop::collection::vec(any::<u8>(), 500..3000),
    ]
}

fn field() -> impl Strategy<Value = GenField> {
    (
        name(),
        value(),
        0u8..4,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(name, value, rep, name_by_index, huffman_name, huffman_value)| GenField {
                name,
                value,
                rep,
                name_by_index,
                huffman_name,
                huffman_value,
            },
        )
}

fn block() -> impl Strategy<Value = GenBlock> {
    (
        prop::collection::vec(
            prop_oneof![Just(0usize), Just(TABLE), 0..=TABLE, 40usize..=400],
            0..3,
        ),
        prop::collection::vec(field(), 1..12),
        prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        prop::option::of(any::<u8>()),
        prop::option::of((0u32..9, any::<u8>())),
        any::<bool>(),
        prop::option::of((
            prop_oneof![Just(0u8), Just(6), Just(8), Just(0xfa)],
            0usize..300,
        )),
    )
        .prop_map(
            |(size_updates, fields, splits, pad, priority, end_stream, then)| GenBlock {
                size_updates,
                fields,
                splits,
                pad,
                priority,
                end_stream,
                then,
            },
        )
}

/// A random-choice HPACK encoder with its own table (the client's).
#[derive(Default)]
struct Client {
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max: usize,
}

impl Client {
    fn evict(&mut self, to: usize) {
        while self.size > to {
            let (n, v) = self.table.pop_back().unwrap();
            self.size -= n.len() + v.len() + 32;
        }
    }

    fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let (mut exact, mut by_name) = static_index(name, value);
        for (i, (n, v)) in self.table.iter().enumerate() {
            if n == name {
                by_name = by_name.or(Some(62 + i));
                if v == value {
                    exact = exact.or(Some(62 + i));
                }
            }
        }
        (exact, by_name)
    }

    fn encode(&mut self, block: &GenBlock) -> Vec<u8> {
        let mut out = Vec::new();
        for &size in &block.size_updates {
            encode_integer(size, 5, 0x20, &mut out);
            self.max = size;
            self.evict(size);
        }
        for f in &block.fields {
            let (exact, by_name) = self.find(&f.name, &f.value);
            if let (0, Some(index)) = (f.rep, exact) {
                encode_integer(index, 7, 0x80, &mut out);
                continue;
            }
            let (prefix, flags) = match f.rep {
                0 | 1 => (6, 0x40),
                2 => (4, 0x00),
                _ => (4, 0x10),
            };
            match by_name.filter(|_| f.name_by_index) {
                Some(index) => encode_integer(index, prefix, flags, &mut out),
                None => {
                    out.push(flags);
                    encode_string(&f.name, f.huffman_name, &mut out);
                }
            }
            encode_string(&f.value, f.huffman_value, &mut out);
            if flags == 0x40 {
                let size = f.name.len() + f.value.len() + 32;
                if size > self.max {
                    self.table.clear();
                    self.size = 0;
                } else {
                    self.evict(self.max - size);
                    self.table.push_front((f.name.clone(), f.value.clone()));
                    self.size += size;
                }
            }
        }
        out
    }
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len();
    out.extend([(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// The client's bytes, the expected header lists and the other frames, in order.
struct Connection {
    bytes: Vec<u8>,
    lists: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    headers: Vec<(u32, bool, Option<[u8; 5]>)>,
    others: Vec<Vec<u8>>,
}

fn build(blocks: &[GenBlock]) -> Connection {
    let mut client = Client {
        max: TABLE,
        ..Client::default()
    };
    let mut bytes = PREFACE.to_vec();
    let mut others = Vec::new();
    let mut settings = Vec::new();
    frame(&mut settings, 0x4, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]);
    bytes.extend(&settings);
    others.push(settings);
    let (mut lists, mut headers) = (Vec::new(), Vec::new());
    for (i, b) in blocks.iter().enumerate() {
        let stream = 1 + 2 * i as u32;
        let encoded = client.encode(b);
        // Split points, then no piece over what one frame may carry.
        let mut cuts: Vec<usize> = b
            .splits
            .iter()
            .map(|s| s.index(encoded.len() + 1))
            .collect();
        let mut at = 0;
        while encoded.len() - at > 16_000 {
            at += 16_000;
            cuts.push(at);
        }
        cuts.sort();
        cuts.dedup();
        let mut pieces = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([encoded.len()]) {
            if cut - start > 16_000 {
                pieces.push(&encoded[start..start + 16_000]);
                start += 16_000;
            }
            pieces.push(&encoded[start..cut]);
            start = cut;
        }
        let priority = b.priority.map(|(dep, weight)| {
            let d = (dep * 2 + 1).to_be_bytes();
            [d[0], d[1], d[2], d[3], weight]
        });
        for (n, piece) in pieces.iter().enumerate() {
            let last = n + 1 == pieces.len();
            let end_headers = if last { 0x4 } else { 0 };
            if n == 0 {
                let mut flags = end_headers | if b.end_stream { 0x1 } else { 0 };
                let mut payload = Vec::new();
                let pad = b
                    .pad
                    .map(|p| p as usize % (16_384 - 6 - piece.len()).min(256));
                if let Some(p) = pad {
                    flags |= 0x8;
                    payload.push(p as u8);
                }
                if let Some(p) = priority {
                    flags |= 0x20;
                    payload.extend(p);
                }
                payload.extend_from_slice(piece);
                payload.extend(std::iter::repeat_n(0xa5, pad.unwrap_or(0)));
                frame(&mut bytes, 0x1, flags, stream, &payload);
            } else {
                frame(&mut bytes, 0x9, end_headers, stream, piece);
            }
        }
        headers.push((stream, b.end_stream, priority));
        lists.push(
            b.fields
                .iter()
                .map(|f| {
                    let bad = f.name == b":authority"
                        && http::uri::Authority::try_from(&f.value[..]).is_err();
                    let value = if bad {
                        b"localhost".to_vec()
                    } else {
                        f.value.clone()
                    };
                    (f.name.clone(), value)
                })
                .collect(),
        );
        if let Some((kind, len)) = b.then {
            let mut other = Vec::new();
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            frame(
                &mut other,
                kind,
                0,
                if kind == 6 { 0 } else { stream },
                &payload,
            );
            bytes.extend(&other);
            others.push(other);
        }
    }
    Connection {
        bytes,
        lists,
        headers,
        others,
    }
}

fn run(bytes: &[u8], chunks: &[usize]) -> (Vec<u8>, Inbound<Repair>) {
    let mut inbound = Inbound::new(Repair::new(), Limits::default());
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&rest.len())).clamp(1, rest.len());
        inbound.push(&rest[..n], &mut out);
        rest = &rest[n..];
    }
    inbound.finish(&mut out);
    (out, inbound)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn h2_reads_what_the_client_meant(
        blocks in prop::collection::vec(block(), 1..6),
        chunks in prop::collection::vec(1usize..3000, 1..8),
    ) {
        let conn = build(&blocks);
        let (out, inbound) = run(&conn.bytes, &chunks);
        prop_assert!(!inbound.passing_through());
        prop_assert_eq!(inbound.held(), 0);
        let (whole, _) = run(&conn.bytes, &[usize::MAX]);
        prop_assert_eq!(&whole, &out, "chunking changed the output");

        prop_assert_eq!(&out[..PREFACE.len()], &PREFACE[..]);
        let mut h2 = loona_hpack::Decoder::new();
        let (mut pos, mut lists, mut headers, mut others) = (PREFACE.len(), 0, 0, 0);
        while pos < out.len() {
            prop_assert!(out.len() - pos >= HEAD_LEN);
            let h = &out[pos..pos + HEAD_LEN];
            let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
            let (kind, flags) = (h[3], h[4]);
            let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
            if kind != 0x1 {
                let other = &conn.others[others];
                prop_assert_eq!(&out[pos..pos + len + HEAD_LEN], &other[..]);
                others += 1;
                pos += HEAD_LEN + len;
                continue;
            }
            // A header block: HEADERS, then CONTINUATION frames on the same stream.
            let (want_stream, end_stream, priority) = conn.headers[headers];
            headers += 1;
            prop_assert_eq!(stream, want_stream);
            prop_assert_eq!(flags & 0x8, 0, "padding is dropped");
            prop_assert_eq!(flags & 0x1 != 0, end_stream);
            let mut payload = &out[pos + HEAD_LEN..pos + HEAD_LEN + len];
            prop_assert!(len <= OUT_FRAME);
            match priority {
                Some(p) => {
                    prop_assert!(flags & 0x20 != 0);
                    prop_assert_eq!(&payload[..5], &p[..]);
                    payload = &payload[5..];
                }
                None => prop_assert_eq!(flags & 0x20, 0),
            }
            let mut block = payload.to_vec();
            let mut end = flags & 0x4 != 0;
            pos += HEAD_LEN + len;
            while !end {
                let h = &out[pos..pos + HEAD_LEN];
                let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                prop_assert_eq!(h[3], 0x9);
                prop_assert!(len <= OUT_FRAME);
                prop_assert_eq!(u32::from_be_bytes([h[5], h[6], h[7], h[8]]), stream);
                block.extend_from_slice(&out[pos + HEAD_LEN..pos + HEAD_LEN + len]);
                end = h[4] & 0x4 != 0;
                pos += HEAD_LEN + len;
            }
            let got = h2.decode(&block).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(&got, &conn.lists[lists]);
            lists += 1;
        }
        prop_assert_eq!(lists, conn.lists.len());
        prop_assert_eq!(others, conn.others.len());
        // And the independent decoder agrees with the generator about the client's bytes.
        let mut oracle = loona_hpack::Decoder::new();
        let mut client = Client { max: TABLE, ..Client::default() };
        for (b, list) in blocks.iter().zip(&conn.lists) {
            let sent = oracle.decode(&client.encode(b)).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            let meant: Vec<_> = b.fields.iter().map(|f| (f.name.clone(), f.value.clone())).collect();
            prop_assert_eq!(&sent, &meant);
            prop_assert_eq!(sent.len(), list.len());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_leave_bytes_behind(
        frames in prop::collection::vec((any::<u8>(), any::<u8>(), 0u32..6, prop::collection::vec(any::<u8>(), 0..200)), 0..20),
        chunks in prop::collection::vec(1usize..500, 1..6),
    ) {
        let mut bytes = PREFACE.to_vec();
        for (kind, flags, stream, payload) in &frames {
            frame(&mut bytes, kind % 11, *flags, *stream, payload);
        }
        let (out, inbound) = run(&bytes, &chunks);
        let (whole, _) = run(&bytes, &[usize::MAX]);
        prop_assert_eq!(&whole, &out);
        prop_assert_eq!(inbound.held(), 0, "finish() hands on everything held");
        prop_assert!(!out.is_empty());
    }
}

#[test]
fn an_undecodable_block_becomes_one_no_decoder_accepts() {
    let mut bytes = PREFACE.to_vec();
    frame(&mut bytes, 0x1, 0x4, 1, &[0x82, 0xbe]); // index 62: the table is empty
    frame(&mut bytes, 0x0, 0x1, 1, b"after");
    let (out, inbound) = run(&bytes, &[7]);
    assert!(inbound.passing_through());
    let mut want = PREFACE.to_vec();
    frame(&mut want, 0x1, 0x4, 1, &[0x80]);
    frame(&mut want, 0x0, 0x1, 1, b"after");
    assert_eq!(out, want);
}

#[test]
fn framing_errors_reach_h2_unchanged() {
    let cases: Vec<Vec<u8>> = vec![
        // CONTINUATION without HEADERS.
        [vec![0, 0, 1, 0x9, 0x4, 0, 0, 0, 1], vec![0x82]].concat(),
        // HEADERS on stream 0.
        [vec![0, 0, 1, 0x1, 0x4, 0, 0, 0, 0], vec![0x82]].concat(),
        // Padding longer than the payload.
        [vec![0, 0, 2, 0x1, 0x4 | 0x8, 0, 0, 0, 1], vec![5, 0x82]].concat(),
        // PRIORITY without its 5 bytes.
        [vec![0, 0, 2, 0x1, 0x4 | 0x20, 0, 0, 0, 1], vec![0, 0]].concat(),
        // A DATA frame inside a header block.
        [
            vec![0, 0, 1, 0x1, 0, 0, 0, 0, 1, 0x82],
            vec![0, 0, 0, 0x0, 0, 0, 0, 0, 1],
        ]
        .concat(),
        // A HEADERS frame over the maximum frame size.
        [
            vec![0, 0x40, 0x01, 0x1, 0x4, 0, 0, 0, 1],
            vec![0x82; 16_385],
        ]
        .concat(),
    ];
    for case in cases {
        let bytes = [PREFACE.to_vec(), case].concat();
        let (out, inbound) = run(&bytes, &[3]);
        assert!(inbound.passing_through());
        assert_eq!(out, bytes);
    }
    // Not even HTTP/2.
    let (out, _) = run(b"GET / HTTP/1.1\r\n\r\n", &[4]);
    assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n");
}

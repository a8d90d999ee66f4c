//! The HPACK representations the front and the test kit emit (RFC 7541 §5-6).

use super::hpack::Field;
use super::huffman;
use super::tables::STATIC_TABLE;

/// Appends an integer with an N-bit prefix; `flags` holds the bits above the prefix.
pub fn encode_integer(value: usize, prefix: u8, flags: u8, out: &mut Vec<u8>) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a string literal, Huffman-coded or raw.
pub fn encode_string(s: &[u8], huffman: bool, out: &mut Vec<u8>) {
    if huffman {
        encode_integer(huffman::encoded_len(s), 7, 0x80, out);
        huffman::encode(s, out);
    } else {
        encode_integer(s.len(), 7, 0, out);
        out.extend_from_slice(s);
    }
}

/// The static table's index of (`name`, `value`) and of the first entry named `name`.
pub fn static_index(name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
    let mut by_name = None;
    for (i, (n, v)) in STATIC_TABLE.iter().enumerate() {
        if n.as_bytes() == name {
            if v.as_bytes() == value {
                return (Some(i + 1), by_name.or(Some(i + 1)));
            }
            by_name = by_name.or(Some(i + 1));
        }
    }
    (None, by_name)
}

/// Appends `field` in a representation that leaves the receiver's dynamic table alone: the
/// static entry when one matches exactly, else a literal "without indexing" (or "never
/// indexed", kept as the client sent it) with a static name index where one exists and raw
/// strings (nothing to decode on the other side).
pub fn encode_unindexed(field: &Field, out: &mut Vec<u8>) {
    let (exact, by_name) = static_index(&field.name, &field.value);
    if let (Some(index), false) = (exact, field.never_indexed) {
        encode_integer(index, 7, 0x80, out);
        return;
    }
    let flags = if field.never_indexed { 0x10 } else { 0x00 };
    match by_name {
        Some(index) => encode_integer(index, 4, flags, out),
        None => {
            out.push(flags);
            encode_string(&field.name, false, out);
        }
    }
    encode_string(&field.value, false, out);
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::h2front::hpack::{DEFAULT_TABLE_SIZE, Decoder, integer};

    #[test]
    fn unindexed_encodings_decode_back() {
        let fields = [
            (":method", "POST", false),
            (":authority", "localhost", false),
            ("content-type", "application/grpc", false),
            ("x-secret", "s3cr3t", true),
            ("authorization", "", true),
            ("grpc-timeout", "119999m", false),
        ];
        let mut block = Vec::new();
        for (name, value, never) in fields {
            encode_unindexed(
                &Field {
                    name: Bytes::from_static(name.as_bytes()),
                    value: Bytes::from_static(value.as_bytes()),
                    never_indexed: never,
                },
                &mut block,
            );
        }
        let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
        let mut out = Vec::new();
        d.decode(&block, usize::MAX, &mut out).unwrap();
        assert_eq!(d.table(), (0, 0), "nothing may enter the receiver's table");
        for ((name, value, never), got) in fields.iter().zip(&out) {
            assert_eq!(
                (&got.name[..], &got.value[..]),
                (name.as_bytes(), value.as_bytes())
            );
            assert_eq!(got.never_indexed, *never, "{name}");
        }
        let mut n = Vec::new();
        encode_integer(1337, 5, 0, &mut n);
        assert_eq!(n, [0x1f, 0x9a, 0x0a], "RFC 7541 C.1.2");
        let mut pos = 0;
        assert_eq!(integer(&n, &mut pos, 5), Ok(1337));
    }
}

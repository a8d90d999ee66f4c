//! HPACK (RFC 7541): decoding the client's header blocks with a dynamic table that mirrors the
//! client's encoder, and the representations the front emits, which never touch the receiver's
//! dynamic table. The limits are h2's: integers of at most 5 bytes, a table no larger than the
//! SETTINGS_HEADER_TABLE_SIZE the server advertised, size updates only at a block's start.

use std::collections::VecDeque;

use bytes::Bytes;

pub use super::encode::{encode_integer, encode_string, encode_unindexed, static_index};
use super::huffman::{self, HuffmanError};
use super::tables::STATIC_TABLE;

/// The SETTINGS_HEADER_TABLE_SIZE h2 works with when the server sends none (tonic and hyper
/// never send one): the largest table a client's encoder may use.
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// Per-entry overhead in table and header-list sizes (RFC 7541 §4.1).
pub const ENTRY_OVERHEAD: usize = 32;

/// Why a header block could not be decoded (each is a COMPRESSION_ERROR in HTTP/2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Index 0 is never valid (RFC 7541 §6.1).
    #[error("header index 0")]
    IndexZero,
    /// An index past the static and dynamic tables.
    #[error("header index {0} is past the tables")]
    BadIndex(usize),
    /// An integer longer than 5 bytes.
    #[error("integer too long")]
    IntegerOverflow,
    /// The block ends inside a representation.
    #[error("header block ends inside a field")]
    Truncated,
    /// A Huffman string is malformed.
    #[error(transparent)]
    Huffman(#[from] HuffmanError),
    /// A dynamic table size update over the advertised limit.
    #[error("dynamic table size update to {size} is over the limit {limit}")]
    SizeTooLarge { size: usize, limit: usize },
    /// A dynamic table size update after the block's first field.
    #[error("dynamic table size update after a header field")]
    LateSizeUpdate,
    /// The decoded header list exceeds the bound given to [`Decoder::decode`].
    #[error("decoded header list is over {0} bytes")]
    ListTooLarge(usize),
}

/// One decoded header field, byte for byte as the client meant it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Bytes,
    pub value: Bytes,
    /// Sent as "never indexed" (RFC 7541 §6.2.3): intermediaries must keep that representation.
    pub never_indexed: bool,
}

impl Field {
    /// Size in the header-list accounting (name + value + 32).
    pub fn size(&self) -> usize {
        self.name.len() + self.value.len() + ENTRY_OVERHEAD
    }
}

/// A header-block decoder whose dynamic table follows the peer's encoder.
#[derive(Debug)]
pub struct Decoder {
    /// Newest first: dynamic index 62 is `entries[0]`.
    entries: VecDeque<(Bytes, Bytes)>,
    size: usize,
    max_size: usize,
    /// The advertised SETTINGS_HEADER_TABLE_SIZE: no size update may exceed it.
    limit: usize,
}

impl Decoder {
    /// A decoder for a peer told that the table may hold `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Decoder {
            entries: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
        }
    }

    /// Current dynamic table (size in bytes, entries).
    pub fn table(&self) -> (usize, usize) {
        (self.size, self.entries.len())
    }

    /// Decodes one complete header block, appending its fields to `fields`; fails once the
    /// decoded list exceeds `max_list_size` (before storing that much), so a small block of
    /// references to large entries cannot expand without bound.
    pub fn decode(
        &mut self,
        block: &[u8],
        max_list_size: usize,
        fields: &mut Vec<Field>,
    ) -> Result<(), DecodeError> {
        let mut pos = 0;
        let mut may_resize = true;
        let mut list_size = 0usize;
        while let Some(&first) = block.get(pos) {
            let field = if first & 0x80 != 0 {
                let index = integer(block, &mut pos, 7)?;
                let (name, value) = self.get(index)?;
                Field {
                    name,
                    value,
                    never_indexed: false,
                }
            } else if first & 0x40 != 0 {
                let (name, value) = self.literal(block, &mut pos, 6)?;
                self.insert(name.clone(), value.clone());
                Field {
                    name,
                    value,
                    never_indexed: false,
                }
            } else if first & 0x20 != 0 {
                if !may_resize {
                    return Err(DecodeError::LateSizeUpdate);
                }
                let size = integer(block, &mut pos, 5)?;
                if size > self.limit {
                    return Err(DecodeError::SizeTooLarge {
                        size,
                        limit: self.limit,
                    });
                }
                self.max_size = size;
                self.evict_to(size);
                continue;
            } else {
                let (name, value) = self.literal(block, &mut pos, 4)?;
                Field {
                    name,
                    value,
                    never_indexed: first & 0x10 != 0,
                }
            };
            may_resize = false;
            list_size = list_size.saturating_add(field.size());
            if list_size > max_list_size {
                return Err(DecodeError::ListTooLarge(max_list_size));
            }
            fields.push(field);
        }
        Ok(())
    }

    fn get(&self, index: usize) -> Result<(Bytes, Bytes), DecodeError> {
        match index {
            0 => Err(DecodeError::IndexZero),
            1..=61 => {
                let (name, value) = STATIC_TABLE[index - 1];
                Ok((
                    Bytes::from_static(name.as_bytes()),
                    Bytes::from_static(value.as_bytes()),
                ))
            }
            _ => self
                .entries
                .get(index - 62)
                .cloned()
                .ok_or(DecodeError::BadIndex(index)),
        }
    }

    /// A literal representation: name (indexed or literal), then the value.
    fn literal(
        &self,
        block: &[u8],
        pos: &mut usize,
        prefix: u8,
    ) -> Result<(Bytes, Bytes), DecodeError> {
        let name = match integer(block, pos, prefix)? {
            0 => string(block, pos)?,
            index => self.get(index)?.0,
        };
        Ok((name, string(block, pos)?))
    }

    fn insert(&mut self, name: Bytes, value: Bytes) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            // RFC 7541 §4.4: an entry larger than the table empties it and is not added.
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.entries.push_front((name, value));
        self.size += size;
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some((name, value)) => self.size -= name.len() + value.len() + ENTRY_OVERHEAD,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }
}

/// An integer with an N-bit prefix (RFC 7541 §5.1), at most 5 bytes in all (as h2 allows).
pub fn integer(block: &[u8], pos: &mut usize, prefix: u8) -> Result<usize, DecodeError> {
    let mask = (1u8 << prefix) - 1;
    let first = block.get(*pos).ok_or(DecodeError::Truncated)? & mask;
    *pos += 1;
    if first < mask {
        return Ok(usize::from(first));
    }
    let mut value = usize::from(mask);
    for shift in [0, 7, 14, 21] {
        let byte = *block.get(*pos).ok_or(DecodeError::Truncated)?;
        *pos += 1;
        value += usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::IntegerOverflow)
}

/// A string literal (RFC 7541 §5.2), Huffman-decoded if its H bit is set.
fn string(block: &[u8], pos: &mut usize) -> Result<Bytes, DecodeError> {
    let huffman = block.get(*pos).ok_or(DecodeError::Truncated)? & 0x80 != 0;
    let len = integer(block, pos, 7)?;
    let end = pos
        .checked_add(len)
        .filter(|&end| end <= block.len())
        .ok_or(DecodeError::Truncated)?;
    let raw = &block[*pos..end];
    *pos = end;
    if huffman {
        // Codes are at least 5 bits long, so this is the most it can decode to.
        let mut out = Vec::with_capacity(len * 8 / 5 + 1);
        huffman::decode(raw, &mut out)?;
        Ok(Bytes::from(out))
    } else {
        Ok(Bytes::copy_from_slice(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut Decoder, hex: &str) -> Vec<(String, String)> {
        let block = hex::decode(hex.replace(' ', "")).unwrap();
        let mut fields = Vec::new();
        decoder.decode(&block, usize::MAX, &mut fields).unwrap();
        fields
            .into_iter()
            .map(|f| {
                (
                    String::from_utf8(f.name.to_vec()).unwrap(),
                    String::from_utf8(f.value.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rfc_7541_c4_requests_with_huffman() {
        let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
        let first = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ];
        assert_eq!(
            decode_all(&mut d, "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
            pairs(&first)
        );
        assert_eq!(d.table(), (57, 1));
        let mut second = first.to_vec();
        second.push(("cache-control", "no-cache"));
        assert_eq!(
            decode_all(&mut d, "8286 84be 5886 a8eb 1064 9cbf"),
            pairs(&second)
        );
        assert_eq!(d.table(), (110, 2));
        assert_eq!(
            decode_all(
                &mut d,
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"
            ),
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ])
        );
        assert_eq!(d.table(), (164, 3));
    }

    #[test]
    fn rfc_7541_c5_eviction_with_a_256_byte_table() {
        let mut d = Decoder::new(256);
        decode_all(
            &mut d,
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
             6c65 2e63 6f6d",
        );
        assert_eq!(d.table(), (222, 4));
        let second = decode_all(&mut d, "4803 3330 37c1 c0bf");
        assert_eq!(second[0], (":status".into(), "307".into()));
        assert_eq!(d.table(), (222, 4));
    }

    #[test]
    fn an_exactly_full_table_keeps_every_entry() {
        // Two 50-byte entries fill a 100-byte table exactly; a third evicts only the oldest.
        let mut d = Decoder::new(100);
        let mut block = Vec::new();
        for value in [b"aaaaaaaaa", b"bbbbbbbbb", b"ccccccccc"] {
            block.clear();
            block.push(0x40);
            encode_string(b"name-9-ch", false, &mut block);
            encode_string(value, true, &mut block);
            block.push(0xbe);
            if value != b"aaaaaaaaa" {
                block.push(0xbf);
            }
            let mut fields = Vec::new();
            d.decode(&block, usize::MAX, &mut fields).unwrap();
            if value == b"bbbbbbbbb" {
                assert_eq!(d.table(), (100, 2));
                assert_eq!(
                    &fields[2].value[..],
                    b"aaaaaaaaa",
                    "index 63 is the older entry"
                );
            }
        }
        assert_eq!(d.table(), (100, 2));
        let mut fields = Vec::new();
        assert_eq!(
            d.decode(&[0xc0], usize::MAX, &mut fields),
            Err(DecodeError::BadIndex(64))
        );
    }

    #[test]
    fn refusals() {
        let cases: &[(&str, DecodeError)] = &[
            ("80", DecodeError::IndexZero),
            ("be", DecodeError::BadIndex(62)),
            ("ff80808080 00", DecodeError::IntegerOverflow),
            ("410f", DecodeError::Truncated),
            ("82 3f e1 1f", DecodeError::LateSizeUpdate),
            (
                "3fe21f",
                DecodeError::SizeTooLarge {
                    size: 4097,
                    limit: 4096,
                },
            ),
            ("4181 00", DecodeError::Huffman(HuffmanError::Padding)),
        ];
        for (hex, want) in cases {
            let block = hex::decode(hex.replace(' ', "")).unwrap();
            let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
            assert_eq!(
                d.decode(&block, usize::MAX, &mut Vec::new()),
                Err(want.clone()),
                "{hex}"
            );
        }
        // Size updates at the start are fine, several of them too.
        let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
        assert_eq!(
            d.decode(&[0x20, 0x3f, 0xe1, 0x1f, 0x82], usize::MAX, &mut Vec::new()),
            Ok(())
        );
        // A bounded list: 100 references to a 4000-byte entry stop at the bound.
        let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
        let mut block = vec![0x40, 0x01, b'x'];
        encode_string(&[b'v'; 3000], false, &mut block);
        block.extend(std::iter::repeat_n(0xbe, 100));
        assert_eq!(
            d.decode(&block, 65536, &mut Vec::new()),
            Err(DecodeError::ListTooLarge(65536))
        );
    }
}

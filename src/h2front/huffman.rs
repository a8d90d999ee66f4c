//! HPACK's Huffman code (RFC 7541 §5.2, Appendix B): decoding client strings, and encoding
//! (used by the test kit's grpc-go-like encoder and the tests).
//!
//! The code is canonical: codes of one length are consecutive, in symbol order. So a decoder
//! needs, per length, only the first code, how many codes there are and where their symbols
//! start in the (length, symbol)-sorted list; the tables below are built from Appendix B at
//! compile time and the tests check the canonical property they rely on.

use super::tables::HUFFMAN_CODES;

/// The end-of-string symbol: never valid inside a string.
const EOS: u16 = 256;
/// Longest code in Appendix B.
const MAX_LEN: usize = 30;

/// Why a Huffman string was refused (RFC 7541 §5.2: all are decoding errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HuffmanError {
    /// The string contains the EOS symbol.
    #[error("Huffman string contains EOS")]
    Eos,
    /// The padding is longer than 7 bits or not the most significant bits of EOS.
    #[error("invalid Huffman padding")]
    Padding,
}

struct Canonical {
    /// First code of each length (meaningful where `count` is non-zero).
    first: [u32; MAX_LEN + 1],
    /// How many symbols have a code of each length.
    count: [u16; MAX_LEN + 1],
    /// Where each length's symbols start in `symbols`.
    offset: [u16; MAX_LEN + 1],
    /// Symbols sorted by (code length, symbol).
    symbols: [u16; 257],
}

const CANONICAL: Canonical = canonical();

const fn canonical() -> Canonical {
    let mut count = [0u16; MAX_LEN + 1];
    let mut i = 0;
    while i < HUFFMAN_CODES.len() {
        count[HUFFMAN_CODES[i].1 as usize] += 1;
        i += 1;
    }
    let mut offset = [0u16; MAX_LEN + 1];
    let mut len = 1;
    let mut acc = 0;
    while len <= MAX_LEN {
        offset[len] = acc;
        acc += count[len];
        len += 1;
    }
    let mut symbols = [0u16; 257];
    let mut next = offset;
    i = 0;
    while i < HUFFMAN_CODES.len() {
        let len = HUFFMAN_CODES[i].1 as usize;
        symbols[next[len] as usize] = i as u16;
        next[len] += 1;
        i += 1;
    }
    let mut first = [0u32; MAX_LEN + 1];
    len = 1;
    while len <= MAX_LEN {
        if count[len] > 0 {
            first[len] = HUFFMAN_CODES[symbols[offset[len] as usize] as usize].0;
        }
        len += 1;
    }
    Canonical {
        first,
        count,
        offset,
        symbols,
    }
}

/// Appends the decoded bytes of the Huffman string `src` to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let c = &CANONICAL;
    let mut code: u32 = 0;
    let mut len: usize = 0;
    for &byte in src {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let n = u32::from(c.count[len]);
            if n > 0 && code >= c.first[len] && code - c.first[len] < n {
                let symbol = c.symbols[usize::from(c.offset[len]) + (code - c.first[len]) as usize];
                if symbol == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(symbol as u8);
                code = 0;
                len = 0;
            } else if len == MAX_LEN {
                // Unreachable for a complete code (every 30-bit string holds a code); kept so
                // a table mistake is an error, not an out-of-bounds index.
                return Err(HuffmanError::Padding);
            }
        }
    }
    // At most 7 bits of padding, all ones (the most significant bits of EOS).
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HuffmanError::Padding);
    }
    Ok(())
}

/// Appends the Huffman encoding of `src` to `out`, padded with ones.
pub fn encode(src: &[u8], out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let (code, len) = HUFFMAN_CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) | ((1u64 << (8 - bits)) - 1)) as u8);
    }
}

/// Length of the Huffman encoding of `src`, in bytes.
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(HUFFMAN_CODES[usize::from(b)].1))
        .sum();
    bits.div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_complete_and_canonical() {
        // Kraft sum exactly 1: every bit string starts with some code.
        let kraft: u64 = HUFFMAN_CODES
            .iter()
            .map(|&(_, len)| 1u64 << (MAX_LEN - usize::from(len)))
            .sum();
        assert_eq!(kraft, 1u64 << MAX_LEN);
        let c = &CANONICAL;
        for (symbol, &(code, len)) in HUFFMAN_CODES.iter().enumerate() {
            let len = usize::from(len);
            let position = c.symbols[usize::from(c.offset[len])..]
                .iter()
                .position(|&s| usize::from(s) == symbol)
                .unwrap();
            assert_eq!(code, c.first[len] + position as u32, "symbol {symbol}");
        }
    }

    #[test]
    fn rfc_7541_appendix_c_examples() {
        // C.4.1-C.4.3 and C.6.1 (request and response examples with Huffman coding).
        let cases: &[(&str, &str)] = &[
            ("f1e3c2e5f23a6ba0ab90f4ff", "www.example.com"),
            ("a8eb10649cbf", "no-cache"),
            ("25a849e95ba97d7f", "custom-key"),
            ("25a849e95bb8e8b4bf", "custom-value"),
            ("6402", "302"),
            ("aec3771a4b", "private"),
            (
                "d07abe941054d444a8200595040b8166e082a62d1bff",
                "Mon, 21 Oct 2013 20:13:21 GMT",
            ),
            (
                "9d29ad171863c78f0b97c8e9ae82ae43d3",
                "https://www.example.com",
            ),
        ];
        for (hex, text) in cases {
            let encoded = hex::decode(hex).unwrap();
            let mut decoded = Vec::new();
            decode(&encoded, &mut decoded).unwrap();
            assert_eq!(decoded, text.as_bytes());
            let mut again = Vec::new();
            encode(text.as_bytes(), &mut again);
            assert_eq!(again, encoded, "{text}");
            assert_eq!(encoded_len(text.as_bytes()), encoded.len());
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let mut encoded = Vec::new();
        encode(&all, &mut encoded);
        let mut decoded = Vec::new();
        decode(&encoded, &mut decoded).unwrap();
        assert_eq!(decoded, all);
    }

    #[test]
    fn bad_padding_and_eos_are_refused() {
        // "a" is 00011 (5 bits): padded with 111 is valid, with 000 or a whole extra byte not.
        let mut out = Vec::new();
        assert_eq!(decode(&[0b0001_1111], &mut out), Ok(()));
        assert_eq!(out, b"a");
        assert_eq!(decode(&[0b0001_1000], &mut out), Err(HuffmanError::Padding));
        assert_eq!(
            decode(&[0b0001_1111, 0xff], &mut out),
            Err(HuffmanError::Padding)
        );
        // EOS itself (30 ones).
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HuffmanError::Eos)
        );
        assert_eq!(decode(&[], &mut out), Ok(()));
    }
}

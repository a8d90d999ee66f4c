//! The front's recoder: decode the client's header block with a table that mirrors the
//! client's encoder, replace an `:authority` h2 would refuse, and encode the block again so
//! that it never touches h2's dynamic table.

use bytes::Bytes;
use tracing::debug;

use super::hpack::{self, DecodeError, Decoder, Field};
use super::inbound::{Limits, Recode};

/// What the server sees instead of an `:authority` it would refuse: what driver v1.6 sends.
pub const REPLACEMENT_AUTHORITY: &str = "localhost";

/// Whether h2 accepts `value` as a request's `:authority` (it parses it with this very
/// function and resets the stream when that fails).
pub fn authority_is_valid(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

/// Re-encodes each block without dynamic-table references, fixing `:authority`.
#[derive(Debug)]
pub struct Repair {
    decoder: Option<Decoder>,
    fields: Vec<Field>,
    replaced: u64,
}

impl Repair {
    /// For a new connection.
    pub fn new() -> Self {
        Repair {
            decoder: None,
            fields: Vec::new(),
            replaced: 0,
        }
    }

    /// How many `:authority` values this connection had replaced.
    pub fn replaced(&self) -> u64 {
        self.replaced
    }
}

impl Default for Repair {
    fn default() -> Self {
        Self::new()
    }
}

impl Recode for Repair {
    fn recode(
        &mut self,
        block: &[u8],
        limits: &Limits,
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        let decoder = self
            .decoder
            .get_or_insert_with(|| Decoder::new(limits.header_table_size));
        self.fields.clear();
        decoder.decode(block, limits.abuse_size(), &mut self.fields)?;
        for field in &self.fields {
            if &field.name[..] == b":authority" && !authority_is_valid(&field.value) {
                if self.replaced == 0 {
                    // The value is the socket path or similar, never a secret; shown escaped
                    // and cut short.
                    let shown: String = field
                        .value
                        .escape_ascii()
                        .to_string()
                        .chars()
                        .take(200)
                        .collect();
                    debug!(authority = %shown, replacement = REPLACEMENT_AUTHORITY,
                        "client sent an :authority h2 would refuse; serving it as {REPLACEMENT_AUTHORITY}");
                }
                self.replaced += 1;
                hpack::encode_unindexed(
                    &Field {
                        name: field.name.clone(),
                        value: Bytes::from_static(REPLACEMENT_AUTHORITY.as_bytes()),
                        never_indexed: field.never_indexed,
                    },
                    out,
                );
            } else {
                hpack::encode_unindexed(field, out);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_h2_refuses_and_accepts() {
        for bad in [
            &b"/var/run/secrets-store-csi-providers/azure.sock"[..],
            b"%2Fvar%2Frun%2Fsecrets-store-csi-providers%2Fazure.sock",
            b"",
            b"unix:/tmp/azure.sock",
            b"a b",
            b"\xff",
        ] {
            assert!(!authority_is_valid(bad), "{}", bad.escape_ascii());
        }
        for good in [
            &b"localhost"[..],
            b"localhost:50051",
            b"unix",
            b"example.com",
            b"[::1]:8080",
        ] {
            assert!(authority_is_valid(good), "{}", good.escape_ascii());
        }
    }
}

//! `objectFormat: pfx` on a PEM certificate (#1945): a PKCS#12 built from the bundle's keys and
//! certificates, written by our PKCS#12 layer ([`super::pkcs12::write`]) — the one place the
//! provider writes a PFX.
//!
//! The empty password in its B.1 form (two NUL bytes, as `openssl pkcs12 -export -passout
//! pass:` writes it) and [`Profile::modern`]: keys and certificates under PBES2
//! (PBKDF2-HMAC-SHA256, AES-256-CBC), a SHA-256 MAC. Each key carries a `localKeyID`, shared
//! with the certificate of its public key (the SHA-1 of that certificate, OpenSSL's choice), so
//! readers pair the key with its leaf. Certificates go in output order (leaf first with
//! `--construct-pem-chain`).
//!
//! Salts and IVs come from a SHA-256 stream over the secret's id (which names its version), not
//! from a random source: with an empty password they protect nothing, and this way every Mount of
//! one version writes the same bytes, so a rotation poll sees no content change.

use sha1::Sha1;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::RenderError;
use super::chain::ChainLink;
use super::pkcs12::{self, BagAttributes, Bundle, CertEntry, EmptyPassword, KeyEntry, Profile};

/// Labels the salt and IV stream, so it is never the hash of anything else.
const STREAM_LABEL: &[u8] = b"akv-csi-provider: PKCS#12 salts and IVs for objectFormat pfx\0";

/// The DER PFX of `bundle`; `id` is the Key Vault id of the secret it came from.
pub(crate) fn write(
    bundle: &Bundle,
    id: &str,
    object: &str,
) -> Result<Zeroizing<Vec<u8>>, RenderError> {
    let failed = |reason: String| RenderError::PfxWrite {
        object: object.to_owned(),
        reason,
    };
    if bundle.keys.is_empty() && bundle.certs.is_empty() {
        return Err(failed(
            "the stored PEM holds no certificate and no private key".into(),
        ));
    }
    let publics = bundle
        .certs
        .iter()
        .enumerate()
        .map(|(i, der)| {
            ChainLink::from_der(der)
                .map(|link| link.public_key)
                .map_err(|reason| RenderError::Certificate {
                    object: object.to_owned(),
                    position: i + 1,
                    reason,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Each key's id: the SHA-1 of its certificate, or of its public key when it has none.
    let key_ids: Vec<Vec<u8>> = bundle
        .keys
        .iter()
        .map(
            |key| match publics.iter().position(|p| *p == key.public_key) {
                Some(i) => Sha1::digest(&bundle.certs[i]).to_vec(),
                None => Sha1::digest(&key.public_key).to_vec(),
            },
        )
        .collect();
    let keys: Vec<KeyEntry<'_>> = bundle
        .keys
        .iter()
        .zip(&key_ids)
        .map(|(key, id)| KeyEntry {
            pkcs8: &key.pkcs8,
            attributes: BagAttributes {
                local_key_id: Some(id.clone()),
                ..BagAttributes::default()
            },
        })
        .collect();
    let certs: Vec<CertEntry<'_>> = bundle
        .certs
        .iter()
        .zip(&publics)
        .map(|(der, public)| CertEntry {
            der,
            attributes: BagAttributes {
                local_key_id: bundle
                    .keys
                    .iter()
                    .position(|k| k.public_key == *public)
                    .map(|k| key_ids[k].clone()),
                ..BagAttributes::default()
            },
        })
        .collect();
    let mut stream = SaltStream::new(id);
    pkcs12::write(
        &keys,
        &certs,
        &Profile::modern(EmptyPassword::Bmp),
        &mut |out| stream.fill(out),
    )
    .map_err(|e| failed(e.to_string()))
}

/// SHA-256 in counter mode over the label and the secret's id.
struct SaltStream {
    seed: Vec<u8>,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl SaltStream {
    fn new(id: &str) -> Self {
        let mut seed = STREAM_LABEL.to_vec();
        seed.extend_from_slice(id.as_bytes());
        SaltStream {
            seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn fill(&mut self, out: &mut [u8]) {
        for byte in out {
            if self.used == self.block.len() {
                let mut h = Sha256::new();
                h.update(&self.seed);
                h.update(self.counter.to_be_bytes());
                self.block = h.finalize().into();
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SaltStream;

    #[test]
    fn the_stream_depends_on_the_id_and_never_repeats_a_block() {
        let take = |id: &str, n: usize| {
            let mut s = SaltStream::new(id);
            let mut out = vec![0u8; n];
            // In uneven pieces, as the writer asks.
            let (a, b) = out.split_at_mut(n / 3);
            s.fill(a);
            s.fill(b);
            out
        };
        assert_eq!(take("v1", 100), take("v1", 100));
        assert_ne!(take("v1", 100), take("v2", 100));
        let long = take("v1", 96);
        assert_ne!(long[..32], long[32..64]);
        assert_eq!(take("v1", 40)[..], long[..40]);
    }
}

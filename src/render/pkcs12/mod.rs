//! PKCS#12 (PFX) with the empty password Key Vault uses, in either of its RFC 7292 encodings.
//!
//! A small layer of our own over RustCrypto's ASN.1 types (`pkcs12`, `cms`), KDF and ciphers:
//! [`open`] reads a PFX the way OpenSSL and Go's `x/crypto/pkcs12` do (MAC and every encrypted
//! bag tried with the B.1 then the B.2 form, see [`crypt`]); [`write`] writes one with chosen
//! algorithms, layout and password form ([`Profile::key_vault`] is the shape Key Vault
//! returns). Below them, the renderer's use: `application/x-pkcs12` certificate-backed secrets
//! decoded to keys (re-encoded by [`super::keys`]) and certificates in bag or chain order.

mod crypt;
mod read;
mod write;

pub use crypt::{EmptyPassword, Encryption};
pub use read::{Opened, open};
pub use write::{BagAttributes, CertEntry, KeyEntry, Layout, MacDigest, MacSpec, Profile, write};

use super::chain::{self, ChainError, ChainLink};
use super::keys::{self, ReencodedKey};
use super::{RenderError, encoding};

/// The bundle's keys and certificates, in output order.
pub(crate) struct Bundle {
    pub keys: Vec<ReencodedKey>,
    pub certs: Vec<Vec<u8>>,
}

/// Opens the stored base64 PFX.
pub(crate) fn decode(value: &str, object: &str) -> Result<Bundle, RenderError> {
    let pkcs12_error = |reason: String| RenderError::Pkcs12 {
        object: object.to_owned(),
        reason,
    };
    let der = encoding::base64_std(value)
        .map_err(|reason| pkcs12_error(format!("the stored value is not base64: {reason}")))?;
    let opened = open(&der).map_err(|e| pkcs12_error(e.to_string()))?;
    let keys = opened
        .keys
        .iter()
        .enumerate()
        .map(|(i, der)| {
            keys::reencode_pkcs8(der).map_err(|reason| RenderError::PrivateKey {
                object: object.to_owned(),
                position: i + 1,
                reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Bundle {
        keys,
        certs: opened.certs,
    })
}

/// Both encodings, as every error about the password names them.
const BOTH_FORMS: &str = "the empty password Key Vault's bundles use, in either RFC 7292 \
                          encoding (B.1: two NUL bytes, as OpenSSL writes; B.2: zero bytes, as \
                          Windows and Key Vault write)";

/// Why a PFX cannot be opened or written. Messages carry structure, never content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pkcs12Error {
    /// Not DER PKCS#12, or a part that does not parse.
    #[error("{0}")]
    Malformed(String),
    /// A content type or algorithm we do not implement.
    #[error("{0}")]
    Unsupported(String),
    /// The MAC verifies with neither form of the empty password.
    #[error("MAC tag mismatch with {BOTH_FORMS}; the bundle is protected by another password")]
    Mac,
    /// A safe or key bag decrypts with neither form of the empty password.
    #[error("{0} does not decrypt with {BOTH_FORMS}")]
    Decrypt(String),
    /// The writer was given something it cannot encode.
    #[error("cannot write the PFX: {0}")]
    Write(String),
}

/// With `construct_pem_chain`, orders the certificates leaf → intermediates → root; an
/// incomplete chain keeps the stored order and adds a warning.
pub(crate) fn order(
    mut bundle: Bundle,
    construct_pem_chain: bool,
    object: &str,
    warnings: &mut Vec<String>,
) -> Result<Bundle, RenderError> {
    if !construct_pem_chain || bundle.certs.is_empty() {
        return Ok(bundle);
    }
    let links = bundle
        .certs
        .iter()
        .enumerate()
        .map(|(i, der)| {
            ChainLink::from_der(der).map_err(|reason| RenderError::Certificate {
                object: object.to_owned(),
                position: i + 1,
                reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key_publics: Vec<&[u8]> = bundle.keys.iter().map(|k| &k.public_key[..]).collect();
    match chain::order_chain(&links, &key_publics) {
        Ok(chain::Ordered::Complete(order)) => {
            let mut certs: Vec<Option<Vec<u8>>> = bundle.certs.drain(..).map(Some).collect();
            bundle.certs = order.iter().filter_map(|&i| certs[i].take()).collect();
            Ok(bundle)
        }
        Ok(chain::Ordered::Incomplete { linked }) => {
            warnings.push(format!(
                "{object}: the certificate chain is incomplete (the leaf's issuers cover {linked} \
                 of {} certificates by AuthorityKeyId/SubjectKeyId); the certificates are \
                 written in the order Key Vault stores them",
                links.len()
            ));
            Ok(bundle)
        }
        Err(ChainError::Cycle) => Err(RenderError::ChainCycle {
            object: object.to_owned(),
        }),
        Err(ChainError::NoLeaf) => Err(RenderError::NoLeaf {
            object: object.to_owned(),
        }),
    }
}

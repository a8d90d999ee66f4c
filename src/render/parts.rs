//! `objectPart` (ours): one part of a certificate bundle — its private keys, its leaf, its whole
//! chain, or its CA certificates — cut from the very keys and certificates `all` writes. For a
//! PKCS#12 bundle, `key` then `chain` is therefore `all`, byte for byte; `ca` is `chain` without
//! the leaf, so with chain construction (leaf first) `leaf` then `ca` is `chain`. An
//! `application/x-pem-file` bundle is read block by block first ([`from_pem`]): its keys
//! re-encoded as PKCS#8 like a PFX's, its certificates ordered by the same rules.

use zeroize::Zeroizing;

use super::RenderError;
use super::chain::{self, ChainLink};
use super::keys;
use super::pem::{self, Block, pem_reason};
use super::pkcs12::Bundle;
use crate::spc::plan::ObjectPart;

/// The bytes of `part` of `bundle` (keys and certificates already in output order).
pub(crate) fn cut(
    part: ObjectPart,
    bundle: &Bundle,
    object: &str,
) -> Result<Zeroizing<Vec<u8>>, RenderError> {
    let empty = |reason: &str| RenderError::EmptyPart {
        object: object.to_owned(),
        part,
        reason: reason.to_owned(),
    };
    let keys = || -> Vec<Block<'_>> {
        bundle
            .keys
            .iter()
            .map(|k| Block::new("PRIVATE KEY", &k.pkcs8))
            .collect()
    };
    let certs = |skip: Option<usize>| -> Vec<Block<'_>> {
        bundle
            .certs
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .map(|(_, c)| Block::new("CERTIFICATE", c))
            .collect()
    };
    let blocks = match part {
        ObjectPart::All => keys().into_iter().chain(certs(None)).collect(),
        ObjectPart::Key => {
            if bundle.keys.is_empty() {
                return Err(empty(
                    "the bundle holds no private key (the secret of a certificate whose key is \
                     not exportable has none)",
                ));
            }
            keys()
        }
        ObjectPart::Chain => {
            if bundle.certs.is_empty() {
                return Err(empty("the bundle holds no certificate"));
            }
            certs(None)
        }
        ObjectPart::Leaf => {
            let leaf = leaf_position(bundle, part, object)?;
            vec![Block::new("CERTIFICATE", &bundle.certs[leaf])]
        }
        ObjectPart::Ca => {
            let leaf = leaf_position(bundle, part, object)?;
            if bundle.certs.len() == 1 {
                return Err(empty(
                    "the bundle holds only the leaf certificate, no CA certificate",
                ));
            }
            certs(Some(leaf))
        }
    };
    Ok(pem::encode(&blocks))
}

/// The leaf's position among the bundle's certificates (SPEC §6). The same certificate in any
/// order: in a complete chain it is the only one that issues none of the others; otherwise the
/// output order is the stored order, which breaks ties.
fn leaf_position(bundle: &Bundle, part: ObjectPart, object: &str) -> Result<usize, RenderError> {
    if bundle.certs.is_empty() {
        return Err(RenderError::EmptyPart {
            object: object.to_owned(),
            part,
            reason: "the bundle holds no certificate".into(),
        });
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
    chain::find_leaf(&links, &key_publics).ok_or_else(|| RenderError::EmptyPart {
        object: object.to_owned(),
        part,
        reason: "every certificate of the bundle issues another, so none is the leaf".into(),
    })
}

/// The keys (re-encoded as PKCS#8) and certificates of a stored PEM bundle, in stored order.
/// Other blocks (`EC PARAMETERS`, for one) belong to no part and are left out.
pub(crate) fn from_pem(text: &str, object: &str) -> Result<Bundle, RenderError> {
    let blocks = ::pem::parse_many(text.as_bytes()).map_err(|e| RenderError::Pem {
        object: object.to_owned(),
        reason: pem_reason(&e),
    })?;
    let mut bundle = Bundle {
        keys: Vec::new(),
        certs: Vec::new(),
    };
    for block in blocks {
        let label = block.tag().to_owned();
        if label == "CERTIFICATE" {
            bundle.certs.push(block.into_contents());
        } else if keys::is_private_key_label(&label) {
            let position = bundle.keys.len() + 1;
            let encrypted = block.headers().get("Proc-Type").is_some();
            let der = Zeroizing::new(block.into_contents());
            let key = if encrypted {
                Err(
                    "is encrypted (Proc-Type header); a Key Vault certificate holds its key \
                     unencrypted"
                        .to_owned(),
                )
            } else {
                keys::reencode_pem_block(&label, &der)
            };
            bundle
                .keys
                .push(key.map_err(|reason| RenderError::PrivateKey {
                    object: object.to_owned(),
                    position,
                    reason,
                })?);
        }
    }
    Ok(bundle)
}

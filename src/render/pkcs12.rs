//! `application/x-pkcs12` certificate-backed secrets: the stored base64 PFX opened with the
//! empty password (legacy 3DES/RC2 + SHA-1 as Key Vault writes it, and AES/PBES2), keys
//! re-encoded by [`super::keys`], certificates in bag order or chain order.

use p12_keystore::Pkcs12Archive;

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
    let archive = Pkcs12Archive::from_pkcs12(&der, "").map_err(|e| pkcs12_error(p12_reason(&e)))?;
    let keys = archive
        .keys
        .iter()
        .enumerate()
        .map(|(i, bag)| {
            keys::reencode_pkcs8(bag.key.as_der()).map_err(|reason| RenderError::PrivateKey {
                object: object.to_owned(),
                position: i + 1,
                reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let certs = archive
        .certs
        .iter()
        .map(|bag| bag.cert.as_der().to_vec())
        .collect();
    Ok(Bundle { keys, certs })
}

/// p12-keystore's error in words; its messages carry structure, not content.
fn p12_reason(e: &p12_keystore::error::Error) -> String {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("mac") || lower.contains("unpad") {
        format!("{text} (the bundle is not protected by the empty password Key Vault uses)")
    } else {
        text
    }
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

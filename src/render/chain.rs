//! `--construct-pem-chain`: orders a bundle's certificates leaf → intermediates → root by
//! AuthorityKeyId/SubjectKeyId, as the reference's `fetchCertChains` does:
//!
//! * certificate `j` issues `i` when `i`'s AuthorityKeyId equals `j`'s SubjectKeyId (`i != j`;
//!   the first such `j` in stored order is `i`'s issuer);
//! * the leaf issues none of the others; if several qualify, the one whose public key matches a
//!   private key in the bundle, else the first in stored order (the reference: always the first);
//! * from the leaf, issuers are followed to the root; revisiting a certificate is a cycle;
//! * a walk that does not cover every certificate is incomplete: the caller keeps the stored
//!   order and warns (the reference drops the certificates off the walk).

use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

/// What chain ordering needs from one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainLink {
    pub subject_key_id: Option<Vec<u8>>,
    pub authority_key_id: Option<Vec<u8>>,
    /// The `subjectPublicKey` bits, to match against the bundle's private keys.
    pub public_key: Vec<u8>,
}

impl ChainLink {
    /// Reads the links from a DER certificate; the error is a reason in words.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (rest, cert) =
            x509_parser::certificate::X509Certificate::from_der(der).map_err(|e| format!("{e}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate".into());
        }
        let mut link = ChainLink {
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            ..ChainLink::default()
        };
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => {
                    link.subject_key_id = Some(id.0.to_vec());
                }
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    link.authority_key_id = aki.key_identifier.as_ref().map(|id| id.0.to_vec());
                }
                _ => {}
            }
        }
        Ok(link)
    }
}

/// The outcome of ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ordered {
    /// Stored indices in chain order; a permutation of all certificates.
    Complete(Vec<usize>),
    /// The walk from the leaf covers only `linked` of the certificates.
    Incomplete { linked: usize },
}

/// Why no chain order exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// Following issuers from the leaf revisits a certificate.
    #[error("the certificate chain has a cycle")]
    Cycle,
    /// Every certificate issues another one.
    #[error("the certificate chain has no leaf")]
    NoLeaf,
}

/// Each certificate's issuer among the others: the first whose SubjectKeyId is its AuthorityKeyId.
fn issuers(links: &[ChainLink]) -> Vec<Option<usize>> {
    let n = links.len();
    (0..n)
        .map(|i| {
            let aki = links[i].authority_key_id.as_deref()?;
            (0..n).find(|&j| j != i && links[j].subject_key_id.as_deref() == Some(aki))
        })
        .collect()
}

fn leaf_of(links: &[ChainLink], issuer: &[Option<usize>], key_publics: &[&[u8]]) -> Option<usize> {
    let n = links.len();
    let mut issues_another = vec![false; n];
    for j in issuer.iter().flatten() {
        issues_another[*j] = true;
    }
    let candidates: Vec<usize> = (0..n).filter(|&i| !issues_another[i]).collect();
    candidates
        .iter()
        .copied()
        .find(|&i| key_publics.contains(&&links[i].public_key[..]))
        .or_else(|| candidates.first().copied())
}

/// The bundle's leaf (SPEC §6): the certificate that issues none of the others; if several
/// qualify, the one whose public key matches one of `key_publics`, else the first of them.
/// `None` when every certificate issues another (or there are none).
pub fn find_leaf(links: &[ChainLink], key_publics: &[&[u8]]) -> Option<usize> {
    leaf_of(links, &issuers(links), key_publics)
}

/// Orders `links` (stored order) given the public keys implied by the bundle's private keys.
pub fn order_chain(links: &[ChainLink], key_publics: &[&[u8]]) -> Result<Ordered, ChainError> {
    let n = links.len();
    let issuer = issuers(links);
    let leaf = leaf_of(links, &issuer, key_publics).ok_or(ChainError::NoLeaf)?;
    let mut order = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    let mut next = Some(leaf);
    while let Some(i) = next {
        if seen[i] {
            return Err(ChainError::Cycle);
        }
        seen[i] = true;
        order.push(i);
        next = issuer[i];
    }
    if order.len() == n {
        Ok(Ordered::Complete(order))
    } else {
        Ok(Ordered::Incomplete {
            linked: order.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(ski: Option<u8>, aki: Option<u8>) -> ChainLink {
        ChainLink {
            subject_key_id: ski.map(|b| vec![b]),
            authority_key_id: aki.map(|b| vec![b]),
            public_key: vec![ski.unwrap_or(0)],
        }
    }

    #[test]
    fn table() {
        use Ordered::*;
        let root = link(Some(1), Some(1));
        let int = link(Some(2), Some(1));
        let leaf = link(Some(3), Some(2));
        let leaf_no_ski = link(None, Some(2));
        let table: Vec<(Vec<ChainLink>, Result<Ordered, ChainError>)> = vec![
            (vec![], Err(ChainError::NoLeaf)),
            (vec![root.clone()], Ok(Complete(vec![0]))),
            (
                vec![root.clone(), int.clone(), leaf.clone()],
                Ok(Complete(vec![2, 1, 0])),
            ),
            (
                vec![int.clone(), leaf_no_ski.clone(), root.clone()],
                Ok(Complete(vec![1, 0, 2])),
            ),
            // The intermediate is missing: leaf and root both issue nothing.
            (
                vec![root.clone(), leaf.clone()],
                Ok(Incomplete { linked: 1 }),
            ),
            // Two certificates issuing each other.
            (
                vec![link(Some(1), Some(2)), link(Some(2), Some(1))],
                Err(ChainError::NoLeaf),
            ),
            // A leaf whose issuers loop.
            (
                vec![
                    link(Some(9), Some(1)),
                    link(Some(1), Some(2)),
                    link(Some(2), Some(1)),
                ],
                Err(ChainError::Cycle),
            ),
        ];
        for (links, want) in table {
            assert_eq!(order_chain(&links, &[]), want, "{links:?}");
        }
    }

    #[test]
    fn private_key_breaks_leaf_ties() {
        let unrelated = link(Some(7), None);
        let leaf = link(Some(3), Some(2));
        let links = [unrelated, leaf];
        assert_eq!(
            order_chain(&links, &[]),
            Ok(Ordered::Incomplete { linked: 1 })
        );
        // Both qualify; with leaf's key present, the walk starts there (still incomplete).
        assert_eq!(
            order_chain(&links, &[&[3]]),
            Ok(Ordered::Incomplete { linked: 1 })
        );
    }
}

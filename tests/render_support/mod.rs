//! Shared helpers for the render tests: keys generated once per test binary, certificate
//! chains built with rcgen, PFX bundles written with p12-keystore, and independent readers.
#![allow(dead_code)]

use std::sync::OnceLock;

use akv_csi_provider::keyvault::Fetched;
use akv_csi_provider::spc::plan::{ObjectEncoding, ObjectFormat, ObjectSpec, ObjectType};
use rcgen::{
    BasicConstraints, CertificateParams, IsCa, Issuer, KeyIdMethod, KeyPair, SignatureAlgorithm,
};
use zeroize::Zeroizing;

/// Key algorithms the tests cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rsa,
    P256,
    P384,
}

impl Alg {
    fn sig(self) -> &'static SignatureAlgorithm {
        match self {
            Alg::Rsa => &rcgen::PKCS_RSA_SHA256,
            Alg::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Alg::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// Four PKCS#8 keys per algorithm, generated once (RSA generation is slow in debug builds).
pub fn keys(alg: Alg) -> &'static [Vec<u8>] {
    static RSA: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    static P256: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    static P384: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let cell = match alg {
        Alg::Rsa => &RSA,
        Alg::P256 => &P256,
        Alg::P384 => &P384,
    };
    cell.get_or_init(|| {
        (0..4)
            .map(|_| KeyPair::generate_for(alg.sig()).unwrap().serialize_der())
            .collect()
    })
}

pub fn key_pair(pkcs8: &[u8]) -> KeyPair {
    KeyPair::try_from(pkcs8).unwrap()
}

/// How the certificates of a chain carry their key identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    /// Every certificate has a SubjectKeyId and (except the root) an AuthorityKeyId.
    Full,
    /// The leaf has no SubjectKeyId (optional per RFC 5280); the chain still links.
    LeafWithoutSki,
    /// The first intermediate has no SubjectKeyId, so the leaf links to nothing.
    IntermediateWithoutSki,
}

/// A chain in chain order: `certs[0]` the leaf, the last the self-signed root.
pub struct Chain {
    pub certs: Vec<Vec<u8>>,
    pub leaf_key: Vec<u8>,
}

/// A chain of `len` (1..=4) certificates whose leaf key is `keys(alg)[0]`.
pub fn chain(alg: Alg, len: usize, ids: Ids) -> Chain {
    assert!((1..=4).contains(&len));
    let keys = keys(alg);
    // Build from the root down.
    let mut certs = Vec::new();
    let mut issuer: Option<Issuer<'static, KeyPair>> = None;
    for level in (0..len).rev() {
        let is_leaf = level == 0;
        let mut params =
            CertificateParams::new(vec![format!("level{level}.example.test")]).unwrap();
        params.key_identifier_method = KeyIdMethod::Sha256;
        params.use_authority_key_identifier_extension = issuer.is_some();
        params.is_ca = if is_leaf {
            if ids == Ids::LeafWithoutSki {
                IsCa::NoCa
            } else {
                IsCa::ExplicitNoCa
            }
        } else if level == 1 && ids == Ids::IntermediateWithoutSki && len > 2 {
            IsCa::NoCa
        } else {
            IsCa::Ca(BasicConstraints::Unconstrained)
        };
        let key = key_pair(&keys[level]);
        let cert = match &issuer {
            Some(issuer) => params.signed_by(&key, issuer).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        certs.push(cert.der().to_vec());
        issuer = Some(Issuer::new(params, key));
    }
    certs.reverse();
    Chain {
        certs,
        leaf_key: keys[0].clone(),
    }
}

/// Certificates with hand-picked key identifiers: `(ski, aki)` each, for cycles and odd shapes.
pub fn linked(alg: Alg, links: &[(Option<u8>, Option<u8>)]) -> Vec<Vec<u8>> {
    let keys = keys(alg);
    links
        .iter()
        .enumerate()
        .map(|(i, (ski, aki))| {
            let mut params = CertificateParams::new(vec![format!("c{i}.example.test")]).unwrap();
            let key = key_pair(&keys[i % keys.len()]);
            match ski {
                Some(b) => {
                    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                    params.key_identifier_method = KeyIdMethod::PreSpecified(vec![*b; 20]);
                }
                None => params.is_ca = IsCa::NoCa,
            }
            match aki {
                Some(b) => {
                    params.use_authority_key_identifier_extension = true;
                    let mut ip = CertificateParams::new(vec!["issuer".to_owned()]).unwrap();
                    ip.key_identifier_method = KeyIdMethod::PreSpecified(vec![*b; 20]);
                    let issuer = Issuer::new(ip, key_pair(&keys[(i + 1) % keys.len()]));
                    params.signed_by(&key, &issuer).unwrap().der().to_vec()
                }
                None => params.self_signed(&key).unwrap().der().to_vec(),
            }
        })
        .collect()
}

/// A PFX with the empty password, key first, certificates in exactly the given order.
pub fn pfx(key: Option<&[u8]>, certs: &[Vec<u8>]) -> Vec<u8> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let mut store = KeyStore::new();
    let certs: Vec<Certificate> = certs
        .iter()
        .map(|c| Certificate::from_der(c).unwrap())
        .collect();
    match key {
        Some(key) => {
            let chain =
                PrivateKeyChain::new(vec![1u8; 20], PrivateKey::from_der(key).unwrap(), certs);
            store.add_entry("entry", KeyStoreEntry::PrivateKeyChain(chain));
        }
        None => {
            for (i, cert) in certs.into_iter().enumerate() {
                store.add_entry(&format!("c{i}"), KeyStoreEntry::Certificate(cert));
            }
        }
    }
    store
        .writer("")
        .encryption_iterations(1)
        .mac_iterations(1)
        .write()
        .unwrap()
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An ObjectSpec as the plan parser would make it.
pub fn spec(object_type: ObjectType, name: &str) -> ObjectSpec {
    ObjectSpec {
        index: 0,
        name: name.to_owned(),
        object_type,
        alias: name.to_owned(),
        version: None,
        history: 1,
        format: ObjectFormat::Pem,
        format_explicit: false,
        part: None,
        encoding: ObjectEncoding::Utf8,
        mode: 0o644,
        optional: false,
        json_pointer: None,
        vault: None,
    }
}

pub fn secret(value: &str, content_type: Option<&str>, kid: bool) -> Fetched {
    Fetched::Secret {
        id: "https://v.vault.azure.net/secrets/s/0123abcd".to_owned(),
        value: Zeroizing::new(value.to_owned()),
        content_type: content_type.map(str::to_owned),
        kid: kid.then(|| "https://v.vault.azure.net/keys/s/0123abcd".to_owned()),
    }
}

/// Independent reader: splits PEM text into `(label, DER)` with RustCrypto's strict RFC 7468
/// decoder (our writer is hand-made), checking each block is canonical on the way.
pub fn read_pem(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    let text = std::str::from_utf8(text).expect("PEM output is UTF-8");
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find("-----END ").expect("END line");
        let stop = end + rest[end..].find('\n').expect("newline after END") + 1;
        let block = &rest[..stop];
        let (label, der) = x509_cert::der::pem::decode_vec(block.as_bytes()).expect("strict PEM");
        out.push((label.to_owned(), der));
        rest = &rest[stop..];
    }
    out
}

/// The `openssl` CLI when installed; `None` prints a note so a skipped cross-check is visible.
pub fn openssl() -> Option<&'static str> {
    let ok = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("note: openssl CLI not found; skipping the openssl cross-check");
    }
    ok.then_some("openssl")
}

/// A PFX written by our own writer in `profile`, with every iteration count set to 1 (the
/// shape and the password form are what matter here, not the work factor), key first.
pub fn pfx_in(
    profile: akv_csi_provider::render::pkcs12::Profile,
    key: Option<&[u8]>,
    certs: &[Vec<u8>],
) -> Vec<u8> {
    use akv_csi_provider::render::pkcs12::{self, CertEntry, Encryption, KeyEntry};
    let fast = |e: Encryption| match e {
        Encryption::None => Encryption::None,
        Encryption::Rc2_40 { .. } => Encryption::Rc2_40 { iterations: 1 },
        Encryption::TripleDes { .. } => Encryption::TripleDes { iterations: 1 },
        Encryption::Aes256Cbc { .. } => Encryption::Aes256Cbc { iterations: 1 },
    };
    let mut profile = profile;
    profile.keys = fast(profile.keys);
    profile.certs = fast(profile.certs);
    if let Some(mac) = &mut profile.mac {
        mac.iterations = 1;
    }
    let keys: Vec<KeyEntry<'_>> = key
        .into_iter()
        .map(|pkcs8| KeyEntry {
            pkcs8,
            attributes: Default::default(),
        })
        .collect();
    let certs: Vec<CertEntry<'_>> = certs
        .iter()
        .map(|der| CertEntry {
            der,
            attributes: Default::default(),
        })
        .collect();
    pkcs12::write(&keys, &certs, &profile, &mut |b| fastrand::fill(b))
        .unwrap()
        .to_vec()
}

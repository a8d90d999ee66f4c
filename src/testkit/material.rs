//! Test material: service-account tokens shaped like kubelet's, certificates (the openssl-made
//! fixtures, bundled as Key Vault bundles them) and keys generated at test time with their Key
//! Vault JWKs.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use der::Decode;
use serde_json::{Value, json};

/// The OIDC issuer of the fake cluster.
pub const OIDC_ISSUER: &str =
    "https://oidc.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/";

/// An (unsigned) projected service-account token for `namespace/sa`, expiring in `ttl_secs`.
/// Entra's fake checks `iss`, `sub` and `exp` the way the real one matches federated credentials.
pub fn service_account_token(namespace: &str, sa: &str, ttl_secs: i64) -> String {
    service_account_token_for(namespace, sa, ttl_secs, "api://AzureADTokenExchange")
}

/// Like [`service_account_token`], for another audience (identity binding's
/// `api://AKSIdentityBinding`).
pub fn service_account_token_for(
    namespace: &str,
    sa: &str,
    ttl_secs: i64,
    audience: &str,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"test"}"#);
    let payload = json!({
        "aud": [audience],
        "exp": now + ttl_secs,
        "iat": now,
        "nbf": now,
        "iss": OIDC_ISSUER,
        "sub": format!("system:serviceaccount:{namespace}:{sa}"),
        // A nonce so every token is distinct, as kubelet's are.
        "jti": format!("{:016x}", fastrand::u64(..)),
    });
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    format!("{header}.{payload}.dGVzdC1zaWduYXR1cmU")
}

/// A certificate as Key Vault stores it: the key and certificates of an openssl-made fixture
/// (`tests/fixtures/pfx/`), bundled the way Key Vault bundles them (see [`key_vault_pfx`]).
#[derive(Debug, Clone)]
pub struct CertMaterial {
    /// The PKCS#12 bundle as Key Vault returns it for `application/x-pkcs12` (base64 text).
    pub pfx_base64: String,
    /// The PEM the reference writes for it: PKCS#8 key, then leaf → intermediate → root.
    pub expected_pem: &'static str,
    /// The leaf certificate's DER (the certificate object's `cer`).
    pub leaf_der: Vec<u8>,
    /// The private key (PKCS#8 DER).
    pub key_pkcs8: Vec<u8>,
    /// The certificates in the bundle's stored order: leaf, root, intermediate.
    pub stored_certs: Vec<Vec<u8>>,
}

fn pem_blocks(text: &str, tag: &str) -> Vec<Vec<u8>> {
    pem::parse_many(text)
        .unwrap_or_else(|e| panic!("fixture PEM: {e}"))
        .into_iter()
        .filter(|b| b.tag() == tag)
        .map(|b| b.contents().to_vec())
        .collect()
}

fn cert_material(
    pfx: &'static str,
    pem_text: &'static str,
    stored_order: &'static str,
    key_vault_shape: bool,
) -> CertMaterial {
    let key_pkcs8 = pem_blocks(pem_text, "PRIVATE KEY").remove(0);
    let leaf_der = pem_blocks(pem_text, "CERTIFICATE").remove(0);
    let stored_certs = pem_blocks(stored_order, "CERTIFICATE");
    let pfx_base64 = if key_vault_shape {
        STANDARD.encode(key_vault_pfx(Some(&key_pkcs8), &stored_certs, Some(0)))
    } else {
        pfx.trim().to_owned()
    };
    CertMaterial {
        pfx_base64,
        expected_pem: pem_text,
        leaf_der,
        key_pkcs8,
        stored_certs,
    }
}

/// RSA leaf + intermediate + root in Key Vault's PKCS#12 shape (B.2 empty password).
pub fn rsa_certificate() -> CertMaterial {
    cert_material(
        include_str!("../../tests/fixtures/pfx/rsa-legacy.pfx.b64"),
        include_str!("../../tests/fixtures/pfx/rsa-expected.pem"),
        include_str!("../../tests/fixtures/pfx/rsa-stored-order.pem"),
        true,
    )
}

/// EC P-256 leaf + intermediate + root in Key Vault's PKCS#12 shape (B.2 empty password).
pub fn ec_certificate() -> CertMaterial {
    cert_material(
        include_str!("../../tests/fixtures/pfx/ec-aes.pfx.b64"),
        include_str!("../../tests/fixtures/pfx/ec-expected.pem"),
        include_str!("../../tests/fixtures/pfx/ec-stored-order.pem"),
        true,
    )
}

/// The RSA fixture as `openssl pkcs12 -export -legacy` wrote it (B.1 empty password), for a
/// vault whose certificate was bundled by OpenSSL rather than by Key Vault.
pub fn rsa_certificate_openssl() -> CertMaterial {
    cert_material(
        include_str!("../../tests/fixtures/pfx/rsa-legacy.pfx.b64"),
        include_str!("../../tests/fixtures/pfx/rsa-expected.pem"),
        include_str!("../../tests/fixtures/pfx/rsa-stored-order.pem"),
        false,
    )
}

/// The EC fixture as OpenSSL 3's default export wrote it (PBES2/AES, B.1 empty password).
pub fn ec_certificate_openssl() -> CertMaterial {
    cert_material(
        include_str!("../../tests/fixtures/pfx/ec-aes.pfx.b64"),
        include_str!("../../tests/fixtures/pfx/ec-expected.pem"),
        include_str!("../../tests/fixtures/pfx/ec-stored-order.pem"),
        false,
    )
}

/// The Microsoft CSP that held the key in the Windows export (its "Microsoft CSP Name" bag
/// attribute). The sample is an RSA key; no EC sample exists, so EC keys get the same.
const MS_CSP: &str = "Microsoft Enhanced Cryptographic Provider v1.0";
/// The Windows export's `localKeyID`, on the key and on its certificate.
const MS_LOCAL_KEY_ID: [u8; 4] = [1, 0, 0, 0];
/// The PKCS#8 attributes Windows puts inside the shrouded key: `[0] { keyUsage: BIT STRING
/// 03 02 00 10 }`, exactly as decrypted from the Windows export.
const MS_KEY_ATTRIBUTES: &[u8] = &[
    0xa0, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x31, 0x04, 0x03, 0x02, 0x00, 0x10,
];

/// A PFX in the shape Key Vault returns for a certificate-backed secret. Every fact comes
/// from the Windows export among the Go provider's test vectors
/// (`TestDecodePKCS12__value__one-certificate-and-key-in-pfx-data.b64`, see
/// `shared/research/reference-vectors/INDEX.md` §1, read with `openssl pkcs12 -info -legacy`,
/// `openssl asn1parse` and our reader): [`Profile::key_vault`] (B.2 empty password; a plain
/// safe with the 3DES-shrouded key, then an RC2-40 safe of certificates; SHA-1 MAC, iteration
/// 1); on the key bag `localKeyID` 01000000, a `friendlyName` that is a braced upper-case GUID
/// (the key container's name) and the Microsoft CSP name; inside the key, the keyUsage
/// attribute; on the key's certificate (`leaf`) `localKeyID` 01000000. The sample has no
/// chain, so the other certificates get no attributes. That Key Vault returns exactly two
/// safes is also what Go's `x/crypto/pkcs12` requires of it (`research/reference.md` §6).
pub fn key_vault_pfx(key_pkcs8: Option<&[u8]>, certs: &[Vec<u8>], leaf: Option<usize>) -> Vec<u8> {
    use crate::render::pkcs12::{self, BagAttributes, CertEntry, KeyEntry, Profile};
    let key = key_pkcs8.map(with_windows_key_attributes);
    let ms_id = || BagAttributes {
        local_key_id: Some(MS_LOCAL_KEY_ID.to_vec()),
        ..BagAttributes::default()
    };
    let keys: Vec<KeyEntry<'_>> = key
        .iter()
        .map(|pkcs8| KeyEntry {
            pkcs8,
            attributes: BagAttributes {
                friendly_name: Some(guid()),
                csp_name: Some(MS_CSP.to_owned()),
                ..ms_id()
            },
        })
        .collect();
    let certs: Vec<CertEntry<'_>> = certs
        .iter()
        .enumerate()
        .map(|(i, der)| CertEntry {
            der,
            attributes: if Some(i) == leaf {
                ms_id()
            } else {
                BagAttributes::default()
            },
        })
        .collect();
    pkcs12::write(&keys, &certs, &Profile::key_vault(), &mut |b| {
        fastrand::fill(b)
    })
    .unwrap_or_else(|e| panic!("write the Key Vault PFX: {e}"))
    .to_vec()
}

/// The key with Windows' PKCS#8 attributes appended (replacing any it had).
fn with_windows_key_attributes(pkcs8: &[u8]) -> Vec<u8> {
    use der::{Encode, Reader};
    let mut reader = der::SliceReader::new(pkcs8).unwrap_or_else(|e| panic!("PKCS#8: {e}"));
    let mut body = reader
        .sequence(|r| {
            let version = der::Any::decode(r)?;
            let algorithm = der::Any::decode(r)?;
            let key = der::Any::decode(r)?;
            let mut body = Vec::new();
            for part in [version, algorithm, key] {
                body.extend(part.to_der()?);
            }
            // Drop whatever follows (attributes, public key).
            while !r.is_finished() {
                der::Any::decode(r)?;
            }
            Ok(body)
        })
        .unwrap_or_else(|e: der::Error| panic!("PKCS#8: {e}"));
    body.extend_from_slice(MS_KEY_ATTRIBUTES);
    let header = der::Header::new(
        der::Tag::Sequence,
        der::Length::try_from(body.len()).unwrap(),
    )
    .to_der()
    .unwrap_or_else(|e| panic!("PKCS#8 header: {e}"));
    [header, body].concat()
}

/// A braced upper-case GUID, as Windows names key containers.
fn guid() -> String {
    let n = fastrand::u128(..);
    format!(
        "{{{:08X}-{:04X}-{:04X}-{:04X}-{:012X}}}",
        n >> 96,
        (n >> 80) & 0xffff,
        (n >> 64) & 0xffff,
        (n >> 48) & 0xffff,
        n & 0xffff_ffff_ffff
    )
}

/// A public key as Key Vault returns it (JWK members) and the SPKI DER it must render to.
#[derive(Debug, Clone)]
pub struct KeyMaterial {
    pub jwk: Value,
    pub spki_der: Vec<u8>,
}

impl KeyMaterial {
    /// The `PUBLIC KEY` PEM the provider must write for this key.
    pub fn expected_pem(&self) -> String {
        pem::encode_config(
            &pem::Pem::new("PUBLIC KEY", self.spki_der.clone()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }
}

fn spki_of(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
    use rcgen::PublicKeyData;
    rcgen::KeyPair::generate_for(alg)
        .unwrap_or_else(|e| panic!("generate key: {e}"))
        .subject_public_key_info()
}

/// An RSA-2048 key (generated once per process: RSA generation is slow in debug builds).
pub fn rsa_key() -> KeyMaterial {
    static SPKI: OnceLock<Vec<u8>> = OnceLock::new();
    let spki_der = SPKI
        .get_or_init(|| spki_of(&rcgen::PKCS_RSA_SHA256))
        .clone();
    let info =
        spki::SubjectPublicKeyInfoRef::from_der(&spki_der).unwrap_or_else(|e| panic!("SPKI: {e}"));
    let rsa = pkcs1::RsaPublicKey::<der::asn1::UintRef<'_>>::from_der(
        info.subject_public_key.raw_bytes(),
    )
    .unwrap_or_else(|e| panic!("RSA key: {e}"));
    let jwk = json!({
        "kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(rsa.modulus.as_bytes()),
        "e": URL_SAFE_NO_PAD.encode(rsa.public_exponent.as_bytes()),
    });
    KeyMaterial { jwk, spki_der }
}

/// An EC key on P-256 (`crv` "P-256") or P-384 (`crv` "P-384"), as `kty` EC or EC-HSM.
pub fn ec_key(p384: bool, hsm: bool) -> KeyMaterial {
    let (alg, crv, len) = if p384 {
        (&rcgen::PKCS_ECDSA_P384_SHA384, "P-384", 48)
    } else {
        (&rcgen::PKCS_ECDSA_P256_SHA256, "P-256", 32)
    };
    let spki_der = spki_of(alg);
    let info =
        spki::SubjectPublicKeyInfoRef::from_der(&spki_der).unwrap_or_else(|e| panic!("SPKI: {e}"));
    let point = info.subject_public_key.raw_bytes();
    let (x, y) = point[1..].split_at(len);
    let jwk = json!({
        "kty": if hsm { "EC-HSM" } else { "EC" },
        "crv": crv,
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
    });
    KeyMaterial { jwk, spki_der }
}

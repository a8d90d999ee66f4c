//! Test material: service-account tokens shaped like kubelet's, certificates (the openssl-made
//! PKCS#12 fixtures) and keys generated at test time with their Key Vault JWKs.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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

/// A certificate as Key Vault stores it, from the openssl-made fixtures.
#[derive(Debug, Clone)]
pub struct CertMaterial {
    /// The PKCS#12 bundle as Key Vault returns it for `application/x-pkcs12` (base64 text).
    pub pfx_base64: &'static str,
    /// The PEM the reference writes for it: PKCS#8 key, then leaf → intermediate → root.
    pub expected_pem: &'static str,
    /// The leaf certificate's DER (the certificate object's `cer`).
    pub leaf_der: Vec<u8>,
}

fn cert_material(pfx: &'static str, pem_text: &'static str) -> CertMaterial {
    let blocks = pem::parse_many(pem_text).unwrap_or_else(|e| panic!("fixture PEM: {e}"));
    let leaf_der = blocks
        .iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.contents().to_vec())
        .unwrap_or_else(|| panic!("fixture has no certificate"));
    CertMaterial {
        pfx_base64: pfx.trim(),
        expected_pem: pem_text,
        leaf_der,
    }
}

/// RSA leaf + intermediate + root, Key Vault's legacy PKCS#12 encryption.
pub fn rsa_certificate() -> CertMaterial {
    cert_material(
        include_str!("../../tests/fixtures/pfx/rsa-legacy.pfx.b64"),
        include_str!("../../tests/fixtures/pfx/rsa-expected.pem"),
    )
}

/// EC P-256 leaf + intermediate + root, AES PKCS#12 encryption.
pub fn ec_certificate() -> CertMaterial {
    cert_material(
        include_str!("../../tests/fixtures/pfx/ec-aes.pfx.b64"),
        include_str!("../../tests/fixtures/pfx/ec-expected.pem"),
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

//! `key` objects: the public half of a Key Vault JSON Web Key as PKIX `SubjectPublicKeyInfo`
//! DER, as Go's `x509.MarshalPKIXPublicKey` writes it: RSA with NULL parameters over
//! `RSAPublicKey{n, e}`; EC with the named curve over the uncompressed point, which must lie on
//! the curve.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use der::Encode;
use der::asn1::{AnyRef, BitStringRef, UintRef};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use super::RenderError;
use super::keys::{EC_PUBLIC_KEY, P256, P384, P521, RSA_ENCRYPTION};
use crate::keyvault::Jwk;

/// Key Vault's base64url, padded or not.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The key's `SubjectPublicKeyInfo` DER. `object` names the object in errors.
pub fn public_key_der(jwk: &Jwk, object: &str) -> Result<Vec<u8>, RenderError> {
    let field = |name: &'static str, value: &Option<String>| -> Result<Vec<u8>, RenderError> {
        let bad = |reason: &str| RenderError::Jwk {
            object: object.to_owned(),
            field: name,
            reason: reason.to_owned(),
        };
        let text = value.as_deref().ok_or_else(|| bad("is missing"))?;
        B64URL.decode(text).map_err(|_| bad("is not base64url"))
    };
    let spki_error = |e: der::Error| RenderError::Jwk {
        object: object.to_owned(),
        field: "kty",
        reason: format!("cannot be encoded as a public key ({})", e.kind()),
    };
    match jwk.kty.as_deref() {
        Some("RSA" | "RSA-HSM") => {
            let n = field("n", &jwk.n)?;
            let e = field("e", &jwk.e)?;
            for (name, value) in [("n", &n), ("e", &e)] {
                if value.iter().all(|b| *b == 0) {
                    return Err(RenderError::Jwk {
                        object: object.to_owned(),
                        field: name,
                        reason: "is zero".into(),
                    });
                }
            }
            let rsa = pkcs1::RsaPublicKey {
                modulus: UintRef::new(&n).map_err(spki_error)?,
                public_exponent: UintRef::new(&e).map_err(spki_error)?,
            };
            let bits = rsa.to_der().map_err(spki_error)?;
            spki(RSA_ENCRYPTION, AnyRef::NULL, &bits).map_err(spki_error)
        }
        Some("EC" | "EC-HSM") => {
            let crv = jwk.crv.as_deref().unwrap_or_default();
            let (curve, size) = match crv {
                "P-256" => (P256, 32),
                "P-384" => (P384, 48),
                "P-521" => (P521, 66),
                other => {
                    return Err(RenderError::UnsupportedCurve {
                        object: object.to_owned(),
                        crv: other.to_owned(),
                    });
                }
            };
            let mut point = vec![4u8];
            for (name, value) in [("x", &jwk.x), ("y", &jwk.y)] {
                let bytes = field(name, value)?;
                let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
                let bytes = &bytes[start..];
                if bytes.len() > size {
                    return Err(RenderError::Jwk {
                        object: object.to_owned(),
                        field: name,
                        reason: format!("is longer than {crv} allows"),
                    });
                }
                point.resize(point.len() + size - bytes.len(), 0);
                point.extend_from_slice(bytes);
            }
            if !on_curve(crv, &point) {
                return Err(RenderError::Jwk {
                    object: object.to_owned(),
                    field: "x",
                    reason: format!("and \"y\" are not a point on {crv}"),
                });
            }
            spki(EC_PUBLIC_KEY, AnyRef::from(&curve), &point).map_err(spki_error)
        }
        other => Err(RenderError::UnsupportedKeyType {
            object: object.to_owned(),
            kty: other.unwrap_or_default().to_owned(),
        }),
    }
}

fn on_curve(crv: &str, point: &[u8]) -> bool {
    match crv {
        "P-256" => p256::PublicKey::from_sec1_bytes(point).is_ok(),
        "P-384" => p384::PublicKey::from_sec1_bytes(point).is_ok(),
        "P-521" => p521::PublicKey::from_sec1_bytes(point).is_ok(),
        _ => false,
    }
}

fn spki(
    oid: der::asn1::ObjectIdentifier,
    parameters: AnyRef<'_>,
    bits: &[u8],
) -> Result<Vec<u8>, der::Error> {
    SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid,
            parameters: Some(parameters),
        },
        subject_public_key: BitStringRef::from_bytes(bits)?,
    }
    .to_der()
}

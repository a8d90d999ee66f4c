//! Private keys from a PKCS#12 bundle, re-encoded exactly as Go's `x509.MarshalPKCS8PrivateKey`
//! writes them after the reference parsed them: RSA as PKCS#8 over canonical PKCS#1 (NULL
//! parameters, no attributes); EC as PKCS#8 with the named curve over SEC 1 `ECPrivateKey`
//! (version 1, scalar padded to the curve size, no inner parameters, the public point computed
//! from the scalar, uncompressed). Any other algorithm is refused, as by the reference.

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode};
use pkcs8::PrivateKeyInfoRef;
use spki::AlgorithmIdentifierRef;
use zeroize::Zeroizing;

pub(crate) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
pub(crate) const EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub(crate) const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub(crate) const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
pub(crate) const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// A private key ready to write, with the public key it implies (the `subjectPublicKey` bits a
/// matching certificate carries: PKCS#1 `RSAPublicKey` DER, or the uncompressed EC point).
pub(crate) struct ReencodedKey {
    pub pkcs8: Zeroizing<Vec<u8>>,
    pub public_key: Vec<u8>,
}

/// Re-encodes one PKCS#8 `PrivateKeyInfo`. The error is a reason in words, without key bytes.
pub(crate) fn reencode_pkcs8(der: &[u8]) -> Result<ReencodedKey, String> {
    let info = PrivateKeyInfoRef::from_der(der)
        .map_err(|e| format!("not a PKCS#8 private key ({})", e.kind()))?;
    let key = info.private_key.as_bytes();
    match info.algorithm.oid {
        RSA_ENCRYPTION => reencode_rsa(key),
        EC_PUBLIC_KEY => {
            let curve = match info.algorithm.parameters {
                Some(params) => Some(
                    params
                        .decode_as::<ObjectIdentifier>()
                        .map_err(|_| "EC key parameters are not a named curve".to_owned())?,
                ),
                None => None,
            };
            reencode_ec(key, curve)
        }
        other => Err(format!(
            "key algorithm {other} is not supported (RSA and EC keys only, as the reference \
             provider)"
        )),
    }
}

/// Re-encodes one private-key PEM block of a stored PEM bundle as PKCS#8: `PRIVATE KEY`
/// (PKCS#8), `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC 1, its curve named inside).
pub(crate) fn reencode_pem_block(label: &str, der: &[u8]) -> Result<ReencodedKey, String> {
    match label {
        "PRIVATE KEY" => reencode_pkcs8(der),
        "RSA PRIVATE KEY" => reencode_rsa(der),
        "EC PRIVATE KEY" => reencode_ec(der, None),
        "ENCRYPTED PRIVATE KEY" => Err(
            "is encrypted (ENCRYPTED PRIVATE KEY); a Key Vault certificate holds its key unencrypted"
                .into(),
        ),
        other => Err(format!("a {other:?} PEM block is not a private key")),
    }
}

/// Whether a PEM label names a private key block (the `.key` side of a bundle).
pub(crate) fn is_private_key_label(label: &str) -> bool {
    label == "PRIVATE KEY" || label.ends_with(" PRIVATE KEY")
}

fn reencode_rsa(key: &[u8]) -> Result<ReencodedKey, String> {
    let rsa = pkcs1::RsaPrivateKeyRef::from_der(key)
        .map_err(|e| format!("not a PKCS#1 RSA private key ({})", e.kind()))?;
    if rsa.other_prime_infos.is_some() {
        return Err("multi-prime RSA keys are not supported".into());
    }
    let pkcs1 = Zeroizing::new(rsa.to_der().map_err(|e| e.kind().to_string())?);
    let public_key = rsa
        .public_key()
        .to_der()
        .map_err(|e| e.kind().to_string())?;
    let pkcs8 = wrap(RSA_ENCRYPTION, Some(AnyRef::NULL), &pkcs1)?;
    Ok(ReencodedKey { pkcs8, public_key })
}

fn reencode_ec(key: &[u8], curve: Option<ObjectIdentifier>) -> Result<ReencodedKey, String> {
    let ec = sec1::EcPrivateKey::from_der(key)
        .map_err(|e| format!("not a SEC 1 EC private key ({})", e.kind()))?;
    let curve = curve
        .or_else(|| ec.parameters.and_then(|p| p.named_curve()))
        .ok_or("the EC key names no curve")?;
    let size = match curve {
        P256 => 32,
        P384 => 48,
        P521 => 66,
        other => {
            return Err(format!(
                "elliptic curve {other} is not supported (P-256, P-384 and P-521 only)"
            ));
        }
    };
    // Go strips zero padding beyond the curve size and left-pads short scalars.
    let mut scalar = ec.private_key;
    while scalar.len() > size && scalar.first() == Some(&0) {
        scalar = &scalar[1..];
    }
    if scalar.len() > size {
        return Err("the EC private scalar is longer than the curve allows".into());
    }
    let mut padded = Zeroizing::new(vec![0u8; size]);
    padded[size - scalar.len()..].copy_from_slice(scalar);
    let public_key = public_point(curve, &padded)
        .ok_or("the EC private scalar is out of range for its curve")?;
    let sec1 = sec1::EcPrivateKey {
        private_key: &padded,
        parameters: None,
        public_key: Some(&public_key),
    };
    let sec1 = Zeroizing::new(sec1.to_der().map_err(|e| e.kind().to_string())?);
    let pkcs8 = wrap(EC_PUBLIC_KEY, Some(AnyRef::from(&curve)), &sec1)?;
    Ok(ReencodedKey { pkcs8, public_key })
}

/// `scalar * G` as an uncompressed SEC 1 point, or `None` for a zero or too-large scalar.
fn public_point(curve: ObjectIdentifier, scalar: &[u8]) -> Option<Vec<u8>> {
    use p256::elliptic_curve::sec1::ToSec1Point as _;
    Some(match curve {
        P256 => p256::SecretKey::from_slice(scalar)
            .ok()?
            .public_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec(),
        P384 => p384::SecretKey::from_slice(scalar)
            .ok()?
            .public_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec(),
        P521 => p521::SecretKey::from_slice(scalar)
            .ok()?
            .public_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec(),
        _ => return None,
    })
}

fn wrap(
    oid: ObjectIdentifier,
    parameters: Option<AnyRef<'_>>,
    key: &[u8],
) -> Result<Zeroizing<Vec<u8>>, String> {
    let key = OctetStringRef::new(key).map_err(|e| e.kind().to_string())?;
    let info: PrivateKeyInfoRef<'_> = pkcs8::PrivateKeyInfo::<
        AnyRef<'_>,
        &OctetStringRef,
        BitStringRef<'_>,
    >::new(AlgorithmIdentifierRef { oid, parameters }, key);
    Ok(Zeroizing::new(
        info.to_der().map_err(|e| e.kind().to_string())?,
    ))
}

//! Writing a PFX protected by the empty password in a chosen form, with chosen algorithms and
//! layout: the shape Key Vault returns (for the testkit's fake), OpenSSL's legacy and default
//! shapes (for tests), and a modern profile for a provider that writes PKCS#12 itself.
//!
//! Pure: the caller supplies the random bytes (salts, IVs).

use der::asn1::{BmpString, ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use pkcs12::cms::cert::x509::attr::{Attribute, AttributeValue, Attributes};
use pkcs12::cms::cert::x509::spki::AlgorithmIdentifierOwned;
use pkcs12::cms::content_info::{CmsVersion, ContentInfo};
use pkcs12::cms::encrypted_data::EncryptedData;
use pkcs12::cms::enveloped_data::EncryptedContentInfo;
use pkcs12::pbe_params::EncryptedPrivateKeyInfo;
use pkcs12::pfx::{Pfx, Version};
use pkcs12::{CertBag, DigestInfo, MacData, SafeBag};
use zeroize::{Zeroize, Zeroizing};

use super::Pkcs12Error;
use super::crypt::{self, EmptyPassword, Encryption};
use super::read::{CERT_BAG, DATA, ENCRYPTED_DATA, KEY_BAG, SHROUDED_KEY_BAG, X509_CERTIFICATE};

const LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");
const FRIENDLY_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.20");
/// `szOID_PKCS_12_KEY_PROVIDER_NAME_ATTR`, the "Microsoft CSP Name" OpenSSL prints.
const MS_CSP_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.17.1");

/// Bag attributes (RFC 7292 §4.2), each written when set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BagAttributes {
    pub local_key_id: Option<Vec<u8>>,
    pub friendly_name: Option<String>,
    /// The Windows key storage provider that held the key.
    pub csp_name: Option<String>,
}

/// One private key: PKCS#8 `PrivateKeyInfo` DER.
pub struct KeyEntry<'a> {
    pub pkcs8: &'a [u8],
    pub attributes: BagAttributes,
}

/// One certificate: X.509 DER.
pub struct CertEntry<'a> {
    pub der: &'a [u8],
    pub attributes: BagAttributes,
}

/// The MAC's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacDigest {
    Sha1,
    Sha256,
}

/// The integrity MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacSpec {
    pub digest: MacDigest,
    pub iterations: u32,
    pub salt_len: usize,
    /// Whether the digest's AlgorithmIdentifier carries NULL parameters (OpenSSL) or none
    /// (Windows).
    pub null_parameters: bool,
}

/// Which safe comes first in the authenticated safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The plain safe with the keys, then the certificates' safe (Windows, Key Vault).
    KeysFirst,
    /// The certificates' safe, then the keys' (OpenSSL).
    CertsFirst,
}

/// Everything about how a PFX is written except its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub password: EmptyPassword,
    /// The shrouding of each key bag; [`Encryption::None`] writes a plain `keyBag`.
    pub keys: Encryption,
    /// The encryption of the certificates' safe; [`Encryption::None`] writes a plain safe.
    pub certs: Encryption,
    pub mac: Option<MacSpec>,
    pub layout: Layout,
}

impl Profile {
    /// What Key Vault returns for a certificate-backed secret, as the Windows export in the Go
    /// provider's tests (`TestDecodePKCS12__value__one-certificate-and-key-in-pfx-data.b64`,
    /// read with `openssl pkcs12 -info -legacy` and `openssl asn1parse`) shows it: the B.2
    /// empty password; a plain safe holding the key shrouded with 3DES, 2000 iterations,
    /// 8-byte salt, then a safe of certificates encrypted with RC2-40, 2000 iterations,
    /// 8-byte salt; a SHA-1 MAC (digest AlgorithmIdentifier without parameters), iteration
    /// count 1 (left out as the DER default), 20-byte salt.
    pub fn key_vault() -> Profile {
        Profile {
            password: EmptyPassword::ZeroLength,
            keys: Encryption::TripleDes { iterations: 2000 },
            certs: Encryption::Rc2_40 { iterations: 2000 },
            mac: Some(MacSpec {
                digest: MacDigest::Sha1,
                iterations: 1,
                salt_len: 20,
                null_parameters: false,
            }),
            layout: Layout::KeysFirst,
        }
    }

    /// `openssl pkcs12 -export -legacy -passout pass:` (OpenSSL 3.0): the B.1 empty password,
    /// certificates under RC2-40 then the key under 3DES, 2048 iterations each, SHA-1 MAC with
    /// 2048 iterations and an 8-byte salt.
    pub fn openssl_legacy() -> Profile {
        Profile {
            password: EmptyPassword::Bmp,
            keys: Encryption::TripleDes { iterations: 2048 },
            certs: Encryption::Rc2_40 { iterations: 2048 },
            mac: Some(MacSpec {
                digest: MacDigest::Sha1,
                iterations: 2048,
                salt_len: 8,
                null_parameters: true,
            }),
            layout: Layout::CertsFirst,
        }
    }

    /// OpenSSL 3's default export, and the modern choice for a PFX the provider writes: PBES2
    /// (PBKDF2-HMAC-SHA256, AES-256-CBC) for keys and certificates, SHA-256 MAC, 2048
    /// iterations, in the given password form.
    pub fn modern(password: EmptyPassword) -> Profile {
        Profile {
            password,
            keys: Encryption::Aes256Cbc { iterations: 2048 },
            certs: Encryption::Aes256Cbc { iterations: 2048 },
            mac: Some(MacSpec {
                digest: MacDigest::Sha256,
                iterations: 2048,
                salt_len: 8,
                null_parameters: true,
            }),
            layout: Layout::CertsFirst,
        }
    }
}

fn der_err(e: der::Error) -> Pkcs12Error {
    Pkcs12Error::Write(e.kind().to_string())
}

fn crypt_err(e: crypt::CryptError) -> Pkcs12Error {
    Pkcs12Error::Write(e.to_string())
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, Pkcs12Error> {
    Ok(Attribute {
        oid,
        values: SetOfVec::<AttributeValue>::from_iter([value]).map_err(der_err)?,
    })
}

fn bmp(text: &str) -> Result<Any, Pkcs12Error> {
    let der = BmpString::from_utf8(text)
        .map_err(der_err)?
        .to_der()
        .map_err(der_err)?;
    Any::from_der(&der).map_err(der_err)
}

fn attributes(attrs: &BagAttributes) -> Result<Option<Attributes>, Pkcs12Error> {
    let mut set = Attributes::new();
    if let Some(id) = &attrs.local_key_id {
        let der = OctetString::new(id.clone())
            .map_err(der_err)?
            .to_der()
            .map_err(der_err)?;
        let value = Any::from_der(&der).map_err(der_err)?;
        set.insert(attribute(LOCAL_KEY_ID, value)?)
            .map_err(der_err)?;
    }
    if let Some(name) = &attrs.friendly_name {
        set.insert(attribute(FRIENDLY_NAME, bmp(name)?)?)
            .map_err(der_err)?;
    }
    if let Some(csp) = &attrs.csp_name {
        set.insert(attribute(MS_CSP_NAME, bmp(csp)?)?)
            .map_err(der_err)?;
    }
    Ok((!set.is_empty()).then_some(set))
}

/// A SafeBag's `bagValue`: the value's DER, which `SafeBag`'s encoder wraps in `[0] EXPLICIT`
/// (its decoder keeps the wrapper; the reader unwraps it).
fn bag_value<T: Encode>(value: &T) -> Result<Vec<u8>, Pkcs12Error> {
    value.to_der().map_err(der_err)
}

fn data_content(bytes: Vec<u8>) -> Result<Any, Pkcs12Error> {
    let der = OctetString::new(bytes)
        .map_err(der_err)?
        .to_der()
        .map_err(der_err)?;
    Any::from_der(&der).map_err(der_err)
}

/// A safe of `bags`, plain or encrypted.
fn safe(
    mut bags: Vec<SafeBag>,
    encryption: Encryption,
    form: EmptyPassword,
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<ContentInfo, Pkcs12Error> {
    let encoded = bags.to_der().map_err(der_err);
    // A plain keyBag's value is the key itself.
    bags.iter_mut().for_each(|b| b.bag_value.zeroize());
    let contents = Zeroizing::new(encoded?);
    match crypt::encrypt(encryption, &contents, form, random).map_err(crypt_err)? {
        None => Ok(ContentInfo {
            content_type: DATA,
            content: data_content(contents.to_vec())?,
        }),
        Some((alg, ciphertext)) => {
            let data = EncryptedData {
                version: CmsVersion::V0,
                enc_content_info: EncryptedContentInfo {
                    content_type: DATA,
                    content_enc_alg: alg,
                    encrypted_content: Some(OctetString::new(ciphertext).map_err(der_err)?),
                },
                unprotected_attrs: None,
            };
            Ok(ContentInfo {
                content_type: ENCRYPTED_DATA,
                content: Any::from_der(&data.to_der().map_err(der_err)?).map_err(der_err)?,
            })
        }
    }
}

fn key_bag(
    key: &KeyEntry<'_>,
    profile: &Profile,
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<SafeBag, Pkcs12Error> {
    let (bag_id, bag_value) =
        match crypt::encrypt(profile.keys, key.pkcs8, profile.password, random)
            .map_err(crypt_err)?
        {
            // Checked to be one DER value, as SafeBag's encoder needs.
            None => (
                KEY_BAG,
                bag_value(&Any::from_der(key.pkcs8).map_err(der_err)?)?,
            ),
            Some((encryption_algorithm, ciphertext)) => {
                let info = EncryptedPrivateKeyInfo {
                    encryption_algorithm,
                    encrypted_data: OctetString::new(ciphertext).map_err(der_err)?,
                };
                (SHROUDED_KEY_BAG, bag_value(&info)?)
            }
        };
    Ok(SafeBag {
        bag_id,
        bag_value,
        bag_attributes: attributes(&key.attributes)?,
    })
}

fn cert_bag(cert: &CertEntry<'_>) -> Result<SafeBag, Pkcs12Error> {
    let bag = CertBag {
        cert_id: X509_CERTIFICATE,
        cert_value: OctetString::new(cert.der.to_vec()).map_err(der_err)?,
    };
    Ok(SafeBag {
        bag_id: CERT_BAG,
        bag_value: bag_value(&bag)?,
        bag_attributes: attributes(&cert.attributes)?,
    })
}

/// Writes a DER PFX holding `keys` and `certs` (each safe in the given order; an empty list
/// writes no safe). `random` fills salts and IVs.
pub fn write(
    keys: &[KeyEntry<'_>],
    certs: &[CertEntry<'_>],
    profile: &Profile,
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
    let mut key_safe = None;
    if !keys.is_empty() {
        let bags = keys
            .iter()
            .map(|k| key_bag(k, profile, random))
            .collect::<Result<Vec<_>, _>>()?;
        // Key bags are shrouded one by one; their safe stays plain (Windows and OpenSSL alike).
        key_safe = Some(safe(bags, Encryption::None, profile.password, random)?);
    }
    let mut cert_safe = None;
    if !certs.is_empty() {
        let bags = certs.iter().map(cert_bag).collect::<Result<Vec<_>, _>>()?;
        cert_safe = Some(safe(bags, profile.certs, profile.password, random)?);
    }
    let safes: Vec<ContentInfo> = match profile.layout {
        Layout::KeysFirst => key_safe.into_iter().chain(cert_safe).collect(),
        Layout::CertsFirst => cert_safe.into_iter().chain(key_safe).collect(),
    };
    let content = Zeroizing::new(safes.to_der().map_err(der_err)?);
    let mac_data = match profile.mac {
        None => None,
        Some(mac) => {
            let mut salt = vec![0u8; mac.salt_len];
            random(&mut salt);
            let oid = match mac.digest {
                MacDigest::Sha1 => crypt::SHA1,
                MacDigest::Sha256 => crypt::SHA256,
            };
            let digest = crypt::compute_mac(oid, &salt, mac.iterations, &content, profile.password)
                .map_err(crypt_err)?;
            Some(MacData {
                mac: DigestInfo {
                    algorithm: AlgorithmIdentifierOwned {
                        oid,
                        parameters: mac.null_parameters.then_some(Any::null()),
                    },
                    digest: OctetString::new(digest).map_err(der_err)?,
                },
                mac_salt: OctetString::new(salt).map_err(der_err)?,
                iterations: i32::try_from(mac.iterations)
                    .map_err(|_| Pkcs12Error::Write("MAC iteration count over i32".into()))?,
            })
        }
    };
    let pfx = Pfx {
        version: Version::V3,
        auth_safe: ContentInfo {
            content_type: DATA,
            content: data_content(content.to_vec())?,
        },
        mac_data,
    };
    Ok(Zeroizing::new(pfx.to_der().map_err(der_err)?))
}

//! Opening a PFX the way OpenSSL and Go's `x/crypto/pkcs12` do: the MAC is checked with the
//! B.1 empty password, then with the B.2 one; every encrypted safe and shrouded key is then
//! decrypted with the form that verified the MAC, falling back to the other (for a MAC-less
//! file: B.1, then B.2). A decryption counts only when it unpads and the plaintext parses
//! (a `SafeContents`, a PKCS#8 key), so a wrong key cannot pass for a right one.

use der::asn1::{ContextSpecific, ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode};
use pkcs12::cms::content_info::{CmsVersion, ContentInfo};
use pkcs12::cms::encrypted_data::EncryptedData;
use pkcs12::pbe_params::EncryptedPrivateKeyInfo;
use pkcs12::pfx::Pfx;
use pkcs12::safe_bag::SafeContents;
use pkcs12::{AuthenticatedSafe, CertBag};
use zeroize::{Zeroize, Zeroizing};

use super::Pkcs12Error;
use super::crypt::{self, CryptError, EmptyPassword};

pub(crate) const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
pub(crate) const ENCRYPTED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
pub(crate) const KEY_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.1");
pub(crate) const SHROUDED_KEY_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
pub(crate) const CERT_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
pub(crate) const X509_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");

/// What a PFX holds, in file order. Other bag types (CRLs, secrets, nested safes, non-X.509
/// certificates) are skipped.
pub struct Opened {
    /// Every private key (`keyBag` and `pkcs8ShroudedKeyBag`) as PKCS#8 `PrivateKeyInfo` DER.
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    /// Every X.509 certificate's DER, unparsed (as Go's reader hands them on).
    pub certs: Vec<Vec<u8>>,
    /// The form that verified the MAC; `None` for a file without one.
    pub mac: Option<EmptyPassword>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("keys", &self.keys.len())
            .field("certs", &self.certs.len())
            .field("mac", &self.mac)
            .finish()
    }
}

fn malformed(what: &str, e: der::Error) -> Pkcs12Error {
    Pkcs12Error::Malformed(format!("{what} ({})", e.kind()))
}

fn crypt_error(what: String, e: CryptError) -> Pkcs12Error {
    match e {
        CryptError::WrongPassword => Pkcs12Error::Decrypt(what),
        CryptError::Unsupported(reason) => Pkcs12Error::Unsupported(format!("{what}: {reason}")),
        CryptError::Parameters(reason) => Pkcs12Error::Malformed(format!("{what}: {reason}")),
    }
}

/// Opens a DER PFX protected by the empty password in either form.
pub fn open(der: &[u8]) -> Result<Opened, Pkcs12Error> {
    let pfx = Pfx::from_der(der).map_err(|e| malformed("not a PKCS#12 PFX", e))?;
    if pfx.auth_safe.content_type != DATA {
        return Err(Pkcs12Error::Unsupported(format!(
            "the authenticated safe has content type {}; only data (password integrity) is \
             supported",
            pfx.auth_safe.content_type
        )));
    }
    let content = octets(&pfx.auth_safe.content, "the authenticated safe")?;
    let mac = match &pfx.mac_data {
        None => None,
        Some(mac) => {
            let mut verified = None;
            for form in EmptyPassword::BOTH {
                match crypt::verify_mac(
                    mac.mac.algorithm.oid,
                    mac.mac_salt.as_bytes(),
                    mac.iterations,
                    &content,
                    mac.mac.digest.as_bytes(),
                    form,
                ) {
                    Ok(()) => {
                        verified = Some(form);
                        break;
                    }
                    Err(CryptError::WrongPassword) => continue,
                    Err(e) => return Err(crypt_error("the MAC".into(), e)),
                }
            }
            Some(verified.ok_or(Pkcs12Error::Mac)?)
        }
    };
    let forms = match mac {
        Some(form) => [form, form.other()],
        None => EmptyPassword::BOTH,
    };
    let safes = AuthenticatedSafe::from_der(&content)
        .map_err(|e| malformed("the authenticated safe is not a sequence of safes", e))?;
    let mut opened = Opened {
        keys: Vec::new(),
        certs: Vec::new(),
        mac,
    };
    for (i, safe) in safes.iter().enumerate() {
        let bags = safe_contents(safe, i + 1, &forms)?;
        read_bags(bags, &forms, &mut opened)?;
    }
    Ok(opened)
}

/// The contents octets of an `[0] EXPLICIT OCTET STRING` content.
fn octets(content: &Any, what: &str) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
    let der = Zeroizing::new(content.to_der().map_err(|e| malformed(what, e))?);
    let octets = OctetString::from_der(&der)
        .map_err(|e| malformed(&format!("{what} is not an OCTET STRING"), e))?;
    Ok(Zeroizing::new(octets.into_bytes().into_vec()))
}

fn safe_contents(
    safe: &ContentInfo,
    number: usize,
    forms: &[EmptyPassword; 2],
) -> Result<SafeContents, Pkcs12Error> {
    let what = format!("safe {number}");
    let parse = |bytes: &[u8]| SafeContents::from_der(bytes);
    match safe.content_type {
        DATA => {
            let bytes = octets(&safe.content, &what)?;
            parse(&bytes).map_err(|e| malformed(&format!("{what} is not a SafeContents"), e))
        }
        ENCRYPTED_DATA => {
            let der = Zeroizing::new(safe.content.to_der().map_err(|e| malformed(&what, e))?);
            let data = EncryptedData::from_der(&der)
                .map_err(|e| malformed(&format!("{what} is not EncryptedData"), e))?;
            if data.version != CmsVersion::V0 {
                return Err(Pkcs12Error::Malformed(format!(
                    "{what}: EncryptedData version {:?} (expected 0)",
                    data.version
                )));
            }
            let info = &data.enc_content_info;
            let Some(ciphertext) = &info.encrypted_content else {
                return Ok(Vec::new());
            };
            let what = format!("{what} (encrypted)");
            decrypt_with(
                &info.content_enc_alg,
                ciphertext.as_bytes(),
                forms,
                &what,
                |b| parse(b).ok(),
            )
        }
        other => Err(Pkcs12Error::Unsupported(format!(
            "{what} has content type {other}; only data and encryptedData are supported"
        ))),
    }
}

/// Decrypts with each form in turn until `accept` takes the plaintext.
fn decrypt_with<T>(
    alg: &pkcs12::cms::cert::x509::spki::AlgorithmIdentifierOwned,
    ciphertext: &[u8],
    forms: &[EmptyPassword; 2],
    what: &str,
    accept: impl Fn(&[u8]) -> Option<T>,
) -> Result<T, Pkcs12Error> {
    let tries = if crypt::depends_on_form(alg) { 2 } else { 1 };
    for form in &forms[..tries] {
        match crypt::decrypt(alg, ciphertext, *form) {
            Ok(plain) => {
                if let Some(value) = accept(&plain) {
                    return Ok(value);
                }
            }
            Err(CryptError::WrongPassword) => {}
            Err(e) => return Err(crypt_error(what.to_owned(), e)),
        }
    }
    Err(Pkcs12Error::Decrypt(what.to_owned()))
}

fn read_bags(
    bags: SafeContents,
    forms: &[EmptyPassword; 2],
    opened: &mut Opened,
) -> Result<(), Pkcs12Error> {
    for mut bag in bags {
        match bag.bag_id {
            KEY_BAG => {
                let key = ContextSpecific::<Any>::from_der(&bag.bag_value)
                    .map_err(|e| malformed("a keyBag", e))?;
                let der = key.value.to_der().map_err(|e| malformed("a keyBag", e))?;
                opened.keys.push(Zeroizing::new(der));
            }
            SHROUDED_KEY_BAG => {
                let number = opened.keys.len() + 1;
                let what = format!("private key {number} (shrouded)");
                let info = ContextSpecific::<EncryptedPrivateKeyInfo>::from_der(&bag.bag_value)
                    .map_err(|e| malformed(&what, e))?
                    .value;
                let key = decrypt_with(
                    &info.encryption_algorithm,
                    info.encrypted_data.as_bytes(),
                    forms,
                    &what,
                    |plain| {
                        pkcs8::PrivateKeyInfoRef::from_der(plain)
                            .is_ok()
                            .then(|| Zeroizing::new(plain.to_vec()))
                    },
                )?;
                opened.keys.push(key);
            }
            CERT_BAG => {
                let cert = ContextSpecific::<CertBag>::from_der(&bag.bag_value)
                    .map_err(|e| malformed("a certBag", e))?
                    .value;
                if cert.cert_id == X509_CERTIFICATE {
                    opened.certs.push(cert.cert_value.into_bytes().into_vec());
                }
            }
            _ => {}
        }
        // A plain keyBag's value is the key itself.
        bag.bag_value.zeroize();
    }
    Ok(())
}

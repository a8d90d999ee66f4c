//! The password-based cryptography of a PKCS#12 file whose password is empty: the two
//! encodings of that password, the integrity MAC, and the bag ciphers (PBES1 3DES and RC2-40,
//! PBES2 AES-CBC with PBKDF2).
//!
//! RFC 7292 gives the empty password two encodings that derive different keys with its KDF
//! (appendix B): B.1 makes every password a BMPString with a terminator, so the empty one is
//! two NUL bytes (OpenSSL, `keytool` and Python's `cryptography` write that); B.2 step 3
//! allows a zero-length password (Windows writes that, and so Key Vault). PBES2 takes the
//! password as octets (RFC 8018 §4), where the terminator has no place: both forms are the same
//! zero-length password there (OpenSSL's `PKCS5_v2_PBKDF2_keyivgen` derives the same key for
//! `NULL` and `""`), so one attempt covers both.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode};
use hmac::{KeyInit, Mac};
use pkcs12::cms::cert::x509::spki::AlgorithmIdentifierOwned;
use pkcs12::kdf::{self, Pkcs12KeyType};
use pkcs12::pbe_params::Pkcs12PbeParams;
use zeroize::Zeroizing;

/// `pbeWithSHAAnd3-KeyTripleDES-CBC` (RFC 7292 appendix C).
pub(crate) const PBE_SHA1_3DES: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
/// `pbewithSHAAnd40BitRC2-CBC` (RFC 7292 appendix C).
pub(crate) const PBE_SHA1_RC2_40: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.6");
/// `id-PBES2` (RFC 8018 appendix A.4).
pub(crate) const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");

pub(crate) const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
pub(crate) const SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.4");
pub(crate) const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
pub(crate) const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
pub(crate) const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
pub(crate) const SHA512_224: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.5");
pub(crate) const SHA512_256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.6");

/// Iteration counts above this are refused before any work (p12-keystore 0.4's cap, which the
/// provider used before, so every bundle that opened then still opens).
pub(crate) const MAX_ITERATIONS: u32 = 1_000_000;
/// scrypt memory (128 · N · r) above this is refused: OpenSSL's own default limit (32 MiB).
const MAX_SCRYPT_BYTES: u64 = 32 << 20;

/// One encoding of the empty password (RFC 7292 appendix B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmptyPassword {
    /// B.1: a BMPString with its terminator, two NUL bytes (OpenSSL, `keytool`,
    /// `cryptography`).
    Bmp,
    /// B.2 step 3: zero bytes (Windows, and so Key Vault).
    ZeroLength,
}

impl EmptyPassword {
    /// The order readers try them in, as Go's `x/crypto/pkcs12` does.
    pub const BOTH: [EmptyPassword; 2] = [EmptyPassword::Bmp, EmptyPassword::ZeroLength];

    /// The bytes the PKCS#12 KDF takes.
    fn kdf_bytes(self) -> &'static [u8] {
        match self {
            EmptyPassword::Bmp => &[0, 0],
            EmptyPassword::ZeroLength => &[],
        }
    }

    /// The other form.
    pub fn other(self) -> EmptyPassword {
        match self {
            EmptyPassword::Bmp => EmptyPassword::ZeroLength,
            EmptyPassword::ZeroLength => EmptyPassword::Bmp,
        }
    }
}

impl std::fmt::Display for EmptyPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EmptyPassword::Bmp => "RFC 7292 B.1, two NUL bytes",
            EmptyPassword::ZeroLength => "RFC 7292 B.2, zero bytes",
        })
    }
}

/// Why one decryption or MAC failed. Carries structure only, never content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CryptError {
    /// The key this password derives does not fit (bad padding, MAC mismatch): another form may.
    WrongPassword,
    /// An algorithm we do not implement.
    Unsupported(String),
    /// Parameters that are malformed or over a limit.
    Parameters(String),
}

impl std::fmt::Display for CryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CryptError::WrongPassword => f.write_str("wrong password"),
            CryptError::Unsupported(what) | CryptError::Parameters(what) => f.write_str(what),
        }
    }
}

fn iterations(count: i32) -> Result<u32, CryptError> {
    match u32::try_from(count) {
        Ok(n @ 1..=MAX_ITERATIONS) => Ok(n),
        _ => Err(CryptError::Parameters(format!(
            "iteration count {count} is outside 1..={MAX_ITERATIONS}"
        ))),
    }
}

fn kdf_sha1(
    form: EmptyPassword,
    salt: &[u8],
    id: Pkcs12KeyType,
    rounds: u32,
    len: usize,
) -> Zeroizing<Vec<u8>> {
    // `rounds` is at most MAX_ITERATIONS, so it fits an i32.
    Zeroizing::new(kdf::derive_key::<sha1::Sha1>(
        form.kdf_bytes(),
        salt,
        id,
        rounds as i32,
        len,
    ))
}

/// Whether decrypting with `alg` depends on the password form (PBES1 does, PBES2 does not).
pub(crate) fn depends_on_form(alg: &AlgorithmIdentifierOwned) -> bool {
    alg.oid != PBES2
}

/// Decrypts `data` encrypted with `alg` under the empty password in `form`.
pub(crate) fn decrypt(
    alg: &AlgorithmIdentifierOwned,
    data: &[u8],
    form: EmptyPassword,
) -> Result<Zeroizing<Vec<u8>>, CryptError> {
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| CryptError::Parameters(format!("{} without parameters", alg.oid)))?
        .to_der()
        .map_err(|e| CryptError::Parameters(e.kind().to_string()))?;
    match alg.oid {
        PBE_SHA1_3DES | PBE_SHA1_RC2_40 => {
            let params = Pkcs12PbeParams::from_der(&params)
                .map_err(|e| CryptError::Parameters(format!("PBE parameters: {}", e.kind())))?;
            let rounds = iterations(params.iterations)?;
            let salt = params.salt.as_bytes();
            let iv = kdf_sha1(form, salt, Pkcs12KeyType::Iv, rounds, 8);
            let out = if alg.oid == PBE_SHA1_3DES {
                let key = kdf_sha1(form, salt, Pkcs12KeyType::EncryptionKey, rounds, 24);
                cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                    .map_err(|_| CryptError::Parameters("3DES key length".into()))?
                    .decrypt_padded_vec::<Pkcs7>(data)
            } else {
                let key = kdf_sha1(form, salt, Pkcs12KeyType::EncryptionKey, rounds, 5);
                cbc::Decryptor::<rc2::Rc2>::new_from_slices(&key, &iv)
                    .map_err(|_| CryptError::Parameters("RC2 key length".into()))?
                    .decrypt_padded_vec::<Pkcs7>(data)
            };
            out.map(Zeroizing::new)
                .map_err(|_| CryptError::WrongPassword)
        }
        PBES2 => {
            let params = pkcs5::pbes2::Parameters::from_der(&params)
                .map_err(|e| CryptError::Parameters(format!("PBES2 parameters: {e}")))?;
            check_pbes2_limits(&params)?;
            params
                .decrypt([], data)
                .map(Zeroizing::new)
                .map_err(|e| match e {
                    pkcs5::Error::DecryptFailed => CryptError::WrongPassword,
                    other => CryptError::Unsupported(format!("PBES2: {other}")),
                })
        }
        other => Err(CryptError::Unsupported(format!(
            "encryption algorithm {other} is not supported (3DES, RC2-40 and PBES2 only)"
        ))),
    }
}

fn check_pbes2_limits(params: &pkcs5::pbes2::Parameters) -> Result<(), CryptError> {
    match &params.kdf {
        pkcs5::pbes2::Kdf::Pbkdf2(p) if p.iteration_count > MAX_ITERATIONS => {
            Err(CryptError::Parameters(format!(
                "PBKDF2 iteration count {} is over {MAX_ITERATIONS}",
                p.iteration_count
            )))
        }
        pkcs5::pbes2::Kdf::Scrypt(s) => {
            let memory = 128u64
                .checked_mul(s.cost_parameter)
                .and_then(|m| m.checked_mul(u64::from(s.block_size)));
            match memory {
                Some(m) if m <= MAX_SCRYPT_BYTES && s.parallelization <= 16 => Ok(()),
                _ => Err(CryptError::Parameters(
                    "scrypt parameters need more than 32 MiB".into(),
                )),
            }
        }
        _ => Ok(()),
    }
}

/// An encryption a writer may choose for a safe or a key bag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// No encryption: a plain safe, or an unshrouded `keyBag`.
    None,
    /// `pbewithSHAAnd40BitRC2-CBC` (Windows and `openssl -legacy` for certificates).
    Rc2_40 { iterations: u32 },
    /// `pbeWithSHAAnd3-KeyTripleDES-CBC` (Windows and `openssl -legacy` for keys).
    TripleDes { iterations: u32 },
    /// PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC (OpenSSL 3's default).
    Aes256Cbc { iterations: u32 },
}

/// Encrypts `data` with `enc` under the empty password in `form`; `None` for [`Encryption::None`].
pub(crate) fn encrypt(
    enc: Encryption,
    data: &[u8],
    form: EmptyPassword,
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<Option<(AlgorithmIdentifierOwned, Vec<u8>)>, CryptError> {
    let der_err = |e: der::Error| CryptError::Parameters(e.kind().to_string());
    let (oid, params, out) = match enc {
        Encryption::None => return Ok(None),
        Encryption::Rc2_40 { iterations: n } | Encryption::TripleDes { iterations: n } => {
            let rounds = iterations(i32::try_from(n).unwrap_or(i32::MAX))?;
            let mut salt = [0u8; 8];
            random(&mut salt);
            let iv = kdf_sha1(form, &salt, Pkcs12KeyType::Iv, rounds, 8);
            let (oid, out) = if let Encryption::TripleDes { .. } = enc {
                let key = kdf_sha1(form, &salt, Pkcs12KeyType::EncryptionKey, rounds, 24);
                let c = cbc::Encryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                    .map_err(|_| CryptError::Parameters("3DES key length".into()))?;
                (PBE_SHA1_3DES, c.encrypt_padded_vec::<Pkcs7>(data))
            } else {
                let key = kdf_sha1(form, &salt, Pkcs12KeyType::EncryptionKey, rounds, 5);
                let c = cbc::Encryptor::<rc2::Rc2>::new_from_slices(&key, &iv)
                    .map_err(|_| CryptError::Parameters("RC2 key length".into()))?;
                (PBE_SHA1_RC2_40, c.encrypt_padded_vec::<Pkcs7>(data))
            };
            let params = Pkcs12PbeParams {
                salt: OctetString::new(salt.to_vec()).map_err(der_err)?,
                iterations: rounds as i32,
            };
            (oid, params.to_der().map_err(der_err)?, out)
        }
        Encryption::Aes256Cbc { iterations: n } => {
            let mut salt = [0u8; 16];
            let mut iv = [0u8; 16];
            random(&mut salt);
            random(&mut iv);
            let params = pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(n, &salt, iv)
                .map_err(|e| CryptError::Parameters(e.to_string()))?;
            let out = params
                .encrypt([], data)
                .map_err(|e| CryptError::Parameters(e.to_string()))?;
            (PBES2, params.to_der().map_err(der_err)?, out)
        }
    };
    let alg = AlgorithmIdentifierOwned {
        oid,
        parameters: Some(Any::from_der(&params).map_err(der_err)?),
    };
    Ok(Some((alg, out)))
}

macro_rules! hmac_with {
    ($digest:ty, $form:expr, $salt:expr, $rounds:expr, $data:expr) => {{
        let size = <$digest as hmac::digest::OutputSizeUser>::output_size();
        let key = Zeroizing::new(kdf::derive_key::<$digest>(
            $form.kdf_bytes(),
            $salt,
            Pkcs12KeyType::Mac,
            $rounds as i32,
            size,
        ));
        let mut mac = hmac::Hmac::<$digest>::new_from_slice(&key)
            .map_err(|_| CryptError::Parameters("HMAC key length".into()))?;
        mac.update($data);
        mac
    }};
}

macro_rules! by_digest {
    ($oid:expr, $then:ident!($($arg:tt)*)) => {
        match $oid {
            SHA1 => $then!(sha1::Sha1, $($arg)*),
            SHA224 => $then!(sha2::Sha224, $($arg)*),
            SHA256 => $then!(sha2::Sha256, $($arg)*),
            SHA384 => $then!(sha2::Sha384, $($arg)*),
            SHA512 => $then!(sha2::Sha512, $($arg)*),
            SHA512_224 => $then!(sha2::Sha512_224, $($arg)*),
            SHA512_256 => $then!(sha2::Sha512_256, $($arg)*),
            other => Err(CryptError::Unsupported(format!(
                "MAC digest {other} is not supported (SHA-1 and SHA-2 only)"
            ))),
        }
    };
}

macro_rules! verify_with {
    ($digest:ty, $form:expr, $salt:expr, $rounds:expr, $data:expr, $expected:expr) => {
        hmac_with!($digest, $form, $salt, $rounds, $data)
            .verify_slice($expected)
            .map_err(|_| CryptError::WrongPassword)
    };
}

macro_rules! compute_with {
    ($digest:ty, $form:expr, $salt:expr, $rounds:expr, $data:expr) => {
        Ok(hmac_with!($digest, $form, $salt, $rounds, $data)
            .finalize()
            .into_bytes()
            .to_vec())
    };
}

/// Checks the PFX MAC (HMAC keyed by the PKCS#12 KDF, RFC 7292 appendix B.4) over `data`.
pub(crate) fn verify_mac(
    digest: ObjectIdentifier,
    salt: &[u8],
    count: i32,
    data: &[u8],
    expected: &[u8],
    form: EmptyPassword,
) -> Result<(), CryptError> {
    let rounds = iterations(count)?;
    by_digest!(digest, verify_with!(form, salt, rounds, data, expected))
}

/// Computes the PFX MAC over `data`.
pub(crate) fn compute_mac(
    digest: ObjectIdentifier,
    salt: &[u8],
    rounds: u32,
    data: &[u8],
    form: EmptyPassword,
) -> Result<Vec<u8>, CryptError> {
    let rounds = iterations(i32::try_from(rounds).unwrap_or(i32::MAX))?;
    by_digest!(digest, compute_with!(form, salt, rounds, data))
}

//! Rendering: Key Vault object bytes in, file bytes out, exactly as the reference Go provider
//! (Azure/secrets-store-csi-driver-provider-azure v1.8) writes them. Pure functions, no I/O.
//!
//! | object | output |
//! |---|---|
//! | plain secret | the value (after `jsonPointer`), decoded per `objectEncoding` |
//! | certificate-backed secret, `application/x-pem-file` | the value as stored |
//! | same, `application/x-pkcs12`, `objectFormat: pfx` | the stored base64 text, or with `objectEncoding: base64` the binary PFX |
//! | same, `application/x-pkcs12`, `objectFormat: pem` | PKCS#8 `PRIVATE KEY` blocks, then `CERTIFICATE` blocks ([`chain`] orders them) |
//! | key | PKIX `PUBLIC KEY` from the JWK |
//! | cert | the `cer` as one `CERTIFICATE` block |
//!
//! Deliberate differences from the reference, each a fix of a crash or of silently wrong files:
//! a certificate-backed secret without a known content type is an error (the reference panics);
//! an incomplete chain keeps every certificate in stored order (the reference drops those not on
//! the leaf's path); `.crt`/`.key` companions are not written for `objectFormat: pfx` (the
//! reference writes two empty files); `objectEncoding` hex/base64 on PEM output is a clear error
//! (the reference fails decoding the PEM text); a PFX encrypted with AES (PBES2) is read (the
//! reference only reads the legacy 3DES/RC2 forms); unknown PKCS#12 bag types are skipped.

mod chain;
mod encoding;
mod error;
mod json;
mod jwk;
mod keys;
mod pem;
pub mod pkcs12;

use zeroize::Zeroizing;

use crate::mount::plan::{ObjectEncoding, ObjectFormat, ObjectSpec, ObjectType};
use crate::mount::{ObjectVersion, OutputFile};

pub use chain::{ChainError, ChainLink, Ordered, order_chain};
pub use encoding::decode as decode_encoding;
pub use error::RenderError;
pub use json::extract as extract_json_pointer;
pub use jwk::{Jwk, public_key_der};

/// Content type Key Vault gives a certificate-backed secret stored as PEM.
pub const CONTENT_TYPE_PEM: &str = "application/x-pem-file";
/// Content type Key Vault gives a certificate-backed secret stored as PKCS#12.
pub const CONTENT_TYPE_PKCS12: &str = "application/x-pkcs12";

/// One fetched version of a Key Vault object, independent of any SDK, as the fetcher hands it in.
#[derive(Clone)]
pub enum Fetched {
    /// `GET /secrets/{name}/{version}`.
    Secret {
        /// The secret's id URL, e.g. `https://v.vault.azure.net/secrets/name/0123abcd`.
        id: String,
        value: Zeroizing<String>,
        content_type: Option<String>,
        /// Set when the secret backs a Key Vault certificate.
        kid: Option<String>,
    },
    /// `GET /keys/{name}/{version}`: only the public JWK.
    Key { id: String, jwk: Jwk },
    /// `GET /certificates/{name}/{version}`: the leaf certificate's DER.
    Cert { id: String, cer: Vec<u8> },
}

impl Fetched {
    /// The Key Vault object id URL.
    pub fn id(&self) -> &str {
        match self {
            Fetched::Secret { id, .. } | Fetched::Key { id, .. } | Fetched::Cert { id, .. } => id,
        }
    }

    fn kind(&self) -> ObjectType {
        match self {
            Fetched::Secret { .. } => ObjectType::Secret,
            Fetched::Key { .. } => ObjectType::Key,
            Fetched::Cert { .. } => ObjectType::Cert,
        }
    }
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fetched::Secret {
                id,
                value,
                content_type,
                kid,
            } => f
                .debug_struct("Secret")
                .field("id", id)
                .field("value", &format_args!("<{} bytes>", value.len()))
                .field("content_type", content_type)
                .field("kid", kid)
                .finish(),
            Fetched::Key { id, jwk } => f
                .debug_struct("Key")
                .field("id", id)
                .field("jwk", jwk)
                .finish(),
            Fetched::Cert { id, cer } => f
                .debug_struct("Cert")
                .field("id", id)
                .field("cer", &format_args!("<{} bytes>", cer.len()))
                .finish(),
        }
    }
}

/// The process flags that change rendering (`--construct-pem-chain`,
/// `--write-cert-and-key-in-separate-files`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    pub construct_pem_chain: bool,
    pub write_cert_and_key_in_separate_files: bool,
}

impl Default for RenderOptions {
    /// The reference's flag defaults: chain construction on, no companion files.
    fn default() -> Self {
        RenderOptions {
            construct_pem_chain: true,
            write_cert_and_key_in_separate_files: false,
        }
    }
}

/// The files one object produces, one [`ObjectVersion`] per file, and anything worth a log line.
#[derive(Debug, Default)]
pub struct Rendered {
    pub files: Vec<OutputFile>,
    pub versions: Vec<ObjectVersion>,
    /// Human-readable notes (for example an incomplete certificate chain); never secret material.
    pub warnings: Vec<String>,
}

/// Renders every fetched version of one object. `versions` holds exactly one entry when the
/// object has no history, else 1..=N entries, newest first, written as `<alias>/0`, `<alias>/1`, …
pub fn render(
    spec: &ObjectSpec,
    versions: &[Fetched],
    options: &RenderOptions,
) -> Result<Rendered, RenderError> {
    let object = spec.label();
    let count_ok = if spec.has_history() {
        !versions.is_empty() && versions.len() <= spec.history as usize
    } else {
        versions.len() == 1
    };
    if !count_ok {
        return Err(RenderError::VersionCount {
            object,
            history: spec.history,
            got: versions.len(),
        });
    }
    let mut out = Rendered::default();
    for (i, fetched) in versions.iter().enumerate() {
        let (path, history_index) = if spec.has_history() {
            (format!("{}/{i}", spec.alias), Some(i))
        } else {
            (spec.alias.clone(), None)
        };
        if fetched.kind() != spec.object_type {
            return Err(RenderError::WrongKind {
                object,
                expected: spec.object_type,
                got: fetched.kind(),
            });
        }
        let version = ObjectVersion {
            id: spec.version_id(history_index),
            version: version_of(fetched.id()).to_owned(),
        };
        for (suffix, contents) in render_one(spec, &object, fetched, options, &mut out.warnings)? {
            out.files.push(OutputFile {
                path: format!("{path}{suffix}"),
                mode: spec.mode,
                contents,
            });
            out.versions.push(version.clone());
        }
    }
    Ok(out)
}

/// The version of a Key Vault id: the last path segment of `https://v/secrets/name/version`
/// (empty when the id carries no version).
pub fn version_of(id: &str) -> &str {
    let path = id.split(['?', '#']).next().unwrap_or_default();
    let path = path.split_once("://").map_or(path, |(_, rest)| rest);
    let segments: Vec<&str> = path.split('/').skip(1).filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [_, _, .., last] => last,
        _ => "",
    }
}

/// `(file name suffix, contents)` in the reference's order: `.crt`, `.key`, then the file itself.
type Outputs = Vec<(&'static str, Zeroizing<Vec<u8>>)>;

fn render_one(
    spec: &ObjectSpec,
    object: &str,
    fetched: &Fetched,
    options: &RenderOptions,
    warnings: &mut Vec<String>,
) -> Result<Outputs, RenderError> {
    match fetched {
        Fetched::Key { jwk, .. } => {
            let der = jwk::public_key_der(jwk, object)?;
            Ok(vec![(
                "",
                pem::encode(&[pem::Block::new("PUBLIC KEY", &der)]),
            )])
        }
        Fetched::Cert { cer, .. } => {
            if cer.is_empty() {
                return Err(RenderError::EmptyCertificate {
                    object: object.to_owned(),
                });
            }
            Ok(vec![(
                "",
                pem::encode(&[pem::Block::new("CERTIFICATE", cer)]),
            )])
        }
        Fetched::Secret {
            value,
            content_type,
            kid: Some(kid),
            ..
        } if !kid.is_empty() => render_certificate_secret(
            spec,
            object,
            value,
            content_type.as_deref(),
            options,
            warnings,
        ),
        Fetched::Secret { value, .. } => {
            let contents = match &spec.json_pointer {
                Some(pointer) => {
                    let text = json::extract(value, pointer, object)?;
                    encoding::decode(&text, spec.encoding, object)?
                }
                None => encoding::decode(value, spec.encoding, object)?,
            };
            Ok(vec![("", contents)])
        }
    }
}

fn render_certificate_secret(
    spec: &ObjectSpec,
    object: &str,
    value: &Zeroizing<String>,
    content_type: Option<&str>,
    options: &RenderOptions,
    warnings: &mut Vec<String>,
) -> Result<Outputs, RenderError> {
    if spec.json_pointer.is_some() {
        return Err(RenderError::PointerOnCertificate {
            object: object.to_owned(),
        });
    }
    let (whole, certs, keys) = match content_type {
        Some(CONTENT_TYPE_PKCS12) if spec.format == ObjectFormat::Pfx => {
            // The stored base64 text, or the binary PFX with objectEncoding base64.
            return Ok(vec![("", encoding::decode(value, spec.encoding, object)?)]);
        }
        Some(CONTENT_TYPE_PKCS12) => {
            check_utf8_encoding(spec, object)?;
            let bundle = pkcs12::decode(value, object)?;
            let bundle = pkcs12::order(bundle, options.construct_pem_chain, object, warnings)?;
            let keys: Vec<pem::Block<'_>> = bundle
                .keys
                .iter()
                .map(|k| pem::Block::new("PRIVATE KEY", &k.pkcs8))
                .collect();
            let certs: Vec<pem::Block<'_>> = bundle
                .certs
                .iter()
                .map(|c| pem::Block::new("CERTIFICATE", c))
                .collect();
            let all: Vec<pem::Block<'_>> = keys.iter().chain(&certs).cloned().collect();
            let whole = pem::encode(&all);
            if !options.write_cert_and_key_in_separate_files {
                return Ok(vec![("", whole)]);
            }
            (whole, pem::encode(&certs), pem::encode(&keys))
        }
        Some(CONTENT_TYPE_PEM) => {
            check_utf8_encoding(spec, object)?;
            let whole = Zeroizing::new(value.as_bytes().to_vec());
            if !options.write_cert_and_key_in_separate_files {
                return Ok(vec![("", whole)]);
            }
            let (certs, keys) = pem::split_cert_and_key(value, object)?;
            (whole, certs, keys)
        }
        other => {
            return Err(RenderError::CertificateContentType {
                object: object.to_owned(),
                content_type: other.map(str::to_owned),
            });
        }
    };
    Ok(vec![(".crt", certs), (".key", keys), ("", whole)])
}

/// PEM text cannot be hex- or base64-decoded; the reference fails there with a decoder error.
fn check_utf8_encoding(spec: &ObjectSpec, object: &str) -> Result<(), RenderError> {
    match spec.encoding {
        ObjectEncoding::Utf8 => Ok(()),
        other => Err(RenderError::EncodingOnPem {
            object: object.to_owned(),
            encoding: encoding::name(other),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::version_of;

    #[test]
    fn version_is_the_last_segment_of_the_id() {
        for (id, want) in [
            (
                "https://v.vault.azure.net/secrets/name/0123abcd",
                "0123abcd",
            ),
            ("https://v.vault.azure.net/keys/name/abc?x=1", "abc"),
            ("https://v.vault.azure.net/certificates/name/abc/", "abc"),
            ("https://v.vault.azure.net/secrets/name", ""),
            ("https://v.vault.azure.net/secrets/name/", ""),
            ("", ""),
            ("not a url", ""),
        ] {
            assert_eq!(version_of(id), want, "{id}");
        }
    }
}

//! Rendering: Key Vault object bytes in, file bytes out, exactly as the reference Go provider
//! (Azure/secrets-store-csi-driver-provider-azure v1.8) writes them. Pure functions, no I/O.
//!
//! | object | output |
//! |---|---|
//! | plain secret | the value (after `jsonPointer`), decoded per `objectEncoding` |
//! | certificate-backed secret, `application/x-pem-file` | the value as stored |
//! | same, `application/x-pem-file`, `objectFormat: pfx` (ours, #1945) | a PKCS#12 built from it ([`to_pfx`]), as base64 text or with `objectEncoding: base64` binary |
//! | same, `application/x-pkcs12`, `objectFormat: pfx` | the stored base64 text, or with `objectEncoding: base64` the binary PFX |
//! | same, `application/x-pkcs12`, `objectFormat: pem` | PKCS#8 `PRIVATE KEY` blocks, then `CERTIFICATE` blocks ([`chain`] orders them) |
//! | same, `objectPart` (ours) | one part of that PEM ([`parts`]) |
//! | key | PKIX `PUBLIC KEY` from the JWK |
//! | cert | the `cer` as one `CERTIFICATE` block |
//!
//! A secret backs a certificate when it has a `kid`; App Service certificates, which have none,
//! when the object asks for a format or a part (see `app_service_bundle`).
//!
//! Deliberate differences from the reference, each a fix of a crash or of silently wrong files:
//! a certificate-backed secret without a known content type is an error (the reference panics);
//! an incomplete chain keeps every certificate in stored order (the reference drops those not on
//! the leaf's path); `.crt`/`.key` companions are not written for `objectFormat: pfx` (the
//! reference writes two empty files); `objectEncoding` hex/base64 on PEM output is a clear error
//! (the reference fails decoding the PEM text); a PFX encrypted with AES (PBES2) is read (the
//! reference only reads the legacy 3DES/RC2 forms); unknown PKCS#12 bag types are skipped;
//! `objectFormat: pfx` on a PEM certificate writes a PFX (the reference writes the PEM text
//! under the `.pfx` name, and fails on it with `objectEncoding: base64`).
//!
//! Imports the plan's object types ([`crate::spc::plan`]) and what Key Vault returned
//! ([`crate::keyvault::Fetched`]); the Mount pipeline above calls [`render`].

mod chain;
mod encoding;
mod error;
mod json;
mod jwk;
mod keys;
mod output;
mod parts;
mod pem;
pub mod pkcs12;
mod to_pfx;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::keyvault::{Fetched, version_of};
use crate::spc::plan::{ObjectEncoding, ObjectFormat, ObjectPart, ObjectSpec};

pub use chain::{ChainError, ChainLink, Ordered, order_chain};
pub use encoding::decode as decode_encoding;
pub use error::RenderError;
pub use json::extract as extract_json_pointer;
pub use jwk::public_key_der;
pub use output::{ObjectVersion, OutputFile, Rendered};

/// Content type Key Vault gives a certificate-backed secret stored as PEM.
pub const CONTENT_TYPE_PEM: &str = "application/x-pem-file";
/// Content type Key Vault gives a certificate-backed secret stored as PKCS#12.
pub const CONTENT_TYPE_PKCS12: &str = "application/x-pkcs12";

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
            id,
            value,
            content_type,
            kid,
        } => {
            let content_type = content_type.as_deref();
            let backs_certificate = kid.as_deref().is_some_and(|k| !k.is_empty());
            if backs_certificate || app_service_bundle(spec, content_type) {
                return render_certificate_secret(
                    spec,
                    object,
                    (id, value),
                    content_type,
                    options,
                    warnings,
                );
            }
            if let Some(part) = spec.part {
                return Err(RenderError::PartOfPlainSecret {
                    object: object.to_owned(),
                    part,
                    content_type: content_type.map(str::to_owned),
                });
            }
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

/// App Service certificates (#1952, #273) are secrets without `kid` but with a certificate
/// content type; they are read as a bundle only when the object asks for it, so every existing
/// SecretProviderClass keeps its bytes. A PKCS#12 one with any `objectFormat` or `objectPart`;
/// a PEM one with `objectFormat: pfx` or `objectPart` (`objectFormat: pem` on PEM text already
/// writes it as stored, and must not start adding `.crt`/`.key` files).
fn app_service_bundle(spec: &ObjectSpec, content_type: Option<&str>) -> bool {
    match content_type {
        Some(CONTENT_TYPE_PKCS12) => spec.asks_for_bundle(),
        Some(CONTENT_TYPE_PEM) => spec.part.is_some() || spec.format == ObjectFormat::Pfx,
        _ => false,
    }
}

/// `(id, value)` of a certificate-backed secret.
type StoredSecret<'a> = (&'a str, &'a Zeroizing<String>);

fn render_certificate_secret(
    spec: &ObjectSpec,
    object: &str,
    (id, value): StoredSecret<'_>,
    content_type: Option<&str>,
    options: &RenderOptions,
    warnings: &mut Vec<String>,
) -> Result<Outputs, RenderError> {
    if spec.json_pointer.is_some() {
        return Err(RenderError::PointerOnCertificate {
            object: object.to_owned(),
        });
    }
    // Any part but `all` is one file, with no `.crt`/`.key` companions.
    let part = spec.part.filter(|p| *p != ObjectPart::All);
    let (whole, certs, keys) = match content_type {
        Some(CONTENT_TYPE_PKCS12) if spec.format == ObjectFormat::Pfx => {
            // The stored base64 text, or the binary PFX with objectEncoding base64.
            return Ok(vec![("", encoding::decode(value, spec.encoding, object)?)]);
        }
        Some(CONTENT_TYPE_PKCS12) => {
            check_utf8_encoding(spec, object)?;
            let bundle = pkcs12::decode(value, object)?;
            let bundle = pkcs12::order(bundle, options.construct_pem_chain, object, warnings)?;
            if let Some(part) = part {
                return Ok(vec![("", parts::cut(part, &bundle, object)?)]);
            }
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
        Some(CONTENT_TYPE_PEM) if spec.format == ObjectFormat::Pfx => {
            // #1945: a PKCS#12 of the PEM's keys and certificates, then exactly what a
            // PKCS#12-backed certificate gives: base64 text, or binary with objectEncoding base64.
            let bundle = parts::from_pem(value, object)?;
            let bundle = pkcs12::order(bundle, options.construct_pem_chain, object, warnings)?;
            let der = to_pfx::write(&bundle, id, object)?;
            let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&der[..]));
            return Ok(vec![("", encoding::decode(&text, spec.encoding, object)?)]);
        }
        Some(CONTENT_TYPE_PEM) => {
            check_utf8_encoding(spec, object)?;
            if let Some(part) = part {
                let bundle = parts::from_pem(value, object)?;
                let bundle = pkcs12::order(bundle, options.construct_pem_chain, object, warnings)?;
                return Ok(vec![("", parts::cut(part, &bundle, object)?)]);
            }
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

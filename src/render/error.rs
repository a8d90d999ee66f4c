//! Why an object could not be rendered. Every message names the object (`objects[i] (objectName
//! "x")`) and the reason, and never carries secret material: no value, no key bytes, no decoded
//! text. The caller maps every variant to gRPC `FAILED_PRECONDITION`.

use crate::spc::plan::{ObjectPart, ObjectType};

/// One object's content cannot become the files the SecretProviderClass asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The fetcher handed over another kind of object than `objectType` names (a provider bug).
    #[error(
        "{object}: internal error: expected a Key Vault {expected} but the fetched object is a {got}"
    )]
    WrongKind {
        object: String,
        expected: ObjectType,
        got: ObjectType,
    },
    /// The number of fetched versions does not fit `objectVersionHistory` (a provider bug).
    #[error(
        "{object}: internal error: {got} versions were fetched for objectVersionHistory {history}"
    )]
    VersionCount {
        object: String,
        history: u32,
        got: usize,
    },
    /// The value is not valid text in the `objectEncoding` the SecretProviderClass names.
    #[error("{object}: objectEncoding {encoding} cannot decode the secret value: {reason}")]
    Decode {
        object: String,
        encoding: &'static str,
        /// Position and kind of the fault only, never the offending characters.
        reason: String,
    },
    /// `objectEncoding` hex/base64 asked for on PEM text rendered from a certificate.
    #[error(
        "{object}: objectEncoding {encoding} cannot apply to a certificate written as PEM; remove \
         objectEncoding, or use objectFormat: pfx with objectEncoding: base64 for a binary PFX"
    )]
    EncodingOnPem {
        object: String,
        encoding: &'static str,
    },
    /// `jsonPointer` is set but the secret value is not a JSON document.
    #[error(
        "{object}: jsonPointer needs a JSON secret value, but the value is not valid JSON \
         ({kind} at line {line}, column {column})"
    )]
    NotJson {
        object: String,
        kind: &'static str,
        line: usize,
        column: usize,
    },
    /// `jsonPointer` names nothing in the secret's JSON document.
    #[error("{object}: jsonPointer {pointer:?} does not exist in the secret's JSON value")]
    PointerNotFound { object: String, pointer: String },
    /// `jsonPointer` is set on a secret that backs a certificate (its value is PEM or PKCS#12).
    #[error("{object}: jsonPointer cannot be used on a certificate-backed secret")]
    PointerOnCertificate { object: String },
    /// A certificate-backed secret (`kid` set) has no content type, or one we cannot render.
    #[error(
        "{object}: the secret backs a Key Vault certificate but its content type is {}; \
         expected application/x-pem-file or application/x-pkcs12",
        match content_type { Some(t) => format!("{t:?}"), None => "missing".to_owned() }
    )]
    CertificateContentType {
        object: String,
        content_type: Option<String>,
    },
    /// The stored PKCS#12 bundle is not base64, or does not open with the empty password in
    /// either of its encodings.
    #[error("{object}: the certificate's PKCS#12 (PFX) bundle cannot be read: {reason}")]
    Pkcs12 { object: String, reason: String },
    /// A private key in the bundle uses an algorithm or encoding that cannot become PKCS#8 PEM.
    #[error("{object}: private key {position} of the certificate bundle: {reason}")]
    PrivateKey {
        object: String,
        /// 1-based, in bundle order.
        position: usize,
        reason: String,
    },
    /// A certificate in the bundle is not valid X.509, so the chain cannot be ordered.
    #[error("{object}: certificate {position} of the bundle is not valid X.509: {reason}")]
    Certificate {
        object: String,
        /// 1-based, in bundle order.
        position: usize,
        reason: String,
    },
    /// `--construct-pem-chain`: following issuers from the leaf loops back on itself.
    #[error(
        "{object}: the certificate chain has a cycle (AuthorityKeyId/SubjectKeyId links loop); \
         fix the certificate in Key Vault or run the provider with --construct-pem-chain=false"
    )]
    ChainCycle { object: String },
    /// `--construct-pem-chain`: every certificate in the bundle issues another one.
    #[error(
        "{object}: the certificate chain has no leaf (every certificate issues another); fix the \
         certificate in Key Vault or run the provider with --construct-pem-chain=false"
    )]
    NoLeaf { object: String },
    /// The stored PEM of an `application/x-pem-file` certificate cannot be read block by block
    /// (for `.crt`/`.key`, an `objectPart` or a PFX).
    #[error("{object}: the certificate's stored PEM cannot be read: {reason}")]
    Pem { object: String, reason: String },
    /// `objectPart` on a secret that turned out to be plain: no `kid`, no certificate content type.
    #[error(
        "{object}: objectPart {part} needs a secret that holds a certificate bundle (one that \
         backs a Key Vault certificate, or has content type application/x-pkcs12 or \
         application/x-pem-file), but this secret is a plain value (content type {}); remove \
         objectPart",
        match content_type { Some(t) => format!("{t:?}"), None => "not set".to_owned() }
    )]
    PartOfPlainSecret {
        object: String,
        part: ObjectPart,
        content_type: Option<String>,
    },
    /// `objectFormat: pfx` on a PEM certificate, and no PFX can be built from its PEM.
    #[error("{object}: a PFX cannot be built from the certificate's PEM: {reason}")]
    PfxWrite { object: String, reason: String },
    /// The bundle has nothing for the `objectPart` asked for (no key, no CA certificate, ...).
    #[error("{object}: objectPart {part} cannot be written: {reason}")]
    EmptyPart {
        object: String,
        part: ObjectPart,
        reason: String,
    },
    /// A Key Vault certificate without its DER (`cer`).
    #[error("{object}: Key Vault returned the certificate without its content (cer)")]
    EmptyCertificate { object: String },
    /// A key whose JWK type has no public-key PEM form (for example a symmetric `oct` key).
    #[error(
        "{object}: key type {kty:?} is not supported; only RSA, RSA-HSM, EC and EC-HSM keys can \
         be written as a PUBLIC KEY"
    )]
    UnsupportedKeyType { object: String, kty: String },
    /// An EC key on a curve other than P-256, P-384 and P-521.
    #[error(
        "{object}: elliptic curve {crv:?} is not supported; only P-256, P-384 and P-521 keys can \
         be written as a PUBLIC KEY"
    )]
    UnsupportedCurve { object: String, crv: String },
    /// A JWK field is missing or malformed.
    #[error("{object}: the key's JWK field {field:?} {reason}")]
    Jwk {
        object: String,
        field: &'static str,
        reason: String,
    },
}

//! What Key Vault returned for one object version, independent of any SDK: the reader produces
//! it ([`super::models`] converts the SDK's models), the renderer consumes it.

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::spc::plan::ObjectType;

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

    /// The kind of object this is.
    pub fn kind(&self) -> ObjectType {
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

/// The Key Vault JSON Web Key fields a public key needs (base64url strings); others are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Jwk {
    pub kty: Option<String>,
    pub crv: Option<String>,
    pub n: Option<String>,
    pub e: Option<String>,
    pub x: Option<String>,
    pub y: Option<String>,
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

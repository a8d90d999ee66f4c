//! Key Vault's JSON models (as the SDK decodes them) → [`Fetched`], what the renderer takes.
//! Pure, so the fuzzer drives exactly the code a Mount runs.

use azure_core::time::OffsetDateTime;
use azure_security_keyvault_certificates::models::CertificateProperties;
use azure_security_keyvault_keys::models::{Key, KeyProperties};
use azure_security_keyvault_secrets::models::{Secret, SecretProperties};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Fetched, Jwk, KvError};

fn malformed(what: &str) -> KvError {
    KvError::Malformed {
        detail: format!("Key Vault returned {what}"),
    }
}

/// A secret version; its value moves into a zeroizing buffer.
pub fn fetched_from_secret(secret: Secret) -> Result<Fetched, KvError> {
    let id = secret
        .id
        .ok_or_else(|| malformed("a secret without an id"))?;
    let value = Zeroizing::new(
        secret
            .value
            .ok_or_else(|| malformed("a secret without a value"))?,
    );
    Ok(Fetched::Secret {
        id,
        value,
        content_type: secret.content_type,
        kid: secret.kid,
    })
}

/// A key version: the SDK decodes the JWK's base64url members; they are re-read as the
/// renderer's JWK.
pub fn fetched_from_key(key: Key) -> Result<Fetched, KvError> {
    let jwk = key
        .key
        .ok_or_else(|| malformed("a key without its JSON web key"))?;
    let id = jwk
        .kid
        .clone()
        .ok_or_else(|| malformed("a key without a kid"))?;
    let json = serde_json::to_value(&jwk).map_err(|_| malformed("an unreadable JSON web key"))?;
    let jwk: Jwk =
        serde_json::from_value(json).map_err(|_| malformed("an unreadable JSON web key"))?;
    Ok(Fetched::Key { id, jwk })
}

/// The fields of a certificate bundle we use. Read from the raw body rather than the SDK's
/// `Certificate`, which also reads the unused `policy` with closed enums: a `lifetime_actions`
/// value outside `AutoRenew`/`EmailContacts` would fail the whole read.
#[derive(Deserialize)]
struct CertificateBundle {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, deserialize_with = "azure_core::base64::option::deserialize")]
    cer: Option<Vec<u8>>,
}

/// A certificate version (`GET /certificates/{name}/{version}` body): its `cer`, the leaf's DER.
pub fn fetched_from_certificate_json(body: &[u8]) -> Result<Fetched, KvError> {
    let cert: CertificateBundle = serde_json::from_slice(body).map_err(|_| KvError::Malformed {
        detail: "the response is not a Key Vault JSON document".into(),
    })?;
    let id = cert
        .id
        .ok_or_else(|| malformed("a certificate without an id"))?;
    let cer = cert
        .cer
        .ok_or_else(|| malformed("a certificate without its cer"))?;
    Ok(Fetched::Cert { id, cer })
}

/// One listed version: enabled, created, id.
pub type Listed = (Option<bool>, Option<OffsetDateTime>, Option<String>);

/// Listed secret versions.
pub fn listed_secrets(items: Vec<SecretProperties>) -> Vec<Listed> {
    items
        .into_iter()
        .map(|p| {
            (
                p.attributes.as_ref().and_then(|a| a.enabled),
                p.attributes.and_then(|a| a.created),
                p.id,
            )
        })
        .collect()
}

/// Listed key versions (their id is the `kid`).
pub fn listed_keys(items: Vec<KeyProperties>) -> Vec<Listed> {
    items
        .into_iter()
        .map(|p| {
            (
                p.attributes.as_ref().and_then(|a| a.enabled),
                p.attributes.and_then(|a| a.created),
                p.kid,
            )
        })
        .collect()
}

/// Listed certificate versions.
pub fn listed_certificates(items: Vec<CertificateProperties>) -> Vec<Listed> {
    items
        .into_iter()
        .map(|p| {
            (
                p.attributes.as_ref().and_then(|a| a.enabled),
                p.attributes.and_then(|a| a.created),
                p.id,
            )
        })
        .collect()
}

/// A listed version with a creation time: `(created, id, enabled)`.
pub type Version = (i64, String, bool);

/// `(enabled, created, id)` of listed versions → every version with a creation time and an id,
/// newest first (ties broken by id, so the order is stable). Disabled versions stay in the list,
/// marked, so a pinned disabled version can be told apart from a missing one.
pub fn newest_first(listed: impl IntoIterator<Item = Listed>) -> Vec<Version> {
    let mut versions: Vec<Version> = listed
        .into_iter()
        .filter_map(|(enabled, created, id)| {
            Some((created?.unix_timestamp(), id?, enabled != Some(false)))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    versions
}

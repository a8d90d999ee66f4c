//! The `csi.storage.k8s.io/serviceAccount.tokens` map kubelet passes when the CSIDriver object
//! lists `tokenRequests`: `{"<audience>":{"token":"<jwt>","expirationTimestamp":"<RFC 3339>"}}`.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

use super::plan::ServiceAccountToken;
use super::request::{Attributes, Secrets};
use crate::syntax::JsonProblem;

/// The attribute key kubelet uses for the token map.
pub const TOKENS_KEY: &str = "csi.storage.k8s.io/serviceAccount.tokens";

/// The audience Entra ID expects for workload identity federation.
pub const AZURE_AUDIENCE: &str = "api://AzureADTokenExchange";

#[derive(Deserialize)]
struct TokenEntry {
    token: SecretString,
    #[serde(default, rename = "expirationTimestamp")]
    expiration_timestamp: Option<String>,
}

/// Why no usable token could be taken from the map.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No map at all, or no entry for the Azure audience.
    #[error(
        "clientID selects workload identity, but kubelet passed no service-account token for \
         audience {AZURE_AUDIENCE}: add `tokenRequests: [{{audience: {AZURE_AUDIENCE}}}]` to the \
         secrets-store.csi.k8s.io CSIDriver object (Helm: secrets-store-csi-driver.tokenRequests) \
         and restart the pod"
    )]
    Missing,
    /// The map is not the JSON kubelet writes.
    #[error("the {TOKENS_KEY} attribute is not kubelet's token map ({0})")]
    Malformed(JsonProblem),
    /// The entry exists but its token is blank.
    #[error("the service-account token for audience {AZURE_AUDIENCE} is empty")]
    Empty,
}

/// Finds the token for [`AZURE_AUDIENCE`], looking in `secrets` first (Kubernetes ≥ 1.35 may
/// pass the map there) and then in `attributes`.
pub fn azure_token(
    attributes: &Attributes,
    secrets: &Secrets,
) -> Result<ServiceAccountToken, TokenError> {
    use secrecy::ExposeSecret;
    let from_secrets = secrets
        .get(TOKENS_KEY)
        .map(|s| s.expose_secret())
        .filter(|s| !s.trim().is_empty());
    let raw = from_secrets
        .or_else(|| attributes.get(TOKENS_KEY))
        .ok_or(TokenError::Missing)?;
    let map: BTreeMap<String, TokenEntry> = serde_json::from_str(raw)
        .map_err(|e| TokenError::Malformed(JsonProblem::from_json_error(&e)))?;
    let entry = map
        .into_iter()
        .find(|(aud, _)| aud == AZURE_AUDIENCE)
        .map(|(_, entry)| entry)
        .ok_or(TokenError::Missing)?;
    if entry.token.expose_secret().trim().is_empty() {
        return Err(TokenError::Empty);
    }
    let expires_at = entry
        .expiration_timestamp
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339_weak(t.trim()).ok());
    let jwt = SecretString::from(entry.token.expose_secret().trim().to_owned());
    Ok(ServiceAccountToken { jwt, expires_at })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use secrecy::ExposeSecret;

    use super::*;

    fn map(json: &str) -> Attributes {
        Attributes::from_pairs([(TOKENS_KEY, json)])
    }

    #[test]
    fn finds_the_azure_audience() {
        let attrs = map(
            r#"{"other":{"token":"x","expirationTimestamp":"2026-01-01T00:00:00Z"},
                "api://AzureADTokenExchange":{"token":"jwt-a","expirationTimestamp":"2026-11-22T17:18:32Z"}}"#,
        );
        let t = azure_token(&attrs, &Secrets::default()).unwrap();
        assert_eq!(t.jwt.expose_secret(), "jwt-a");
        assert_eq!(
            t.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_795_367_912))
        );
    }

    #[test]
    fn secrets_win_over_attributes() {
        let attrs = map(r#"{"api://AzureADTokenExchange":{"token":"from-attrs"}}"#);
        let secrets = Secrets::from_pairs([(
            TOKENS_KEY,
            r#"{"api://AzureADTokenExchange":{"token":"from-secrets"}}"#,
        )]);
        assert_eq!(
            azure_token(&attrs, &secrets).unwrap().jwt.expose_secret(),
            "from-secrets"
        );
        assert!(
            azure_token(&attrs, &Secrets::default())
                .unwrap()
                .expires_at
                .is_none()
        );
    }

    #[test]
    fn problems() {
        assert!(matches!(
            azure_token(&Attributes::default(), &Secrets::default()),
            Err(TokenError::Missing)
        ));
        assert!(matches!(
            azure_token(&map(r#"{"aud":{"token":"x"}}"#), &Secrets::default()),
            Err(TokenError::Missing)
        ));
        assert!(matches!(
            azure_token(
                &map(r#"{"api://AzureADTokenExchange":{"token":" "}}"#),
                &Secrets::default()
            ),
            Err(TokenError::Empty)
        ));
        let e = azure_token(
            &map(r#"{"api://AzureADTokenExchange":"eyJleaky"}"#),
            &Secrets::default(),
        )
        .unwrap_err();
        assert!(matches!(e, TokenError::Malformed(_)));
        assert!(!e.to_string().contains("eyJleaky"));
        assert!(TokenError::Missing.to_string().contains("tokenRequests"));
    }
}

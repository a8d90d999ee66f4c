//! The `csi.storage.k8s.io/serviceAccount.tokens` map kubelet passes when the CSIDriver object
//! lists `tokenRequests`: `{"<audience>":{"token":"<jwt>","expirationTimestamp":"<RFC 3339>"}}`.
//! Workload identity reads the token for [`AZURE_AUDIENCE`], identity binding the one for
//! [`IDENTITY_BINDING_AUDIENCE`]; each mode's missing token has its own message.

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

/// The audience AKS's token proxy expects for identity binding (`useAzureTokenProxy`).
pub const IDENTITY_BINDING_AUDIENCE: &str = "api://AKSIdentityBinding";

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
    /// Identity binding, and kubelet passed no token map at all.
    #[error(
        "useAzureTokenProxy selects identity binding, but kubelet passed no service-account tokens \
         at all: the secrets-store.csi.k8s.io CSIDriver object has no tokenRequests. Add \
         `tokenRequests: [{{audience: {IDENTITY_BINDING_AUDIENCE}}}]` (Helm: \
         secrets-store-csi-driver.tokenRequests) and restart the pod"
    )]
    BindingNoTokens,
    /// Identity binding, and the map has no entry for its audience.
    #[error(
        "useAzureTokenProxy selects identity binding, but kubelet passed no service-account token \
         for audience {IDENTITY_BINDING_AUDIENCE} (only for {present}): add \
         `{{audience: {IDENTITY_BINDING_AUDIENCE}}}` to the tokenRequests of the \
         secrets-store.csi.k8s.io CSIDriver object (Helm: secrets-store-csi-driver.tokenRequests) \
         and restart the pod"
    )]
    BindingAudienceMissing {
        /// The audiences kubelet did pass (names, never tokens).
        present: String,
    },
    /// The map is not the JSON kubelet writes.
    #[error("the {TOKENS_KEY} attribute is not kubelet's token map ({0})")]
    Malformed(JsonProblem),
    /// The entry exists but its token is blank.
    #[error("the service-account token for audience {0} is empty")]
    Empty(&'static str),
}

/// The raw token map: from `secrets` first (Kubernetes ≥ 1.35 may pass it there), then from
/// `attributes`. `None` when neither has one.
fn raw_map<'a>(attributes: &'a Attributes, secrets: &'a Secrets) -> Option<&'a str> {
    use secrecy::ExposeSecret;
    secrets
        .get(TOKENS_KEY)
        .map(|s| s.expose_secret())
        .filter(|s| !s.trim().is_empty())
        .or_else(|| attributes.get(TOKENS_KEY))
}

fn parse_map(raw: &str) -> Result<BTreeMap<String, TokenEntry>, TokenError> {
    serde_json::from_str(raw).map_err(|e| TokenError::Malformed(JsonProblem::from_json_error(&e)))
}

fn into_token(
    entry: TokenEntry,
    audience: &'static str,
) -> Result<ServiceAccountToken, TokenError> {
    use secrecy::ExposeSecret;
    if entry.token.expose_secret().trim().is_empty() {
        return Err(TokenError::Empty(audience));
    }
    let expires_at = entry
        .expiration_timestamp
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339_weak(t.trim()).ok());
    let jwt = SecretString::from(entry.token.expose_secret().trim().to_owned());
    Ok(ServiceAccountToken { jwt, expires_at })
}

/// Finds the token for [`AZURE_AUDIENCE`] (workload identity).
pub fn azure_token(
    attributes: &Attributes,
    secrets: &Secrets,
) -> Result<ServiceAccountToken, TokenError> {
    let raw = raw_map(attributes, secrets).ok_or(TokenError::Missing)?;
    let entry = parse_map(raw)?
        .remove(AZURE_AUDIENCE)
        .ok_or(TokenError::Missing)?;
    into_token(entry, AZURE_AUDIENCE)
}

/// Finds the token for [`IDENTITY_BINDING_AUDIENCE`] (identity binding). A missing map and a
/// map without that audience are told apart: both are fixed in the CSIDriver's tokenRequests,
/// but the second names the audiences kubelet does request.
pub fn identity_binding_token(
    attributes: &Attributes,
    secrets: &Secrets,
) -> Result<ServiceAccountToken, TokenError> {
    let raw = raw_map(attributes, secrets).ok_or(TokenError::BindingNoTokens)?;
    let mut map = parse_map(raw)?;
    match map.remove(IDENTITY_BINDING_AUDIENCE) {
        Some(entry) => into_token(entry, IDENTITY_BINDING_AUDIENCE),
        None if map.is_empty() => Err(TokenError::BindingNoTokens),
        None => Err(TokenError::BindingAudienceMissing {
            present: map
                .keys()
                .take(5)
                .map(|aud| crate::spc::params::shorten(aud))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
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
            Err(TokenError::Empty(AZURE_AUDIENCE))
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

    #[test]
    fn identity_binding_audience() {
        let both = map(
            r#"{"api://AKSIdentityBinding":{"token":"ib-jwt","expirationTimestamp":"2099-01-01T00:00:00Z"},
                "api://AzureADTokenExchange":{"token":"wi-jwt"}}"#,
        );
        let t = identity_binding_token(&both, &Secrets::default()).unwrap();
        assert_eq!(t.jwt.expose_secret(), "ib-jwt");
        assert!(t.expires_at.is_some());
        assert_eq!(
            azure_token(&both, &Secrets::default())
                .unwrap()
                .jwt
                .expose_secret(),
            "wi-jwt"
        );
        // Secrets first, as for workload identity.
        let secrets = Secrets::from_pairs([(
            TOKENS_KEY,
            r#"{"api://AKSIdentityBinding":{"token":"from-secrets"}}"#,
        )]);
        assert_eq!(
            identity_binding_token(&both, &secrets)
                .unwrap()
                .jwt
                .expose_secret(),
            "from-secrets"
        );
    }

    #[test]
    fn identity_binding_problems_name_the_fix() {
        let none = identity_binding_token(&Attributes::default(), &Secrets::default()).unwrap_err();
        assert!(matches!(none, TokenError::BindingNoTokens));
        assert!(none.to_string().contains("no tokenRequests"), "{none}");
        let empty_map = identity_binding_token(&map("{}"), &Secrets::default()).unwrap_err();
        assert!(matches!(empty_map, TokenError::BindingNoTokens));
        let wi_only = identity_binding_token(
            &map(r#"{"api://AzureADTokenExchange":{"token":"eyJsecret-wi"}}"#),
            &Secrets::default(),
        )
        .unwrap_err();
        let text = wi_only.to_string();
        assert!(
            text.contains("only for api://AzureADTokenExchange")
                && text.contains("api://AKSIdentityBinding")
                && text.contains("tokenRequests"),
            "{text}"
        );
        assert!(!text.contains("eyJsecret"), "{text}");
        assert!(matches!(
            identity_binding_token(
                &map(r#"{"api://AKSIdentityBinding":{"token":""}}"#),
                &Secrets::default()
            ),
            Err(TokenError::Empty(IDENTITY_BINDING_AUDIENCE))
        ));
        assert!(matches!(
            identity_binding_token(&map("invalid"), &Secrets::default()),
            Err(TokenError::Malformed(_))
        ));
    }
}

//! Decoding the JSON strings inside a `MountRequest`. Nothing here logs or echoes a value:
//! attributes carry service-account tokens and secrets carry client secrets.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroize;

use crate::syntax::JsonProblem;

/// The raw string fields of a `MountRequest`.
pub struct RawRequest<'a> {
    pub attributes: &'a str,
    pub secrets: &'a str,
    pub permission: &'a str,
}

/// The decoded `attributes`: SecretProviderClass parameters plus kubelet's keys.
/// `Debug` prints keys only, since the token map is one of the values.
#[derive(Default)]
pub struct Attributes(BTreeMap<String, String>);

impl Attributes {
    /// The whitespace-trimmed value of `key`; `None` when absent or blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// Builds attributes from pairs (tests and the `check` command).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Attributes(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        for value in self.0.values_mut() {
            value.zeroize();
        }
    }
}

/// The decoded `secrets` (nodePublishSecretRef data). Values never leave a `SecretString`.
#[derive(Default)]
pub struct Secrets(BTreeMap<String, SecretString>);

impl Secrets {
    /// Exact-key lookup.
    pub fn get(&self, key: &str) -> Option<&SecretString> {
        self.0.get(key)
    }

    /// Case-insensitive key lookup (`clientid`, `ClientID`, ...), as the reference does.
    pub fn get_ignore_case(&self, key: &str) -> Option<&SecretString> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    /// Builds secrets from pairs (tests and the `check` command).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Secrets(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), SecretString::from(v.into())))
                .collect(),
        )
    }

    /// Whether any value is non-blank under `key` (case-insensitive).
    pub fn has_ignore_case(&self, key: &str) -> bool {
        self.get_ignore_case(key)
            .is_some_and(|v| !v.expose_secret().trim().is_empty())
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A `MountRequest`'s JSON fields, decoded.
#[derive(Debug)]
pub struct DecodedRequest {
    pub attributes: Attributes,
    pub secrets: Secrets,
    /// Default file mode bits from `permission` (e.g. 420 = 0644).
    pub permission: u32,
}

/// A `MountRequest` field that is not what the CSI driver sends.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// `attributes` is not a JSON object of strings.
    #[error("the request's attributes are not a JSON object of strings ({0})")]
    Attributes(JsonProblem),
    /// `secrets` is neither `null` nor a JSON object of strings.
    #[error(
        "the request's secrets (nodePublishSecretRef data) are not a JSON object of strings ({0})"
    )]
    Secrets(JsonProblem),
    /// `permission` is not a decimal file mode.
    #[error(
        "the request's permission {0:?} is not a decimal file mode between 0 and 511 (e.g. \"420\" for 0644)"
    )]
    Permission(String),
}

/// Decodes the three JSON-in-string fields of a `MountRequest`.
pub fn decode(
    attributes: &str,
    secrets: &str,
    permission: &str,
) -> Result<DecodedRequest, RequestError> {
    let attributes: BTreeMap<String, String> = serde_json::from_str(attributes)
        .map_err(|e| RequestError::Attributes(JsonProblem::from_json_error(&e)))?;
    let attributes = Attributes(attributes);
    let secrets = match secrets.trim() {
        "" | "null" => Secrets::default(),
        text => {
            let map: BTreeMap<String, SecretString> = serde_json::from_str(text)
                .map_err(|e| RequestError::Secrets(JsonProblem::from_json_error(&e)))?;
            Secrets(map)
        }
    };
    let permission = parse_permission(permission)?;
    Ok(DecodedRequest {
        attributes,
        secrets,
        permission,
    })
}

fn parse_permission(text: &str) -> Result<u32, RequestError> {
    let shown = || {
        let mut s: String = text.chars().take(32).collect();
        if text.chars().count() > 32 {
            s.push('…');
        }
        RequestError::Permission(s)
    };
    let trimmed = text.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) || trimmed.len() > 4 {
        return Err(shown());
    }
    let mode: u32 = trimmed.parse().map_err(|_| shown())?;
    if mode > 0o777 {
        return Err(shown());
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_driver_shapes() {
        let r = decode(r#"{"a":" b "}"#, "null", "420").unwrap();
        assert_eq!(r.attributes.get("a"), Some("b"));
        assert_eq!(r.permission, 0o644);
        let r = decode("{}", r#"{"ClientID":"id","clientsecret":"s3cr3t"}"#, "511").unwrap();
        assert!(r.secrets.has_ignore_case("clientid"));
        assert_eq!(
            r.secrets
                .get_ignore_case("CLIENTSECRET")
                .unwrap()
                .expose_secret(),
            "s3cr3t"
        );
        assert_eq!(r.permission, 0o777);
        assert!(decode("{}", "{}", "0").is_ok());
    }

    #[test]
    fn rejects_without_echoing_values() {
        let e = decode(r#"{"k": 1}"#, "null", "420")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = decode("{}", r#"["hunter2-secret"]"#, "420")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        let e = decode("{}", r#"{"clientsecret": ["hunter2-secret"]}"#, "420")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        for bad in ["", "0644x", "512", "-1", "4.2", "\"420\"", "99999999999"] {
            assert!(
                matches!(decode("{}", "null", bad), Err(RequestError::Permission(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_shows_keys_only() {
        let r = decode(
            r#"{"csi.storage.k8s.io/serviceAccount.tokens":"eyJsecret"}"#,
            r#"{"clientsecret":"hunter2"}"#,
            "420",
        )
        .unwrap();
        let shown = format!("{r:?}");
        assert!(shown.contains("serviceAccount.tokens") && shown.contains("clientsecret"));
        assert!(
            !shown.contains("eyJsecret") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}

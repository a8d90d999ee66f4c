//! Azure clouds: the names a SecretProviderClass may use and the endpoints each implies,
//! including Azure Stack's from its environment file. Imports only [`crate::syntax`]; `spc`
//! above names a cloud per plan.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// One of the cloud names the reference provider accepts in `cloudName` / `--cloud-name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloudName {
    AzurePublicCloud,
    AzureUSGovernmentCloud,
    AzureChinaCloud,
    AzureGermanCloud,
    /// Azure Stack Hub: endpoints come from a go-autorest environment file.
    AzureStackCloud,
}

impl CloudName {
    /// The accepted spellings, for error messages.
    pub const EXPECTED: &'static str = "expected one of AzurePublicCloud, AzureUSGovernmentCloud, \
        AzureChinaCloud, AzureGermanCloud, AzureStackCloud";

    const ALL: [CloudName; 5] = [
        CloudName::AzurePublicCloud,
        CloudName::AzureUSGovernmentCloud,
        CloudName::AzureChinaCloud,
        CloudName::AzureGermanCloud,
        CloudName::AzureStackCloud,
    ];

    /// Case-insensitive, whitespace-trimmed lookup; `None` for anything else (incl. `AzureCloud`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }

    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudName::AzurePublicCloud => "AzurePublicCloud",
            CloudName::AzureUSGovernmentCloud => "AzureUSGovernmentCloud",
            CloudName::AzureChinaCloud => "AzureChinaCloud",
            CloudName::AzureGermanCloud => "AzureGermanCloud",
            CloudName::AzureStackCloud => "AzureStackCloud",
        }
    }

    /// Endpoints of a well-known cloud; `None` for Azure Stack, whose come from a file.
    pub fn well_known_endpoints(self) -> Option<CloudEndpoints> {
        let (authority, suffix) = match self {
            CloudName::AzurePublicCloud => {
                ("https://login.microsoftonline.com/", "vault.azure.net")
            }
            CloudName::AzureUSGovernmentCloud => (
                "https://login.microsoftonline.us/",
                "vault.usgovcloudapi.net",
            ),
            CloudName::AzureChinaCloud => ("https://login.chinacloudapi.cn/", "vault.azure.cn"),
            CloudName::AzureGermanCloud => (
                "https://login.microsoftonline.de/",
                "vault.microsoftazure.de",
            ),
            CloudName::AzureStackCloud => return None,
        };
        Some(CloudEndpoints {
            authority_host: authority.to_owned(),
            vault_dns_suffix: suffix.to_owned(),
            key_vault_resource: format!("https://{suffix}"),
        })
    }
}

impl fmt::Display for CloudName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where to get tokens and find vaults in one cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEndpoints {
    /// Entra authority host, always ending in `/` (e.g. `https://login.microsoftonline.com/`).
    pub authority_host: String,
    /// DNS suffix of vaults (e.g. `vault.azure.net`), no leading dot.
    pub vault_dns_suffix: String,
    /// Key Vault resource without a trailing `/`; the token scope is this plus `/.default`.
    pub key_vault_resource: String,
}

impl CloudEndpoints {
    /// `https://{vault}.{suffix}/`.
    pub fn vault_url(&self, vault_name: &str) -> String {
        format!("https://{vault_name}.{}/", self.vault_dns_suffix)
    }

    /// The OAuth scope for Key Vault in this cloud.
    pub fn key_vault_scope(&self) -> String {
        format!("{}/.default", self.key_vault_resource)
    }
}

/// Why an Azure Stack environment file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    /// The file could not be read.
    #[error("cannot read the cloud environment file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any environment file.
    #[error("the cloud environment file {path} is larger than {max} bytes")]
    TooLarge { path: String, max: u64 },
    /// The file is not the go-autorest Environment JSON.
    #[error("the cloud environment file {path} is not a JSON environment document: {reason}")]
    Invalid { path: String, reason: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvironmentFile {
    #[serde(default)]
    active_directory_endpoint: String,
    #[serde(default)]
    key_vault_endpoint: String,
    #[serde(default, rename = "keyVaultDNSSuffix")]
    key_vault_dns_suffix: String,
}

const MAX_ENV_FILE_BYTES: u64 = 1 << 20;

/// Reads a go-autorest environment file (Azure Stack Hub). Called per request: nothing
/// process-wide is changed, so concurrent Mounts for different stacks cannot race.
pub fn load_environment_file(path: &Path) -> Result<CloudEndpoints, EnvFileError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| EnvFileError::Read {
        path: shown.clone(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_ENV_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| EnvFileError::Read {
            path: shown.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_ENV_FILE_BYTES {
        return Err(EnvFileError::TooLarge {
            path: shown,
            max: MAX_ENV_FILE_BYTES,
        });
    }
    parse_environment(&bytes).map_err(|reason| EnvFileError::Invalid {
        path: shown,
        reason,
    })
}

/// Parses the environment JSON; the error is a human-readable reason.
pub fn parse_environment(bytes: &[u8]) -> Result<CloudEndpoints, String> {
    // Position only: the file is named by the SecretProviderClass and may be any file on the
    // node, so its contents must not reach a pod event.
    let env: EnvironmentFile = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "not valid JSON for an environment ({})",
            crate::syntax::JsonProblem::from_json_error(&e)
        )
    })?;
    let authority = env.active_directory_endpoint.trim();
    if authority.is_empty() {
        return Err("activeDirectoryEndpoint is missing".into());
    }
    if !authority.starts_with("https://") {
        return Err(format!(
            "activeDirectoryEndpoint {authority:?} must be an https URL"
        ));
    }
    let suffix = env.key_vault_dns_suffix.trim().trim_start_matches('.');
    if suffix.is_empty() {
        return Err("keyVaultDNSSuffix is missing".into());
    }
    let resource = match env.key_vault_endpoint.trim() {
        "" => format!("https://{suffix}"),
        r if r.starts_with("https://") => r.trim_end_matches('/').to_owned(),
        r => return Err(format!("keyVaultEndpoint {r:?} must be an https URL")),
    };
    let mut authority_host = authority.to_owned();
    if !authority_host.ends_with('/') {
        authority_host.push('/');
    }
    Ok(CloudEndpoints {
        authority_host,
        vault_dns_suffix: suffix.to_owned(),
        key_vault_resource: resource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_strict() {
        assert_eq!(
            CloudName::parse(" azureusgovernmentcloud "),
            Some(CloudName::AzureUSGovernmentCloud)
        );
        assert_eq!(
            CloudName::parse("AZURESTACKCLOUD"),
            Some(CloudName::AzureStackCloud)
        );
        assert_eq!(CloudName::parse("AzureCloud"), None);
        assert_eq!(CloudName::parse(""), None);
    }

    #[test]
    fn well_known_endpoints_match_spec() {
        let table = [
            (
                CloudName::AzurePublicCloud,
                "https://login.microsoftonline.com/",
                "vault.azure.net",
            ),
            (
                CloudName::AzureUSGovernmentCloud,
                "https://login.microsoftonline.us/",
                "vault.usgovcloudapi.net",
            ),
            (
                CloudName::AzureChinaCloud,
                "https://login.chinacloudapi.cn/",
                "vault.azure.cn",
            ),
            (
                CloudName::AzureGermanCloud,
                "https://login.microsoftonline.de/",
                "vault.microsoftazure.de",
            ),
        ];
        for (cloud, authority, suffix) in table {
            let e = cloud.well_known_endpoints().unwrap();
            assert_eq!(e.authority_host, authority);
            assert_eq!(e.vault_dns_suffix, suffix);
            assert_eq!(e.key_vault_scope(), format!("https://{suffix}/.default"));
            assert_eq!(e.vault_url("kv1"), format!("https://kv1.{suffix}/"));
        }
        assert!(CloudName::AzureStackCloud.well_known_endpoints().is_none());
    }

    #[test]
    fn environment_file() {
        let e = parse_environment(
            br#"{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://login.stack.local/adfs",
                "keyVaultEndpoint":"https://vault.stack.local/","keyVaultDNSSuffix":"vault.stack.local",
                "resourceManagerEndpoint":"https://management.stack.local/"}"#,
        )
        .unwrap();
        assert_eq!(e.authority_host, "https://login.stack.local/adfs/");
        assert_eq!(e.key_vault_scope(), "https://vault.stack.local/.default");
        let e = parse_environment(
            br#"{"activeDirectoryEndpoint":"https://login.stack.local/","keyVaultDNSSuffix":"vault.stack.local"}"#,
        )
        .unwrap();
        assert_eq!(e.key_vault_resource, "https://vault.stack.local");
        let leak = parse_environment(br#"{"activeDirectoryEndpoint": ["root:x:0:0:secret-line"]}"#)
            .unwrap_err();
        assert!(!leak.contains("secret-line"), "{leak}");
        for bad in [
            &b"not json"[..],
            br#"{"keyVaultDNSSuffix":"v"}"#,
            br#"{"activeDirectoryEndpoint":"http://x/","keyVaultDNSSuffix":"v"}"#,
            br#"{"activeDirectoryEndpoint":"https://x/"}"#,
        ] {
            assert!(parse_environment(bad).is_err());
        }
    }
}

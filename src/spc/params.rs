//! SecretProviderClass parameters (`attributes` + `secrets`) → a validated [`MountPlan`].
//! Every rule of SPEC §3 lives here or, for `objects`, in [`super::objects`]; every violation
//! says which key or object and why.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use super::objects::parse_objects;
use super::plan::{CloudSelection, Identity, MountPlan, PodRef, object_label};
use super::request::{Attributes, Secrets};
use super::tokens::{self, TokenError};
use crate::cloud::CloudName;

/// Process-wide defaults a plan falls back to.
#[derive(Debug, Clone)]
pub struct PlanDefaults {
    /// `--cloud-name`, for SecretProviderClasses without `cloudName`.
    pub cloud: CloudName,
    /// `AZURE_ENVIRONMENT_FILEPATH`, for `AzureStackCloud` without `cloudEnvFileName`.
    pub environment_file: Option<PathBuf>,
}

impl Default for PlanDefaults {
    fn default() -> Self {
        PlanDefaults {
            cloud: CloudName::AzurePublicCloud,
            environment_file: None,
        }
    }
}

/// One broken rule in a SecretProviderClass.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    /// A required parameter is absent or blank.
    #[error("parameter {key} is required: {hint}")]
    Missing {
        key: &'static str,
        hint: &'static str,
    },
    /// A parameter's value breaks its rule.
    #[error("parameter {key} {problem}")]
    Invalid { key: &'static str, problem: String },
    /// The identity parameters select no mode, or more than one.
    #[error("{0}")]
    Identity(String),
    /// The workload identity token is missing or unusable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// `objects` as a whole is unusable.
    #[error("parameter objects {0}")]
    Objects(String),
    /// One entry of `objects.array` breaks a rule.
    #[error("{label}: {problem}")]
    Object { label: String, problem: String },
}

impl ParamError {
    /// An error about `objects[index]`.
    pub fn object(index: usize, name: Option<&str>, problem: String) -> Self {
        ParamError::Object {
            label: object_label(index, name),
            problem,
        }
    }
}

/// Every problem found in one SecretProviderClass (never empty).
#[derive(Debug)]
pub struct ParamErrors(pub Vec<ParamError>);

/// Pod events get at most this many problems; `check` prints them all.
const MAX_SHOWN: usize = 5;

impl fmt::Display for ParamErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid SecretProviderClass: ")?;
        for (i, e) in self.0.iter().take(MAX_SHOWN).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() > MAX_SHOWN {
            write!(f, "; and {} more problems", self.0.len() - MAX_SHOWN)?;
        }
        Ok(())
    }
}

impl std::error::Error for ParamErrors {}

/// Go `strconv.ParseBool` spellings.
pub fn parse_bool(value: &str) -> Option<bool> {
    crate::syntax::parse_go_bool(value.trim()).ok()
}

/// Builds the mount plan. `permission` is the request's default file mode.
pub fn parse(
    attributes: &Attributes,
    secrets: &Secrets,
    permission: u32,
    defaults: &PlanDefaults,
) -> Result<MountPlan, ParamErrors> {
    let mut errors = Vec::new();

    let vault_name = match attributes.get("keyvaultName") {
        None => {
            errors.push(ParamError::Missing {
                key: "keyvaultName",
                hint: "the name of the Key Vault (e.g. my-vault for https://my-vault.vault.azure.net)",
            });
            String::new()
        }
        Some(v) if super::object_fields::is_vault_name(v) => v.to_owned(),
        Some(v) => {
            errors.push(ParamError::Invalid {
                key: "keyvaultName",
                problem: format!(
                    "{:?} is not a vault name: use 3-24 letters, digits and hyphens (the name, not the URL)",
                    shorten(v)
                ),
            });
            String::new()
        }
    };

    let tenant_id = match attributes
        .get("tenantID")
        .or_else(|| attributes.get("tenantId"))
    {
        None => {
            errors.push(ParamError::Missing {
                key: "tenantID",
                hint: "the Microsoft Entra tenant ID (a GUID) of the identity and the vault",
            });
            String::new()
        }
        Some(t)
            if t.len() <= 256
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') =>
        {
            t.to_owned()
        }
        Some(t) => {
            errors.push(ParamError::Invalid {
                key: "tenantID",
                problem: format!(
                    "{:?} is not a tenant ID (a GUID, a domain name or adfs)",
                    shorten(t)
                ),
            });
            String::new()
        }
    };

    let cloud = parse_cloud(attributes, defaults, &mut errors);
    let pod = parse_pod(attributes, &mut errors);
    let identity = parse_identity(attributes, secrets, &mut errors);

    let mut warnings = Vec::new();
    let objects = match attributes.get("objects") {
        None => {
            errors.push(ParamError::Missing {
                key: "objects",
                hint: "a YAML `array:` of objects to mount",
            });
            Vec::new()
        }
        Some(text) => parse_objects(text, permission, &mut warnings).unwrap_or_else(|mut e| {
            errors.append(&mut e);
            Vec::new()
        }),
    };

    match (errors.is_empty(), cloud, identity) {
        (true, Some(cloud), Some(identity)) => Ok(MountPlan {
            pod,
            vault_name,
            tenant_id,
            cloud,
            identity,
            objects,
            warnings,
        }),
        _ => Err(ParamErrors(errors)),
    }
}

fn parse_cloud(
    attributes: &Attributes,
    defaults: &PlanDefaults,
    errors: &mut Vec<ParamError>,
) -> Option<CloudSelection> {
    let name = match attributes.get("cloudName") {
        None => defaults.cloud,
        Some(n) => match CloudName::parse(n) {
            Some(name) => name,
            None => {
                errors.push(ParamError::Invalid {
                    key: "cloudName",
                    problem: format!(
                        "{:?} is not a known cloud; {}",
                        shorten(n),
                        CloudName::EXPECTED
                    ),
                });
                return None;
            }
        },
    };
    if name != CloudName::AzureStackCloud {
        return Some(CloudSelection::WellKnown(name));
    }
    let env_file = attributes
        .get("cloudEnvFileName")
        .map(PathBuf::from)
        .or_else(|| defaults.environment_file.clone());
    match env_file {
        Some(env_file) => Some(CloudSelection::Stack { env_file }),
        None => {
            errors.push(ParamError::Missing {
                key: "cloudEnvFileName",
                hint: "AzureStackCloud needs the path of its environment JSON file on the node \
                       (or AZURE_ENVIRONMENT_FILEPATH set on the provider)",
            });
            None
        }
    }
}

fn parse_pod(attributes: &Attributes, errors: &mut Vec<ParamError>) -> PodRef {
    let mut required = |key: &'static str| match attributes.get(key) {
        Some(v) => v.to_owned(),
        None => {
            errors.push(ParamError::Missing {
                key,
                hint: "kubelet sets it when the CSIDriver object has podInfoOnMount: true",
            });
            String::new()
        }
    };
    let name = required("csi.storage.k8s.io/pod.name");
    let namespace = required("csi.storage.k8s.io/pod.namespace");
    let owned = |key| attributes.get(key).map(str::to_owned);
    PodRef {
        name,
        namespace,
        uid: owned("csi.storage.k8s.io/pod.uid"),
        service_account: owned("csi.storage.k8s.io/serviceAccount.name"),
        secret_provider_class: owned("secretProviderClass"),
    }
}

fn bool_param(attributes: &Attributes, key: &'static str, errors: &mut Vec<ParamError>) -> bool {
    match attributes.get(key) {
        None => false,
        Some(v) => parse_bool(v).unwrap_or_else(|| {
            errors.push(ParamError::Invalid {
                key,
                problem: format!("{:?} is not true or false", shorten(v)),
            });
            false
        }),
    }
}

/// An identifier that travels in a URL or form field: printable ASCII, no spaces, bounded.
fn id_param(
    attributes: &Attributes,
    key: &'static str,
    errors: &mut Vec<ParamError>,
) -> Option<String> {
    let value = attributes.get(key)?;
    if value.len() <= 256 && value.bytes().all(|b| b.is_ascii_graphic()) {
        Some(value.to_owned())
    } else {
        errors.push(ParamError::Invalid {
            key,
            problem: format!("{:?} is not a client ID (a GUID)", shorten(value)),
        });
        None
    }
}

fn parse_identity(
    attributes: &Attributes,
    secrets: &Secrets,
    errors: &mut Vec<ParamError>,
) -> Option<Identity> {
    let pod_identity = bool_param(attributes, "usePodIdentity", errors);
    let vm_identity = bool_param(attributes, "useVMManagedIdentity", errors);
    let token_proxy = bool_param(attributes, "useAzureTokenProxy", errors);
    let client_id = id_param(attributes, "clientID", errors);
    let user_assigned = id_param(attributes, "userAssignedIdentityID", errors);

    let chosen: Vec<&str> = [
        (pod_identity, "usePodIdentity"),
        (vm_identity, "useVMManagedIdentity"),
        (token_proxy, "useAzureTokenProxy"),
    ]
    .into_iter()
    .filter_map(|(on, key)| on.then_some(key))
    .collect();
    if chosen.len() > 1 {
        // The Go provider's wording (v1.8), then which ones are on.
        errors.push(ParamError::Identity(format!(
            "only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, \
             or useAzureTokenProxy ({} are {} true: choose one identity)",
            chosen.join(" and "),
            if chosen.len() == 2 { "both" } else { "all" }
        )));
        return None;
    }
    if token_proxy {
        // Identity binding: clientID names the managed identity, the token proves the pod.
        let Some(client_id) = client_id else {
            errors.push(ParamError::Missing {
                key: "clientID",
                hint: "identity binding (useAzureTokenProxy) needs the client ID of the \
                       user-assigned managed identity that the cluster's identity binding maps \
                       (az aks identity-binding create ... --managed-identity-resource-id ...)",
            });
            return None;
        };
        return match tokens::identity_binding_token(attributes, secrets) {
            Ok(token) => Some(Identity::IdentityBinding { client_id, token }),
            Err(e) => {
                errors.push(e.into());
                None
            }
        };
    }
    if let (true, Some(_)) = (pod_identity || vm_identity, &client_id) {
        let other = if pod_identity {
            "usePodIdentity"
        } else {
            "useVMManagedIdentity"
        };
        errors.push(ParamError::Identity(format!(
            "clientID (workload identity) and {other} are both set: choose one identity \
             (remove clientID, or set {other} to false)"
        )));
        return None;
    }
    if pod_identity {
        return Some(Identity::PodIdentity);
    }
    if vm_identity {
        return Some(Identity::VmManagedIdentity {
            user_assigned_client_id: user_assigned,
        });
    }
    if let Some(client_id) = client_id {
        return match tokens::azure_token(attributes, secrets) {
            Ok(token) => Some(Identity::WorkloadIdentity { client_id, token }),
            Err(e) => {
                errors.push(e.into());
                None
            }
        };
    }
    let id = secrets
        .get_ignore_case("clientid")
        .map(|s| s.expose_secret().trim());
    let secret = secrets
        .get_ignore_case("clientsecret")
        .map(|s| s.expose_secret().trim());
    match (id, secret) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            Some(Identity::ServicePrincipal {
                client_id: id.to_owned(),
                client_secret: SecretString::from(secret.to_owned()),
            })
        }
        (None, None) => {
            errors.push(ParamError::Identity(
                "no identity selected: set clientID for workload identity (with \
                 useAzureTokenProxy: \"true\" for AKS identity binding), useVMManagedIdentity: \
                 \"true\" for the node's managed identity, or reference a \
                 Kubernetes secret with clientid and clientsecret keys through nodePublishSecretRef"
                    .into(),
            ));
            None
        }
        _ => {
            errors.push(ParamError::Identity(
                "the nodePublishSecretRef secret must hold both clientid and clientsecret (non-empty) \
                 for a service principal"
                    .into(),
            ));
            None
        }
    }
}

/// At most 60 characters of a user value, for messages.
pub(crate) fn shorten(value: &str) -> String {
    let mut s: String = value.chars().take(60).collect();
    if value.chars().count() > 60 {
        s.push('…');
    }
    s
}

//! The validated mount plan: everything downstream code needs, with no raw attribute maps.

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use secrecy::SecretString;

use crate::cloud::{self, CloudEndpoints, CloudName};

/// One Mount call, validated: who asks, which vault, as whom, and which objects become which files.
#[derive(Debug)]
pub struct MountPlan {
    pub pod: PodRef,
    /// Vault name as given in `keyvaultName` (validated: 3-24 of `[-A-Za-z0-9]`).
    pub vault_name: String,
    /// `tenantID` (or the deprecated `tenantId`).
    pub tenant_id: String,
    pub cloud: CloudSelection,
    pub identity: Identity,
    /// At least one object, with distinct output paths.
    pub objects: Vec<ObjectSpec>,
    /// Things that are valid but probably not what the author meant (unknown object fields).
    pub warnings: Vec<String>,
}

impl MountPlan {
    /// The vault `spec` is read from (its own `keyvaultName`, else the class's).
    pub fn vault_of<'a>(&'a self, spec: &'a ObjectSpec) -> &'a str {
        spec.vault_name(&self.vault_name)
    }

    /// Every vault the plan reads from, once each, in the order objects name them.
    pub fn vaults(&self) -> Vec<&str> {
        let mut vaults: Vec<&str> = Vec::new();
        for spec in &self.objects {
            let vault = self.vault_of(spec);
            if !vaults.contains(&vault) {
                vaults.push(vault);
            }
        }
        vaults
    }
}

/// The pod a Mount is for, from kubelet's attributes. Used for logs, pod identity and messages.
#[derive(Debug, Clone, Default)]
pub struct PodRef {
    pub name: String,
    pub namespace: String,
    pub uid: Option<String>,
    pub service_account: Option<String>,
    /// Name of the SecretProviderClass (kubelet's `secretProviderClass` key).
    pub secret_provider_class: Option<String>,
}

/// The cloud a plan talks to, before any environment file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudSelection {
    /// One of the four clouds with fixed endpoints.
    WellKnown(CloudName),
    /// Azure Stack Hub, with endpoints from this go-autorest environment file.
    Stack { env_file: PathBuf },
}

impl CloudSelection {
    /// Resolves the endpoints, reading the Azure Stack environment file if there is one.
    /// Read per request; nothing process-wide changes.
    pub fn endpoints(&self) -> Result<CloudEndpoints, cloud::EnvFileError> {
        match self {
            CloudSelection::WellKnown(name) => Ok(name
                .well_known_endpoints()
                .unwrap_or_else(|| unreachable!("WellKnown never holds AzureStackCloud"))),
            CloudSelection::Stack { env_file } => cloud::load_environment_file(env_file),
        }
    }

    /// The cloud's name, for messages.
    pub fn name(&self) -> CloudName {
        match self {
            CloudSelection::WellKnown(name) => *name,
            CloudSelection::Stack { .. } => CloudName::AzureStackCloud,
        }
    }
}

/// How the provider proves who it is to Entra ID for this Mount. Exactly one per request.
#[derive(Debug)]
pub enum Identity {
    /// Workload identity federation: the pod's service-account token is exchanged for `client_id`.
    WorkloadIdentity {
        client_id: String,
        token: ServiceAccountToken,
    },
    /// An app registration's client secret from nodePublishSecretRef.
    ServicePrincipal {
        client_id: String,
        client_secret: SecretString,
    },
    /// The node's managed identity through IMDS; `None` = system-assigned.
    VmManagedIdentity {
        user_assigned_client_id: Option<String>,
    },
    /// Deprecated AAD pod identity (NMI on the node).
    PodIdentity,
    /// AKS identity binding (`useAzureTokenProxy`): the pod's service-account token for
    /// `api://AKSIdentityBinding` is exchanged for `client_id` through the cluster's token proxy.
    IdentityBinding {
        client_id: String,
        token: ServiceAccountToken,
    },
}

impl Identity {
    /// A short, bounded name of the mode (metrics label).
    pub fn mode(&self) -> &'static str {
        match self {
            Identity::WorkloadIdentity { .. } => "workload_identity",
            Identity::ServicePrincipal { .. } => "service_principal",
            Identity::VmManagedIdentity { .. } => "vm_managed_identity",
            Identity::PodIdentity => "pod_identity",
            Identity::IdentityBinding { .. } => "identity_binding",
        }
    }

    /// The pod's service-account token, for the modes that exchange one.
    pub fn service_account_token(&self) -> Option<&ServiceAccountToken> {
        match self {
            Identity::WorkloadIdentity { token, .. } | Identity::IdentityBinding { token, .. } => {
                Some(token)
            }
            _ => None,
        }
    }

    /// Names the identity for humans without any secret: mode plus client ID where there is one.
    pub fn describe(&self) -> String {
        match self {
            Identity::WorkloadIdentity { client_id, .. } => {
                format!("workload identity (clientID {client_id})")
            }
            Identity::ServicePrincipal { client_id, .. } => {
                format!("service principal (clientid {client_id})")
            }
            Identity::VmManagedIdentity {
                user_assigned_client_id: Some(id),
            } => format!("VM managed identity (userAssignedIdentityID {id})"),
            Identity::VmManagedIdentity { .. } => "system-assigned VM managed identity".into(),
            Identity::PodIdentity => "AAD pod identity".into(),
            Identity::IdentityBinding { client_id, .. } => {
                format!("identity binding (clientID {client_id})")
            }
        }
    }
}

/// A projected service-account token kubelet gave (audience `api://AzureADTokenExchange` for
/// workload identity, `api://AKSIdentityBinding` for identity binding).
#[derive(Debug)]
pub struct ServiceAccountToken {
    /// The JWT itself; redacted in `Debug`, zeroized on drop.
    pub jwt: SecretString,
    /// kubelet's `expirationTimestamp`, when it parsed.
    pub expires_at: Option<SystemTime>,
}

/// Key Vault object kinds, as spelled in `objectType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    Secret,
    Key,
    Cert,
}

impl ObjectType {
    /// The lowercase spelling used in ObjectVersion ids.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Secret => "secret",
            ObjectType::Key => "key",
            ObjectType::Cert => "cert",
        }
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `objectFormat`: how a certificate-backed secret is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectFormat {
    Pem,
    Pfx,
}

/// `objectPart` (ours): which part of a certificate bundle a certificate-backed secret writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectPart {
    /// Everything, exactly as without `objectPart`.
    All,
    /// The private key blocks only, as PKCS#8 `PRIVATE KEY`.
    Key,
    /// The leaf certificate only.
    Leaf,
    /// Every certificate, in output order (leaf → intermediates → root with
    /// `--construct-pem-chain`).
    Chain,
    /// Every certificate except the leaf, in the same order.
    Ca,
}

impl ObjectPart {
    /// Every spelling, for messages.
    pub const EXPECTED: &'static str = "all, key, leaf, chain, ca";

    /// The spelling in `objectPart`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectPart::All => "all",
            ObjectPart::Key => "key",
            ObjectPart::Leaf => "leaf",
            ObjectPart::Chain => "chain",
            ObjectPart::Ca => "ca",
        }
    }
}

impl fmt::Display for ObjectPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `objectEncoding`: how a secret value is decoded before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectEncoding {
    Utf8,
    Hex,
    Base64,
}

/// One entry of `objects.array`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSpec {
    /// Position in `objects.array`, for messages.
    pub index: usize,
    /// Key Vault object name.
    pub name: String,
    pub object_type: ObjectType,
    /// Relative, clean path of the file (or, with history, the directory) to write.
    pub alias: String,
    /// A pinned version id; `None` = the current version.
    pub version: Option<String>,
    /// Number of versions to write; 1 = a single file at `alias`, more = `alias/0..N`.
    pub history: u32,
    pub format: ObjectFormat,
    /// `objectFormat` was written in the object, not defaulted: with it, a secret without `kid`
    /// but with a certificate content type (App Service certificates) is read as a bundle.
    pub format_explicit: bool,
    /// Our extension: the part of a certificate bundle to write; `None` = not set (all).
    pub part: Option<ObjectPart>,
    pub encoding: ObjectEncoding,
    /// File mode bits (`filePermission`, else the request's `permission`).
    pub mode: u32,
    /// Our extension: a 404 writes nothing instead of failing the Mount.
    pub optional: bool,
    /// Our extension: RFC 6901 pointer into a JSON secret value.
    pub json_pointer: Option<String>,
    /// Our extension: the object's own `keyvaultName`; `None` = the class's.
    pub vault: Option<String>,
}

impl ObjectSpec {
    /// `objects[2] (objectName "db-pass")`: how messages name this object.
    pub fn label(&self) -> String {
        object_label(self.index, Some(&self.name))
    }

    /// The vault this object is read from: its own `keyvaultName`, else the class's.
    pub fn vault_name<'a>(&'a self, class_vault: &'a str) -> &'a str {
        self.vault.as_deref().unwrap_or(class_vault)
    }

    /// Whether the object asks for certificate treatment by itself (`objectFormat` written,
    /// or `objectPart`): App Service certificates are secrets without `kid`, read as a
    /// bundle only then.
    pub fn asks_for_bundle(&self) -> bool {
        self.format_explicit || self.part.is_some()
    }

    /// True when several versions are written as `alias/0`, `alias/1`, ...
    pub fn has_history(&self) -> bool {
        self.history > 1
    }

    /// Every path this object writes (before any `.crt`/`.key` companions).
    pub fn paths(&self) -> Vec<String> {
        if self.has_history() {
            (0..self.history)
                .map(|i| format!("{}/{i}", self.alias))
                .collect()
        } else {
            vec![self.alias.clone()]
        }
    }

    /// The ObjectVersion id: `<type>/<name>`, or `<type>/<name>/<i>` for history entry `i`.
    /// An object with its own `keyvaultName` is `<type>/<name>@<vault>` (and `.../<i>`), so
    /// same-named objects of two vaults keep distinct ids (the driver collapses duplicates).
    pub fn version_id(&self, history_index: Option<usize>) -> String {
        let vault = self
            .vault
            .as_deref()
            .map(|v| format!("@{v}"))
            .unwrap_or_default();
        match history_index {
            Some(i) => format!("{}/{}{vault}/{i}", self.object_type, self.name),
            None => format!("{}/{}{vault}", self.object_type, self.name),
        }
    }
}

/// `objects[i] (objectName "x")`, or `objects[i]` when the name is unknown.
pub fn object_label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) if !name.is_empty() => format!("objects[{index}] (objectName {name:?})"),
        _ => format!("objects[{index}]"),
    }
}

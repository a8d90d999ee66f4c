//! Messages for objects that could not be read: what happened, to which object in which vault
//! for which identity, and what to change. They become pod events, so they carry no secret.

use crate::keyvault::KvError;
use crate::spc::plan::{ObjectSpec, ObjectType};

/// Everything a failure message may name.
#[derive(Debug, Clone)]
pub struct ObjectContext {
    pub label: String,
    pub object_type: ObjectType,
    pub name: String,
    pub version: Option<String>,
    pub history: bool,
    pub vault: String,
    pub vault_host: String,
    pub identity: String,
    /// The principal to grant access (client ID), when there is one.
    pub principal: Option<String>,
    pub cloud: String,
}

impl ObjectContext {
    /// Context for `spec` in `vault` read as `identity`.
    pub fn new(
        spec: &ObjectSpec,
        vault: &str,
        vault_host: &str,
        identity: &str,
        principal: Option<&str>,
        cloud: &str,
    ) -> Self {
        ObjectContext {
            label: spec.label(),
            object_type: spec.object_type,
            name: spec.name.clone(),
            version: spec.version.clone(),
            history: spec.has_history(),
            vault: vault.to_owned(),
            vault_host: vault_host.to_owned(),
            identity: identity.to_owned(),
            principal: principal.map(str::to_owned),
            cloud: cloud.to_owned(),
        }
    }
}

fn kind_words(t: ObjectType) -> (&'static str, &'static str, &'static str) {
    // (noun, RBAC role, access-policy flag)
    match t {
        ObjectType::Secret => ("secret", "Key Vault Secrets User", "--secret-permissions"),
        ObjectType::Key => ("key", "Key Vault Crypto User", "--key-permissions"),
        ObjectType::Cert => (
            "certificate",
            "Key Vault Certificate User",
            "--certificate-permissions",
        ),
    }
}

/// The human message for `error` reading the object described by `ctx`.
pub fn describe(ctx: &ObjectContext, error: &KvError) -> String {
    let (noun, role, flag) = kind_words(ctx.object_type);
    let head = format!("{} ({noun} in Key Vault {})", ctx.label, ctx.vault);
    match error {
        KvError::Auth(auth) => format!("{head}: {auth}"),
        KvError::Denied { status, .. } => {
            let perms = if ctx.history { "get list" } else { "get" };
            let who = ctx.principal.as_deref().unwrap_or("<principal-id>");
            format!(
                "{head}: Key Vault denied access (HTTP {status}) to {}. Grant it the \"{role}\" role on the vault \
                 (RBAC vaults: az role assignment create --role \"{role}\" --assignee {who} --scope <vault-resource-id>) \
                 or an access policy (access-policy vaults: az keyvault set-policy --name {} {flag} {perms} --spn {who})",
                ctx.identity, ctx.vault
            )
        }
        KvError::NotFound => match (&ctx.version, ctx.history) {
            (Some(v), _) => format!(
                "{head}: version {v} of {noun} {:?} does not exist",
                ctx.name
            ),
            (None, _) => format!(
                "{head}: the vault has no {noun} named {:?} (check objectName and objectType, or set optional: true)",
                ctx.name
            ),
        },
        KvError::Disabled { version } => {
            format!(
                "{head}: version {version} of {noun} {:?} is disabled; enable it or pin another objectVersion",
                ctx.name
            )
        }
        KvError::NoEnabledVersion => format!(
            "{head}: no version of {noun} {:?} is enabled{}; enable one",
            ctx.name,
            ctx.version
                .as_deref()
                .map(|v| format!(" from version {v} on"))
                .unwrap_or_default()
        ),
        KvError::Throttled => format!(
            "{head}: Key Vault {} kept throttling requests (HTTP 429) until the mount deadline; the driver will retry",
            ctx.vault
        ),
        KvError::Unavailable { detail } => {
            format!("{head}: Key Vault {} is unavailable: {detail}", ctx.vault)
        }
        KvError::DnsFailure => format!(
            "{head}: the vault host {} does not resolve: check keyvaultName and cloudName (currently {})",
            ctx.vault_host, ctx.cloud
        ),
        KvError::TooLarge => format!(
            "{head}: Key Vault {} answered with a response larger than {} bytes, which is refused",
            ctx.vault,
            crate::http::MAX_BODY_BYTES
        ),
        KvError::Malformed { detail } => format!(
            "{head}: Key Vault {} sent an unusable answer: {detail}",
            ctx.vault
        ),
        KvError::DeadlineExceeded => format!(
            "{head}: the mount deadline passed while reading from Key Vault {}",
            ctx.vault
        ),
    }
}

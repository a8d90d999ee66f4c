//! Messages for objects that could not be read: what happened, to which object in which vault
//! for which identity, and what to change. They become pod events, so they carry no secret.

use crate::keyvault::{Denial, KvError};
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
    let (noun, _, _) = kind_words(ctx.object_type);
    let head = format!("{} ({noun} in Key Vault {})", ctx.label, ctx.vault);
    match error {
        KvError::Auth(auth) => format!("{head}: {auth}"),
        KvError::Denied { status, reason, .. } => denied(ctx, &head, *status, reason),
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
        KvError::Refused { why, wait } => match why {
            crate::keyvault::Refused::Deadline => format!(
                "{head}: Key Vault {} is throttling or this node's request budget for it is spent: about {}s of queue, more than the mount deadline leaves; not sent, kubelet will retry",
                ctx.vault,
                wait.map_or(0.0, |w| w.as_secs_f64()).ceil()
            ),
            crate::keyvault::Refused::Throttled => format!(
                "{head}: Key Vault {} is throttling requests (HTTP 429): about {}s of pause and queue before a retry, more than the mount deadline leaves; kubelet will retry",
                ctx.vault,
                wait.map_or(0.0, |w| w.as_secs_f64()).ceil()
            ),
            crate::keyvault::Refused::Shed => format!(
                "{head}: Key Vault {} is throttling: rotation re-mount skipped (the current files stay)",
                ctx.vault
            ),
            crate::keyvault::Refused::RetryBudget => format!(
                "{head}: Key Vault {} keeps throttling (HTTP 429) and this node's retry budget for it is spent; kubelet will retry",
                ctx.vault
            ),
        },
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

/// The message for a Key Vault refusal: what Key Vault's answer says is wrong, and its fix.
fn denied(ctx: &ObjectContext, head: &str, status: u16, reason: &Denial) -> String {
    let (_, role, flag) = kind_words(ctx.object_type);
    let perms = if ctx.history { "get list" } else { "get" };
    let who = ctx.principal.as_deref().unwrap_or("<principal-id>");
    let vault = &ctx.vault;
    let identity = &ctx.identity;
    let role_cmd = format!(
        "az role assignment create --role \"{role}\" --assignee {who} --scope $(az keyvault show --name {vault} --query id -o tsv)"
    );
    let policy_cmd = format!("az keyvault set-policy --name {vault} {flag} {perms} --spn {who}");
    match reason {
        Denial::Rbac => format!(
            "{head}: Key Vault denied access (HTTP 403 ForbiddenByRbac): the vault uses Azure RBAC and \
             {identity} has no role assignment that allows this read. Grant it the \"{role}\" role on the \
             vault: {role_cmd}"
        ),
        Denial::AccessPolicy => format!(
            "{head}: Key Vault denied access (HTTP 403 AccessDenied): the vault uses access policies and \
             none gives {identity} {perms} permission. Add one: {policy_cmd}"
        ),
        Denial::Firewall { client_address } => {
            let from = client_address
                .as_deref()
                .map(|a| format!(" (Key Vault saw the request from {a})"))
                .unwrap_or_default();
            let allow = client_address
                .as_deref()
                .map(|a| format!("--ip-address {a}"))
                .unwrap_or_else(|| "--ip-address <node-egress-ip>".into());
            format!(
                "{head}: Key Vault's firewall refused the request (HTTP 403 ForbiddenByFirewall): the vault's \
                 network rules do not allow this node{from}. Allow the nodes' subnet or egress address \
                 (az keyvault network-rule add --name {vault} --subnet <node-subnet-id>, or {allow}) or \
                 reach the vault through a private endpoint; a role assignment does not help"
            )
        }
        Denial::PrivateLink => format!(
            "{head}: Key Vault refused the request (HTTP 403 ForbiddenByConnection): public network access \
             to the vault is disabled and the request did not come through an approved private endpoint. \
             Give the cluster's network a private endpoint to the vault, and make \
             privatelink.vaultcore.azure.net resolve from the nodes (a private DNS zone linked to the \
             cluster's virtual network)"
        ),
        Denial::TenantMismatch {
            vault_tenant,
            token_tenant,
        } => {
            let vault_tenant = vault_tenant.as_deref().unwrap_or("<the vault's tenant>");
            let token_tenant = token_tenant
                .as_deref()
                .map(|t| format!(" from tenant {t}"))
                .unwrap_or_default();
            format!(
                "{head}: Key Vault rejected the token{token_tenant} (HTTP 401 AKV10032: Invalid issuer): \
                 vault {vault} belongs to tenant {vault_tenant}. Set tenantID: {vault_tenant} in the \
                 SecretProviderClass (and use an identity of that tenant); a role assignment does not help"
            )
        }
        Denial::Unauthenticated { detail } => format!(
            "{head}: Key Vault did not accept the token of {identity} (HTTP 401{}): check tenantID and \
             cloudName (the token must be for this vault's tenant and cloud)",
            detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ),
        Denial::Other { detail } => format!(
            "{head}: Key Vault denied access (HTTP {status}{}) to {identity}. Grant it the \"{role}\" role on \
             the vault (RBAC vaults: {role_cmd}) or an access policy (access-policy vaults: {policy_cmd})",
            detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ),
    }
}

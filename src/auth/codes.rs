//! The fix for each refusal a token service gives: Entra's AADSTS codes (matched as numbers,
//! so `AADSTS700213` is never taken for `AADSTS70021`), AD FS's MSIS codes, IMDS's answers.

use super::failure::{ErrorContext, Service};
use crate::http::TokenFailure;

/// The `az identity federated-credential create` command that admits the pod's token.
fn federated_credential_command(ctx: &ErrorContext, iss: &str) -> String {
    let sa = ctx
        .service_account
        .clone()
        .unwrap_or_else(|| "<service-account>".into());
    format!(
        "az identity federated-credential create --name {ns}-{sa} --identity-name <managed-identity-name> \
         --resource-group <resource-group> --issuer {iss} --subject system:serviceaccount:{ns}:{sa} \
         --audience api://AzureADTokenExchange",
        ns = ctx.namespace,
    )
}

fn issuer_and_subject(ctx: &ErrorContext) -> (String, String) {
    match &ctx.claims {
        Some(c) => (
            c.iss.clone().unwrap_or_else(|| "<issuer>".into()),
            c.sub.clone().unwrap_or_else(|| "<subject>".into()),
        ),
        None => ("<issuer>".into(), "<subject>".into()),
    }
}

/// The message for an Entra ID (or AD FS) refusal: what went wrong and the exact fix.
pub(super) fn entra_rejection(f: &TokenFailure, said: &str, ctx: &ErrorContext) -> String {
    let service = match ctx.service {
        Service::AdFs => "AD FS",
        _ => "Microsoft Entra ID",
    };
    let client = ctx.client_id.as_deref().unwrap_or("?");
    let (iss, sub) = issuer_and_subject(ctx);
    let has = |code: u64| f.has_code(code);
    if has(70021) {
        return format!(
            "{service} found no federated credential on clientID {client} matching the pod's \
             service-account token (AADSTS70021; token issuer {iss:?}, subject {sub:?}). Create one: {}",
            federated_credential_command(ctx, &iss)
        );
    }
    if has(700211) {
        return format!(
            "{service} found no federated credential on clientID {client} with the issuer of the pod's \
             service-account token, {iss:?} (AADSTS700211): the credential's issuer must be this cluster's \
             OIDC issuer URL, exactly (with its trailing slash). Create or fix it: {}",
            federated_credential_command(ctx, &iss)
        );
    }
    if has(700212) {
        return format!(
            "{service} found no federated credential on clientID {client} with the audience of the pod's \
             service-account token (AADSTS700212): the credential's audience must be api://AzureADTokenExchange. \
             Create or fix it: {}",
            federated_credential_command(ctx, &iss)
        );
    }
    if has(700213) || has(7002137) || has(7002138) {
        let code = [700213u64, 7002137, 7002138]
            .into_iter()
            .find(|c| has(*c))
            .unwrap_or(700213);
        return format!(
            "{service} found no federated credential on clientID {client} with the subject of the pod's \
             service-account token, {sub:?} (AADSTS{code}; subjects are compared case-sensitively): the \
             credential's subject must be system:serviceaccount:<namespace>:<service-account> of this pod. \
             Create or fix it: {}",
            federated_credential_command(ctx, &iss)
        );
    }
    if has(700016) {
        return format!(
            "{service} does not know clientID {client} in tenant {} (AADSTS700016): check clientID \
             and tenantID in the SecretProviderClass",
            ctx.tenant
        );
    }
    if has(700024) {
        return format!(
            "{service} rejected the pod's service-account token for clientID {client} as expired or \
             not yet valid (AADSTS700024; check the node clock and the CSIDriver tokenRequests \
             expirationSeconds): {said}"
        );
    }
    if has(700027) {
        return format!(
            "{service} could not verify the signature of the pod's service-account token for clientID \
             {client} (AADSTS700027): the keys the issuer {iss} publishes (its \
             /.well-known/openid-configuration jwks_uri) do not include the key that signed the token. \
             Check that the cluster's OIDC issuer serves its current service-account signing keys \
             (after a key rotation the JWKS must be republished)"
        );
    }
    if has(50027) {
        return format!(
            "{service} could not read the pod's service-account token as a JWT (AADSTS50027): check the \
             token kubelet passes for audience api://AzureADTokenExchange: {said}"
        );
    }
    if has(7000215) {
        return format!(
            "{service} rejected the client secret of service principal {client} (AADSTS7000215: the \
             secret is wrong; it must be the secret's value, not its ID): update clientsecret in the \
             nodePublishSecretRef secret"
        );
    }
    if has(7000222) {
        return format!(
            "{service} rejected the client secret of service principal {client} as expired \
             (AADSTS7000222): create a new one (az ad app credential reset --id {client} --append) and \
             update clientsecret in the nodePublishSecretRef secret"
        );
    }
    if has(90002) {
        return format!(
            "{service} does not know tenant {} (AADSTS90002): check tenantID, and cloudName for a \
             sovereign cloud",
            ctx.tenant
        );
    }
    if has(900023) {
        return format!(
            "{service} does not accept tenantID {:?} (AADSTS900023: not a tenant ID or domain): check tenantID",
            ctx.tenant
        );
    }
    if has(500011) {
        return format!(
            "{service} does not know the Key Vault resource in tenant {} (AADSTS500011): check cloudName \
             (and keyVaultEndpoint in an Azure Stack environment file): {said}",
            ctx.tenant
        );
    }
    if said.contains("MSIS9622") || said.contains("MSIS9607") {
        return format!(
            "{service} rejected the client credentials of {client} ({said}): check clientid and \
             clientsecret in the nodePublishSecretRef secret and the AD FS application group"
        );
    }
    format!("{service} rejected {}: {said}", ctx.identity)
}

/// The message for an IMDS refusal.
pub(super) fn imds_rejection(f: &TokenFailure, said: &str, ctx: &ErrorContext) -> String {
    if f.error.as_deref() == Some("invalid_resource") || f.has_code(50001) {
        return format!(
            "IMDS answered {said}: Entra ID behind it does not know the Key Vault resource of this \
             SecretProviderClass's cloud; check cloudName (the node's cloud must be the vault's)"
        );
    }
    let description = f.description.as_deref().unwrap_or_default();
    if description.contains("etadata header") || f.error.as_deref() == Some("bad_request_102") {
        return format!(
            "IMDS refused the token request ({said}): something between this node and 169.254.169.254 \
             (a proxy?) strips the Metadata header"
        );
    }
    if f.status == 400 {
        return match &ctx.client_id {
            Some(id) => format!(
                "IMDS has no managed identity with client ID {id} on this node ({said}): assign it to the \
                 node pool's scale set (az vmss identity assign -g <node-resource-group> -n <vmss-name> \
                 --identities <identity-resource-id>) or set userAssignedIdentityID to an identity the \
                 node pool has"
            ),
            None => format!(
                "IMDS has no system-assigned managed identity for this node ({said}): enable it on the node \
                 pool's scale set (az vmss identity assign -g <node-resource-group> -n <vmss-name>) or set \
                 userAssignedIdentityID to a user-assigned identity of the node pool"
            ),
        };
    }
    format!("IMDS gave no token for {} ({said})", ctx.identity)
}

//! Identity binding failures → [`AuthError`]: what [`crate::token_proxy`] reported (no server
//! name, no cluster CA, the proxy unreachable, or the proxy's answer) with the fix for each, e.g.
//! the ClusterRole that lets the pod's service account use the managed identity.

use super::AuthError;
use super::failure::{ErrorContext, rejection_message};
use crate::token_proxy::{ProxyAnswer, ProxyError, proxy_error};

/// Entra's "no matching federated identity record" family: through the proxy, AKS's identity
/// binding federated credential is missing for this identity (or this cluster).
const NO_FEDERATION: &[i64] = &[70021, 700211, 700212, 700213];

/// The [`AuthError`] for a failed token request that went through the token proxy; `None` when
/// the failure carries no [`ProxyError`] (the SDK itself failed), so the general rules apply.
pub(super) fn classify(err: &azure_core::Error, ctx: &ErrorContext) -> Option<AuthError> {
    let who = &ctx.identity;
    Some(match proxy_error(err)? {
        ProxyError::NoServerName { reason } => AuthError::Setup {
            message: format!(
                "{who}: unavailable on this node: the AKS token proxy's TLS server name could \
                 not be computed at start ({}). Set --sni-name on the provider \
                 (Helm: sniName) to the proxy's name, the AZURE_KUBERNETES_SNI_NAME that AKS sets \
                 in pods using identity binding",
                ctx.scrub(reason)
            ),
        },
        ProxyError::Trust { path, reason } => AuthError::Setup {
            message: format!(
                "{who}: needs the cluster CA, but {path} is unusable ({reason}): \
                 mount the kube-root-ca.crt ConfigMap there (the chart does) or point \
                 --token-proxy-ca-file at it"
            ),
        },
        ProxyError::Unreachable {
            url,
            server_name,
            cause,
        } => {
            let cause = ctx.scrub(cause);
            let hint = if cause.contains("dns error") || cause.contains("lookup") {
                "; the provider must resolve cluster service names (with hostNetwork: true it \
                 needs dnsPolicy: ClusterFirstWithHostNet), or set --token-proxy-url"
            } else if cause.to_ascii_lowercase().contains("certificate") {
                "; check --sni-name and that the cluster CA file is the cluster's"
            } else {
                ""
            };
            AuthError::Unavailable {
                message: format!(
                    "{who}: cannot reach the AKS token proxy at {url} (TLS server name \
                     {server_name}): {cause}{hint}"
                ),
                retry_after: None,
            }
        }
        ProxyError::Answer(answer) => answered(answer, ctx),
    })
}

fn answered(answer: &ProxyAnswer, ctx: &ErrorContext) -> AuthError {
    let who = &ctx.identity;
    let status = answer.status;
    let cause = ctx.scrub(&answer.cause);
    let because = if cause.is_empty() {
        String::new()
    } else {
        format!(": {cause}")
    };
    let in_parens = if cause.is_empty() {
        String::new()
    } else {
        format!(" ({cause})")
    };
    if status == 429 {
        return AuthError::Throttled {
            message: format!(
                "the AKS token proxy is throttling token requests for {who} (HTTP 429{because})"
            ),
            retry_after: None,
        };
    }
    if status >= 500 || status == 408 {
        return AuthError::Unavailable {
            message: format!("the AKS token proxy answered HTTP {status} for {who}{because}"),
            retry_after: None,
        };
    }
    let client = ctx.client_id.as_deref().unwrap_or("<clientID>");
    if answer.codes.iter().any(|c| NO_FEDERATION.contains(c)) {
        return AuthError::Rejected {
            message: format!(
                "Microsoft Entra ID, asked through the AKS token proxy, found no federated \
                 credential for {who}{in_parens}. Map the managed identity to this cluster: az aks \
                 identity-binding create --resource-group <resource-group> --cluster-name \
                 <cluster> --name <binding-name> --managed-identity-resource-id <resource ID of \
                 the identity with client ID {client}>"
            ),
        };
    }
    if !answer.codes.is_empty() {
        let codes: Vec<String> = answer.codes.iter().map(i64::to_string).collect();
        return AuthError::Rejected {
            message: format!(
                "{} (through the AKS token proxy)",
                rejection_message(Some(&codes.join(",")), &cause, ctx)
            ),
        };
    }
    let (ns, sa) = (
        ctx.namespace.as_str(),
        ctx.service_account
            .as_deref()
            .unwrap_or("<service-account>"),
    );
    AuthError::Rejected {
        message: match status {
            403 => format!(
                "the AKS token proxy refused {who} (HTTP 403{because}): the service account \
                 {ns}/{sa} may not use managed identity {client}. Allow it with a ClusterRole \
                 whose rule is {{verbs: [use-managed-identity], apiGroups: [cid.wi.aks.azure.com], \
                 resources: [{client}]}} and bind it: kubectl create clusterrolebinding \
                 use-mi-{client}-{ns}-{sa} --clusterrole=<that ClusterRole> \
                 --serviceaccount={ns}:{sa}"
            ),
            401 => format!(
                "the AKS token proxy did not accept the pod's service-account token for {who} \
                 (HTTP 401{because}): the CSIDriver's tokenRequests must list audience \
                 api://AKSIdentityBinding"
            ),
            _ => format!(
                "the AKS token proxy refused the token request for {who} (HTTP {status}{because})"
            ),
        },
    }
}

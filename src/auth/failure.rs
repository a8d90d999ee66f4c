//! Entra failures → [`AuthError`]: which kind (rejected, throttled, unavailable) and, for a
//! rejection, a message that names the fix (a missing federated credential, an unknown client
//! or tenant, an expired secret). Messages are scrubbed of the assertion and the client secret.

use azure_core::error::ErrorKind;
use secrecy::{ExposeSecret, SecretString};

use super::{AuthError, jwt};
use crate::spc::plan::{Identity, MountPlan};

/// What an auth error message needs to know about the request (nothing secret).
#[derive(Debug, Clone)]
pub(super) struct ErrorContext {
    pub(super) identity: String,
    pub(super) tenant: String,
    pub(super) client_id: Option<String>,
    /// iss/sub of the service-account token (workload identity and identity binding).
    claims: Option<jwt::Claims>,
    pub(super) namespace: String,
    pub(super) service_account: Option<String>,
    /// Identity binding: token requests go through the AKS token proxy.
    pub(super) binding: bool,
    /// Strings that must never appear in a message (the assertion, the client secret).
    redact: Vec<SecretString>,
}

impl ErrorContext {
    pub(super) fn from_plan(plan: &MountPlan) -> Self {
        let (client_id, claims, redact) = match &plan.identity {
            Identity::WorkloadIdentity { client_id, token }
            | Identity::IdentityBinding { client_id, token } => (
                Some(client_id.clone()),
                jwt::claims(token.jwt.expose_secret()),
                vec![SecretString::from(token.jwt.expose_secret().to_owned())],
            ),
            Identity::ServicePrincipal {
                client_id,
                client_secret,
            } => (
                Some(client_id.clone()),
                None,
                vec![SecretString::from(client_secret.expose_secret().to_owned())],
            ),
            _ => (None, None, Vec::new()),
        };
        ErrorContext {
            identity: plan.identity.describe(),
            tenant: plan.tenant_id.clone(),
            client_id,
            claims,
            namespace: plan.pod.namespace.clone(),
            service_account: plan.pod.service_account.clone(),
            binding: matches!(plan.identity, Identity::IdentityBinding { .. }),
            redact,
        }
    }

    pub(super) fn scrub(&self, text: &str) -> String {
        // Redact first, then cut: a secret crossing the cut would no longer be found.
        let mut out = text.lines().next().unwrap_or_default().to_owned();
        for secret in &self.redact {
            let s = secret.expose_secret();
            if s.len() >= 4 && out.contains(s) {
                out = out.replace(s, "<redacted>");
            }
        }
        out.chars().take(400).collect()
    }
}

/// The [`AuthError`] for a failed token request of the identity `ctx` describes.
pub(super) fn classify(err: &azure_core::Error, ctx: &ErrorContext) -> AuthError {
    if ctx.binding
        && let Some(proxied) = super::binding::classify(err, ctx)
    {
        return proxied;
    }
    if crate::http::is_body_too_large(err) {
        return AuthError::Unavailable {
            message: format!(
                "the token endpoint for {} answered with an oversized body",
                ctx.identity
            ),
        };
    }
    // Credentials wrap the HTTP error of the token endpoint ("… authentication failed"):
    // classify by the innermost HTTP response when there is one.
    match http_response_kind(err).unwrap_or(err.kind()) {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            let code = u16::from(*status);
            if code == 429 {
                return AuthError::Throttled {
                    message: format!(
                        "Microsoft Entra ID is throttling token requests for {}",
                        ctx.identity
                    ),
                };
            }
            if code >= 500 || code == 408 {
                return AuthError::Unavailable {
                    message: format!(
                        "Microsoft Entra ID answered HTTP {code} for {}",
                        ctx.identity
                    ),
                };
            }
            let description = ctx.scrub(&err.to_string());
            AuthError::Rejected {
                message: rejection_message(error_code.as_deref(), &description, ctx),
            }
        }
        ErrorKind::Io | ErrorKind::Connection => AuthError::Unavailable {
            message: format!(
                "cannot reach the token endpoint for {}: {}",
                ctx.identity,
                ctx.scrub(&error_chain(err))
            ),
        },
        ErrorKind::DataConversion => AuthError::Unavailable {
            message: format!(
                "the token endpoint for {} answered with a malformed response",
                ctx.identity
            ),
        },
        _ => AuthError::Rejected {
            message: format!(
                "{} could not get a token: {}",
                ctx.identity,
                ctx.scrub(&error_chain(err))
            ),
        },
    }
}

/// The kind of the innermost SDK error that says what happened on the wire (an HTTP status,
/// a connection or I/O failure, an unreadable body): credentials wrap those in their own
/// "authentication failed" error.
fn http_response_kind(err: &azure_core::Error) -> Option<&ErrorKind> {
    let mut found = None;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(inner) = e.downcast_ref::<azure_core::Error>()
            && matches!(
                inner.kind(),
                ErrorKind::HttpResponse { .. }
                    | ErrorKind::Io
                    | ErrorKind::Connection
                    | ErrorKind::DataConversion
            )
        {
            found = Some(inner.kind());
            if matches!(inner.kind(), ErrorKind::HttpResponse { .. }) {
                break;
            }
        }
        source = e.source();
    }
    found
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// The message for an Entra rejection: what went wrong and the exact fix.
pub(super) fn rejection_message(
    codes: Option<&str>,
    description: &str,
    ctx: &ErrorContext,
) -> String {
    let has = |code: &str| {
        codes.is_some_and(|c| c.split(',').any(|x| x.trim() == code))
            || description.contains(&format!("AADSTS{code}"))
    };
    let client = ctx.client_id.as_deref().unwrap_or("?");
    if has("70021") {
        let (iss, sub) = match &ctx.claims {
            Some(c) => (
                c.iss.clone().unwrap_or_else(|| "<issuer>".into()),
                c.sub.clone().unwrap_or_else(|| "<subject>".into()),
            ),
            None => ("<issuer>".into(), "<subject>".into()),
        };
        let sa = ctx
            .service_account
            .clone()
            .unwrap_or_else(|| "<service-account>".into());
        return format!(
            "Microsoft Entra ID found no federated credential on clientID {client} matching the pod's \
             service-account token (AADSTS70021; token issuer {iss:?}, subject {sub:?}). Create one: \
             az identity federated-credential create --name {ns}-{sa} --identity-name <managed-identity-name> \
             --resource-group <resource-group> --issuer {iss} --subject system:serviceaccount:{ns}:{sa} \
             --audience api://AzureADTokenExchange",
            ns = ctx.namespace,
        );
    }
    if has("700016") {
        return format!(
            "Microsoft Entra ID does not know clientID {client} in tenant {} (AADSTS700016): check clientID \
             and tenantID in the SecretProviderClass",
            ctx.tenant
        );
    }
    if has("700024") || has("700027") {
        return format!(
            "Microsoft Entra ID rejected the pod's service-account token for clientID {client} as expired or \
             not yet valid (check the node clock and the CSIDriver tokenRequests expirationSeconds): {description}"
        );
    }
    if has("7000215") || has("7000222") {
        return format!(
            "Microsoft Entra ID rejected the client secret of service principal {client} (invalid or expired): \
             update the nodePublishSecretRef secret's clientsecret"
        );
    }
    if has("90002") {
        return format!(
            "Microsoft Entra ID does not know tenant {} (AADSTS90002): check tenantID",
            ctx.tenant
        );
    }
    format!(
        "Microsoft Entra ID rejected {}: {description}",
        ctx.identity
    )
}

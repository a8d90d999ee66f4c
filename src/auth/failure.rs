//! Token failures → [`AuthError`]: which kind (rejected, throttled, unavailable), the wait the
//! service asked for, and a message that names the service that answered (Entra ID, AD FS,
//! IMDS, NMI), what it said and the fix. Each service's own rules decide what is retried:
//! Entra's `error` field (`temporarily_unavailable` is retried, `invalid_client` never), IMDS's
//! documented "retry 404, 410, 429 and 5xx", NMI's own waiting before it answers. Messages are
//! scrubbed of the assertion and the client secret.

use std::time::Duration;

use azure_core::error::ErrorKind;
use secrecy::{ExposeSecret, SecretString};

use super::{AuthError, codes, jwt};
use crate::http::{TokenFailure, token_failure};
use crate::spc::plan::{Identity, MountPlan};

/// Who answers a plan's token requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Service {
    /// Microsoft Entra ID's token endpoint.
    Entra,
    /// Azure Stack Hub's AD FS (`tenantID: adfs`).
    AdFs,
    /// The node's Instance Metadata Service (VM managed identity).
    Imds,
    /// AAD pod identity's node agent.
    Nmi,
}

impl Service {
    pub(super) fn name(self) -> &'static str {
        match self {
            Service::Entra => "Microsoft Entra ID",
            Service::AdFs => "AD FS",
            Service::Imds => "IMDS (the node's Azure Instance Metadata Service, 169.254.169.254)",
            Service::Nmi => "NMI (AAD pod identity, localhost:2579)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Service::Entra => "Microsoft Entra ID",
            Service::AdFs => "AD FS",
            Service::Imds => "IMDS",
            Service::Nmi => "NMI",
        }
    }
}

/// What an auth error message needs to know about the request (nothing secret).
#[derive(Debug, Clone)]
pub(super) struct ErrorContext {
    pub(super) identity: String,
    pub(super) service: Service,
    pub(super) tenant: String,
    pub(super) client_id: Option<String>,
    /// iss/sub of the service-account token (workload identity and identity binding).
    pub(super) claims: Option<jwt::Claims>,
    pub(super) namespace: String,
    pub(super) pod: String,
    pub(super) service_account: Option<String>,
    /// Identity binding: token requests go through the AKS token proxy.
    pub(super) binding: bool,
    /// Strings that must never appear in a message (the assertion, the client secret).
    redact: Vec<SecretString>,
}

impl ErrorContext {
    pub(super) fn from_plan(plan: &MountPlan) -> Self {
        let adfs = plan.tenant_id.eq_ignore_ascii_case("adfs");
        let token_service = if adfs { Service::AdFs } else { Service::Entra };
        let (client_id, claims, redact, service) = match &plan.identity {
            Identity::WorkloadIdentity { client_id, token }
            | Identity::IdentityBinding { client_id, token } => (
                Some(client_id.clone()),
                jwt::claims(token.jwt.expose_secret()),
                vec![SecretString::from(token.jwt.expose_secret().to_owned())],
                token_service,
            ),
            Identity::ServicePrincipal {
                client_id,
                client_secret,
            } => (
                Some(client_id.clone()),
                None,
                vec![SecretString::from(client_secret.expose_secret().to_owned())],
                token_service,
            ),
            Identity::VmManagedIdentity {
                user_assigned_client_id,
            } => (
                user_assigned_client_id.clone(),
                None,
                Vec::new(),
                Service::Imds,
            ),
            Identity::PodIdentity => (None, None, Vec::new(), Service::Nmi),
        };
        ErrorContext {
            identity: plan.identity.describe(),
            service,
            tenant: plan.tenant_id.clone(),
            client_id,
            claims,
            namespace: plan.pod.namespace.clone(),
            pod: plan.pod.name.clone(),
            service_account: plan.pod.service_account.clone(),
            binding: matches!(plan.identity, Identity::IdentityBinding { .. }),
            redact,
        }
    }

    /// `text` with every secret replaced, cut to one bounded line.
    pub(super) fn scrub(&self, text: &str) -> String {
        // Redact first, then cut: a secret crossing the cut would no longer be found.
        let mut out = text.lines().next().unwrap_or_default().to_owned();
        for secret in &self.redact {
            let s = secret.expose_secret();
            if s.len() >= 4 && out.contains(s) {
                out = out.replace(s, "<redacted>");
            }
        }
        out.chars().take(600).collect()
    }
}

/// The [`AuthError`] for a failed token request of the identity `ctx` describes.
pub(super) fn classify(err: &azure_core::Error, ctx: &ErrorContext) -> AuthError {
    if ctx.binding
        && let Some(proxied) = super::binding::classify(err, ctx)
    {
        return proxied;
    }
    let service = ctx.service.short();
    if crate::http::is_body_too_large(err) {
        return AuthError::Unavailable {
            message: format!(
                "{service} answered the token request for {} with an oversized body",
                ctx.identity
            ),
            retry_after: None,
        };
    }
    if let Some(failure) = token_failure(err) {
        return from_failure(failure, ctx);
    }
    if let Some(refusal) = crate::http::budget::refusal(err) {
        // Not sent: the wait is longer than the Mount has (or it is a re-mount while the
        // endpoint throttles), so a retry within this Mount is pointless.
        return AuthError::NotSent {
            message: format!("token request for {} not sent: {refusal}", ctx.identity),
        };
    }
    match innermost_kind(err).unwrap_or(err.kind()) {
        ErrorKind::Io | ErrorKind::Connection => AuthError::Unavailable {
            message: format!(
                "cannot reach {} for {}: {}",
                ctx.service.name(),
                ctx.identity,
                ctx.scrub(&error_chain(err))
            ),
            retry_after: None,
        },
        ErrorKind::DataConversion => AuthError::Unavailable {
            message: format!(
                "{service} answered the token request for {} with a body that is not a token response",
                ctx.identity
            ),
            retry_after: None,
        },
        ErrorKind::HttpResponse { status, .. } => {
            let code = u16::from(*status);
            let message = format!("{service} answered HTTP {code} for {}", ctx.identity);
            if code == 429 {
                AuthError::Throttled {
                    message,
                    retry_after: None,
                }
            } else if code >= 500 || code == 408 {
                AuthError::Unavailable {
                    message,
                    retry_after: None,
                }
            } else {
                AuthError::Rejected { message }
            }
        }
        _ => AuthError::Rejected {
            message: format!(
                "{} could not get a token: {}",
                ctx.identity,
                ctx.scrub(&error_chain(err))
            ),
        },
    }
}

/// OAuth `error` values that no retry can fix.
const NEVER_RETRIED: &[&str] = &[
    "invalid_client",
    "unauthorized_client",
    "invalid_grant",
    "invalid_request",
    "invalid_scope",
    "invalid_resource",
    "unsupported_grant_type",
];

/// Classifies what a token endpoint said, by the answering service's own rules.
pub(super) fn from_failure(f: &TokenFailure, ctx: &ErrorContext) -> AuthError {
    let service = ctx.service.short();
    let said = ctx.scrub(&f.summary());
    let error = f.error.as_deref();
    let wait = |after: Option<Duration>| {
        after
            .map(|d| {
                format!(
                    "; it asked for {}s before the next request (Retry-After)",
                    d.as_secs()
                )
            })
            .unwrap_or_default()
    };
    if f.status == 429 {
        return AuthError::Throttled {
            message: format!(
                "{service} is throttling token requests for {} ({said}){}",
                ctx.identity,
                wait(f.retry_after)
            ),
            retry_after: f.retry_after,
        };
    }
    let transient = match ctx.service {
        Service::Entra | Service::AdFs => {
            error == Some("temporarily_unavailable")
                || (!error.is_some_and(|e| NEVER_RETRIED.contains(&e))
                    && (f.status >= 500 || f.status == 408))
        }
        // how-to-use-vm-token.md: 404 (updating), 410 (updating, back within 70 s), 5xx.
        Service::Imds => matches!(f.status, 404 | 408 | 410) || f.status >= 500,
        // NMI waits for the identity itself before it answers 404; 503 = its health check.
        Service::Nmi => f.status == 503,
    };
    if transient {
        return AuthError::Unavailable {
            message: format!(
                "{service} answered the token request for {} with a transient error ({said}){}",
                ctx.identity,
                wait(f.retry_after)
            ),
            retry_after: f.retry_after,
        };
    }
    let message = match ctx.service {
        Service::Entra | Service::AdFs => codes::entra_rejection(f, &said, ctx),
        Service::Imds => codes::imds_rejection(f, &said, ctx),
        Service::Nmi => format!(
            "NMI (AAD pod identity) gave no token for pod {}/{} ({said}): check the AzureIdentity and \
             AzureIdentityBinding for the pod and the MIC pod logs, or move the SecretProviderClass \
             to workload identity (clientID)",
            ctx.namespace, ctx.pod
        ),
    };
    AuthError::Rejected { message }
}

/// The kind of the innermost SDK error that says what happened on the wire (a connection or
/// I/O failure, an unreadable body, an HTTP status): credentials wrap those in their own
/// "authentication failed" error.
fn innermost_kind(err: &azure_core::Error) -> Option<&ErrorKind> {
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
/// The message for an Entra refusal given as its `error_codes` (comma-separated) and
/// description, for callers that parsed the answer themselves (identity binding's proxy).
pub(super) fn rejection_message(
    codes: Option<&str>,
    description: &str,
    ctx: &ErrorContext,
) -> String {
    let mut failure = TokenFailure::parse(400, None, b"");
    failure.codes = codes
        .unwrap_or_default()
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .chain(crate::http::token_endpoint::aadsts_codes(description))
        .collect();
    failure.description = Some(description.to_owned());
    codes::entra_rejection(&failure, description, ctx)
}

//! Identity: turning a plan's [`Identity`] into an Entra access token for Key Vault, through
//! the official `azure_identity` credentials (workload identity via `ClientAssertionCredential`,
//! service principal via `ClientSecretCredential`, VM identity via `ManagedIdentityCredential`)
//! and NMI for the deprecated pod identity. Every credential shares the process's HTTP stack.

mod expiry;
pub mod jwt;
mod nmi;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{ClientMethodOptions, ClientOptions, HttpClient, RetryOptions, Transport};
use azure_core::time::OffsetDateTime;
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::cloud::CloudEndpoints;
use crate::mount::plan::{Identity, MountPlan};
use crate::telemetry::metrics::{Metrics, ModeLabels};

pub use nmi::NMI_ENDPOINT;

/// Why no token could be obtained. Carried inside `azure_core::Error` through the Key Vault
/// client, so the edge can tell an Entra rejection from a Key Vault refusal.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// Entra ID (or IMDS/NMI) refused the identity: a setup problem the user must fix.
    #[error("{message}")]
    Rejected { message: String },
    /// The token endpoint throttled us.
    #[error("{message}")]
    Throttled { message: String },
    /// The token endpoint could not be reached or answered nonsense.
    #[error("{message}")]
    Unavailable { message: String },
    /// The credential could not even be built from the plan.
    #[error("{message}")]
    Setup { message: String },
}

/// Builds credentials for plans. One per process; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    http: Arc<dyn HttpClient>,
    metrics: Metrics,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

/// The client options every SDK client and credential gets: our transport, no SDK retries
/// (retries are ours, inside the Mount's deadline) and, where given, the cloud's authority.
pub fn client_options(
    http: &Arc<dyn HttpClient>,
    endpoints: Option<&CloudEndpoints>,
) -> ClientOptions {
    let mut options = ClientOptions {
        transport: Some(Transport::new(http.clone())),
        retry: RetryOptions::none(),
        ..Default::default()
    };
    if let Some(endpoints) = endpoints {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = endpoints.authority_host.trim_end_matches('/').to_owned();
        options.cloud = Some(Arc::new(CloudConfiguration::Custom(custom)));
    }
    options
}

impl Authenticator {
    /// An authenticator whose credentials send through `http`.
    pub fn new(http: Arc<dyn HttpClient>, metrics: Metrics) -> Self {
        Authenticator { http, metrics }
    }

    /// A credential for the plan's identity. Each carries its own token cache, so a credential
    /// must only ever serve the identity it was built for.
    pub fn credential(
        &self,
        plan: &MountPlan,
        endpoints: &CloudEndpoints,
    ) -> Result<Arc<IdentityCredential>, AuthError> {
        let options = || client_options(&self.http, Some(endpoints));
        let setup = |e: azure_core::Error| AuthError::Setup {
            message: format!("cannot set up {}: {e}", plan.identity.describe()),
        };
        let inner: Arc<dyn TokenCredential> = match &plan.identity {
            Identity::WorkloadIdentity { client_id, token } => ClientAssertionCredential::new(
                plan.tenant_id.clone(),
                client_id.clone(),
                ServiceAccountAssertion(SecretString::from(token.jwt.expose_secret().to_owned())),
                Some(ClientAssertionCredentialOptions {
                    client_options: options(),
                }),
            )
            .map_err(setup)?,
            Identity::ServicePrincipal {
                client_id,
                client_secret,
            } => ClientSecretCredential::new(
                &plan.tenant_id,
                client_id.clone(),
                Secret::new(client_secret.expose_secret().to_owned()),
                Some(ClientSecretCredentialOptions {
                    client_options: options(),
                }),
            )
            .map_err(setup)?,
            Identity::VmManagedIdentity {
                user_assigned_client_id,
            } => {
                let mut mi = ManagedIdentityCredentialOptions {
                    client_options: options(),
                    ..Default::default()
                };
                mi.user_assigned_id = user_assigned_client_id
                    .clone()
                    .map(UserAssignedId::ClientId);
                ManagedIdentityCredential::new(Some(mi)).map_err(setup)?
            }
            Identity::PodIdentity => Arc::new(nmi::NmiCredential::new(
                self.http.clone(),
                &plan.pod.namespace,
                &plan.pod.name,
            )),
        };
        let context = ErrorContext::from_plan(plan);
        Ok(Arc::new(IdentityCredential {
            inner,
            context,
            last: tokio::sync::Mutex::new(None),
            not_after: service_account_expiry(plan),
            metrics: self.metrics.clone(),
            mode: ModeLabels {
                mode: plan.identity.mode().to_owned(),
            },
        }))
    }
}

/// Who a credential proves, as a SHA-256 over the mode, tenant, client, authority and a hash
/// of the proof (service-account token or client secret). Never holds a raw token or secret,
/// and two requests share a credential only if they carry the very same proof.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityKey([u8; 32]);

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IdentityKey({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// The cache key of the plan's identity in this cloud.
pub fn identity_key(plan: &MountPlan, endpoints: &CloudEndpoints) -> IdentityKey {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(endpoints.authority_host.as_bytes());
    field(endpoints.key_vault_resource.as_bytes());
    match &plan.identity {
        Identity::WorkloadIdentity { client_id, token } => {
            field(b"workload");
            field(plan.tenant_id.as_bytes());
            field(client_id.as_bytes());
            field(&Sha256::digest(token.jwt.expose_secret().as_bytes()));
        }
        Identity::ServicePrincipal {
            client_id,
            client_secret,
        } => {
            field(b"service-principal");
            field(plan.tenant_id.as_bytes());
            field(client_id.as_bytes());
            field(&Sha256::digest(client_secret.expose_secret().as_bytes()));
        }
        Identity::VmManagedIdentity {
            user_assigned_client_id,
        } => {
            field(b"vm");
            field(
                user_assigned_client_id
                    .as_deref()
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
        Identity::PodIdentity => {
            // NMI decides per pod: the pod is the identity.
            field(b"pod");
            field(plan.pod.namespace.as_bytes());
            field(plan.pod.name.as_bytes());
            // A recreated pod (same name, new UID) is another pod.
            field(plan.pod.uid.as_deref().unwrap_or_default().as_bytes());
        }
    }
    IdentityKey(h.finalize().into())
}

/// When the plan's service-account token expires (the earlier of kubelet's
/// `expirationTimestamp` and the JWT's `exp`); `None` for modes without one.
pub fn service_account_expiry(plan: &MountPlan) -> Option<OffsetDateTime> {
    let Identity::WorkloadIdentity { token, .. } = &plan.identity else {
        return None;
    };
    let from_kubelet = token
        .expires_at
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| OffsetDateTime::from_unix_timestamp(d.as_secs() as i64).ok());
    let from_jwt = jwt::claims(token.jwt.expose_secret())
        .and_then(|c| c.exp)
        .and_then(|exp| OffsetDateTime::from_unix_timestamp(exp).ok());
    match (from_kubelet, from_jwt) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The pod's service-account token, handed to Entra as the client assertion.
struct ServiceAccountAssertion(SecretString);

impl fmt::Debug for ServiceAccountAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceAccountAssertion(<redacted>)")
    }
}

#[async_trait]
impl ClientAssertion for ServiceAccountAssertion {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        Ok(self.0.expose_secret().to_owned())
    }
}

/// What an auth error message needs to know about the request (nothing secret).
#[derive(Debug, Clone)]
struct ErrorContext {
    identity: String,
    tenant: String,
    client_id: Option<String>,
    /// iss/sub of the service-account token (workload identity only).
    claims: Option<jwt::Claims>,
    namespace: String,
    service_account: Option<String>,
    /// Strings that must never appear in a message (the assertion, the client secret).
    redact: Vec<SecretString>,
}

impl ErrorContext {
    fn from_plan(plan: &MountPlan) -> Self {
        let (client_id, claims, redact) = match &plan.identity {
            Identity::WorkloadIdentity { client_id, token } => (
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
            redact,
        }
    }

    fn scrub(&self, text: &str) -> String {
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

/// The credential of one identity: single-flight (concurrent callers share one token request),
/// failures classified into [`AuthError`]s whose messages name the fix, and a failure
/// remembered so a Mount with many objects asks Entra once, not once per object.
pub struct IdentityCredential {
    inner: Arc<dyn TokenCredential>,
    context: ErrorContext,
    /// The last answer: scope, outcome, and when it was obtained.
    last: tokio::sync::Mutex<Option<LastAnswer>>,
    /// The service-account token's expiry: no Entra token is served past it.
    not_after: Option<OffsetDateTime>,
    metrics: Metrics,
    mode: ModeLabels,
}

struct LastAnswer {
    scope: String,
    outcome: Result<AccessToken, AuthError>,
    at: OffsetDateTime,
}

/// Tokens this close to expiry are fetched anew.
const REFRESH_MARGIN: azure_core::time::Duration = azure_core::time::Duration::minutes(5);
/// A rejection is repeated without asking again for this long (one Mount's many objects), then
/// asked anew, so a fixed federated credential or role assignment takes effect at once.
const FAILURE_MEMORY: azure_core::time::Duration = azure_core::time::Duration::seconds(5);

impl fmt::Debug for IdentityCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityCredential")
            .field("identity", &self.context.identity)
            .finish_non_exhaustive()
    }
}

impl IdentityCredential {
    /// A token for `scope`, from the last answer when it is still good.
    pub async fn token(&self, scope: &str) -> Result<AccessToken, AuthError> {
        let now = OffsetDateTime::now_utc();
        if self.not_after.is_some_and(|t| now >= t) {
            return Err(AuthError::Rejected {
                message: format!(
                    "the pod's service-account token for {} has expired; kubelet sends a fresh one on the next mount",
                    self.context.identity
                ),
            });
        }
        // Holding the lock while asking makes concurrent callers share one request.
        let mut last = self.last.lock().await;
        if let Some(answer) = last.as_ref()
            && answer.scope == scope
        {
            match &answer.outcome {
                Ok(token) if token.expires_on > now + REFRESH_MARGIN => {
                    self.metrics
                        .token_cache_hits
                        .get_or_create(&self.mode)
                        .inc();
                    return Ok(token.clone());
                }
                Err(e @ (AuthError::Rejected { .. } | AuthError::Setup { .. }))
                    if now < answer.at + FAILURE_MEMORY =>
                {
                    return Err(e.clone());
                }
                _ => {}
            }
        }
        self.metrics.token_exchanges.get_or_create(&self.mode).inc();
        let outcome = self
            .inner
            .get_token(&[scope], None)
            .await
            .map(|mut token| {
                // Never serve a token past the service-account token it was exchanged for.
                if let Some(limit) = self.not_after {
                    token.expires_on = token.expires_on.min(limit);
                }
                token
            })
            .map_err(|e| classify(&e, &self.context));
        *last = Some(LastAnswer {
            scope: scope.to_owned(),
            outcome: outcome.clone(),
            at: now,
        });
        outcome
    }

    /// Who this is, for messages.
    pub fn describe(&self) -> &str {
        &self.context.identity
    }
}

#[async_trait]
impl TokenCredential for IdentityCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        self.token(scope)
            .await
            .map_err(|e| azure_core::Error::new(ErrorKind::Credential, e))
    }
}

/// Finds the [`AuthError`] an error from a credential-backed call carries, if any.
pub fn auth_error(err: &azure_core::Error) -> Option<&AuthError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(found) = e.downcast_ref::<AuthError>() {
            return Some(found);
        }
        source = e.source();
    }
    None
}

fn classify(err: &azure_core::Error, ctx: &ErrorContext) -> AuthError {
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
fn rejection_message(codes: Option<&str>, description: &str, ctx: &ErrorContext) -> String {
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

//! Identity: turning a plan's [`Identity`] into an Entra access token for Key Vault, through
//! the official `azure_identity` credentials (workload identity via `ClientAssertionCredential`,
//! service principal via `ClientSecretCredential`), our own small IMDS client for the VM
//! identity (`imds`: the SDK's retries would outlast the Mount) and NMI for the deprecated pod
//! identity; identity binding is the workload-identity exchange sent through
//! [`crate::token_proxy`]. Every other credential shares the process's HTTP stack, whose
//! token-endpoint layer ([`crate::http::token_endpoint`]) reads real Entra answers the SDK
//! cannot. [`IdentityCredential`] (in `credential`) serves one identity's tokens; `failure`,
//! `codes` and `binding` turn refusals into [`AuthError`]s that name the service and the fix.
//!
//! Imports the plan ([`crate::spc::plan`]), [`crate::cloud`], [`crate::http`],
//! [`crate::token_proxy`] (its errors) and [`crate::telemetry`].

mod binding;
mod codes;
mod credential;
mod expiry;
mod failure;
mod imds;
pub mod jwt;
mod nmi;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientMethodOptions, ClientOptions, HttpClient, RetryOptions, Transport};
use azure_core::time::OffsetDateTime;
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use failure::ErrorContext;

use crate::cloud::CloudEndpoints;
use crate::spc::plan::{Identity, MountPlan};
use crate::telemetry::metrics::{Metrics, ModeLabels};

pub use credential::IdentityCredential;
pub use imds::IMDS_ENDPOINT;
pub use nmi::NMI_ENDPOINT;

/// Why no token could be obtained. Carried inside `azure_core::Error` through the Key Vault
/// client, so the edge can tell an Entra rejection from a Key Vault refusal.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// Entra ID (or AD FS, IMDS, NMI) refused the identity: a setup problem the user must fix.
    #[error("{message}")]
    Rejected { message: String },
    /// The token endpoint throttled us (429), asking for `retry_after` when it said.
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The token endpoint could not be reached, failed transiently or answered nonsense.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Not sent: this node's budget for the token endpoint would not let the request out
    /// before the Mount's deadline (or the Mount is a re-mount while the endpoint throttles).
    #[error("{message}")]
    NotSent { message: String },
    /// The credential could not even be built from the plan.
    #[error("{message}")]
    Setup { message: String },
}

impl AuthError {
    /// The wait the token service asked for (`Retry-After`), when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AuthError::Throttled { retry_after, .. }
            | AuthError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Builds credentials for plans. One per process; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    http: Arc<dyn HttpClient>,
    /// Identity binding's transport ([`crate::token_proxy::TokenProxy`]), when the process has one.
    token_proxy: Option<Arc<dyn HttpClient>>,
    metrics: Metrics,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

/// The client options every SDK client and credential gets: our transport, no SDK retries
/// (retries are ours, inside the Mount's deadline) and, where given, the cloud's authority.
/// (`ManagedIdentityCredential` would override the retries; we use our own IMDS client.)
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
        Authenticator {
            http,
            token_proxy: None,
            metrics,
        }
    }

    /// Sends identity binding's token requests through `proxy`.
    pub fn with_token_proxy(mut self, proxy: Arc<dyn HttpClient>) -> Self {
        self.token_proxy = Some(proxy);
        self
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
            } => Arc::new(imds::ImdsCredential::new(
                self.http.clone(),
                user_assigned_client_id.clone(),
            )),
            Identity::PodIdentity => Arc::new(nmi::NmiCredential::new(
                self.http.clone(),
                &plan.pod.namespace,
                &plan.pod.name,
            )),
            Identity::IdentityBinding { client_id, token } => {
                let proxy = self.token_proxy.as_ref().ok_or_else(|| AuthError::Setup {
                    message: format!(
                        "cannot set up {}: this provider process has no token proxy transport",
                        plan.identity.describe()
                    ),
                })?;
                // The standard client-assertion request; only its transport differs.
                ClientAssertionCredential::new(
                    plan.tenant_id.clone(),
                    client_id.clone(),
                    ServiceAccountAssertion(SecretString::from(
                        token.jwt.expose_secret().to_owned(),
                    )),
                    Some(ClientAssertionCredentialOptions {
                        client_options: client_options(proxy, Some(endpoints)),
                    }),
                )
                .map_err(setup)?
            }
        };
        Ok(Arc::new(IdentityCredential::new(
            inner,
            ErrorContext::from_plan(plan),
            service_account_expiry(plan),
            self.metrics.clone(),
            ModeLabels {
                mode: plan.identity.mode().to_owned(),
            },
        )))
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
        Identity::IdentityBinding { client_id, token } => {
            field(b"identity-binding");
            field(plan.tenant_id.as_bytes());
            field(client_id.as_bytes());
            field(&Sha256::digest(token.jwt.expose_secret().as_bytes()));
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
    let token = plan.identity.service_account_token()?;
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

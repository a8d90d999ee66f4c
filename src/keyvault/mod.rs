//! Reading objects from Key Vault with the official SDK clients: one set of clients per vault
//! and identity, our own retries inside the Mount's deadline, version history through the
//! paged `versions` listing, and every failure classified for the edge. What a read returns,
//! [`Fetched`] (SDK-free), lives here too; the renderer above takes it.
//!
//! Imports the plan's object types ([`crate::spc::plan`]), [`crate::auth`] (credentials and
//! their errors) and [`crate::http`].

mod classify;
mod fetched;
pub mod models;
pub mod retry;

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::ClientOptions;
use azure_security_keyvault_certificates::models::CertificateClientGetCertificateOptions;
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::models::KeyClientGetKeyOptions;
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use azure_security_keyvault_secrets::models::SecretClientGetSecretOptions;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use futures_util::TryStreamExt;
use tokio::time::Instant;

use crate::auth::AuthError;
use crate::http::budget::HostBudget;
use crate::spc::plan::{ObjectSpec, ObjectType};
use retry::{RetryPolicy, Verdict};

pub use classify::{Denial, classify};
pub use fetched::{Fetched, Jwk, version_of};

/// Why an object could not be read. Context (object, vault, identity) is added by the caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KvError {
    /// Getting the Entra token failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Key Vault answered 401 or 403: the identity, its tenant or its network lacks access.
    #[error("access denied (HTTP {status}{})", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Denied {
        status: u16,
        /// `error.innererror.code`, else `error.code` (`ForbiddenByRbac`, `Unauthorized`, …).
        code: Option<String>,
        /// Why, as far as Key Vault's answer says.
        reason: Denial,
    },
    /// Key Vault answered 404 for the object or the version.
    #[error("not found")]
    NotFound,
    /// The pinned (or current) version is disabled.
    #[error("version {version} is disabled")]
    Disabled { version: String },
    /// History was asked for, but no version (from the pinned one on) is enabled.
    #[error("no enabled version")]
    NoEnabledVersion,
    /// Still throttled (429) when the deadline came.
    #[error("throttled (HTTP 429) until the mount deadline")]
    Throttled,
    /// Not sent: the node's budget for the vault would not let it out in time, the Mount is a
    /// re-mount while the vault throttles, or the retry budget is spent.
    #[error("not sent: {why:?}")]
    Refused {
        why: Refused,
        /// The expected queue wait, when that was the reason.
        wait: Option<std::time::Duration>,
    },
    /// 5xx, connection failures or resets until the deadline.
    #[error("{detail}")]
    Unavailable { detail: String },
    /// The vault's host name does not resolve.
    #[error("the vault host name does not resolve")]
    DnsFailure,
    /// A response body over the cap.
    #[error("response larger than {} bytes", crate::http::MAX_BODY_BYTES)]
    TooLarge,
    /// A response that is not the Key Vault document it should be.
    #[error("malformed response: {detail}")]
    Malformed { detail: String },
    /// The Mount's deadline passed.
    #[error("deadline exceeded")]
    DeadlineExceeded,
}

/// Why the node's budget refused a request (see [`crate::http::budget`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue wait would pass the Mount's deadline.
    Deadline,
    /// The vault answered 429 and its pause and queue outlast the Mount's deadline.
    Throttled,
    /// A rotation re-mount while the vault throttles.
    Shed,
    /// The retry budget is spent.
    RetryBudget,
}

/// Passes token requests through and notes that one happened: a Key Vault client asks for a
/// token only after its 401 challenge taught it the vault's scope.
#[derive(Debug)]
struct ScopeSignal {
    inner: Arc<dyn TokenCredential>,
    asked: tokio::sync::watch::Sender<bool>,
}

#[async_trait::async_trait]
impl TokenCredential for ScopeSignal {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        self.asked.send_replace(true);
        self.inner.get_token(scopes, options).await
    }
}

/// The three SDK clients for one vault, bound to one identity's credential. Long-lived: the
/// clients keep the scope learned from the vault's challenge and the token they were given.
pub struct VaultReader {
    vault_name: String,
    asked: tokio::sync::watch::Sender<bool>,
    secrets: SecretClient,
    keys: KeyClient,
    certificates: CertificateClient,
    retry: RetryPolicy,
    budget: Option<Arc<HostBudget>>,
}

impl std::fmt::Debug for VaultReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultReader")
            .field("vault", &self.vault_name)
            .finish_non_exhaustive()
    }
}

impl VaultReader {
    /// Clients for `vault_url` that authenticate with `credential`.
    pub fn new(
        vault_name: &str,
        vault_url: &str,
        credential: Arc<dyn TokenCredential>,
        client_options: ClientOptions,
        retry: RetryPolicy,
    ) -> azure_core::Result<Self> {
        let asked = tokio::sync::watch::channel(false).0;
        let credential: Arc<dyn TokenCredential> = Arc::new(ScopeSignal {
            inner: credential,
            asked: asked.clone(),
        });
        let s = SecretClientOptions {
            client_options: client_options.clone(),
            ..Default::default()
        };
        let k = KeyClientOptions {
            client_options: client_options.clone(),
            ..Default::default()
        };
        let c = CertificateClientOptions {
            client_options,
            ..Default::default()
        };
        Ok(VaultReader {
            vault_name: vault_name.to_owned(),
            asked,
            secrets: SecretClient::new(vault_url, credential.clone(), Some(s))?,
            keys: KeyClient::new(vault_url, credential.clone(), Some(k))?,
            certificates: CertificateClient::new(vault_url, credential, Some(c))?,
            retry,
            budget: None,
        })
    }

    /// Retries 429s through `budget` (the vault host's shared state on this node) instead of
    /// private timers, and books what keys really cost.
    pub fn with_budget(mut self, budget: Arc<HostBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Resolves once one of the clients has asked for a token, i.e. has learned the vault's
    /// scope from its 401 challenge; from then on requests carry the token directly.
    pub async fn scope_learned(&self) {
        let mut rx = self.asked.subscribe();
        let _ = rx.wait_for(|asked| *asked).await;
    }

    /// Reads every version `spec` asks for, newest first (one entry without history).
    /// `on_retry` hears about each retry. A 404 is [`KvError::NotFound`]; `optional` is the
    /// caller's business, since one read may serve several objects.
    pub async fn fetch(
        &self,
        spec: &ObjectSpec,
        deadline: Instant,
        on_retry: &(dyn Fn(Verdict) + Sync),
    ) -> Result<Vec<Fetched>, KvError> {
        if spec.has_history() {
            self.fetch_history(spec, deadline, on_retry).await
        } else {
            let version = spec.version.as_deref();
            let fetched = self
                .fetch_version(spec.object_type, &spec.name, version, deadline, on_retry)
                .await?;
            Ok(vec![fetched])
        }
    }

    async fn fetch_version(
        &self,
        object_type: ObjectType,
        name: &str,
        version: Option<&str>,
        deadline: Instant,
        on_retry: &(dyn Fn(Verdict) + Sync),
    ) -> Result<Fetched, KvError> {
        let classify = |e: &azure_core::Error| classify(e, version);
        let version = version.map(str::to_owned);
        match object_type {
            ObjectType::Secret => {
                let secret = self
                    .retry
                    .run(
                        deadline,
                        || {
                            let options = SecretClientGetSecretOptions {
                                secret_version: version.clone(),
                                ..Default::default()
                            };
                            async move {
                                self.secrets
                                    .get_secret(name, Some(options))
                                    .await?
                                    .into_model()
                            }
                        },
                        classify,
                        on_retry,
                        self.budget.as_deref(),
                    )
                    .await?;
                models::fetched_from_secret(secret)
            }
            ObjectType::Key => {
                let key = self
                    .retry
                    .run(
                        deadline,
                        || {
                            let options = KeyClientGetKeyOptions {
                                key_version: version.clone(),
                                ..Default::default()
                            };
                            async move { self.keys.get_key(name, Some(options)).await?.into_model() }
                        },
                        classify,
                        on_retry,
                        self.budget.as_deref(),
                    )
                    .await?;
                let fetched = models::fetched_from_key(key)?;
                if let (Some(budget), Fetched::Key { jwk, .. }) = (&self.budget, &fetched) {
                    budget.charge(key_units(jwk) - 1.0);
                }
                Ok(fetched)
            }
            ObjectType::Cert => {
                let cert = self
                    .retry
                    .run(
                        deadline,
                        || {
                            let options = CertificateClientGetCertificateOptions {
                                certificate_version: version.clone(),
                                ..Default::default()
                            };
                            async move {
                                // The raw body, not `into_model()`: the SDK's model reads the
                                // unused `policy` with closed enums (see docs/upstream.md).
                                self.certificates
                                    .get_certificate(name, Some(options))
                                    .await
                                    .map(|response| response.into_body())
                            }
                        },
                        classify,
                        on_retry,
                        self.budget.as_deref(),
                    )
                    .await?;
                models::fetched_from_certificate_json(cert.as_ref())
            }
        }
    }

    /// The ids of enabled versions, newest first by creation time (all pages).
    async fn list_versions(
        &self,
        object_type: ObjectType,
        name: &str,
        deadline: Instant,
        on_retry: &(dyn Fn(Verdict) + Sync),
    ) -> Result<Vec<models::Version>, KvError> {
        let list = || async move {
            let listed = match object_type {
                ObjectType::Secret => {
                    let pager = self.secrets.list_secret_properties_versions(name, None)?;
                    models::listed_secrets(pager.try_collect().await?)
                }
                ObjectType::Key => {
                    let pager = self.keys.list_key_properties_versions(name, None)?;
                    models::listed_keys(pager.try_collect().await?)
                }
                ObjectType::Cert => {
                    let pager = self
                        .certificates
                        .list_certificate_properties_versions(name, None)?;
                    models::listed_certificates(pager.try_collect().await?)
                }
            };
            Ok(listed)
        };
        let listed = self
            .retry
            .run(
                deadline,
                list,
                |e| classify(e, None),
                on_retry,
                self.budget.as_deref(),
            )
            .await?;
        Ok(models::newest_first(listed))
    }

    /// `objectVersionHistory`: the newest N enabled versions starting at `objectVersion`.
    async fn fetch_history(
        &self,
        spec: &ObjectSpec,
        deadline: Instant,
        on_retry: &(dyn Fn(Verdict) + Sync),
    ) -> Result<Vec<Fetched>, KvError> {
        let listed = self
            .list_versions(spec.object_type, &spec.name, deadline, on_retry)
            .await?;
        if listed.is_empty() {
            return Err(KvError::NotFound);
        }
        let start = match &spec.version {
            None => 0,
            Some(pinned) => {
                let at = listed
                    .iter()
                    .position(|(_, id, _)| version_of(id).eq_ignore_ascii_case(pinned))
                    .ok_or(KvError::NotFound)?;
                if !listed[at].2 {
                    return Err(KvError::Disabled {
                        version: pinned.clone(),
                    });
                }
                at
            }
        };
        let chosen: Vec<String> = listed
            .into_iter()
            .skip(start)
            .filter(|(_, _, enabled)| *enabled)
            .take(spec.history as usize)
            .map(|(_, id, _)| version_of(&id).to_owned())
            .collect();
        if chosen.is_empty() {
            return Err(KvError::NoEnabledVersion);
        }
        // At most 16 versions in flight per object; order is kept.
        let mut fetched = Vec::with_capacity(chosen.len());
        for chunk in chosen.chunks(16) {
            let reads = chunk.iter().map(|version| {
                self.fetch_version(
                    spec.object_type,
                    &spec.name,
                    Some(version),
                    deadline,
                    on_retry,
                )
            });
            fetched.extend(futures_util::future::try_join_all(reads).await?);
        }
        Ok(fetched)
    }
}

/// What one GET of this key costs against the vault's limits, in secret-GET units (4,000 ÷
/// the key type's published limit per 10 s): software RSA-2048/EC 1, RSA-3072 4, RSA-4096 8;
/// HSM RSA-2048/EC 2, RSA-3072 8, RSA-4096 16. Known only from the answer, so the difference
/// to the one unit charged on sending is booked afterwards.
pub fn key_units(jwk: &Jwk) -> f64 {
    let kty = jwk.kty.as_deref().unwrap_or_default();
    let hsm = kty.ends_with("-HSM");
    // Base64url of the modulus: 4 characters per 3 bytes.
    let bits = jwk
        .n
        .as_deref()
        .map_or(0, |n| n.trim_end_matches('=').len() * 6);
    let rsa = if bits > 3200 {
        8.0
    } else if bits > 2200 {
        4.0
    } else {
        1.0
    };
    let base = if kty.starts_with("RSA") { rsa } else { 1.0 };
    if hsm { base * 2.0 } else { base }
}

impl KvError {
    /// A short, bounded code for metrics labels (never error text).
    pub fn code(&self) -> &'static str {
        match self {
            KvError::Auth(AuthError::Rejected { .. } | AuthError::Setup { .. }) => "auth_rejected",
            KvError::Auth(AuthError::Throttled { .. }) => "auth_throttled",
            KvError::Auth(AuthError::NotSent { .. }) => "auth_not_sent",
            KvError::Auth(AuthError::Unavailable { .. }) => "auth_unavailable",
            KvError::Denied { .. } => "denied",
            KvError::NotFound => "not_found",
            KvError::Disabled { .. } | KvError::NoEnabledVersion => "disabled",
            KvError::Throttled => "throttled",
            KvError::Refused {
                why: Refused::Shed, ..
            } => "shed",
            KvError::Refused { .. } => "budget",
            KvError::Unavailable { .. } => "unavailable",
            KvError::DnsFailure => "dns_failure",
            KvError::TooLarge => "too_large",
            KvError::Malformed { .. } => "malformed",
            KvError::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

//! The credential of one identity: a token per scope, shared by concurrent callers, kept until
//! near its expiry and never past the service-account token it came from; failures are
//! classified ([`super::failure`]) and briefly remembered; a throttling answer's `Retry-After`
//! is honoured by every caller of the identity, without another request.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::time::OffsetDateTime;

use super::AuthError;
use super::failure::{ErrorContext, classify};
use crate::telemetry::metrics::{Metrics, ModeLabels};

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

impl IdentityCredential {
    /// Wraps `inner`, which must prove exactly the identity `context` describes.
    pub(super) fn new(
        inner: Arc<dyn TokenCredential>,
        context: ErrorContext,
        not_after: Option<OffsetDateTime>,
        metrics: Metrics,
        mode: ModeLabels,
    ) -> Self {
        IdentityCredential {
            inner,
            context,
            last: tokio::sync::Mutex::new(None),
            not_after,
            metrics,
            mode,
        }
    }
}

struct LastAnswer {
    scope: String,
    outcome: Result<AccessToken, AuthError>,
    at: OffsetDateTime,
    /// Until when the token service asked us not to ask again (a 429 with `Retry-After`).
    quiet_until: Option<tokio::time::Instant>,
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
                // The service asked for a pause: honour it for every caller, without asking.
                Err(AuthError::Throttled { message, .. })
                    if answer
                        .quiet_until
                        .is_some_and(|t| tokio::time::Instant::now() < t) =>
                {
                    let left = answer
                        .quiet_until
                        .map(|t| t.saturating_duration_since(tokio::time::Instant::now()));
                    return Err(AuthError::Throttled {
                        message: message.clone(),
                        retry_after: left,
                    });
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
        let quiet_until = match &outcome {
            Err(AuthError::Throttled {
                retry_after: Some(wait),
                ..
            }) => tokio::time::Instant::now().checked_add(*wait),
            _ => None,
        };
        if let (Err(AuthError::NotSent { message }), Some(previous)) = (&outcome, last.as_ref())
            && let Err(AuthError::Throttled {
                message: throttled, ..
            }) = &previous.outcome
        {
            // Held back by this node's budget after the service throttled: say both, and
            // keep the service's answer as the last one.
            return Err(AuthError::NotSent {
                message: format!("{throttled}; {message}"),
            });
        }
        *last = Some(LastAnswer {
            scope: scope.to_owned(),
            outcome: outcome.clone(),
            at: now,
            quiet_until,
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

//! Reads shared across Mounts: identical in-flight reads (same identity, vault, object,
//! version) are coalesced into one request, and, when `--object-cache-ttl` is set, recent
//! results are served from memory. Both are keyed by the identity hash, so one pod's
//! permissions never serve another's request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;

use crate::auth::IdentityKey;
use crate::cache::BoundedCache;
use crate::http::budget;
use crate::keyvault::retry::Verdict;
use crate::keyvault::{Fetched, KvError, VaultReader};
use crate::spc::plan::ObjectSpec;
use crate::spc::plan::ObjectType;
use crate::telemetry::metrics::{KeyVaultLabels, Metrics, VaultLabels};
use tracing::debug;

/// Which read: identity, vault, object and the versions asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReadKey {
    pub identity: IdentityKey,
    pub vault_url: String,
    pub object_type: ObjectType,
    pub name: String,
    pub version: Option<String>,
    pub history: u32,
}

/// The outcome of one read, shareable between the Mounts that wait for it.
pub type ReadResult = Result<Arc<Vec<Fetched>>, KvError>;

type InFlight = Shared<BoxFuture<'static, ReadResult>>;

/// The content cache and how long it keeps an entry.
type ContentCache = (BoundedCache<ReadKey, Arc<Vec<Fetched>>>, Duration);

/// Coalescing and the optional content cache.
pub struct SharedReads {
    in_flight: Mutex<HashMap<ReadKey, InFlight>>,
    cache: Option<ContentCache>,
}

/// Most object contents kept when the content cache is on.
const MAX_CACHED_OBJECTS: usize = 4096;

impl SharedReads {
    /// `ttl` zero turns the content cache off.
    pub fn new(ttl: Duration) -> Self {
        SharedReads {
            in_flight: Mutex::new(HashMap::new()),
            cache: (!ttl.is_zero()).then(|| (BoundedCache::new(MAX_CACHED_OBJECTS), ttl)),
        }
    }

    /// The result for `key`: from the cache, from an identical read already in flight, or
    /// from `read`, started here on its own task (so it completes, and leaves the in-flight
    /// table, even if every Mount waiting for it is cancelled) and shared meanwhile. The flag
    /// says whether the result came from another Mount's read or the cache.
    pub async fn read(
        self: &Arc<Self>,
        key: ReadKey,
        read: impl FnOnce() -> BoxFuture<'static, ReadResult>,
    ) -> (ReadResult, bool) {
        if let Some((cache, _)) = &self.cache
            && let Some(hit) = cache.get(&key)
        {
            return (Ok(hit), true);
        }
        let (shared, joined) = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(existing) = in_flight.get(&key) {
                (existing.clone(), true)
            } else {
                let this = Arc::clone(self);
                let task_key = key.clone();
                let work = read();
                // Spawned while the table is locked: the task's own removal waits for the insert.
                let handle = tokio::spawn(async move {
                    let result = work.await;
                    this.in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&task_key);
                    if let (Some((cache, ttl)), Ok(value)) = (&this.cache, &result) {
                        cache.insert(task_key, value.clone(), Instant::now() + *ttl);
                    }
                    result
                });
                let shared = handle
                    .map(|joined| {
                        joined.unwrap_or_else(|e| {
                            Err(KvError::Unavailable {
                                detail: format!("internal error: the read task failed: {e}"),
                            })
                        })
                    })
                    .boxed()
                    .shared();
                in_flight.insert(key, shared.clone());
                (shared, false)
            }
        };
        (shared.await, joined)
    }
}

/// Whether a read ended for lack of time rather than for good (throttling, an outage, the
/// deadline), so a Mount with a later deadline may try again.
pub(super) fn retryable(result: &ReadResult) -> bool {
    use crate::auth::AuthError;
    matches!(
        result,
        Err(KvError::DeadlineExceeded
            | KvError::Throttled
            | KvError::Refused { .. }
            | KvError::Unavailable { .. }
            | KvError::Auth(
                AuthError::Throttled { .. }
                    | AuthError::Unavailable { .. }
                    | AuthError::NotSent { .. }
            ))
    )
}

/// One Key Vault read (all versions of one object), with its metrics.
pub(super) fn read_object(
    reader: Arc<VaultReader>,
    spec: ObjectSpec,
    deadline: Instant,
    metrics: Metrics,
    vault: String,
) -> futures_util::future::BoxFuture<'static, ReadResult> {
    // The Mount's deadline and class go with the read onto its own task.
    let context = budget::current();
    let read = async move {
        let on_retry = |verdict: Verdict| {
            let reason = if matches!(verdict, Verdict::Throttled) {
                "throttled"
            } else {
                "unavailable"
            };
            debug!(?verdict, %vault, "retrying Key Vault request");
            metrics
                .retries
                .get_or_create(&VaultLabels {
                    vault: vault.clone(),
                    reason: reason.to_owned(),
                })
                .inc();
        };
        let started = Instant::now();
        let result = reader.fetch(&spec, deadline, &on_retry).await.map(Arc::new);
        metrics.objects_read.inc();
        let error = result.as_ref().err().map(KvError::code).unwrap_or_default();
        metrics
            .keyvault_request
            .get_or_create(&KeyVaultLabels {
                object_type: spec.object_type.as_str().to_owned(),
                object_name: spec.name.clone(),
                error: error.to_owned(),
            })
            .observe(started.elapsed().as_secs_f64());
        result
    };
    Box::pin(async move {
        match context {
            Some(context) => budget::CONTEXT.scope(context, read).await,
            None => read.await,
        }
    })
}

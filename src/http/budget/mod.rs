//! The per-host budget every Entra and Key Vault request on the node goes through (replacing
//! the old sliding one-second window): a token bucket that lets bursts out at network speed
//! while the host is quiet, one shared throttled state per host once it answers 429 (pause,
//! adaptive rate, retry budget; see [`state`]), a cap on requests in flight, and admission that
//! knows the Mount's deadline and class (carried in [`CONTEXT`]).
//!
//! A request whose wait would pass its Mount's deadline is not queued: it fails at once with a
//! [`Refusal`] naming the host and the expected wait, so the Mount can say so
//! (`RESOURCE_EXHAUSTED`) while kubelet still listens. A rotation re-mount is refused the same
//! way while its host is paused or throttled (the driver keeps the old files and retries at the
//! next republish), so first mounts get the capacity.

pub mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use azure_core::error::ErrorKind;
use azure_core::http::{AsyncRawResponse, HttpClient, Request, StatusCode};
use tokio::sync::Semaphore;
use tokio::time::Instant;

pub use state::{Grant, Phase, Shape, WINDOW};

use crate::telemetry::metrics::{BudgetMetrics, HostLabels, ShedLabels, UnitLabels};

/// Which kind of Mount a request serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The pod waits for these files.
    FirstMount,
    /// A rotation republish: the files exist already.
    Remount,
}

impl Class {
    fn as_str(self) -> &'static str {
        match self {
            Class::FirstMount => "first_mount",
            Class::Remount => "remount",
        }
    }
}

/// What the Mount a request belongs to allows.
#[derive(Debug, Clone, Copy)]
pub struct MountContext {
    /// The Mount's effective deadline.
    pub deadline: Instant,
    pub class: Class,
}

tokio::task_local! {
    /// Set around a Mount's work (and each read task it spawns); requests outside any Mount
    /// wait without a deadline and count as first mounts.
    pub static CONTEXT: MountContext;
}

/// The current Mount's context, if any.
pub fn current() -> Option<MountContext> {
    CONTEXT.try_with(|c| *c).ok()
}

/// Why a request was not sent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    /// The budget wait would pass the Mount's deadline.
    #[error("{host} is throttled or its budget is spent: about {}s of queue, more than the mount deadline leaves", wait.as_secs_f64().ceil())]
    TooLate { host: String, wait: Duration },
    /// A re-mount while the host throttles.
    #[error("{host} is throttling; rotation re-mount shed (the current files stay)")]
    Shed { host: String },
    /// The retry budget is spent.
    #[error("{host} keeps throttling; retry budget spent")]
    RetryBudget { host: String },
}

impl Refusal {
    /// The wait, when known.
    pub fn wait(&self) -> Option<Duration> {
        match self {
            Refusal::TooLate { wait, .. } => Some(*wait),
            _ => None,
        }
    }
}

/// The [`Refusal`] behind `err`, if it is one.
pub fn refusal(err: &azure_core::Error) -> Option<&Refusal> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<Refusal>() {
            return Some(r);
        }
        source = e.source();
    }
    None
}

fn refused(r: Refusal) -> azure_core::Error {
    azure_core::Error::with_error(ErrorKind::Other, r, "request not sent: upstream budget")
}

/// Budget flags.
#[derive(Debug, Clone, Copy)]
pub struct BudgetSettings {
    pub shape: Shape,
    /// `--upstream-vault-share`: units per 10 s this node may take from one host.
    pub share: Option<u32>,
    /// Requests in flight at once per host.
    pub max_in_flight: u32,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings {
            shape: Shape {
                burst: 1000.0,
                refill: 100.0,
                jitter: true,
            },
            share: None,
            max_in_flight: 64,
        }
    }
}

/// One host's budget and in-flight cap.
#[derive(Debug)]
pub struct HostBudget {
    host: String,
    state: Mutex<state::State>,
    in_flight: Arc<Semaphore>,
    metrics: BudgetMetrics,
}

impl HostBudget {
    fn lock(&self) -> std::sync::MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The host this budget is for.
    pub fn host(&self) -> &str {
        &self.host
    }

    fn labels(&self) -> HostLabels {
        HostLabels {
            vault: self.host.clone(),
        }
    }

    fn count(&self, outcome: &str, units: f64) {
        self.metrics
            .units
            .get_or_create(&UnitLabels {
                vault: self.host.clone(),
                outcome: outcome.to_owned(),
            })
            .inc_by(units.max(0.0).round() as u64);
    }

    fn publish(&self, state: &state::State, now: Instant) {
        let labels = self.labels();
        self.metrics
            .state
            .get_or_create(&labels)
            .set(state.phase(now).code());
        self.metrics
            .rate
            .get_or_create(&labels)
            .set(state.rate(now));
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        self.lock().phase(Instant::now())
    }

    /// Units per second allowed now.
    pub fn rate(&self) -> f64 {
        self.lock().rate(Instant::now())
    }

    /// Takes one retry from the retry budget (`false`: spent, fail instead).
    pub fn try_retry(&self) -> bool {
        let ok = self.lock().try_retry(Instant::now());
        if !ok {
            self.shed(Class::FirstMount, "retry_budget");
        }
        ok
    }

    /// Books `units` more for a request already sent (an HSM or large RSA key).
    pub fn charge(&self, units: f64) {
        if units > 0.0 {
            self.lock().charge(units, Instant::now());
            self.count("accepted", units);
        }
    }

    fn shed(&self, class: Class, reason: &str) {
        self.metrics
            .shed
            .get_or_create(&ShedLabels {
                class: class.as_str().to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Waits until one request of `units` may go, within the current Mount's deadline.
    pub async fn admit(&self, units: f64) -> Result<(), Refusal> {
        let ctx = current();
        let deadline = ctx.map(|c| c.deadline);
        let class = ctx.map_or(Class::FirstMount, |c| c.class);
        let queued = Instant::now();
        loop {
            let now = Instant::now();
            let grant = {
                let mut state = self.lock();
                if class == Class::Remount && state.phase(now) != Phase::Open {
                    drop(state);
                    self.shed(class, "throttled");
                    self.count("shed", units);
                    return Err(Refusal::Shed {
                        host: self.host.clone(),
                    });
                }
                state.reserve(units, now, deadline)
            };
            match grant {
                Grant::TooLate { wait } => {
                    self.shed(class, "deadline");
                    self.count("refused", units);
                    return Err(Refusal::TooLate {
                        host: self.host.clone(),
                        wait,
                    });
                }
                Grant::After { wait, epoch } => {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    let mut state = self.lock();
                    if state.current(epoch) {
                        state.sent(Instant::now());
                        drop(state);
                        self.metrics
                            .queue_wait
                            .observe(queued.elapsed().as_secs_f64());
                        return Ok(());
                    }
                    // A 429 came while we waited: queue again behind the new pause.
                }
            }
        }
    }

    /// Books the answer to a request of `units`.
    pub fn answered(&self, units: f64, throttled: Option<Option<Duration>>) {
        let now = Instant::now();
        let mut state = self.lock();
        match throttled {
            Some(retry_after) => {
                let pause = state.throttled(retry_after, fastrand::f64(), now);
                tracing::debug!(host = %self.host, pause_ms = pause.as_millis() as u64, rate = state.rate(now + pause), "upstream throttled (429): host paused");
                self.publish(&state, now);
                drop(state);
                self.count("throttled", units);
            }
            None => {
                state.accepted(units, now);
                self.publish(&state, now);
                drop(state);
                self.count("accepted", units);
            }
        }
    }
}

/// Every host's budget on this node.
#[derive(Debug)]
pub struct Budgets {
    settings: BudgetSettings,
    hosts: Mutex<HashMap<String, Arc<HostBudget>>>,
    metrics: BudgetMetrics,
}

impl Budgets {
    /// Budgets shaped by `settings`, reporting to `metrics`.
    pub fn new(settings: BudgetSettings, metrics: BudgetMetrics) -> Self {
        Budgets {
            settings,
            hosts: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// The budget of `host` (created on first use, full).
    pub fn host(&self, host: &str) -> Arc<HostBudget> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(host.to_ascii_lowercase())
            .or_insert_with(|| {
                let shape = self.settings.shape.within_share(self.settings.share);
                Arc::new(HostBudget {
                    host: host.to_ascii_lowercase(),
                    state: Mutex::new(state::State::new(shape, Instant::now())),
                    in_flight: Arc::new(
                        Semaphore::new(self.settings.max_in_flight.max(1) as usize),
                    ),
                    metrics: self.metrics.clone(),
                })
            })
            .clone()
    }
}

/// An [`HttpClient`] that sends every request through its host's [`HostBudget`].
#[derive(Debug)]
pub struct BudgetClient {
    inner: Arc<dyn HttpClient>,
    budgets: Arc<Budgets>,
}

impl BudgetClient {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn HttpClient>, budgets: Arc<Budgets>) -> Self {
        BudgetClient { inner, budgets }
    }
}

/// Whether an answer is a 429, and the wait it asked for.
fn throttle_signal(result: &azure_core::Result<AsyncRawResponse>) -> Option<Option<Duration>> {
    match result {
        Ok(response) if response.status() == StatusCode::TooManyRequests => Some(
            super::retry_after::retry_after(response.headers(), SystemTime::now()),
        ),
        Err(err) => match err.kind() {
            ErrorKind::HttpResponse { status, .. } if *status == StatusCode::TooManyRequests => {
                let asked = super::token_failure(err)
                    .and_then(|f| f.retry_after)
                    .or_else(|| match err.kind() {
                        ErrorKind::HttpResponse {
                            raw_response: Some(raw),
                            ..
                        } => super::retry_after::retry_after(raw.headers(), SystemTime::now()),
                        _ => None,
                    });
                Some(asked)
            }
            _ => None,
        },
        _ => None,
    }
}

#[async_trait]
impl HttpClient for BudgetClient {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let budget = self
            .budgets
            .host(request.url().host_str().unwrap_or_default());
        budget.admit(1.0).await.map_err(refused)?;
        let _permit = budget.in_flight.clone().acquire_owned().await;
        let result = self.inner.execute_request(request).await;
        let transport_failed =
            matches!(&result, Err(e) if !matches!(e.kind(), ErrorKind::HttpResponse { .. }));
        if !transport_failed {
            budget.answered(1.0, throttle_signal(&result));
        }
        result
    }
}

#[cfg(test)]
mod tests;

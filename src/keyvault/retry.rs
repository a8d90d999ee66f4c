//! Retrying Key Vault and Entra calls inside the Mount's deadline. A classifier sorts each
//! failure into a [`Classified`]: a verdict, the wait the server asked for (`Retry-After`), and
//! the error to report if retrying ends; this scheduler does the waiting. With the vault host's
//! [`HostBudget`] (production), a 429 is retried at once into that shared budget, which holds
//! it behind the host's pause and adaptive rate (no private timer per request), and every retry
//! draws from the host's retry budget. 5xx and transport errors back off exponentially with
//! full jitter (at least what the server asked for); everything else fails fast.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::KvError;
use crate::http::budget::HostBudget;

/// Shortest and longest pause between attempts (before jitter).
const BASE_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(8);

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Do not retry.
    Fatal,
    /// Retry after a backoff (5xx, resets, timeouts).
    Backoff,
    /// The server throttled (429).
    Throttled,
}

/// A classified failure: what to do, how long the server asked us to wait, what to report.
#[derive(Debug, Clone)]
pub struct Classified<E> {
    pub verdict: Verdict,
    /// `Retry-After` (or Azure's millisecond headers), when the answer carried one.
    pub retry_after: Option<Duration>,
    pub error: E,
}

impl<E> Classified<E> {
    /// A failure that must not be retried.
    pub fn fatal(error: E) -> Self {
        Classified {
            verdict: Verdict::Fatal,
            retry_after: None,
            error,
        }
    }

    /// A failure to retry with `verdict`.
    pub fn retry(verdict: Verdict, retry_after: Option<Duration>, error: E) -> Self {
        Classified {
            verdict,
            retry_after,
            error,
        }
    }
}

/// Retry policy knobs (jitter can be turned off for deterministic tests).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { jitter: true }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` (attempt counts from 0).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = BASE_DELAY
            .saturating_mul(1u32 << attempt.min(16))
            .min(MAX_DELAY);
        if self.jitter {
            ceiling.mul_f64(fastrand::f64().max(0.1))
        } else {
            ceiling
        }
    }

    /// Runs `op` until it succeeds, fails fatally, or the next attempt could not finish before
    /// `deadline`. Each attempt is itself cut off at the deadline. `on_retry` sees every retried
    /// verdict (for metrics and logs).
    pub async fn run<T, F, Fut>(
        &self,
        deadline: Instant,
        mut op: F,
        classify: impl Fn(&azure_core::Error) -> Classified<KvError>,
        mut on_retry: impl FnMut(Verdict),
        gate: Option<&HostBudget>,
    ) -> Result<T, KvError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = azure_core::Result<T>>,
    {
        let mut attempt = 0u32;
        let mut last: Option<KvError> = None;
        loop {
            let error = match tokio::time::timeout_at(deadline, op()).await {
                Err(_) => return Err(KvError::DeadlineExceeded),
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e,
            };
            let mut failure = classify(&error);
            let not_sent = match &failure.error {
                KvError::Refused {
                    why: super::Refused::Deadline,
                    wait,
                } => Some(*wait),
                KvError::Auth(crate::auth::AuthError::NotSent { .. }) => Some(None),
                _ => None,
            };
            if let (Some(wait), Some(previous)) = (not_sent, last.take()) {
                // The retry could not go out in time: report why we were retrying.
                return Err(match previous {
                    KvError::Throttled => KvError::Refused {
                        why: super::Refused::Throttled,
                        wait,
                    },
                    other => other,
                });
            }
            let asked = failure.retry_after.unwrap_or_default();
            let pause = match (failure.verdict, gate) {
                (Verdict::Fatal, _) => return Err(failure.error),
                // The host's shared state holds the next attempt (pause, adaptive rate): no
                // private timer beyond what the server itself asked for.
                (Verdict::Throttled, Some(_)) if !matches!(failure.error, KvError::Auth(_)) => {
                    asked
                }
                (Verdict::Backoff | Verdict::Throttled, _) => asked.max(self.backoff(attempt)),
            };
            if Instant::now() + pause >= deadline {
                // Out of time: report why we were still retrying.
                return Err(failure.error);
            }
            if let Some(gate) = gate
                && !gate.try_retry()
            {
                return Err(match failure.verdict {
                    Verdict::Throttled => KvError::Refused {
                        why: super::Refused::RetryBudget,
                        wait: None,
                    },
                    _ => failure.error,
                });
            }
            on_retry(failure.verdict);
            last = Some(std::mem::replace(&mut failure.error, KvError::NotFound));
            tokio::time::sleep(pause).await;
            attempt = attempt.saturating_add(1);
        }
    }
}

/// The wait an HTTP error's response asked for (see [`crate::http::retry_after`]).
pub fn retry_after(err: &azure_core::Error) -> Option<Duration> {
    let azure_core::error::ErrorKind::HttpResponse {
        raw_response: Some(raw),
        ..
    } = err.kind()
    else {
        return None;
    };
    crate::http::retry_after::retry_after(raw.headers(), std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use azure_core::error::ErrorKind;

    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy { jitter: false };
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        assert_eq!(p.backoff(3), Duration::from_millis(800));
        assert_eq!(p.backoff(30), MAX_DELAY);
        let j = RetryPolicy { jitter: true };
        for attempt in 0..10 {
            assert!(j.backoff(attempt) <= p.backoff(attempt));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_within_the_deadline() {
        let p = RetryPolicy { jitter: false };
        let mut calls = 0;
        let started = Instant::now();
        let result: Result<u32, KvError> = p
            .run(
                started + Duration::from_secs(10),
                || {
                    calls += 1;
                    let n = calls;
                    async move {
                        if n < 4 {
                            Err(azure_core::Error::with_message(ErrorKind::Io, "reset"))
                        } else {
                            Ok(n)
                        }
                    }
                },
                |_| {
                    Classified::retry(
                        Verdict::Backoff,
                        None,
                        KvError::Unavailable {
                            detail: "reset".into(),
                        },
                    )
                },
                |_| {},
                None,
            )
            .await;
        assert_eq!(result.unwrap(), 4);
        // 100 + 200 + 400 ms of backoff.
        assert_eq!(started.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_when_the_next_pause_would_pass_the_deadline() {
        let p = RetryPolicy { jitter: false };
        let mut calls = 0;
        let result: Result<(), KvError> = p
            .run(
                Instant::now() + Duration::from_secs(3),
                || {
                    calls += 1;
                    async { Err(azure_core::Error::with_message(ErrorKind::Io, "429")) }
                },
                |_| {
                    Classified::retry(
                        Verdict::Throttled,
                        Some(Duration::from_secs(2)),
                        KvError::Throttled,
                    )
                },
                |_| {},
                None,
            )
            .await;
        assert!(matches!(result, Err(KvError::Throttled)));
        assert_eq!(calls, 2);
    }
}

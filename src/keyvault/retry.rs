//! Retrying Key Vault and Entra calls inside the Mount's deadline: 429 honours `Retry-After`,
//! 5xx and transport errors back off exponentially with full jitter, everything else fails fast.

use std::future::Future;
use std::time::Duration;

use azure_core::error::ErrorKind;
use tokio::time::Instant;

use super::KvError;

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
    /// Retry after at least this long (429 with `Retry-After`, or a plain 429 = `None`).
    Throttled(Option<Duration>),
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
        classify: impl Fn(&azure_core::Error) -> (Verdict, KvError),
        mut on_retry: impl FnMut(Verdict),
    ) -> Result<T, KvError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = azure_core::Result<T>>,
    {
        let mut attempt = 0u32;
        loop {
            let error = match tokio::time::timeout_at(deadline, op()).await {
                Err(_) => return Err(KvError::DeadlineExceeded),
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e,
            };
            let (verdict, failure) = classify(&error);
            let pause = match verdict {
                Verdict::Fatal => return Err(failure),
                Verdict::Backoff => self.backoff(attempt),
                Verdict::Throttled(after) => after.unwrap_or_default().max(self.backoff(attempt)),
            };
            if Instant::now() + pause >= deadline {
                // Out of time: report why we were still retrying.
                return Err(failure);
            }
            on_retry(verdict);
            tokio::time::sleep(pause).await;
            attempt = attempt.saturating_add(1);
        }
    }
}

/// `Retry-After` (seconds or HTTP date is not used by Key Vault; seconds only) or
/// `retry-after-ms` / `x-ms-retry-after-ms` from an HTTP error.
pub fn retry_after(err: &azure_core::Error) -> Option<Duration> {
    let ErrorKind::HttpResponse {
        raw_response: Some(raw),
        ..
    } = err.kind()
    else {
        return None;
    };
    let headers = raw.headers();
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = headers
            .get_optional_str(&azure_core::http::headers::HeaderName::from_static(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms));
        }
    }
    headers
        .get_optional_str(&azure_core::http::headers::RETRY_AFTER)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

#[cfg(test)]
mod tests {
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
                    (
                        Verdict::Backoff,
                        KvError::Unavailable {
                            detail: "reset".into(),
                        },
                    )
                },
                |_| {},
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
                    (
                        Verdict::Throttled(Some(Duration::from_secs(2))),
                        KvError::Throttled,
                    )
                },
                |_| {},
            )
            .await;
        assert!(matches!(result, Err(KvError::Throttled)));
        assert_eq!(calls, 2);
    }
}

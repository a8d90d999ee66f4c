//! Per-host limits across all Mounts on the node: a sliding-window cap on request rate and a cap on
//! requests in flight, so a node full of pods never hammers one vault (Key Vault allows about
//! 4,000 GETs per 10 s per vault, for the whole cluster) or Entra ID.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::http::{AsyncRawResponse, HttpClient, Request};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Rate and concurrency limits per upstream host.
#[derive(Debug, Clone, Copy)]
pub struct HostLimits {
    /// Most requests in any one-second window; `0` = unlimited.
    pub requests_per_second: u32,
    /// Requests in flight at once.
    pub max_in_flight: u32,
}

/// The send times of the last `requests_per_second` requests (a sliding one-second window).
#[derive(Debug, Default)]
struct Window {
    sent: VecDeque<Instant>,
}

#[derive(Debug)]
struct Host {
    window: Mutex<Window>,
    in_flight: Arc<Semaphore>,
}

/// An [`HttpClient`] that applies [`HostLimits`] to every request, per host.
#[derive(Debug)]
pub struct LimitedClient {
    inner: Arc<dyn HttpClient>,
    limits: HostLimits,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

const WINDOW: Duration = Duration::from_secs(1);

impl LimitedClient {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn HttpClient>, limits: HostLimits) -> Self {
        LimitedClient {
            inner,
            limits,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn host(&self, name: &str) -> Arc<Host> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Host {
                    window: Mutex::new(Window::default()),
                    in_flight: Arc::new(Semaphore::new(self.limits.max_in_flight.max(1) as usize)),
                })
            })
            .clone()
    }

    /// Waits until sending one more request keeps `host` within its rate: no more than
    /// `requests_per_second` requests in any one-second window.
    async fn take_slot(&self, host: &Host) {
        let rate = self.limits.requests_per_second as usize;
        if rate == 0 {
            return;
        }
        loop {
            let wait = {
                let mut window = host.window.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                while window
                    .sent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW)
                {
                    window.sent.pop_front();
                }
                if window.sent.len() < rate {
                    window.sent.push_back(now);
                    return;
                }
                match window.sent.front() {
                    Some(oldest) => (*oldest + WINDOW).saturating_duration_since(now),
                    None => Duration::ZERO,
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[async_trait]
impl HttpClient for LimitedClient {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let host = self.host(request.url().host_str().unwrap_or_default());
        let _permit = host.in_flight.clone().acquire_owned().await;
        self.take_slot(&host).await;
        self.inner.execute_request(request).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use azure_core::http::{Method, StatusCode, Url};

    use super::*;

    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    #[async_trait]
    impl HttpClient for Counting {
        async fn execute_request(
            &self,
            _request: &Request,
        ) -> azure_core::Result<AsyncRawResponse> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(AsyncRawResponse::from_bytes(
                StatusCode::Ok,
                Default::default(),
                Vec::new(),
            ))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rate_is_bounded_per_host() {
        let counting = Arc::new(Counting::default());
        let client = Arc::new(LimitedClient::new(
            counting.clone(),
            HostLimits {
                requests_per_second: 10,
                max_in_flight: 100,
            },
        ));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let client = client.clone();
            let host = if i % 2 == 0 {
                "a.vault.azure.net"
            } else {
                "b.vault.azure.net"
            };
            tasks.push(tokio::spawn(async move {
                let request = Request::new(
                    Url::parse(&format!("https://{host}/secrets/x")).unwrap(),
                    Method::Get,
                );
                client.execute_request(&request).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 20 per host at 10 per second: 10 at once, 10 more one second later.
        let elapsed = started.elapsed();
        assert_eq!(elapsed, Duration::from_secs(1));
        assert_eq!(counting.0.load(Ordering::Relaxed), 40);
    }
}

use std::sync::atomic::{AtomicUsize, Ordering};

use azure_core::http::headers::Headers;
use azure_core::http::{Method, Url};

use super::*;

/// Answers 200, or 429 (with `Retry-After: 2`) while `throttle` is set; counts requests.
#[derive(Debug, Default)]
struct Fake {
    sent: AtomicUsize,
    throttle: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl HttpClient for Fake {
    async fn execute_request(&self, _request: &Request) -> azure_core::Result<AsyncRawResponse> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let mut headers = Headers::new();
        let status = if self.throttle.load(Ordering::Relaxed) {
            headers.insert("retry-after", "2");
            StatusCode::TooManyRequests
        } else {
            StatusCode::Ok
        };
        Ok(AsyncRawResponse::from_bytes(status, headers, Vec::new()))
    }
}

fn settings(burst: f64, refill: f64) -> BudgetSettings {
    BudgetSettings {
        shape: Shape {
            burst,
            refill,
            jitter: false,
        },
        share: None,
        max_in_flight: 1000,
    }
}

fn get(host: &str) -> Request {
    Request::new(
        Url::parse(&format!("https://{host}/secrets/x")).unwrap(),
        Method::Get,
    )
}

#[tokio::test(start_paused = true)]
async fn bursts_go_at_once_then_the_refill_paces() {
    let fake = Arc::new(Fake::default());
    let budgets = Arc::new(Budgets::new(
        settings(10.0, 10.0),
        BudgetMetrics::unregistered(),
    ));
    let client = Arc::new(BudgetClient::new(fake.clone(), budgets));
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
            client.execute_request(&get(host)).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 20 per host: 10 at once from the bucket, 10 more at 10/s.
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(fake.sent.load(Ordering::Relaxed), 40);
}

#[tokio::test(start_paused = true)]
async fn a_429_pauses_every_request_to_the_host_and_re_mounts_are_shed() {
    let fake = Arc::new(Fake::default());
    let budgets = Arc::new(Budgets::new(
        settings(100.0, 10.0),
        BudgetMetrics::unregistered(),
    ));
    let client = BudgetClient::new(fake.clone(), budgets.clone());
    fake.throttle.store(true, Ordering::Relaxed);
    let answer = client
        .execute_request(&get("v.vault.azure.net"))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::TooManyRequests);
    fake.throttle.store(false, Ordering::Relaxed);
    let host = budgets.host("v.vault.azure.net");
    assert_eq!(host.phase(), Phase::Paused);
    // The next request waits out the Retry-After, however many there are.
    let started = Instant::now();
    client
        .execute_request(&get("v.vault.azure.net"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(host.phase(), Phase::Throttled);
    // A re-mount is refused while the host throttles; a first mount within its deadline waits.
    let remount = MountContext {
        deadline: Instant::now() + Duration::from_secs(60),
        class: Class::Remount,
    };
    let err = CONTEXT
        .scope(remount, client.execute_request(&get("v.vault.azure.net")))
        .await
        .unwrap_err();
    assert!(matches!(refusal(&err), Some(Refusal::Shed { .. })), "{err}");
    // A first mount whose deadline is too near for the queue fails at once, naming the wait.
    let hurried = MountContext {
        deadline: Instant::now() + Duration::from_millis(10),
        class: Class::FirstMount,
    };
    let sent = fake.sent.load(Ordering::Relaxed);
    let mut refused = 0;
    for _ in 0..20 {
        let r = CONTEXT
            .scope(hurried, client.execute_request(&get("v.vault.azure.net")))
            .await;
        if let Err(e) = r {
            assert!(matches!(refusal(&e), Some(Refusal::TooLate { .. })), "{e}");
            assert!(
                e.to_string().contains("budget")
                    || refusal(&e)
                        .unwrap()
                        .to_string()
                        .contains("v.vault.azure.net")
            );
            refused += 1;
        }
    }
    assert!(refused > 0);
    assert!(fake.sent.load(Ordering::Relaxed) - sent < 20);
}

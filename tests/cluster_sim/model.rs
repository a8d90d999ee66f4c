//! A whole cluster on tokio's paused clock, with the production budget
//! (`akv_csi_provider::http::budget`) and retry code (`keyvault::retry`, `keyvault::classify`):
//! N nodes, each its own `Budgets`, share one fake vault that enforces Key Vault's window; a
//! kubelet/driver model mounts pods (first mounts, rotation re-mounts every 2–3 min, kubelet's
//! backoff on failure, the Mount deadline). Shared by `tests/cluster_sim.rs` (invariants) and
//! `examples/cluster_sweep.rs` (tables). See `../shared/research/throttling.md` §6.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use akv_csi_provider::http::budget::{
    BudgetClient, BudgetSettings, Budgets, CONTEXT, Class, MountContext, Shape,
};
use akv_csi_provider::keyvault::classify;
use akv_csi_provider::keyvault::retry::RetryPolicy;
use akv_csi_provider::telemetry::metrics::BudgetMetrics;
use async_trait::async_trait;
use azure_core::error::ErrorKind;
use azure_core::http::headers::Headers;
use azure_core::http::{AsyncRawResponse, HttpClient, Method, Request, StatusCode, Url};
use tokio::time::Instant;

pub const LIMIT: usize = 4000;
pub const WINDOW: Duration = Duration::from_secs(10);
const HOST: &str = "kv.vault.azure.net";

/// How the fake vault counts.
#[derive(Debug, Clone, Copy)]
pub struct VaultRules {
    pub sliding: bool,
    pub count_429s: bool,
    pub retry_after: Option<Duration>,
    pub rtt: Duration,
}

impl Default for VaultRules {
    fn default() -> Self {
        VaultRules {
            sliding: true,
            count_429s: false,
            retry_after: None,
            rtt: Duration::from_millis(30),
        }
    }
}

#[derive(Debug, Default)]
struct Counter {
    /// Sliding: admission times in the last window. Fixed: count in the current window.
    recent: VecDeque<Instant>,
    fixed_start: Option<Instant>,
    fixed_count: usize,
}

/// Key Vault's 4,000 per 10 s, per vault, for everybody.
#[derive(Debug)]
pub struct FakeVault {
    rules: VaultRules,
    counter: Mutex<Counter>,
    pub accepted: AtomicU64,
    pub throttled: AtomicU64,
    origin: Instant,
}

impl FakeVault {
    pub fn new(rules: VaultRules) -> Arc<Self> {
        Arc::new(FakeVault {
            rules,
            counter: Mutex::new(Counter::default()),
            accepted: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            origin: Instant::now(),
        })
    }

    /// Admits one request now, or not.
    pub fn admit(&self) -> bool {
        let now = Instant::now();
        let mut c = self.counter.lock().unwrap();
        let ok = if self.rules.sliding {
            while c
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= WINDOW)
            {
                c.recent.pop_front();
            }
            let ok = c.recent.len() < LIMIT;
            if ok || self.rules.count_429s {
                c.recent.push_back(now);
            }
            ok
        } else {
            let n = now.duration_since(self.origin).as_secs() / WINDOW.as_secs();
            let start = self.origin + WINDOW * n as u32;
            if c.fixed_start != Some(start) {
                c.fixed_start = Some(start);
                c.fixed_count = 0;
            }
            let ok = c.fixed_count < LIMIT;
            if ok || self.rules.count_429s {
                c.fixed_count += 1;
            }
            ok
        };
        if ok {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        } else {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }
}

/// One node's view of the vault: records when this node sent.
#[derive(Debug)]
pub struct NodeLink {
    vault: Arc<FakeVault>,
    pub sent: Mutex<Vec<Instant>>,
}

#[async_trait]
impl HttpClient for NodeLink {
    async fn execute_request(&self, _r: &Request) -> azure_core::Result<AsyncRawResponse> {
        self.sent.lock().unwrap().push(Instant::now());
        tokio::time::sleep(self.vault.rules.rtt / 2).await;
        let ok = self.vault.admit();
        tokio::time::sleep(self.vault.rules.rtt / 2).await;
        let mut headers = Headers::new();
        let status = if ok {
            StatusCode::Ok
        } else {
            if let Some(wait) = self.vault.rules.retry_after {
                headers.insert("retry-after", wait.as_secs().to_string());
            }
            StatusCode::TooManyRequests
        };
        Ok(AsyncRawResponse::from_bytes(status, headers, Vec::new()))
    }
}

/// A simulated node: its own budgets, as the provider process has.
pub struct Node {
    pub link: Arc<NodeLink>,
    client: BudgetClient,
    budgets: Arc<Budgets>,
}

impl Node {
    pub fn new(vault: &Arc<FakeVault>, settings: BudgetSettings) -> Arc<Self> {
        let link = Arc::new(NodeLink {
            vault: vault.clone(),
            sent: Mutex::new(Vec::new()),
        });
        let budgets = Arc::new(Budgets::new(settings, BudgetMetrics::unregistered()));
        Arc::new(Node {
            client: BudgetClient::new(link.clone(), budgets.clone()),
            link,
            budgets,
        })
    }

    /// One object read, as `VaultReader` does it: the production retry loop, 429s retried into
    /// the host's shared budget.
    async fn read(&self, deadline: Instant) -> bool {
        let gate = self.budgets.host(HOST);
        let request = Request::new(
            Url::parse(&format!("https://{HOST}/secrets/s")).unwrap(),
            Method::Get,
        );
        let op = || async {
            let answer = self.client.execute_request(&request).await?;
            if answer.status() == StatusCode::Ok {
                Ok(())
            } else {
                Err(azure_core::Error::with_message(
                    ErrorKind::HttpResponse {
                        status: answer.status(),
                        error_code: Some("Throttled".into()),
                        raw_response: None,
                    },
                    "throttled",
                ))
            }
        };
        RetryPolicy::default()
            .run(deadline, op, |e| classify(e, None), |_| {}, Some(&gate))
            .await
            .is_ok()
    }

    /// One Mount of `objects` reads within `timeout`.
    pub async fn mount(self: &Arc<Self>, objects: usize, timeout: Duration, class: Class) -> bool {
        let deadline = Instant::now() + timeout;
        let ctx = MountContext {
            deadline: deadline - Duration::from_secs(1),
            class,
        };
        let reads = (0..objects).map(|_| {
            let node = self.clone();
            CONTEXT.scope(ctx, async move { node.read(deadline).await })
        });
        let results = futures_util::future::join_all(reads).await;
        results.into_iter().all(|ok| ok)
    }

    /// Most requests this node sent in any window of `WINDOW`.
    pub fn max_in_window(&self) -> usize {
        let mut sent = self.link.sent.lock().unwrap().clone();
        sent.sort();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..sent.len() {
            while sent[hi].duration_since(sent[lo]) >= WINDOW {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    pub fn sent(&self) -> usize {
        self.link.sent.lock().unwrap().len()
    }
}

/// The budget flags as the provider defaults them.
pub fn default_settings() -> BudgetSettings {
    // From the flag defaults themselves, so the simulation cannot drift from what ships.
    akv_csi_provider::Config::defaults().budget_settings()
}

/// A cluster scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub nodes: usize,
    pub pods_per_node: usize,
    pub objects: usize,
    /// Pods start spread over this long (0 = all at once).
    pub start_spread: Duration,
    /// Pods already running (re-mounting) before `start_spread` pods start (steady load).
    pub running_per_node: usize,
    pub rules: VaultRules,
    pub timeout: Duration,
    pub run_for: Duration,
    /// Another app on the same vault, requests/s (each one admitted or 429).
    pub other_tenant: f64,
    pub settings: BudgetSettings,
    /// New pods created on node 0 only (a node boot), on top of `pods_per_node`.
    pub boot_pods: usize,
}

/// What a scenario did.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub started: usize,
    pub pods: usize,
    /// Seconds from a new pod's creation to its first successful Mount.
    pub first_mount: Vec<f64>,
    pub failed_mounts: usize,
    pub shed_remounts: usize,
    pub accepted: u64,
    pub throttled: u64,
    pub max_node_window: usize,
    pub other_sent: u64,
    pub other_throttled: u64,
}

impl Outcome {
    /// Requests offered to the vault per request accepted.
    pub fn amplification(&self) -> f64 {
        (self.accepted + self.throttled) as f64 / self.accepted.max(1) as f64
    }

    pub fn percentile(&self, p: f64) -> f64 {
        let mut v = self.first_mount.clone();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    }
}

/// Runs `s` to the end (call on a paused clock).
pub async fn run(s: Scenario) -> Outcome {
    fastrand::seed(1);
    let vault = FakeVault::new(s.rules);
    let nodes: Vec<Arc<Node>> = (0..s.nodes)
        .map(|_| Node::new(&vault, s.settings))
        .collect();
    let origin = Instant::now();
    let end = origin + s.run_for;
    let started = Arc::new(Mutex::new(Vec::<f64>::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let shed = Arc::new(AtomicU64::new(0));
    let other_sent = Arc::new(AtomicU64::new(0));
    let other_throttled = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    if s.other_tenant > 0.0 {
        let vault = vault.clone();
        let (sent, thr) = (other_sent.clone(), other_throttled.clone());
        let gap = Duration::from_secs_f64(1.0 / s.other_tenant);
        tasks.spawn(async move {
            while Instant::now() < end {
                tokio::time::sleep(gap.mul_f64(-fastrand::f64().max(1e-9).ln())).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if !vault.admit() {
                    thr.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    for (n, node) in nodes.iter().enumerate() {
        let boot = if n == 0 { s.boot_pods } else { 0 };
        for p in 0..(s.pods_per_node + s.running_per_node + boot) {
            let node = node.clone();
            let running = p < s.running_per_node;
            let (started, failed, shed) = (started.clone(), failed.clone(), shed.clone());
            let s = s.clone();
            tasks.spawn(async move {
                // Running pods re-mount on a rotation phase spread over the period; new pods
                // are created within the spread.
                let created = if running {
                    origin + Duration::from_secs_f64(fastrand::f64() * 150.0)
                } else {
                    origin + s.start_spread.mul_f64(fastrand::f64())
                };
                tokio::time::sleep_until(created).await;
                let mut mounted = running;
                let mut failures = 0u32;
                while Instant::now() < end {
                    let class = if mounted {
                        Class::Remount
                    } else {
                        Class::FirstMount
                    };
                    let ok = node.mount(s.objects, s.timeout, class).await;
                    let next = if ok {
                        if !mounted {
                            started
                                .lock()
                                .unwrap()
                                .push(created.elapsed().as_secs_f64());
                            mounted = true;
                        }
                        failures = 0;
                        Duration::from_secs_f64(120.0 + 60.0 * fastrand::f64())
                    } else if mounted {
                        // The driver hides a failed re-mount; the next republish retries.
                        shed.fetch_add(1, Ordering::Relaxed);
                        Duration::from_secs_f64(60.0 + 30.0 * fastrand::f64())
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        failures += 1;
                        Duration::from_secs_f64(0.5 * 2f64.powi(failures as i32 - 1))
                            .min(Duration::from_secs(120))
                    };
                    tokio::time::sleep(next).await;
                }
            });
        }
    }
    while tasks.join_next().await.is_some() {}
    let first_mount = started.lock().unwrap().clone();
    Outcome {
        started: first_mount.len(),
        pods: s.nodes * s.pods_per_node + s.boot_pods,
        first_mount,
        failed_mounts: failed.load(Ordering::Relaxed) as usize,
        shed_remounts: shed.load(Ordering::Relaxed) as usize,
        // The nodes' requests only (the other tenant's are counted apart).
        accepted: vault.accepted.load(Ordering::Relaxed)
            - (other_sent.load(Ordering::Relaxed) - other_throttled.load(Ordering::Relaxed)),
        throttled: vault.throttled.load(Ordering::Relaxed)
            - other_throttled.load(Ordering::Relaxed),
        max_node_window: nodes.iter().map(|n| n.max_in_window()).max().unwrap_or(0),
        other_sent: other_sent.load(Ordering::Relaxed),
        other_throttled: other_throttled.load(Ordering::Relaxed),
    }
}

/// The defaults with jitter as in production.
pub fn shape_of(burst: f64, refill: f64) -> BudgetSettings {
    BudgetSettings {
        shape: Shape {
            burst,
            refill,
            jitter: true,
        },
        ..default_settings()
    }
}

//! Fake Microsoft Entra ID, Key Vault, IMDS and NMI. One HTTPS server (test CA, HTTP/2 and 1.1)
//! answers for every login and vault host name, routed by host; one plain HTTP server stands in
//! for IMDS (169.254.169.254) and NMI (localhost:2579). They answer with recorded real answers
//! ([`Recorded`], the corpus in `tests/fixtures/recorded/`), check what they receive, count
//! calls, and misbehave on command.

mod entra;
mod proxy;
pub mod recorded;
mod server;
mod vault;

pub use recorded::Recorded;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use proxy::{ClusterOptions, FakeTokenProxy, ProxyCall};
pub use vault::{Stored, VaultCounts, VaultHandle};

/// The tenant every fake vault and identity lives in unless told otherwise.
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// Which fake a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The Entra token endpoint.
    Entra,
    /// Authorized Key Vault requests (not the unauthenticated challenge).
    Vault,
    /// The IMDS token endpoint.
    Imds,
    /// The NMI token endpoint.
    Nmi,
    /// The AKS token proxy (identity binding).
    TokenProxy,
}

/// One misbehaviour, consumed by the next request to its target. Answers a service really
/// gives are recorded ones; the hand-made faults are those no service sends in a fixed shape
/// (resets, stalls, truncation, oversized or garbled bodies, a proxy's HTML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The target's recorded error for this HTTP status (e.g. 500, 503; see `status_answer`).
    Status(u16),
    /// The target's recorded 429, with `Retry-After: secs`.
    Throttle { retry_after_secs: u64 },
    /// This recorded answer.
    Replay(Recorded),
    /// Abort the request without an answer (the connection or stream is reset).
    Reset,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a JSON body of this many bytes.
    Huge(usize),
    /// 200 with headers and part of a body, then nothing more.
    Stall,
    /// 200 with an HTML page (a proxy's error page, a captive portal).
    Html,
    /// 200 with JSON cut off in the middle.
    Truncated,
}

/// Call counts, for asserting how much work a Mount cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// POSTs to the Entra token endpoint.
    pub entra: usize,
    /// Every request to a vault host, challenges included.
    pub vault: usize,
    /// Unauthenticated vault requests answered with the 401 challenge.
    pub challenges: usize,
    /// Authorized object GETs (secrets, keys, certificates).
    pub gets: usize,
    /// Authorized `versions` listing pages.
    pub lists: usize,
    /// IMDS token requests.
    pub imds: usize,
    /// NMI token requests.
    pub nmi: usize,
    /// Token requests the AKS token proxy received (under its server name).
    pub token_proxy: usize,
}

/// One token request Entra received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraCall {
    pub tenant: String,
    pub client_id: String,
    pub scope: String,
    /// `assertion` (workload identity) or `secret` (service principal).
    pub grant: &'static str,
    /// The host the request was sent to (which cloud).
    pub host: String,
    /// SHA-256 (hex) of the client assertion, when there was one: which service-account token
    /// was exchanged, without keeping it.
    pub assertion_sha256: Option<String>,
}

#[derive(Default)]
struct Counters {
    entra: AtomicUsize,
    vault: AtomicUsize,
    challenges: AtomicUsize,
    gets: AtomicUsize,
    lists: AtomicUsize,
    imds: AtomicUsize,
    nmi: AtomicUsize,
    token_proxy: AtomicUsize,
    throttled: AtomicUsize,
}

/// A token the fake Entra (or IMDS/NMI) issued: who it proves and for which resource.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    principal: String,
    scope: String,
}

#[derive(Default)]
pub(crate) struct Directory {
    /// client ID → federated credentials (issuer, subject).
    federated: HashMap<String, Vec<(String, String)>>,
    /// client ID → client secret.
    secrets: HashMap<String, String>,
    /// VM identities: `None` = system-assigned, `Some(client id)` = user-assigned.
    vm_identities: HashSet<Option<String>>,
    /// (namespace, pod) → client ID NMI hands out.
    pod_identities: HashMap<(String, String), String>,
    calls: Vec<EntraCall>,
}

pub(crate) struct State {
    counters: Counters,
    directory: Mutex<Directory>,
    vaults: Mutex<BTreeMap<String, vault::Vault>>,
    tokens: Mutex<HashMap<String, Grant>>,
    faults: Mutex<VecDeque<(Target, Fault)>>,
    latency: Mutex<Duration>,
    next_id: AtomicU64,
    /// When each vault request arrived (for rate assertions).
    vault_times: Mutex<Vec<std::time::Instant>>,
    /// Key Vault's own throttling: at most this many requests per second per vault (0 = none).
    vault_rate_limit: AtomicUsize,
}

impl State {
    fn report(&self) -> serde_json::Value {
        let c = &self.counters;
        let load = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        let times = self.vault_times.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::json!({
            "entra": load(&c.entra), "vault": load(&c.vault), "challenges": load(&c.challenges),
            "gets": load(&c.gets), "lists": load(&c.lists), "imds": load(&c.imds), "nmi": load(&c.nmi),
            "token_proxy": load(&c.token_proxy), "throttled": load(&c.throttled),
            "max_vault_requests_per_second": max_in_window(&times, Duration::from_secs(1)),
        })
    }

    fn take_fault(&self, target: Target) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let position = faults.iter().position(|(t, _)| *t == target)?;
        faults.remove(position).map(|(_, f)| f)
    }

    fn issue(&self, principal: &str, scope: &str) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let token = format!("fake-access-token-{n}-{:016x}", fastrand::u64(..));
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                token.clone(),
                Grant {
                    principal: principal.to_owned(),
                    scope: scope.to_owned(),
                },
            );
        token
    }

    /// Seconds the issued tokens live (as Entra's usual hour, less a second).
    fn lifetime(&self) -> u64 {
        3599
    }
}

fn max_in_window(times: &[std::time::Instant], window: Duration) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= window {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best
}

/// The fake Azure: start it, fill it, hand its [`FakeAzure::http_client`] to the provider.
#[derive(Clone)]
pub struct FakeAzure {
    state: Arc<State>,
    https: SocketAddr,
    plain: SocketAddr,
    ca_pem: String,
}

impl FakeAzure {
    /// Starts both servers on loopback ports chosen by the OS.
    pub async fn start() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_on(any, &[any]).await
    }

    /// Starts the HTTPS server on `https` and the plain one on each of `plain` (the first is
    /// [`FakeAzure::plain_addr`]), for a harness that gives the fakes the real services'
    /// addresses inside a network namespace of its own: `443` for every Azure name, IMDS's
    /// `169.254.169.254:80`, NMI's `127.0.0.1:2579`. Panics when an address cannot be bound.
    pub async fn start_on(https: SocketAddr, plain: &[SocketAddr]) -> Self {
        let state = Arc::new(State {
            counters: Counters::default(),
            directory: Mutex::new(Directory::default()),
            vaults: Mutex::new(BTreeMap::new()),
            tokens: Mutex::new(HashMap::new()),
            faults: Mutex::new(VecDeque::new()),
            latency: Mutex::new(Duration::ZERO),
            next_id: AtomicU64::new(1),
            vault_times: Mutex::new(Vec::new()),
            vault_rate_limit: AtomicUsize::new(0),
        });
        let pki = super::tls::make();
        let https = server::spawn(state.clone(), Some(pki.server.clone()), https).await;
        let mut first_plain = None;
        for addr in plain {
            let bound = server::spawn(state.clone(), None, *addr).await;
            first_plain.get_or_insert(bound);
        }
        let plain = first_plain.unwrap_or_else(|| panic!("start_on: no plain address"));
        FakeAzure {
            state,
            https,
            plain,
            ca_pem: pki.ca_pem,
        }
    }

    /// The test CA that signed the HTTPS server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The HTTPS server's loopback address (every Azure host name resolves here).
    pub fn https_addr(&self) -> SocketAddr {
        self.https
    }

    /// The plain HTTP server standing in for IMDS and NMI.
    pub fn plain_addr(&self) -> SocketAddr {
        self.plain
    }

    /// A vault of this name (created on first use), in [`TENANT`].
    pub fn vault(&self, name: &str) -> VaultHandle {
        self.state
            .vaults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_insert_with(vault::Vault::new);
        VaultHandle::new(self.state.clone(), name)
    }

    /// Lets the service-account tokens with this issuer and subject sign in as `client_id`.
    pub fn federate(&self, client_id: &str, issuer: &str, subject: &str) {
        self.directory()
            .federated
            .entry(client_id.to_owned())
            .or_default()
            .push((issuer.to_owned(), subject.to_owned()));
    }

    /// Registers an app with a client secret.
    pub fn add_service_principal(&self, client_id: &str, secret: &str) {
        self.directory()
            .secrets
            .insert(client_id.to_owned(), secret.to_owned());
    }

    /// Gives the node a managed identity: `None` = system-assigned, else user-assigned client ID.
    pub fn add_vm_identity(&self, client_id: Option<&str>) {
        self.directory()
            .vm_identities
            .insert(client_id.map(str::to_owned));
    }

    /// Makes NMI hand out `client_id`'s token to pod `namespace/pod`.
    pub fn add_pod_identity(&self, namespace: &str, pod: &str, client_id: &str) {
        self.directory()
            .pod_identities
            .insert((namespace.to_owned(), pod.to_owned()), client_id.to_owned());
    }

    /// Delay added to every answer.
    pub fn set_latency(&self, latency: Duration) {
        *self.state.latency.lock().unwrap_or_else(|e| e.into_inner()) = latency;
    }

    /// Makes the fake vault throttle like Key Vault: past `per_second` requests in the last
    /// second, answer 429 with `Retry-After: 1` (0 = never).
    pub fn set_vault_rate_limit(&self, per_second: usize) {
        self.state
            .vault_rate_limit
            .store(per_second, Ordering::Relaxed);
    }

    /// Queues a misbehaviour for the next request to `target`.
    pub fn push_fault(&self, target: Target, fault: Fault) {
        self.state
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back((target, fault));
    }

    /// Queues the same misbehaviour `n` times.
    pub fn push_faults(&self, target: Target, fault: Fault, n: usize) {
        for _ in 0..n {
            self.push_fault(target, fault.clone());
        }
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.state
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Calls so far.
    pub fn counts(&self) -> Counts {
        let c = &self.state.counters;
        let load = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        Counts {
            entra: load(&c.entra),
            vault: load(&c.vault),
            challenges: load(&c.challenges),
            gets: load(&c.gets),
            lists: load(&c.lists),
            imds: load(&c.imds),
            nmi: load(&c.nmi),
            token_proxy: load(&c.token_proxy),
        }
    }

    /// The most vault requests that arrived within any `window`.
    pub fn max_vault_requests_in(&self, window: Duration) -> usize {
        max_in_window(
            &self
                .state
                .vault_times
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
            window,
        )
    }

    /// Vault requests answered 429 by the fake's own rate limit.
    pub fn throttled(&self) -> usize {
        self.state.counters.throttled.load(Ordering::Relaxed)
    }

    /// Every token request Entra received, in order.
    pub fn entra_calls(&self) -> Vec<EntraCall> {
        self.directory().calls.clone()
    }

    fn directory(&self) -> std::sync::MutexGuard<'_, Directory> {
        self.state
            .directory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

//! Test support shared by `tests/`, `examples/` and `benches/` (feature `testkit`): a client
//! that plays the Secrets Store CSI Driver, fake Entra ID / Key Vault / IMDS / NMI servers, and
//! the HTTP client that reaches them through the provider's normal code path.

mod client;
mod driver;
pub mod fake;
pub mod handover;
pub mod material;
pub mod old_driver;

/// A `/proc/<pid>/status` field in KiB (`VmRSS:`, `VmHWM:`) of this process (`None`) or
/// another; 0 when unreadable. For memory assertions in tests and the benchmark.
pub fn status_kib(pid: Option<u32>, field: &str) -> u64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
/// Sends signal `name` (`TERM`, `KILL`, …) to a child process, as `kill -NAME pid` does; panics
/// if it cannot be delivered (a test's own child has gone missing).
pub fn signal(child: &std::process::Child, name: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill -{name} {} failed", child.id());
}
mod tls;
pub mod world;

pub use client::fake_http_client;
pub use driver::{DriverClient, KUBELET_TIMEOUT, KubeletAttributes, TestServer, free_port};
pub use fake::{
    ClusterOptions, Counts, EntraCall, FakeAzure, FakeTokenProxy, Fault, ProxyCall, Recorded,
    Stored, TENANT, Target, VaultCounts, VaultHandle,
};
pub use world::{World, objects_yaml};

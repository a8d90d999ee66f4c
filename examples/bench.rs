//! Benchmark harness: Mount latency, calls, throughput, CPU and memory against the fakes.
//!
//! `cargo run --release --example bench` prints Markdown tables (the source of BENCHMARKS.md);
//! `... --example bench -- front` prints only the authority front's section.
//!
//! The fakes run in a child process (this same binary with `--serve-fakes`), so the numbers
//! for memory and CPU are the provider's (plus the small driver-like client that calls it),
//! not the fakes'. Latency is injected by the fakes: every request waits before it is answered.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akv_csi_provider::Config;
use akv_csi_provider::testkit::material::service_account_token;
use akv_csi_provider::testkit::world::{CLIENT_ID, NAMESPACE, SERVICE_ACCOUNT, VAULT};
use akv_csi_provider::testkit::{
    FakeAzure, KubeletAttributes, TENANT, TestServer, fake_http_client, objects_yaml, status_kib,
};

#[path = "bench/front.rs"]
mod front;

const LATENCY: Duration = Duration::from_millis(25);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if args.get(1).map(String::as_str) == Some("--serve-fakes") {
        let latency_ms: u64 = args[2].parse().expect("latency");
        let objects: usize = args[3].parse().expect("objects");
        let vault_limit: usize = args[4].parse().expect("vault limit");
        runtime.block_on(serve_fakes(latency_ms, objects, vault_limit));
        return;
    }
    if args.get(1).map(String::as_str) == Some("defaults") {
        // Only the default-flag latency and memory sections.
        runtime.block_on(async {
            latency().await;
            memory().await;
        });
        return;
    }
    if args.get(1).map(String::as_str) == Some("front") {
        // Only the authority front's section.
        runtime.block_on(front::front());
        return;
    }
    runtime.block_on(run_all());
}

/// Child process: fakes with `objects` secrets `s0..`, printing their addresses, until stdin closes.
async fn serve_fakes(latency_ms: u64, objects: usize, vault_limit: usize) {
    let azure = FakeAzure::start().await;
    for pod in 0..256 {
        azure.federate(
            CLIENT_ID,
            akv_csi_provider::testkit::material::OIDC_ISSUER,
            &format!("system:serviceaccount:{NAMESPACE}:{}", sa(pod)),
        );
    }
    let vault = azure.vault(VAULT);
    vault.grant(CLIENT_ID);
    for i in 0..objects {
        vault.secret(&format!("s{i}"), &"x".repeat(64));
    }
    azure.set_latency(Duration::from_millis(latency_ms));
    azure.set_vault_rate_limit(vault_limit);
    let hello = serde_json::json!({"https": azure.https_addr().to_string(), "plain": azure.plain_addr().to_string(), "ca": azure.ca_pem()});
    println!("{hello}");
    std::io::stdout().flush().ok();
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin()
            .read_line(&mut line)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
    })
    .await
    .ok();
}

fn sa(pod: usize) -> String {
    if pod == 0 {
        SERVICE_ACCOUNT.to_owned()
    } else {
        format!("{SERVICE_ACCOUNT}-{pod}")
    }
}

/// The fakes in a child process, and the provider (in this process) wired to them.
struct Bench {
    child: Child,
    plain: SocketAddr,
    server: TestServer,
}

impl Bench {
    async fn start(latency: Duration, objects: usize, vault_limit: usize, config: Config) -> Bench {
        let exe = std::env::current_exe().expect("exe");
        let mut child = Command::new(exe)
            .args([
                "--serve-fakes",
                &latency.as_millis().to_string(),
                &objects.to_string(),
                &vault_limit.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn fakes");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("hello");
        let hello: serde_json::Value = serde_json::from_str(&line).expect("hello json");
        let https: SocketAddr = hello["https"].as_str().unwrap().parse().unwrap();
        let plain: SocketAddr = hello["plain"].as_str().unwrap().parse().unwrap();
        let http = fake_http_client(https, plain, hello["ca"].as_str().unwrap());
        let mut server = TestServer::start_with_http(config, http).await;
        // The driver forwards kubelet's 2 min deadline.
        server.client_timeout = Some(Duration::from_secs(120));
        Bench {
            child,
            plain,
            server,
        }
    }

    async fn counts(&self) -> serde_json::Value {
        let url = format!("http://{}/_counts", self.plain);
        let body = reqwest::get(url)
            .await
            .expect("counts")
            .bytes()
            .await
            .expect("counts body");
        serde_json::from_slice(&body).expect("counts json")
    }

    fn attrs(&self, objects: usize, token: &str) -> std::collections::BTreeMap<String, String> {
        let items: Vec<String> = (0..objects)
            .map(|i| format!("objectName: s{i}\nobjectType: secret"))
            .collect();
        let items: Vec<&str> = items.iter().map(String::as_str).collect();
        KubeletAttributes::new(NAMESPACE, "app-0", SERVICE_ACCOUNT, "azure-kv")
            .param("keyvaultName", VAULT)
            .param("tenantID", TENANT)
            .param("clientID", CLIENT_ID)
            .param("objects", &objects_yaml(&items))
            .azure_token(token, "2099-01-01T00:00:00Z")
            .build()
    }

    async fn mount(
        &self,
        attrs: &std::collections::BTreeMap<String, String>,
    ) -> Result<Duration, tonic::Status> {
        let started = Instant::now();
        self.server.client().mount(attrs, None, "420").await?;
        Ok(started.elapsed())
    }

    async fn stop(mut self) {
        let _ = self.server.stop().await;
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn unlimited() -> Config {
    let mut config = Config::defaults();
    config.upstream_requests_per_second = 0;
    config
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ = 100 on Linux
}

async fn run_all() {
    println!("# akv-csi-provider benchmark\n");
    println!(
        "Machine: {} cores; release build; fakes in a child process; {} ms injected per request.\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        LATENCY.as_millis()
    );
    latency().await;
    rotation_calls().await;
    throughput().await;
    memory().await;
    throttling().await;
    front::front().await;
}

async fn latency() {
    println!(
        "## Mount latency at {} ms per request\n",
        LATENCY.as_millis()
    );
    println!(
        "Cold: a new service-account token (new identity: 401 challenge, token exchange, reads). Warm: the same token again."
    );
    println!(
        "Lower bound: cold = one Entra round trip + one Key Vault round trip; warm = one Key Vault round trip."
    );
    println!(
        "Reference model: the Go provider's sequence (challenge, exchange, one round trip per object, one after another)."
    );
    println!(
        "Default flags (budget burst 1,000, refill 100/s); kubelet's 120 s grpc-timeout; per object count five cold then five warm Mounts back to back on a fresh provider.\n"
    );
    println!(
        "| objects | cold median | cold lower bound | ratio | warm median | warm lower bound | ratio | reference model | speed-up vs model (cold) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for objects in [1usize, 10, 50] {
        let bench = Bench::start(LATENCY, objects, 0, Config::defaults()).await;
        // Connections warm (a real node keeps them pooled too).
        let _ = bench
            .mount(&bench.attrs(
                objects,
                &service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600),
            ))
            .await;
        let mut cold = Vec::new();
        for _ in 0..5 {
            let attrs = bench.attrs(
                objects,
                &service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600),
            );
            cold.push(bench.mount(&attrs).await.expect("cold mount"));
        }
        let token = service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600);
        let attrs = bench.attrs(objects, &token);
        bench.mount(&attrs).await.expect("warm-up");
        let mut warm = Vec::new();
        for _ in 0..5 {
            warm.push(bench.mount(&attrs).await.expect("warm mount"));
        }
        let (c, w) = (median(cold), median(warm));
        let (cold_lb, warm_lb) = (LATENCY * 2, LATENCY);
        let model = LATENCY * (2 + objects as u32);
        println!(
            "| {objects} | {} | {} | {:.2}× | {} | {} | {:.2}× | {} | {:.1}× |",
            ms(c),
            ms(cold_lb),
            c.as_secs_f64() / cold_lb.as_secs_f64(),
            ms(w),
            ms(warm_lb),
            w.as_secs_f64() / warm_lb.as_secs_f64(),
            ms(model),
            model.as_secs_f64() / c.as_secs_f64()
        );
        bench.stop().await;
    }
    println!();
}

async fn rotation_calls() {
    println!("## Calls made by 100 repeated Mounts of one pod (10 objects, rotation polling)\n");
    println!(
        "| content cache | Entra token requests | Key Vault 401 challenges | Key Vault GETs | objects × mounts |"
    );
    println!("|---|---:|---:|---:|---:|");
    for ttl in [Duration::ZERO, Duration::from_secs(300)] {
        let mut config = Config::defaults();
        config.object_cache_ttl = ttl;
        let bench = Bench::start(Duration::ZERO, 10, 0, config).await;
        let attrs = bench.attrs(10, &service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600));
        for _ in 0..100 {
            bench.mount(&attrs).await.expect("mount");
        }
        let c = bench.counts().await;
        let label = if ttl.is_zero() {
            "off (default)".to_owned()
        } else {
            format!("--object-cache-ttl={}s", ttl.as_secs())
        };
        println!(
            "| {label} | {} | {} | {} | 1000 |",
            c["entra"], c["challenges"], c["gets"]
        );
        bench.stop().await;
    }
    println!();
}

async fn throughput() {
    println!("## Throughput and CPU, 10 objects, everything warm, no injected latency\n");
    println!(
        "Not default flags: `--upstream-requests-per-second=0` (no pacing), because 20,000 reads would otherwise be paced at 100/s; this table measures CPU per Mount, not what a vault allows.\n"
    );
    let bench = Bench::start(Duration::ZERO, 10, 0, unlimited()).await;
    let attrs = Arc::new(bench.attrs(10, &service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600)));
    bench.mount(&attrs).await.expect("warm-up");
    let total = 2000usize;
    let workers = 8usize;
    let cpu0 = cpu_time();
    let started = Instant::now();
    // One connection, as the CSI driver keeps one per provider socket.
    let driver = bench.server.client();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let client = driver.clone();
        let attrs = attrs.clone();
        tasks.spawn(async move {
            for _ in 0..total / workers {
                client.mount(&attrs, None, "420").await.expect("mount");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let wall = started.elapsed();
    let cpu = cpu_time() - cpu0;
    println!(
        "| Mounts | concurrent callers | wall time | Mounts/s | CPU per Mount (provider + calling client) |"
    );
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {total} | {workers} | {:.2} s | {:.0} | {:.2} ms |\n",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1000.0 / total as f64
    );
    bench.stop().await;
}

async fn memory() {
    println!("## Memory (RSS)\n");
    // The real binary, idle, as the DaemonSet runs it.
    let dir = std::env::temp_dir().join(format!("akv-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let binary = std::env::current_exe().ok().and_then(|p| {
        p.parent()
            .and_then(|d| d.parent())
            .map(|d| d.join("akv-csi-provider"))
    });
    let idle_binary = match binary.filter(|b| b.exists()) {
        Some(bin) => {
            let mut child = Command::new(bin)
                .arg(format!("--endpoint=unix://{}/azure.sock", dir.display()))
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn provider");
            tokio::time::sleep(Duration::from_secs(2)).await;
            let rss = status_kib(Some(child.id()), "VmRSS:");
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
            Some(rss).filter(|kib| *kib > 0)
        }
        None => None,
    };
    let _ = std::fs::remove_dir_all(&dir);

    let bench = Bench::start(LATENCY, 10, 0, Config::defaults()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = status_kib(None, "VmRSS:");
    let _ = std::fs::write("/proc/self/clear_refs", "5"); // reset the peak
    // One connection, as the CSI driver keeps one per provider socket.
    let driver = bench.server.client();
    let mut tasks = tokio::task::JoinSet::new();
    let burst_started = Instant::now();
    for pod in 0..200 {
        let attrs = bench.attrs(10, &service_account_token(NAMESPACE, &sa(pod), 3600));
        let client = driver.clone();
        tasks.spawn(async move {
            client
                .mount(&attrs, None, "420")
                .await
                .map(|r| r.files.len())
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        if matches!(r, Ok(Ok(10))) {
            ok += 1;
        }
    }
    let burst_wall = burst_started.elapsed();
    let peak = status_kib(None, "VmHWM:");
    println!("| measurement | RSS |");
    println!("|---|---:|");
    if let Some(kb) = idle_binary {
        println!(
            "| `akv-csi-provider` binary, idle (serving, no Mount yet) | {:.1} MiB |",
            kb as f64 / 1024.0
        );
    }
    println!(
        "| harness process (provider + driver client), idle | {:.1} MiB |",
        idle as f64 / 1024.0
    );
    println!(
        "| harness process, peak during 200 concurrent cold Mounts (200 pods, 10 objects each, default flags; {ok} succeeded, all done in {:.1} s) | {:.1} MiB |\n",
        burst_wall.as_secs_f64(),
        peak as f64 / 1024.0
    );
    bench.stop().await;
}

async fn throttling() {
    println!("## A throttling vault: 1,000 Mounts, the fake vault accepts 100 requests/s\n");
    println!(
        "| provider limit | Mounts failed | 429s from the vault | peak requests/s arriving at the vault (incl. throttled) | wall time |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (label, limit) in [
        ("--upstream-requests-per-second=100 (default)", 100u32),
        ("unlimited (0)", 0),
    ] {
        let mut config = Config::defaults();
        config.upstream_requests_per_second = limit;
        let bench = Bench::start(Duration::ZERO, 1, 100, config).await;
        let started = Instant::now();
        // One connection, as the CSI driver keeps one per provider socket.
        let driver = bench.server.client();
        let mut tasks = tokio::task::JoinSet::new();
        let per_pod = 50;
        for pod in 0..20 {
            let attrs = Arc::new(bench.attrs(1, &service_account_token(NAMESPACE, &sa(pod), 3600)));
            let client = driver.clone();
            tasks.spawn(async move {
                let mut failed = 0;
                for _ in 0..per_pod {
                    if client.mount(&attrs, None, "420").await.is_err() {
                        failed += 1;
                    }
                }
                failed
            });
        }
        let mut failed = 0;
        while let Some(r) = tasks.join_next().await {
            failed += r.unwrap_or(per_pod);
        }
        let wall = started.elapsed();
        let c = bench.counts().await;
        println!(
            "| {label} | {failed} | {} | {} | {:.1} s |",
            c["throttled"],
            c["max_vault_requests_per_second"],
            wall.as_secs_f64()
        );
        bench.stop().await;
    }
    println!();
}

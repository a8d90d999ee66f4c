//! What an upgrade costs the Mounts on one node: a surge hand-over (`--socket-takeover`, the
//! chart's default) against a maxUnavailable-style restart (stop the old provider, then start
//! the new one), measured the same way.
//!
//! ```sh
//! cargo build --release && cargo run --release --example handover
//! ```
//!
//! The real release binary serves through the fakes (src/testkit/handover.rs: production HTTP
//! stack, an egress proxy to the fakes, the test CA). Four driver-like workers Mount back to
//! back, each on one long-lived connection; a Mount that fails because no server listens is
//! retried as the driver's grpc-go client with waitForReady does (reconnect backoff 1 s, ×1.6,
//! ±20 %), so a failed attempt costs latency, not a pod event. Prints a Markdown table.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use akv_csi_provider::testkit::handover::{Fixture, OnFailure, Tally, Workers, socket_in};

const WORKERS: usize = 4;
const ROUNDS: usize = 5;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

fn binary() -> PathBuf {
    // target/release/examples/handover -> target/release/akv-csi-provider
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("akv-csi-provider");
    assert!(
        bin.exists(),
        "{} not built: run `cargo build --release` first",
        bin.display()
    );
    bin
}

/// The provider's log would fill an unread pipe and stall it: drop it.
fn spawn(fx: &Fixture, bin: &Path, socket: &Path, flags: &[&str]) -> Child {
    let mut command = fx.provider(bin, socket, flags);
    command.stderr(Stdio::null());
    command.spawn().expect("spawn")
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(ok.success());
}

async fn wait_exit(child: &mut Child) {
    while child.try_wait().expect("wait").is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_ready(bin: &Path, socket: &Path, child: &Child) {
    let want = format!("(pid {})", child.id());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new(bin)
            .arg(format!("--endpoint=unix://{}", socket.display()))
            .arg("ready")
            .output()
            .expect("probe");
        if out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "provider never became ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One upgrade on a node under load; `surge` = hand-over, else stop-then-start.
async fn upgrade(fx: &Fixture, bin: &Path, surge: bool) -> Tally {
    let dir = fx.dir().join(format!("run-{}", fastrand::u64(..)));
    let socket = socket_in(&dir);
    let flags = ["--socket-takeover", "--shutdown-grace=10s"];
    let mut old = spawn(fx, bin, &socket, &flags);
    wait_ready(bin, &socket, &old).await;
    let workers = Workers::start(WORKERS, &socket, fx.attributes(), OnFailure::WaitForReady);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut new = if surge {
        let new = spawn(fx, bin, &socket, &flags);
        wait_ready(bin, &socket, &new).await;
        signal(&old, "TERM");
        wait_exit(&mut old).await;
        new
    } else {
        signal(&old, "TERM");
        wait_exit(&mut old).await;
        let new = spawn(fx, bin, &socket, &flags);
        wait_ready(bin, &socket, &new).await;
        new
    };
    // Long enough for every worker's reconnect backoff to end.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let tally = workers.stop().await;
    signal(&new, "TERM");
    wait_exit(&mut new).await;
    tally
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn run() {
    let bin = binary();
    let fx = Fixture::start().await;
    println!(
        "| upgrade ({WORKERS} workers, {ROUNDS} runs each) | Mounts | failed Mount attempts (retried) | median longest Mount | worst longest Mount | median Mount |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, surge) in [
        ("surge hand-over (--socket-takeover, default chart)", true),
        ("stop, then start (maxUnavailable: 1, no image pull)", false),
    ] {
        let mut longest = Vec::new();
        let mut medians = Vec::new();
        let (mut mounts, mut failed) = (0, 0);
        for _ in 0..ROUNDS {
            let t = upgrade(&fx, &bin, surge).await;
            mounts += t.ok;
            failed += t.failed;
            longest.push(t.longest());
            medians.push(t.median());
        }
        longest.sort();
        medians.sort();
        println!(
            "| {name} | {mounts} | {failed} | {} | {} | {} |",
            ms(longest[ROUNDS / 2]),
            ms(longest[ROUNDS - 1]),
            ms(medians[ROUNDS / 2]),
        );
    }
}

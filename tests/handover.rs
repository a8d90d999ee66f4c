//! Upgrades no pod notices: the real binary hands its socket over to a successor started with
//! `--socket-takeover` while driver-like workers Mount continuously, each on one long-lived
//! connection (as the driver keeps it); a successor that dies before it is ready leaves the old
//! one serving; a Go listener that unlinks its path on exit does not take ours with it; and the
//! readiness probe (`akv-csi-provider ready`) is ready only for this container's provider.

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use akv_csi_provider::server::file_id;
use akv_csi_provider::testkit::handover::{Fixture, OnFailure, Workers, socket_in};
use akv_csi_provider::testkit::{DriverClient, free_port, signal};

const BIN: &str = env!("CARGO_BIN_EXE_akv-csi-provider");
const WORKERS: usize = 4;
const GRACE: Duration = Duration::from_secs(5);

/// Waits without blocking the runtime (the workers' connections must answer GOAWAY and PING).
async fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "provider did not exit within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut out = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

/// Runs the readiness probe as the kubelet's exec probe would: exit status and output.
fn probe(socket: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .arg(format!("--endpoint=unix://{}", socket.display()))
        .arg("--healthz-timeout=2s")
        .arg("ready")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Waits until the probe says `child` serves the socket.
async fn wait_ready(socket: &Path, child: &Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = format!("(pid {})", child.id());
    loop {
        let (ok, text) = probe(socket);
        if ok && text.contains(&want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pid {} never became ready: {text}",
            child.id()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get(port: u16, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hand_overs_lose_no_mount() {
    let fx = Fixture::start().await;
    let socket = socket_in(fx.dir());
    // With hostNetwork both pods bind the same ports during the overlap.
    let (healthz, metrics) = (free_port(), free_port());
    let ports = [
        format!("--healthz-port={healthz}"),
        format!("--prometheus-port={metrics}"),
        format!("--shutdown-grace={}s", GRACE.as_secs()),
        "--socket-takeover".to_owned(),
    ];
    let ports: Vec<&str> = ports.iter().map(String::as_str).collect();
    let mut old = fx
        .provider(Path::new(BIN), &socket, &ports)
        .spawn()
        .unwrap();
    wait_ready(&socket, &old).await;
    let workers = Workers::start(WORKERS, &socket, fx.attributes(), OnFailure::Count);
    tokio::time::sleep(Duration::from_millis(200)).await;

    for round in 0..3 {
        let new = fx
            .provider(Path::new(BIN), &socket, &ports)
            .spawn()
            .unwrap();
        wait_ready(&socket, &new).await;
        // Both run; each one's health endpoint answers on the shared port.
        for _ in 0..4 {
            assert_eq!(get(healthz, "/healthz").await, 200, "round {round}");
            assert_eq!(get(metrics, "/metrics").await, 200, "round {round}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stopped = Instant::now();
        signal(&old, "TERM");
        let status = wait_exit(&mut old, GRACE + Duration::from_secs(2)).await;
        assert!(status.success(), "round {round}: {status:?}");
        assert!(
            stopped.elapsed() < GRACE,
            "round {round}: exit took {:?}",
            stopped.elapsed()
        );
        let log = stderr_of(&mut old);
        assert!(
            log.contains("belongs to another process"),
            "round {round}: {log}"
        );
        // The successor's socket is untouched, and it alone serves the ports now.
        wait_ready(&socket, &new).await;
        assert_eq!(get(healthz, "/healthz").await, 200);
        workers.mark();
        tokio::time::sleep(Duration::from_millis(200)).await;
        old = new;
    }
    let tally = workers.stop().await;
    assert_eq!(tally.failed, 0, "failed Mounts: {:?}", tally.errors);
    // A Mount queued on a connection as its GOAWAY arrives is sent again on a new one, as
    // grpc-go does transparently; at most one per worker per hand-over.
    assert!(tally.transparent_retries <= 3 * WORKERS, "{tally:?}");
    assert!(
        tally.ok_after_mark > 0,
        "no Mount reached the last successor"
    );
    assert!(
        tally.ok > 50,
        "too few Mounts to mean anything: {}",
        tally.ok
    );
    signal(&old, "TERM");
    assert!(wait_exit(&mut old, GRACE).await.success());
    assert!(!socket.exists(), "the last provider left its socket behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_that_dies_before_it_is_ready_leaves_the_old_one_serving() {
    let fx = Fixture::start().await;
    let socket = socket_in(fx.dir());
    let mut old = fx
        .provider(Path::new(BIN), &socket, &["--socket-takeover"])
        .spawn()
        .unwrap();
    wait_ready(&socket, &old).await;
    let workers = Workers::start(WORKERS, &socket, fx.attributes(), OnFailure::Count);
    for kill in ["KILL", "TERM"] {
        let ours = file_id(&socket).unwrap();
        let mut successor = fx
            .provider(Path::new(BIN), &socket, &["--socket-takeover"])
            .spawn()
            .unwrap();
        // It took the path and dies before anyone saw it ready: crashed (a dead socket left
        // behind) or stopped (its own socket removed).
        let deadline = Instant::now() + Duration::from_secs(10);
        while file_id(&socket) == Some(ours) {
            assert!(
                Instant::now() < deadline,
                "the successor never took the path"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        signal(&successor, kill);
        wait_exit(&mut successor, GRACE).await;
        // The old one binds the path again and is ready; fresh connections reach it.
        wait_ready(&socket, &old).await;
        DriverClient::new(&socket).version().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tally = workers.stop().await;
    assert_eq!(tally.failed, 0, "failed Mounts: {:?}", tally.errors);
    assert!(tally.ok > 10, "{}", tally.ok);
    signal(&old, "TERM");
    assert!(wait_exit(&mut old, GRACE).await.success());
    let log = stderr_of(&mut old);
    // A SIGTERM that lands before the successor installed its handler kills it like SIGKILL,
    // so only the crash's recovery is certain to be logged.
    assert!(log.contains("taking the path back"), "{log}");
}

/// A stand-in for the Go provider's socket handling: removes a stale file, `net.Listen("unix")`,
/// and on SIGTERM closes the listener, which unlinks the path by name (Go's
/// `UnixListener.Close`), whatever socket is there by then.
const GO_PROVIDER: &str = r#"package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	path := os.Args[1]
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	fmt.Println("listening")
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	<-ch
	l.Close()
	fmt.Println("closed")
}
"#;

fn build_go_provider(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("goprovider.go");
    std::fs::write(&src, GO_PROVIDER).unwrap();
    let bin = dir.join("goprovider");
    let out = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("CGO_ENABLED", "0")
        .output()
        .expect("the Go toolchain (go) is needed for this test");
    assert!(
        out.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_from_a_go_provider_that_unlinks_its_path_on_exit() {
    let fx = Fixture::start().await;
    let socket = socket_in(fx.dir());
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let go = build_go_provider(fx.dir());
    let mut go_provider = Command::new(&go)
        .arg(&socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = [0u8; 10];
    go_provider
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .unwrap();
    assert_eq!(&line, b"listening\n");
    // Not ready while the Go provider holds the path, nor for our provider without takeover.
    let (ok, text) = probe(&socket);
    assert!(!ok && text.contains("not this akv-csi-provider"), "{text}");
    let mut refused = fx.provider(Path::new(BIN), &socket, &[]).spawn().unwrap();
    assert_eq!(wait_exit(&mut refused, GRACE).await.code(), Some(1));

    let mut ours = fx
        .provider(Path::new(BIN), &socket, &["--socket-takeover"])
        .spawn()
        .unwrap();
    wait_ready(&socket, &ours).await;
    let workers = Workers::start(WORKERS, &socket, fx.attributes(), OnFailure::Count);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Removing the Go DaemonSet: its pod gets SIGTERM and unlinks the path, ours included.
    signal(&go_provider, "TERM");
    assert!(wait_exit(&mut go_provider, GRACE).await.success());
    let unlinked = Instant::now();
    wait_ready(&socket, &ours).await;
    let restored = unlinked.elapsed();
    assert!(
        restored < Duration::from_secs(1),
        "path missing for {restored:?}"
    );
    workers.mark();
    // New connections (a driver pod that starts now) reach us.
    DriverClient::new(&socket)
        .mount(&fx.attributes(), None, "420")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tally = workers.stop().await;
    assert_eq!(tally.failed, 0, "failed Mounts: {:?}", tally.errors);
    assert!(tally.ok_after_mark > 0);
    signal(&ours, "TERM");
    assert!(wait_exit(&mut ours, GRACE).await.success());
    let log = stderr_of(&mut ours);
    assert!(
        log.contains("a server that did not answer Version"),
        "{log}"
    );
    assert!(log.contains("binding it again"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_is_not_ready_for_a_provider_in_another_pid_namespace() {
    let fx = Fixture::start().await;
    let socket = socket_in(fx.dir());
    let mut provider = fx.provider(Path::new(BIN), &socket, &[]).spawn().unwrap();
    wait_ready(&socket, &provider).await;
    // The probe in a PID namespace of its own, as in another pod: the server has no PID there.
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", BIN])
        .arg(format!("--endpoint=unix://{}", socket.display()))
        .arg("ready")
        .output()
        .expect("unshare (util-linux) is needed for this test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("outside this container"), "{stderr}");
    signal(&provider, "TERM");
    assert!(wait_exit(&mut provider, GRACE).await.success());
    let (ok, text) = probe(&socket);
    assert!(!ok && text.contains("cannot connect"), "{text}");
}

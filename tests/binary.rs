//! The real binary as the DaemonSet runs it: flags, socket lifecycle, signals, exit codes.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use akv_csi_provider::testkit::{DriverClient, signal};

const BIN: &str = env!("CARGO_BIN_EXE_akv-csi-provider");

fn start(socket: &Path, extra: &[&str]) -> Child {
    Command::new(BIN)
        .arg(format!("--endpoint=unix://{}", socket.display()))
        // Parallel tests cannot share the default ports; 0 turns the endpoints off.
        .args(["--healthz-port=0", "--prometheus-port=0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn wait_until_serving(socket: &Path) {
    let client = DriverClient::new(socket);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if client.version().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("provider did not start serving on {}", socket.display());
}

/// Waits without blocking the runtime: the client's connection task must stay alive to answer
/// the server's HTTP/2 GOAWAY/PING during graceful shutdown, as the real driver does.
async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "provider did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn socket_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("nested/providers/azure.sock")
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_removes_the_socket() {
    for sig in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let socket = socket_in(&dir);
        let mut child = start(&socket, &["--construct-pem-chain=false", "-v=2"]);
        wait_until_serving(&socket).await;
        let meta = std::fs::metadata(&socket).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        signal(&child, sig);
        let status = wait_exit(&mut child).await;
        assert!(status.success(), "SIG{sig}: {status:?}");
        assert!(!socket.exists(), "SIG{sig} left the socket behind");
    }
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = socket_in(&dir);
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut child = start(&socket, &[]);
    wait_until_serving(&socket).await;
    signal(&child, "TERM");
    assert!(wait_exit(&mut child).await.success());
}

#[tokio::test]
async fn refuses_to_clobber_a_file_or_a_live_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure.sock");
    std::fs::write(&file, b"not a socket").unwrap();
    let mut child = start(&file, &[]);
    let status = wait_exit(&mut child).await;
    assert_eq!(status.code(), Some(1));
    assert_eq!(std::fs::read(&file).unwrap(), b"not a socket");

    let socket = dir.path().join("live.sock");
    let mut first = start(&socket, &[]);
    wait_until_serving(&socket).await;
    let mut second = start(&socket, &[]);
    assert_eq!(wait_exit(&mut second).await.code(), Some(1));
    DriverClient::new(&socket).version().await.unwrap();
    signal(&first, "TERM");
    assert!(wait_exit(&mut first).await.success());
}

#[test]
fn version_flag_and_bad_flags() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("akv-csi-provider {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(BIN)
        .arg("--cloud-name=AzureCloud")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AzurePublicCloud"));
}

#[tokio::test]
async fn json_logs_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let socket = socket_in(&dir);
    let mut child = start(&socket, &["--log-format-json=true"]);
    wait_until_serving(&socket).await;
    // A Mount the provider refuses before any network call: one "mount" line with the pod.
    let attrs =
        akv_csi_provider::testkit::KubeletAttributes::new("team-a", "web-0", "sa", "web-spc")
            .param("keyvaultName", "kv")
            .build();
    let status = DriverClient::new(&socket)
        .mount(&attrs, None, "420")
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    signal(&child, "TERM");
    assert!(wait_exit(&mut child).await.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let lines: Vec<_> = stderr.lines().collect();
    assert!(lines.len() >= 2, "{stderr}");
    let mut mount_lines = 0;
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v.get("level").is_some() && v.get("message").is_some(),
            "{line}"
        );
        if v["message"] == "mount" {
            mount_lines += 1;
            assert_eq!(v["pod"], "web-0", "{line}");
            assert_eq!(v["namespace"], "team-a", "{line}");
            assert_eq!(v["spc"], "web-spc", "{line}");
            assert_eq!(v["outcome"], "InvalidArgument", "{line}");
            assert!(v["duration_ms"].is_u64(), "{line}");
        }
    }
    assert_eq!(mount_lines, 1, "{stderr}");
}

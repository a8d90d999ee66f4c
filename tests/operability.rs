//! What operators watch: /healthz (200 only when the gRPC server answers over its socket),
//! /metrics (the reference's histograms and ours, bounded label values), and JSON logs.

use std::time::{Duration, Instant};

use akv_csi_provider::Config;
use akv_csi_provider::admin::{HealthCheck, serve_health};
use akv_csi_provider::testkit::world::VAULT;
use akv_csi_provider::testkit::{TestServer, World, free_port, objects_yaml};

async fn get(port: u16, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing listens on {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_200_when_grpc_answers_and_only_on_its_path() {
    let mut config = Config::defaults();
    config.healthz_port = free_port();
    config.healthz_path = "/custom-healthz".into();
    let port = config.healthz_port;
    let server = TestServer::start(config).await;
    wait_for_port(port).await;
    assert_eq!(get(port, "/custom-healthz").await, (200, "ok\n".into()));
    assert_eq!(get(port, "/metrics").await.0, 404);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_503_when_grpc_is_wedged_or_gone() {
    let dir = tempfile::tempdir().unwrap();
    // A socket that accepts connections and never answers: a wedged server.
    let wedged = dir.path().join("wedged.sock");
    let listener = tokio::net::UnixListener::bind(&wedged).unwrap();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    for (socket, reason) in [
        (wedged, "did not answer a health check within"),
        (dir.path().join("missing.sock"), "health check on"),
    ] {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let check = HealthCheck {
            socket,
            path: "/healthz".into(),
            timeout: Duration::from_millis(300),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_health(tcp, check, async {
            let _ = stopped.await;
        }));
        let started = Instant::now();
        let (status, body) = get(port, "/healthz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains(reason), "{body}");
        assert!(started.elapsed() < Duration::from_secs(3));
        let _ = stop.send(());
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_mount_carry_the_reference_names_and_bounded_labels() {
    let mut config = Config::defaults();
    config.prometheus_port = free_port();
    let port = config.prometheus_port;
    let world = World::start(config).await;
    world
        .azure
        .vault(VAULT)
        .secret("db-password", "s3cret-value");
    let attrs = world
        .spc(&objects_yaml(&[
            "objectName: db-password\nobjectType: secret",
        ]))
        .build();
    world.client().mount(&attrs, None, "420").await.unwrap();
    world.client().mount(&attrs, None, "420").await.unwrap();
    let missing = world
        .spc(&objects_yaml(&["objectName: nope\nobjectType: secret"]))
        .build();
    world
        .client()
        .mount(&missing, None, "420")
        .await
        .unwrap_err();
    world.client().version().await.unwrap();

    wait_for_port(port).await;
    let (status, text) = get(port, "/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        "# TYPE keyvault_request histogram",
        "keyvault_request_bucket{le=\"0.1\",object_type=\"secret\",object_name=\"db-password\",error=\"\"} 2",
        "keyvault_request_count{object_type=\"secret\",object_name=\"db-password\",error=\"\"} 2",
        "keyvault_request_count{object_type=\"secret\",object_name=\"nope\",error=\"not_found\"} 1",
        "le=\"30.0\"",
        "# TYPE grpc_request histogram",
        "grpc_request_count{grpc_method=\"/v1alpha1.CSIDriverProvider/Mount\",grpc_code=\"OK\"} 2",
        "grpc_request_count{grpc_method=\"/v1alpha1.CSIDriverProvider/Mount\",grpc_code=\"NotFound\"} 1",
        "grpc_request_count{grpc_method=\"/v1alpha1.CSIDriverProvider/Version\",grpc_code=\"OK\"} 1",
        "akv_token_exchanges_total{mode=\"workload_identity\"} 2",
        "akv_token_cache_hits_total{mode=\"workload_identity\"}",
        "akv_mounts_in_flight 0",
        "akv_files_written_total 2",
        "akv_objects_read_total 3",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("s3cret-value") && !text.contains("fake-access-token"));
    assert_eq!(get(port, "/").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_throttling_are_counted_by_vault() {
    let mut config = Config::defaults();
    config.prometheus_port = free_port();
    let port = config.prometheus_port;
    let world = World::start(config).await;
    world.azure.vault(VAULT).secret("s", "v");
    world.azure.push_fault(
        akv_csi_provider::testkit::Target::Vault,
        akv_csi_provider::testkit::Fault::Throttle {
            retry_after_secs: 0,
        },
    );
    world.azure.push_fault(
        akv_csi_provider::testkit::Target::Vault,
        akv_csi_provider::testkit::Fault::Status(503),
    );
    let attrs = world
        .spc(&objects_yaml(&["objectName: s\nobjectType: secret"]))
        .build();
    world.client().mount(&attrs, None, "420").await.unwrap();
    wait_for_port(port).await;
    let text = get(port, "/metrics").await.1;
    assert!(
        text.contains("akv_keyvault_retries_total{vault=\"kv-demo\",reason=\"throttled\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("akv_keyvault_retries_total{vault=\"kv-demo\",reason=\"unavailable\"} 1"),
        "{text}"
    );
}

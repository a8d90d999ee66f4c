//! With default flags and kubelet's 120 s `grpc-timeout`, a throttled or dead vault produces
//! our message (code, vault, cause) from one Mount execution, long before kubelet's deadline
//! would replace it with a bare `DeadlineExceeded`, and with `grpc-retry-pushback-ms: -1` so
//! grpc-go does not run the Mount again.

use std::time::{Duration, Instant};

use akv_csi_provider::Config;
use akv_csi_provider::testkit::world::VAULT;
use akv_csi_provider::testkit::{Fault, Target, World, objects_yaml};
use tonic::Code;

const KUBELET: Duration = Duration::from_secs(120);

async fn world() -> World {
    let mut world = World::start(Config::defaults()).await;
    world.server.client_timeout = Some(KUBELET);
    world.azure.vault(VAULT).secret("app-secret", "v");
    world
}

async fn one_mount(world: &World) -> (tonic::Status, Duration) {
    let attrs = world
        .spc(&objects_yaml(&[
            "objectName: app-secret\nobjectType: secret",
        ]))
        .build();
    let started = Instant::now();
    let status = world
        .client()
        .mount(&attrs, None, "420")
        .await
        .expect_err("the Mount must fail");
    let pushback = status.metadata().get("grpc-retry-pushback-ms");
    assert_eq!(pushback.map(|v| v.to_str().unwrap()), Some("-1"));
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_vault_is_reported_at_once() {
    let world = world().await;
    world.azure.push_faults(
        Target::Vault,
        Fault::Throttle {
            retry_after_secs: 60,
        },
        1000,
    );
    let (status, took) = one_mount(&world).await;
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{}",
        status.message()
    );
    let m = status.message();
    assert!(m.contains(VAULT) && m.contains("429"), "{m}");
    // The pause (60 s) outlasts the deadline (30 s): no waiting, and after the 401 challenge
    // one request to the vault, never retried.
    assert!(took < Duration::from_secs(5), "{took:?}");
    let counts = world.azure.counts();
    assert!(counts.vault <= counts.challenges + 1, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_vault_is_reported_at_the_mount_timeout() {
    let world = world().await;
    world
        .azure
        .push_faults(Target::Vault, Fault::Status(503), 10_000);
    let (status, took) = one_mount(&world).await;
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
    assert!(status.message().contains(VAULT), "{}", status.message());
    // --mount-timeout (30 s) ends it, a quarter of kubelet's deadline; retries stay few.
    assert!(took < Duration::from_secs(32), "{took:?}");
    assert!(
        world.azure.counts().vault < 60,
        "{:?}",
        world.azure.counts()
    );
}

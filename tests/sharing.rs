//! Work shared across Mounts, verified by call counts on the fakes: one token exchange per
//! service-account token, warm clients, coalesced reads, the opt-in content cache, per-host
//! rate limits — and never one identity's token or content served to another.

use std::time::{Duration, Instant};

use akv_csi_provider::Config;
use akv_csi_provider::testkit::material::{OIDC_ISSUER, service_account_token};
use akv_csi_provider::testkit::world::{CLIENT_ID, NAMESPACE, SERVICE_ACCOUNT, VAULT};
use akv_csi_provider::testkit::{World, objects_yaml};
use tonic::Code;

const THREE: &[&str] = &[
    "objectName: a\nobjectType: secret",
    "objectName: b\nobjectType: secret",
    "objectName: c\nobjectType: secret",
];

async fn world(config: Config) -> World {
    let world = World::start(config).await;
    let vault = world.azure.vault(VAULT);
    for name in ["a", "b", "c"] {
        vault.secret(name, &format!("value-{name}"));
    }
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_polls_cost_one_exchange_per_service_account_token() {
    let world = world(Config::defaults()).await;
    let token = service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600);
    let attrs = world.spc_with_token(&objects_yaml(THREE), &token).build();
    for _ in 0..100 {
        let r = world.client().mount(&attrs, None, "420").await.unwrap();
        assert_eq!(r.files.len(), 3);
    }
    let counts = world.azure.counts();
    assert_eq!(counts.entra, 1, "{counts:?}");
    assert_eq!(counts.challenges, 1, "{counts:?}");
    assert_eq!(counts.gets, 300, "{counts:?}");

    // kubelet rotates the token: exactly one more exchange.
    let fresh = service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600);
    let attrs = world.spc_with_token(&objects_yaml(THREE), &fresh).build();
    world.client().mount(&attrs, None, "420").await.unwrap();
    assert_eq!(world.azure.counts().entra, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_never_served_to_another_service_account_token() {
    let world = world(Config::defaults()).await;
    // Pod A is federated; warm the caches with it.
    let a = world.spc(&objects_yaml(THREE)).build();
    world.client().mount(&a, None, "420").await.unwrap();
    // Pod B claims the same clientID with a service account that is not federated: it must be
    // refused by Entra, not served from A's cached token or A's warm clients.
    let b_token = service_account_token("other-namespace", "intruder", 3600);
    let b = world.spc_with_token(&objects_yaml(THREE), &b_token).build();
    for _ in 0..3 {
        let status = world.client().mount(&b, None, "420").await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{}", status.message());
        assert!(
            status
                .message()
                .contains("system:serviceaccount:other-namespace:intruder")
        );
    }
    // Once its federated credential exists, B succeeds with its own exchange.
    world.azure.federate(
        CLIENT_ID,
        OIDC_ISSUER,
        "system:serviceaccount:other-namespace:intruder",
    );
    tokio::time::sleep(Duration::from_secs(6)).await; // past the short memory of a rejection
    world.client().mount(&b, None, "420").await.unwrap();
    let calls = world.azure.entra_calls();
    // A; B rejected once (the rejection is remembered for a few seconds, so the next two
    // Mounts do not ask again); B again after the federated credential was created.
    assert_eq!(calls.len(), 3, "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_reads_are_coalesced() {
    let world = world(Config::defaults()).await;
    world.azure.set_latency(Duration::from_millis(300));
    let token = service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600);
    let attrs = world.spc_with_token(&objects_yaml(THREE), &token).build();
    // Warm up, so the next Mounts read with the token at once.
    world.client().mount(&attrs, None, "420").await.unwrap();
    let before = world.azure.counts();
    let mut mounts = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let client = world.client();
        let attrs = attrs.clone();
        mounts.spawn(async move { client.mount(&attrs, None, "420").await });
    }
    while let Some(r) = mounts.join_next().await {
        assert_eq!(r.unwrap().unwrap().files.len(), 3);
    }
    let after = world.azure.counts();
    // 20 Mounts × 3 objects, but identical reads in flight together share one GET.
    assert!(after.gets - before.gets <= 6, "{before:?} -> {after:?}");
    assert_eq!(after.entra, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_content_cache_is_opt_in_and_per_identity() {
    let mut config = Config::defaults();
    config.object_cache_ttl = Duration::from_secs(60);
    let world = world(config).await;
    let token = service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600);
    let attrs = world.spc_with_token(&objects_yaml(THREE), &token).build();
    for _ in 0..10 {
        world.client().mount(&attrs, None, "420").await.unwrap();
    }
    assert_eq!(world.azure.counts().gets, 3);
    // Another service-account token is another identity: it reads for itself.
    let other = world.spc(&objects_yaml(THREE)).build();
    world.client().mount(&other, None, "420").await.unwrap();
    assert_eq!(world.azure.counts().gets, 6);

    // Off by default: every Mount reads.
    let plain = world_default_gets().await;
    assert_eq!(plain, 30);
}

async fn world_default_gets() -> usize {
    let world = world(Config::defaults()).await;
    let attrs = world.spc(&objects_yaml(THREE)).build();
    for _ in 0..10 {
        world.client().mount(&attrs, None, "420").await.unwrap();
    }
    world.azure.counts().gets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_rate_to_a_vault_never_exceeds_the_budget() {
    // A small budget so that 4 Mounts × 30 objects outrun it: 20 units of burst, 40/s refill.
    let mut config = Config::defaults();
    config.upstream_burst = 20;
    config.upstream_requests_per_second = 40;
    let world = World::start(config).await;
    let vault = world.azure.vault(VAULT);
    let names: Vec<String> = (0..30).map(|i| format!("s{i}")).collect();
    for n in &names {
        vault.secret(n, "v");
    }
    let items: Vec<String> = names
        .iter()
        .map(|n| format!("objectName: {n}\nobjectType: secret"))
        .collect();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let started = Instant::now();
    let mut mounts = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let client = world.client();
        let attrs = world.spc(&objects_yaml(&items)).build();
        mounts.spawn(async move { client.mount(&attrs, None, "420").await });
    }
    while let Some(r) = mounts.join_next().await {
        assert_eq!(r.unwrap().unwrap().files.len(), 30);
    }
    let counts = world.azure.counts();
    assert!(counts.vault >= 120, "{counts:?}");
    // The bucket's arithmetic is proved exactly on the paused clock in src/http/budget; here
    // the fake sees it end to end. The burst goes at once, the rest at the refill rate, so
    // the run cannot be faster than (total − burst) / rate, and even with the scheduling
    // jitter of a loaded test machine no one-second window at the fake holds more than the
    // burst plus two seconds' refill.
    let total = counts.vault as f64;
    let floor = Duration::from_secs_f64((total - 20.0) / 40.0);
    assert!(
        started.elapsed() >= floor,
        "{:?} < {floor:?} for {total} requests",
        started.elapsed()
    );
    let peak = world.azure.max_vault_requests_in(Duration::from_secs(1));
    assert!(peak <= 20 + 80, "peak {peak} requests in one second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_mounts_of_one_new_identity_share_one_exchange() {
    let world = world(Config::defaults()).await;
    world.azure.set_latency(Duration::from_millis(100));
    let token = service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600);
    let attrs = world.spc_with_token(&objects_yaml(THREE), &token).build();
    let driver = world.client();
    let mut mounts = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let client = driver.clone();
        let attrs = attrs.clone();
        mounts.spawn(async move { client.mount(&attrs, None, "420").await });
    }
    while let Some(r) = mounts.join_next().await {
        assert_eq!(r.unwrap().unwrap().files.len(), 3);
    }
    assert_eq!(world.azure.counts().entra, 1, "{:?}", world.azure.counts());
}

/// The driver re-sends a Mount (its retry policy, kubelet's retry after a cancelled call, a
/// republish that overlaps the last one): an identical Mount arriving while the first is
/// still in flight joins its token exchange and reads instead of repeating them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_sent_mount_joins_the_work_in_flight() {
    let world = world(Config::defaults()).await;
    world.azure.set_latency(Duration::from_millis(400));
    let token = service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600);
    let attrs = world.spc_with_token(&objects_yaml(THREE), &token).build();
    let first = {
        let client = world.client();
        let attrs = attrs.clone();
        tokio::spawn(async move { client.mount(&attrs, None, "420").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = world.client().mount(&attrs, None, "420").await.unwrap();
    assert_eq!(second.files.len(), 3);
    assert_eq!(first.await.unwrap().unwrap().files.len(), 3);
    let counts = world.azure.counts();
    assert_eq!(counts.entra, 1, "{counts:?}");
    assert_eq!(
        counts.gets, 3,
        "one GET per object for both Mounts: {counts:?}"
    );
}

/// The first attempt's caller gives up (kubelet cancelled it, the connection broke) while its
/// work is in flight; the re-sent Mount still finds that work and finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_sent_mount_after_a_cancelled_one_reuses_its_work() {
    let world = world(Config::defaults()).await;
    world.azure.set_latency(Duration::from_millis(400));
    let token = service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600);
    let attrs = world.spc_with_token(&objects_yaml(THREE), &token).build();
    // Cold, the exchange is in flight when the caller gives up; then warm, the reads are.
    for (round, cancel_after) in [("cold", 200), ("warm", 200)] {
        let before = world.azure.counts();
        let client = world.client();
        let attempt = client.mount(&attrs, None, "420");
        let cancelled = tokio::time::timeout(Duration::from_millis(cancel_after), attempt).await;
        assert!(
            cancelled.is_err(),
            "{round}: the first attempt finished too soon"
        );
        let again = world.client().mount(&attrs, None, "420").await.unwrap();
        assert_eq!(again.files.len(), 3);
        let after = world.azure.counts();
        assert!(
            after.entra - before.entra <= 1,
            "{round}: {before:?} -> {after:?}"
        );
        assert_eq!(
            after.gets - before.gets,
            3,
            "{round}: {before:?} -> {after:?}"
        );
    }
    assert_eq!(world.azure.counts().entra, 1);
}

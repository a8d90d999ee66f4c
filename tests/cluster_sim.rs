//! Whole-cluster invariants of the per-vault budget on tokio's paused clock (the model is in
//! `cluster_sim/model.rs`; `cargo run --release --example cluster_sweep` prints the tables).
//! Each scenario is the production budget and retry code on N simulated nodes sharing one fake
//! vault that enforces Key Vault's 4,000 GETs per 10 s.

#[path = "cluster_sim/model.rs"]
mod model;

use std::time::Duration;

use model::*;

fn cold_start(rules: VaultRules, timeout: Duration) -> Scenario {
    // 10 nodes × 40 pods × 10 objects = 4,000 reads, all within 5 s: 10 nodes' bursts are
    // 2.5 times what the vault admits at once.
    Scenario {
        nodes: 10,
        pods_per_node: 40,
        objects: 10,
        start_spread: Duration::from_secs(5),
        running_per_node: 0,
        rules,
        timeout,
        run_for: Duration::from_secs(150),
        other_tenant: 0.0,
        settings: default_settings(),
        boot_pods: 0,
    }
}

/// No node ever sends more than burst + refill × 10 s in any 10 s window.
const NODE_SHARE: usize = 1000 + 100 * 10;

#[tokio::test(start_paused = true)]
async fn one_node_bursts_at_network_speed_and_stays_within_its_share() {
    for (pods, objects, within) in [(10, 50, 1.0), (200, 10, 11.0), (500, 10, 41.0)] {
        let o = run(Scenario {
            nodes: 1,
            pods_per_node: pods,
            objects,
            start_spread: Duration::ZERO,
            running_per_node: 0,
            rules: VaultRules::default(),
            timeout: Duration::from_secs(120),
            run_for: Duration::from_secs(60),
            other_tenant: 0.0,
            settings: default_settings(),
            boot_pods: 0,
        })
        .await;
        assert_eq!(o.started, pods, "{o:?}");
        assert_eq!(o.throttled, 0);
        // t(D) = RTT + max(0, D − B)/r.
        assert!(
            o.percentile(1.0) <= within,
            "{pods}×{objects}: {}",
            o.percentile(1.0)
        );
        assert!(o.max_node_window <= NODE_SHARE, "{}", o.max_node_window);
    }
}

#[tokio::test(start_paused = true)]
async fn cold_start_robustness_grid_never_livelocks() {
    for sliding in [true, false] {
        for count_429s in [false, true] {
            for retry_after in [None, Some(Duration::from_secs(1))] {
                for timeout in [Duration::from_secs(30), Duration::from_secs(120)] {
                    let rules = VaultRules {
                        sliding,
                        count_429s,
                        retry_after,
                        ..VaultRules::default()
                    };
                    let o = run(cold_start(rules, timeout)).await;
                    let label = format!(
                        "sliding {sliding}, 429s count {count_429s}, retry-after {retry_after:?}, deadline {timeout:?}"
                    );
                    // No livelock: every pod starts, within a few times the 25 s floor.
                    assert_eq!(o.started, o.pods, "{label}: {o:?}");
                    assert!(
                        o.percentile(1.0) < 100.0,
                        "{label}: last pod at {}",
                        o.percentile(1.0)
                    );
                    // Bounded amplification: the vault sees few requests it refuses.
                    assert!(
                        o.amplification() < 1.5,
                        "{label}: amplification {}",
                        o.amplification()
                    );
                    assert!(
                        o.max_node_window <= NODE_SHARE,
                        "{label}: {}",
                        o.max_node_window
                    );
                }
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn overloaded_rotation_sheds_re_mounts_and_still_starts_new_pods() {
    // 80 nodes × 25 running pods × 10 objects re-mounting every 2–3 min (~133 reads/s, a
    // third of the vault), a rollout of 400 new pods within 30 s and another tenant at 50/s.
    let o = run(Scenario {
        nodes: 80,
        pods_per_node: 5,
        objects: 10,
        start_spread: Duration::from_secs(30),
        running_per_node: 25,
        rules: VaultRules::default(),
        timeout: Duration::from_secs(120),
        run_for: Duration::from_secs(100),
        other_tenant: 50.0,
        settings: default_settings(),
        boot_pods: 0,
    })
    .await;
    assert_eq!(o.started, o.pods, "{o:?}");
    assert!(o.amplification() < 1.2, "{}", o.amplification());
    assert!(o.max_node_window <= NODE_SHARE);
    let other_share = o.other_throttled as f64 / o.other_sent.max(1) as f64;
    assert!(other_share < 0.2, "other tenant throttled {other_share}");
}

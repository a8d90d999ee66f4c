//! The whole-cluster sweep behind BENCHMARKS.md's throttling tables: the production budget and
//! retry code on simulated nodes sharing one fake vault (4,000 GETs per 10 s), on tokio's
//! paused clock, so minutes of cluster time take seconds.
//!
//! `cargo run --release --example cluster_sweep [-- --csv FILE]`
//!
//! With `--csv FILE` it also writes each cold-start variant's first-Mount times (one row per
//! pod: `scenario,seconds`), which `scripts/plot-cluster-sweep.py` draws as the PNG in
//! BENCHMARKS.md.

#[path = "../tests/cluster_sim/model.rs"]
mod model;

use std::time::Duration;

use model::*;

fn base() -> Scenario {
    Scenario {
        nodes: 1,
        pods_per_node: 0,
        objects: 10,
        start_spread: Duration::ZERO,
        running_per_node: 0,
        rules: VaultRules::default(),
        timeout: Duration::from_secs(120),
        run_for: Duration::from_secs(300),
        other_tenant: 0.0,
        settings: default_settings(),
        boot_pods: 0,
    }
}

fn row(label: &str, o: &Outcome) {
    let other = if o.other_sent > 0 {
        format!(
            "{:.1}%",
            100.0 * o.other_throttled as f64 / o.other_sent as f64
        )
    } else {
        "–".into()
    };
    println!(
        "| {label} | {}/{} | {:.2} s | {:.2} s | {:.2} s | {} | {} | {:.2} | {} | {} | {other} |",
        o.started,
        o.pods,
        o.percentile(0.5),
        o.percentile(0.99),
        o.percentile(1.0),
        o.accepted,
        o.throttled,
        o.amplification(),
        o.failed_mounts,
        o.shed_remounts,
    );
}

fn header(title: &str) {
    println!("### {title}\n");
    println!(
        "| scenario | new pods started | first mount p50 | p99 | max | GETs accepted | 429s | amplification | failed first Mounts | failed/shed re-mounts | other tenant 429s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(sweep());
}

/// First-Mount times of the cold-start variants, for `--csv`.
struct Curves {
    path: Option<String>,
    rows: String,
}

impl Curves {
    fn from_args() -> Self {
        let mut args = std::env::args().skip(1);
        let mut path = None;
        while let Some(arg) = args.next() {
            if arg == "--csv" {
                path = args.next();
            }
        }
        Curves {
            path,
            rows: "scenario,seconds\n".to_owned(),
        }
    }

    fn add(&mut self, label: &str, o: &Outcome) {
        for t in &o.first_mount {
            self.rows
                .push_str(&format!("{},{t:.3}\n", label.replace(',', ";")));
        }
    }

    fn write(&self) {
        if let Some(path) = &self.path {
            std::fs::write(path, &self.rows).expect("write the --csv file");
            println!("first-Mount times written to {path}");
        }
    }
}

async fn sweep() {
    let wall = std::time::Instant::now();
    let mut curves = Curves::from_args();
    header("One node, quiet vault (default flags: burst 1,000, refill 100/s)");
    for (pods, objects) in [(10, 50), (50, 10), (100, 10), (200, 10), (500, 10)] {
        let o = run(Scenario {
            pods_per_node: pods,
            objects,
            run_for: Duration::from_secs(100),
            ..base()
        })
        .await;
        row(
            &format!(
                "{pods} Mounts × {objects} objects at once (max per node in any 10 s: {})",
                o.max_node_window
            ),
            &o,
        );
    }
    println!();

    header(
        "100 nodes rotating (re-mount every 2–3 min) + a rollout of 500 pods over 30 s + another tenant at 50/s",
    );
    for (rho, running) in [(0.40, 24usize), (0.67, 40), (1.07, 64)] {
        let o = run(Scenario {
            nodes: 100,
            pods_per_node: 5,
            running_per_node: running,
            start_spread: Duration::from_secs(30),
            other_tenant: 50.0,
            ..base()
        })
        .await;
        row(&format!("ρ = {rho} ({running} pods/node × 10 objects)"), &o);
    }
    let o = run(Scenario {
        nodes: 100,
        running_per_node: 40,
        boot_pods: 110,
        other_tenant: 50.0,
        ..base()
    })
    .await;
    row(
        "node boot: 110 pods × 10 on one node, cluster at ρ = 0.67",
        &o,
    );
    println!();

    header("Cold start: 100 nodes × 40 pods × 10 objects created within 20 s (floor 100 s)");
    let cold = Scenario {
        nodes: 100,
        pods_per_node: 40,
        start_spread: Duration::from_secs(20),
        ..base()
    };
    let label = "sliding window, 429s not counted, no Retry-After, 120 s";
    let o = run(cold.clone()).await;
    row(label, &o);
    curves.add(label, &o);
    let label = "+ another tenant at 50/s";
    let o = run(Scenario {
        other_tenant: 50.0,
        ..cold.clone()
    })
    .await;
    row(label, &o);
    curves.add(label, &o);
    for (label, rules, timeout) in [
        (
            "fixed 10 s windows",
            VaultRules {
                sliding: false,
                ..VaultRules::default()
            },
            120,
        ),
        (
            "429s count against the limit",
            VaultRules {
                count_429s: true,
                ..VaultRules::default()
            },
            120,
        ),
        (
            "Retry-After: 1",
            VaultRules {
                retry_after: Some(Duration::from_secs(1)),
                ..VaultRules::default()
            },
            120,
        ),
        (
            "Retry-After: 10",
            VaultRules {
                retry_after: Some(Duration::from_secs(10)),
                ..VaultRules::default()
            },
            120,
        ),
        ("30 s deadline", VaultRules::default(), 30),
        (
            "fixed windows, 429s count, 30 s deadline",
            VaultRules {
                sliding: false,
                count_429s: true,
                ..VaultRules::default()
            },
            30,
        ),
    ] {
        let o = run(Scenario {
            rules,
            timeout: Duration::from_secs(timeout),
            ..cold.clone()
        })
        .await;
        row(label, &o);
        curves.add(label, &o);
    }
    println!();
    curves.write();

    header("Parameter sweep: burst B and refill r (cold start above, and one node's 200 × 10)");
    for burst in [500.0, 1000.0, 2000.0] {
        for refill in [50.0, 100.0, 200.0] {
            let settings = shape_of(burst, refill);
            let o = run(Scenario {
                settings,
                ..cold.clone()
            })
            .await;
            row(&format!("cold start, B = {burst}, r = {refill}"), &o);
            let o = run(Scenario {
                pods_per_node: 200,
                run_for: Duration::from_secs(100),
                settings,
                ..base()
            })
            .await;
            row(&format!("one node 200 × 10, B = {burst}, r = {refill}"), &o);
        }
    }
    println!(
        "\n(simulated on a paused clock; {:.1} s of CPU wall time)",
        wall.elapsed().as_secs_f64()
    );
}

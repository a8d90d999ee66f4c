//! Logging set-up. Level: `RUST_LOG` when set, else the reference's klog-style `-v`.

use tracing_subscriber::EnvFilter;

/// The filter for a klog verbosity: 0-1 info, 2-4 debug, 5+ trace (for this crate; others warn).
pub fn filter_for(verbosity: u8) -> EnvFilter {
    if let Ok(filter) = EnvFilter::try_from_default_env() {
        return filter;
    }
    let level = match verbosity {
        0 | 1 => "info",
        2..=4 => "debug",
        _ => "trace",
    };
    EnvFilter::new(format!("warn,akv_csi_provider={level}"))
}

/// Installs the global subscriber: human-readable lines, or JSON with `--log-format-json`.
pub fn init(verbosity: u8, json: bool) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter_for(verbosity))
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// The Prometheus metrics: the reference's two histograms (same names, labels and buckets, so
/// existing dashboards keep working; label values are bounded codes, never error text) and ours.
pub mod metrics {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::registry::Registry;
    use std::sync::atomic::AtomicU64;

    /// The reference provider's buckets, in seconds.
    pub const BUCKETS: [f64; 14] = [
        0.1, 0.2, 0.3, 0.4, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 15.0, 30.0,
    ];

    /// Labels of `keyvault_request`: what was read and how it ended (`error` empty on success,
    /// else a bounded code such as `not_found` or `throttled`).
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct KeyVaultLabels {
        pub object_type: String,
        pub object_name: String,
        pub error: String,
    }

    /// Labels of `grpc_request`.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct GrpcLabels {
        pub grpc_method: String,
        pub grpc_code: String,
    }

    /// Labels keyed by vault.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct VaultLabels {
        pub vault: String,
        pub reason: String,
    }

    /// Labels keyed by identity mode.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct ModeLabels {
        pub mode: String,
    }

    /// Labels keyed by upstream host (each vault, Entra).
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct HostLabels {
        pub vault: String,
    }

    /// Labels of `akv_vault_units`: units by how they ended (`accepted`, `throttled`, `shed`,
    /// `refused`).
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct UnitLabels {
        pub vault: String,
        pub outcome: String,
    }

    /// Labels of `akv_mounts_shed`: the Mount's class and why.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct ShedLabels {
        pub class: String,
        pub reason: String,
    }

    fn histogram() -> Histogram {
        Histogram::new(BUCKETS)
    }

    /// The per-host budget's metrics (`crate::http::budget`).
    #[derive(Clone, Debug)]
    pub struct BudgetMetrics {
        /// 0 open, 1 paused, 2 throttled.
        pub state: Family<HostLabels, Gauge>,
        /// Units per second allowed now.
        pub rate: Family<HostLabels, Gauge<f64, AtomicU64>>,
        /// Time from asking to sending, seconds.
        pub queue_wait: Histogram,
        /// Requests (of Mounts) refused before sending.
        pub shed: Family<ShedLabels, Counter>,
        pub units: Family<UnitLabels, Counter>,
    }

    impl BudgetMetrics {
        fn new() -> Self {
            BudgetMetrics {
                state: Family::default(),
                rate: Family::default(),
                queue_wait: Histogram::new([
                    0.001, 0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
                ]),
                shed: Family::default(),
                units: Family::default(),
            }
        }

        fn register(&self, registry: &mut Registry) {
            registry.register(
                "akv_vault_state",
                "Budget state per upstream host: 0 open, 1 paused (after a 429), 2 throttled (adaptive rate)",
                self.state.clone(),
            );
            registry.register(
                "akv_vault_rate",
                "Units per second this node may send to the host now",
                self.rate.clone(),
            );
            registry.register(
                "akv_vault_queue_wait_seconds",
                "Time requests waited for the host's budget",
                self.queue_wait.clone(),
            );
            registry.register(
                "akv_mounts_shed",
                "Requests refused before sending, by Mount class and reason (throttled, deadline, retry_budget)",
                self.shed.clone(),
            );
            registry.register(
                "akv_vault_units",
                "Budget units by outcome (accepted, throttled, shed, refused)",
                self.units.clone(),
            );
        }

        /// Metrics registered nowhere.
        pub fn unregistered() -> Self {
            Self::new()
        }
    }

    /// Every metric the provider exports. Cheap to clone (shared handles).
    #[derive(Clone, Debug)]
    pub struct Metrics {
        pub keyvault_request: Family<KeyVaultLabels, Histogram, fn() -> Histogram>,
        pub grpc_request: Family<GrpcLabels, Histogram, fn() -> Histogram>,
        pub token_exchanges: Family<ModeLabels, Counter>,
        pub token_cache_hits: Family<ModeLabels, Counter>,
        pub retries: Family<VaultLabels, Counter>,
        pub mounts_in_flight: Gauge,
        pub files_written: Counter,
        pub objects_read: Counter,
        pub budget: BudgetMetrics,
    }

    impl Metrics {
        /// Creates the metrics and registers them in `registry`.
        pub fn register(registry: &mut Registry) -> Self {
            let m = Metrics {
                keyvault_request: Family::new_with_constructor(histogram as fn() -> Histogram),
                grpc_request: Family::new_with_constructor(histogram as fn() -> Histogram),
                token_exchanges: Family::default(),
                token_cache_hits: Family::default(),
                retries: Family::default(),
                mounts_in_flight: Gauge::default(),
                files_written: Counter::default(),
                objects_read: Counter::default(),
                budget: BudgetMetrics::new(),
            };
            m.budget.register(registry);
            registry.register(
                "keyvault_request",
                "Duration of Key Vault reads in seconds (as the reference provider)",
                m.keyvault_request.clone(),
            );
            registry.register(
                "grpc_request",
                "Duration of gRPC requests in seconds (as the reference provider)",
                m.grpc_request.clone(),
            );
            registry.register(
                "akv_token_exchanges",
                "Token requests sent to Entra ID, IMDS or NMI",
                m.token_exchanges.clone(),
            );
            registry.register(
                "akv_token_cache_hits",
                "Tokens served from the identity-keyed cache",
                m.token_cache_hits.clone(),
            );
            registry.register(
                "akv_keyvault_retries",
                "Key Vault requests retried, by vault and reason (throttled, unavailable)",
                m.retries.clone(),
            );
            registry.register(
                "akv_mounts_in_flight",
                "Mount calls being served",
                m.mounts_in_flight.clone(),
            );
            registry.register(
                "akv_files_written",
                "Files returned to the CSI driver",
                m.files_written.clone(),
            );
            registry.register(
                "akv_objects_read",
                "Objects read from Key Vault (after coalescing and caching)",
                m.objects_read.clone(),
            );
            m
        }

        /// Metrics registered nowhere (for code paths and tests that do not export them).
        pub fn unregistered() -> Self {
            Self::register(&mut Registry::default())
        }
    }
}

//! Process flags. Names, spellings and defaults follow the reference Go provider so an existing
//! DaemonSet or Helm values file keeps working; per-request parameters live in `spc::params`.
//! Above `mount`: [`Config::mount_settings`] turns the flags into the pipeline's settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::cloud::CloudName;
use crate::syntax::{parse_go_bool, parse_go_duration};
use crate::token_proxy;

/// Command line of `akv-csi-provider`. Without a subcommand the provider serves.
#[derive(Debug, Clone, Parser)]
#[command(name = "akv-csi-provider", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands other than serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the CSIDriverProvider API (the default when no subcommand is given).
    Serve,
    /// Validate the SecretProviderClasses in YAML manifests with the parser Mount uses, and
    /// print the files each would write. Exit 0 = all valid, 1 = any invalid, 2 = unreadable.
    Check(CheckArgs),
    /// Readiness probe (exec): exit 0 when the socket at `--endpoint` is served by this binary
    /// in this container's PID namespace and answers a health check within
    /// `--healthz-timeout`; else exit 1 with the reason.
    Ready,
}

/// Arguments of `check`, for SecretProviderClass authors and CI pipelines.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// YAML manifests (multi-document); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,

    /// Report format: `text` for people, `json` for CI pipelines.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// How `check` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One block per SecretProviderClass: verdict, files, problems, warnings.
    Text,
    /// One JSON object with every SecretProviderClass, for machines.
    Json,
}

/// Everything the serving process is configured with. Built once at start-up.
#[derive(Debug, Clone, Parser)]
pub struct Config {
    /// gRPC endpoint the CSI driver dials: `unix://` followed by an absolute socket path.
    #[arg(long, default_value = "unix:///tmp/azure.sock", value_parser = parse_endpoint)]
    pub endpoint: Endpoint,

    /// Port of the HTTP health endpoint.
    #[arg(long, default_value_t = 8989)]
    pub healthz_port: u16,

    /// Path of the HTTP health endpoint.
    #[arg(long, default_value = "/healthz")]
    pub healthz_path: String,

    /// How long the health endpoint waits for the gRPC server to answer (Go duration, e.g. `5s`).
    #[arg(long, default_value = "5s", value_parser = parse_go_duration)]
    pub healthz_timeout: Duration,

    /// Metrics backend; only `prometheus` is supported.
    #[arg(long, default_value = "prometheus", value_parser = ["prometheus"], ignore_case = true)]
    pub metrics_backend: String,

    /// Port serving Prometheus metrics at `/metrics`.
    #[arg(long, default_value_t = 8898)]
    pub prometheus_port: u16,

    /// Order the certificates of a PEM bundle leaf -> intermediates -> root.
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true",
          action = ArgAction::Set, value_parser = parse_go_bool)]
    pub construct_pem_chain: bool,

    /// Also write `<file>.crt` and `<file>.key` for certificate-backed secrets rendered as PEM.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true",
          action = ArgAction::Set, value_parser = parse_go_bool)]
    pub write_cert_and_key_in_separate_files: bool,

    /// Cloud used by SecretProviderClasses that do not set `cloudName`.
    #[arg(long, default_value = "AzurePublicCloud", value_parser = parse_cloud_name)]
    pub cloud_name: CloudName,

    /// Write logs as JSON lines instead of the human format.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true",
          action = ArgAction::Set, value_parser = parse_go_bool)]
    pub log_format_json: bool,

    /// klog-style verbosity of the reference (`-v=2`); 0-1 = info, 2-4 = debug, 5+ = trace.
    /// `RUST_LOG`, when set, takes precedence.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,

    /// Accepted for compatibility with the reference's flags; the provider sends its own
    /// user agent.
    #[arg(long, default_value = "")]
    pub custom_user_agent: String,

    /// Accepted for compatibility with the reference's flags; profiling is not served.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true",
          action = ArgAction::Set, value_parser = parse_go_bool)]
    pub enable_profile: bool,

    /// Accepted for compatibility with the reference's flags; profiling is not served.
    #[arg(long, default_value_t = 6065)]
    pub profile_port: u16,

    /// Longest a Mount may take (Go duration): the deadline is the earlier of this and the
    /// driver's `grpc-timeout` less a margin. 30 s puts our own message (which vault, why,
    /// how long the queue is) in the pod's FailedMount event long before kubelet's 2 min
    /// deadline would replace it with a bare `DeadlineExceeded`, and kubelet's backoff retries.
    #[arg(long, default_value = "30s", value_parser = parse_go_duration)]
    pub mount_timeout: Duration,

    /// Objects read from Key Vault at the same time within one Mount.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_concurrent_reads: u16,

    /// Serve identical reads (same identity, vault, object, version) from memory for this long
    /// (Go duration; `0s` = off). Saves Key Vault GETs on rotation polls at the cost of seeing
    /// a new version, or a revoked permission, up to this much later.
    #[arg(long, default_value = "0s", value_parser = parse_go_duration)]
    pub object_cache_ttl: Duration,

    /// Identities (and their Key Vault clients) kept warm across Mounts; least recently used
    /// go first. A workload identity is never kept past its service-account token's expiry.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_cached_identities: u16,

    /// Refill rate of each upstream host's budget (each vault, Entra), in units per second
    /// (one unit = one secret GET; HSM and large RSA keys cost more). With the burst, one node
    /// takes at most burst + 10 × this per 10 s: 2,000 of a vault's 4,000 by default. `0` = no
    /// pacing (the shared 429 pause still applies).
    #[arg(long, default_value_t = 100)]
    pub upstream_requests_per_second: u32,

    /// Size of each upstream host's budget in units: a burst this big goes out at network
    /// speed while the host is quiet (a quarter of Key Vault's 4,000 per 10 s).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub upstream_burst: u32,

    /// Units per 10 s this node may take from any one host, for operators who know their
    /// cluster size (e.g. 0.7 × 4,000 / nodes); burst and refill are scaled down together to
    /// fit. `0` = no share (burst and refill alone).
    #[arg(long, default_value_t = 0)]
    pub upstream_vault_share: u32,

    /// Requests in flight at once to any one upstream host from this node.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_requests_per_host: u32,

    /// When the endpoint path holds a live server's socket, replace it atomically (bind at a
    /// temporary name, `rename(2)` over the path) instead of refusing to start: the surge
    /// rollout's hand-over. A non-socket file is never replaced.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true",
          action = ArgAction::Set, value_parser = parse_go_bool)]
    pub socket_takeover: bool,

    /// How long in-flight calls may take to finish after SIGTERM/SIGINT before the process exits.
    #[arg(long, default_value = "30s", value_parser = parse_go_duration)]
    pub shutdown_grace: Duration,

    /// Environment file used for `AzureStackCloud` when a SecretProviderClass names none
    /// (the reference's `AZURE_ENVIRONMENT_FILEPATH` convention).
    #[arg(long, env = "AZURE_ENVIRONMENT_FILEPATH", hide_env_values = true)]
    pub azure_environment_filepath: Option<PathBuf>,

    /// Identity binding (`useAzureTokenProxy`): URL of the cluster's token proxy (`https`, no
    /// query); empty = the default.
    #[arg(long, default_value = token_proxy::DEFAULT_URL, value_parser = token_proxy::parse_url)]
    pub token_proxy_url: url::Url,

    /// Identity binding: TLS server name of the token proxy; empty = computed at start from the
    /// API server's certificate (its `hcp-kubernetes.<cluster ID>.svc.cluster.local` name).
    #[arg(long, default_value = "", value_parser = token_proxy::parse_server_name)]
    pub sni_name: String,

    /// Identity binding: the cluster CA bundle the token proxy is verified against (kubelet's
    /// `kube-root-ca.crt`), re-read when it changes.
    #[arg(long, default_value = token_proxy::DEFAULT_CA_FILE)]
    pub token_proxy_ca_file: PathBuf,
}

impl Config {
    /// The per-Mount settings these flags imply.
    pub fn mount_settings(&self) -> crate::mount::MountSettings {
        crate::mount::MountSettings {
            defaults: crate::spc::PlanDefaults {
                cloud: self.cloud_name,
                environment_file: self.azure_environment_filepath.clone(),
            },
            render: crate::render::RenderOptions {
                construct_pem_chain: self.construct_pem_chain,
                write_cert_and_key_in_separate_files: self.write_cert_and_key_in_separate_files,
            },
            timeout: self.mount_timeout,
            max_parallel_reads: usize::from(self.max_concurrent_reads),
            retry: crate::keyvault::retry::RetryPolicy::default(),
            object_cache_ttl: self.object_cache_ttl,
            max_cached_identities: usize::from(self.max_cached_identities),
        }
    }

    /// The per-host budget these flags imply.
    pub fn budget_settings(&self) -> crate::http::BudgetSettings {
        crate::http::BudgetSettings {
            shape: crate::http::budget::Shape {
                burst: f64::from(self.upstream_burst),
                refill: f64::from(self.upstream_requests_per_second),
                jitter: true,
            },
            share: (self.upstream_vault_share > 0).then_some(self.upstream_vault_share),
            max_in_flight: self.max_concurrent_requests_per_host,
        }
    }

    /// How identity binding reaches the token proxy. The API server is dialed (to compute the
    /// server name) at the proxy URL's port when it names one, else at `KUBERNETES_SERVICE_PORT`
    /// (the Go provider's choice), else 443.
    pub fn token_proxy_settings(&self) -> token_proxy::TokenProxySettings {
        let service_port = std::env::var("KUBERNETES_SERVICE_PORT")
            .ok()
            .and_then(|p| p.trim().parse().ok());
        token_proxy::TokenProxySettings {
            url: self.token_proxy_url.clone(),
            server_name: (!self.sni_name.is_empty()).then(|| self.sni_name.clone()),
            ca_file: self.token_proxy_ca_file.clone(),
            detect_port: self.token_proxy_url.port().or(service_port).unwrap_or(443),
        }
    }

    /// The configuration `akv-csi-provider` would run with given no flags at all.
    pub fn defaults() -> Self {
        // Parsing an empty command line cannot fail: every flag has a default.
        Config::try_parse_from(["akv-csi-provider"])
            .unwrap_or_else(|e| unreachable!("flag defaults must parse: {e}"))
    }
}

/// Where the gRPC server listens. Only Unix sockets: the driver dials nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Absolute path of the Unix socket.
    pub path: PathBuf,
}

fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    let path = s.strip_prefix("unix://").ok_or_else(|| {
        format!("endpoint {s:?} must start with unix:// (e.g. unix:///provider/azure.sock)")
    })?;
    if !path.starts_with('/') {
        return Err(format!(
            "endpoint {s:?} must name an absolute socket path (unix:///dir/azure.sock)"
        ));
    }
    Ok(Endpoint {
        path: PathBuf::from(path),
    })
}

fn parse_cloud_name(s: &str) -> Result<CloudName, String> {
    CloudName::parse(s).ok_or_else(|| format!("unknown cloud {s:?}; {}", CloudName::EXPECTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("akv-csi-provider").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_reference() {
        let c = Config::defaults();
        assert_eq!(c.endpoint.path, PathBuf::from("/tmp/azure.sock"));
        assert_eq!(c.healthz_port, 8989);
        assert_eq!(c.healthz_path, "/healthz");
        assert_eq!(c.healthz_timeout, Duration::from_secs(5));
        assert_eq!(c.metrics_backend, "prometheus");
        assert_eq!(c.prometheus_port, 8898);
        assert!(c.construct_pem_chain);
        assert!(!c.write_cert_and_key_in_separate_files);
        assert_eq!(c.cloud_name, CloudName::AzurePublicCloud);
        assert!(!c.log_format_json);
        // Refusing a live socket is the safe default; the chart turns the hand-over on.
        assert!(!c.socket_takeover);
        assert!(parse(&["--socket-takeover"]).unwrap().socket_takeover);
        assert!(!parse(&["--socket-takeover=false"]).unwrap().socket_takeover);
        assert_eq!(
            c.token_proxy_url.as_str(),
            "https://kubernetes.default.svc.cluster.local/"
        );
        assert_eq!(c.sni_name, "");
        assert_eq!(
            c.token_proxy_ca_file,
            PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
        );
        assert_eq!(c.token_proxy_settings().server_name, None);
    }

    #[test]
    fn identity_binding_flags() {
        // The Go provider's DaemonSet may pass them empty.
        let c = parse(&["--token-proxy-url=", "--sni-name="]).unwrap();
        assert_eq!(
            c.token_proxy_url.host_str(),
            Some("kubernetes.default.svc.cluster.local")
        );
        assert_eq!(c.token_proxy_settings().server_name, None);
        let c = parse(&[
            "--token-proxy-url=https://10.0.0.1:8443",
            "--sni-name=Aeaf29.ests.aks",
            "--token-proxy-ca-file=/etc/kube/ca.crt",
        ])
        .unwrap();
        let s = c.token_proxy_settings();
        assert_eq!(s.server_name.as_deref(), Some("aeaf29.ests.aks"));
        assert_eq!(s.detect_port, 8443);
        assert_eq!(s.ca_file, PathBuf::from("/etc/kube/ca.crt"));
        assert!(parse(&["--token-proxy-url=http://kubernetes.default.svc"]).is_err());
        assert!(parse(&["--sni-name=not a name"]).is_err());
    }

    #[test]
    fn boolean_flags_take_every_go_spelling() {
        for (args, want) in [
            (&["--construct-pem-chain=false"][..], false),
            (&["--construct-pem-chain=true"][..], true),
            (&["--construct-pem-chain"][..], true),
            (&["--construct-pem-chain=0"][..], false),
            (&["--construct-pem-chain=F"][..], false),
        ] {
            assert_eq!(parse(args).unwrap().construct_pem_chain, want, "{args:?}");
        }
        assert!(
            parse(&["--write-cert-and-key-in-separate-files"])
                .unwrap()
                .write_cert_and_key_in_separate_files
        );
        assert!(parse(&["--log-format-json=true"]).unwrap().log_format_json);
        assert!(parse(&["--construct-pem-chain=yes"]).is_err());
    }

    #[test]
    fn reference_daemonset_args_parse() {
        let c = parse(&[
            "--endpoint=unix:///provider/azure.sock",
            "--construct-pem-chain=true",
            "--healthz-port=8989",
            "--healthz-path=/healthz",
            "--healthz-timeout=5s",
            "--metrics-backend=Prometheus",
            "--prometheus-port=8898",
            "-v=2",
            "--log-format-json=false",
            "--cloud-name=AzureUSGovernmentCloud",
            "--custom-user-agent=me",
            "--enable-profile=false",
        ])
        .unwrap();
        assert_eq!(c.endpoint.path, PathBuf::from("/provider/azure.sock"));
        assert_eq!(c.verbosity, 2);
        assert_eq!(c.cloud_name, CloudName::AzureUSGovernmentCloud);
    }

    #[test]
    fn bad_flags_are_rejected() {
        assert!(parse(&["--endpoint=tcp://0.0.0.0:1"]).is_err());
        assert!(parse(&["--endpoint=unix://relative.sock"]).is_err());
        assert!(parse(&["--cloud-name=AzureCloud"]).is_err());
        assert!(parse(&["--healthz-timeout=5"]).is_err());
        assert!(parse(&["--metrics-backend=statsd"]).is_err());
    }

    #[test]
    fn check_subcommand() {
        let cli = Cli::try_parse_from(["akv-csi-provider", "check", "-o", "json", "a.yaml", "-"])
            .unwrap();
        match cli.command {
            Some(Command::Check(args)) => {
                assert_eq!(args.files, ["a.yaml", "-"]);
                assert_eq!(args.output, OutputFormat::Json);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["akv-csi-provider", "check", "a.yaml"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Check(a)) if a.output == OutputFormat::Text));
        assert!(Cli::try_parse_from(["akv-csi-provider", "check"]).is_err());
        assert!(Cli::try_parse_from(["akv-csi-provider", "check", "--output=xml", "a"]).is_err());
    }
}

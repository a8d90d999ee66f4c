//! akv-csi-provider: the Azure Key Vault provider for the Kubernetes Secrets Store CSI Driver.
//!
//! The driver calls us over a Unix socket (`proto/v1alpha1/service.proto`). A request flows:
//!
//! 1. [`server`] owns the socket (owner-only, stale-socket removal, graceful shutdown), puts an
//!    [`h2front::Front`] on each connection (so h2 accepts any `:authority`; old drivers send
//!    the socket path) and hands calls to [`grpc`], which decodes the `MountRequest` and is the
//!    only place errors become gRPC statuses;
//! 2. [`mount`], the pipeline, wires the rest: [`spc`] decodes the request and validates the
//!    SecretProviderClass into a typed [`spc::MountPlan`] (raw maps never travel further);
//!    [`auth`] gets an Entra token for the plan's identity; [`keyvault`] reads the objects
//!    (what it returns is [`keyvault::Fetched`]); [`render`] turns them into files.
//!
//! The modules form layers; each imports only modules below it (`tests/module_cycles.rs`
//! fails on any cycle, and on any import of `testkit`):
//!
//! | layer | modules |
//! |---|---|
//! | shared leaves | [`syntax`] (Go bool/duration spellings, quiet JSON errors), [`cache`], [`http`], [`telemetry`], [`client`], [`proto`], then [`token_proxy`] (identity binding's transport, on [`http`]) |
//! | the model | [`cloud`] (cloud names, endpoints) → [`spc`] (request, parameters, objects, token map, plan) |
//! | the work | [`auth`] (credentials) → [`keyvault`] (reads, [`keyvault::Fetched`]) → [`render`] (files, versions) |
//! | the pipeline | [`mount`] (plan → identity → reads → render, failure messages) |
//! | the edges | [`config`] (flags → settings), [`check`] (the `check` command, step 2 only), [`grpc`] and [`h2front`] (lets h2 accept any `:authority`) → [`server`], [`admin`] (`/healthz`, `/metrics`), this crate root |
//!
//! `testkit` (feature `testkit`) may use any of them; nothing in the library uses it.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod admin;
pub mod auth;
pub mod cache;
pub mod check;
pub mod client;
pub mod cloud;
pub mod config;
pub mod grpc;
pub mod h2front;
pub mod http;
pub mod keyvault;
pub mod mount;
pub mod render;
pub mod server;
pub mod spc;
pub mod syntax;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod token_proxy;

/// Code generated from `proto/v1alpha1/service.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("v1alpha1");
}

use std::future::Future;
use std::sync::Arc;

pub use config::Config;

/// Serves the provider on an already-bound listener until `shutdown` resolves, sending Entra
/// and Key Vault requests through the production HTTPS client (system roots plus
/// `SSL_CERT_FILE` / `SSL_CERT_DIR`), and identity binding's token requests through
/// [`token_proxy`] (the cluster CA only).
pub async fn run(
    listener: server::BoundSocket,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let client = http::production_client(&http::TrustSources::from_env())?;
    run_with_http(listener, config, Arc::new(client), shutdown).await
}

/// Like [`run`], with a caller-provided HTTP client (the test kit's, which resolves Azure host
/// names to local fakes and trusts a test CA). Bodies are capped, token-endpoint answers read
/// before the SDK parses them, and per-host budgets applied here, whatever the client. Also serves `/healthz` and `/metrics` on their ports (a port of
/// 0 turns its endpoint off).
pub async fn run_with_http(
    listener: server::BoundSocket,
    config: &Config,
    http: Arc<dyn azure_core::http::HttpClient>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = telemetry::metrics::Metrics::register(&mut registry);
    // One budget per upstream host for the whole node, shared by every Mount.
    let budgets = Arc::new(http::Budgets::new(
        config.budget_settings(),
        metrics.budget.clone(),
    ));
    let http: Arc<dyn azure_core::http::HttpClient> = Arc::new(http::BudgetClient::new(
        Arc::new(http::TokenEndpointClient::new(Arc::new(
            http::CappedClient::new(http, http::MAX_BODY_BYTES),
        ))),
        budgets.clone(),
    ));
    // Identity binding's token requests: their own TLS trust and server name (the proxy caps
    // bodies itself), the same per-host budgets.
    let token_proxy: Arc<dyn azure_core::http::HttpClient> = Arc::new(http::BudgetClient::new(
        token_proxy::TokenProxy::start(config.token_proxy_settings()),
        budgets.clone(),
    ));
    let mounter = Arc::new(
        mount::Mounter::new(config.mount_settings(), http, metrics.clone())
            .with_budgets(budgets)
            .with_token_proxy(token_proxy),
    );

    // One shutdown signal for the gRPC server and both HTTP endpoints.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let mut admin = Vec::new();
    if config.healthz_port != 0 {
        let listener = admin::bind(config.healthz_port).map_err(|source| RunError::Admin {
            port: config.healthz_port,
            source,
        })?;
        let check = admin::HealthCheck {
            socket: config.endpoint.path.clone(),
            path: config.healthz_path.clone(),
            timeout: config.healthz_timeout,
        };
        admin.push(tokio::spawn(admin::serve_health(
            listener,
            check,
            stopped(),
        )));
    }
    if config.prometheus_port != 0 {
        let listener = admin::bind(config.prometheus_port).map_err(|source| RunError::Admin {
            port: config.prometheus_port,
            source,
        })?;
        admin.push(tokio::spawn(admin::serve_metrics(
            listener,
            Arc::new(registry),
            stopped(),
        )));
    }
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let service = grpc::ProviderService::new(mounter, metrics);
    let result = server::serve(listener, service, config.shutdown_grace, signal).await;
    for task in admin {
        task.abort();
    }
    Ok(result?)
}

/// Why the provider stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The HTTPS client could not be built (no trusted roots).
    #[error(transparent)]
    Http(#[from] http::HttpError),
    /// The gRPC server failed.
    #[error(transparent)]
    Serve(#[from] server::ServeError),
    /// The health or metrics port could not be bound.
    #[error("cannot listen on port {port} (--healthz-port / --prometheus-port): {source}")]
    Admin {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

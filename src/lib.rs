//! akv-csi-provider: the Azure Key Vault provider for the Kubernetes Secrets Store CSI Driver.
//!
//! The driver calls us over a Unix socket (`proto/v1alpha1/service.proto`). A request flows:
//!
//! 1. [`grpc`] decodes the `MountRequest` and is the only place errors become gRPC statuses;
//! 2. [`mount::request`] decodes the JSON strings, [`mount::params`] and [`mount::objects`]
//!    validate them into a typed [`mount::MountPlan`] (raw maps never travel further);
//! 3. later stages obtain an Entra token for the plan's identity, read Key Vault and render files.
//!
//! [`server`] owns the socket (owner-only, stale-socket removal, graceful shutdown);
//! [`config`] the process flags; [`cloud`] the Azure clouds and their endpoints.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod auth;
pub mod client;
pub mod cloud;
pub mod config;
pub mod grpc;
pub mod http;
pub mod keyvault;
pub mod mount;
pub mod render;
pub mod server;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;

/// Code generated from `proto/v1alpha1/service.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("v1alpha1");
}

use std::future::Future;
use std::sync::Arc;

use tokio::net::UnixListener;

pub use config::Config;

/// Serves the provider on an already-bound listener until `shutdown` resolves. Tests bind a
/// temp-dir socket themselves and pass their own shutdown future.
pub async fn run(
    listener: UnixListener,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), server::ServeError> {
    let mounter = Arc::new(mount::Mounter::new(mount::PlanDefaults {
        cloud: config.cloud_name,
        environment_file: config.azure_environment_filepath.clone(),
    }));
    server::serve(listener, mounter, config.shutdown_grace, shutdown).await
}

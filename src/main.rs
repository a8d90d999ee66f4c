//! Entry point: parse flags, set up logging, bind the socket, serve until SIGTERM/SIGINT;
//! or, with `check`, validate SecretProviderClass manifests and exit.

use std::process::ExitCode;

use akv_csi_provider::config::{Cli, Command};
use akv_csi_provider::{check, server, telemetry};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info};

fn main() -> ExitCode {
    let Cli { config, command } = Cli::parse();
    match command.unwrap_or(Command::Serve) {
        Command::Serve => serve_until_signalled(config),
        Command::Check(args) => check::run(&args, &config.mount_settings().defaults),
    }
}

fn serve_until_signalled(config: akv_csi_provider::Config) -> ExitCode {
    telemetry::init(config.verbosity, config.log_format_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config))
}

async fn serve(config: akv_csi_provider::Config) -> ExitCode {
    let (listener, guard) = match server::bind(&config.endpoint.path) {
        Ok(socket) => socket.into_parts(),
        Err(e) => {
            error!(error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    info!(
        endpoint = %config.endpoint.path.display(),
        version = env!("CARGO_PKG_VERSION"),
        cloud = %config.cloud_name,
        "akv-csi-provider serving"
    );
    let shutdown = match shutdown_signal() {
        Ok(signal) => signal,
        Err(e) => {
            error!(error = %e, "cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let result = akv_csi_provider::run(listener, &config, shutdown).await;
    drop(guard);
    match result {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("received SIGTERM"),
            _ = int.recv() => info!("received SIGINT"),
        }
    })
}

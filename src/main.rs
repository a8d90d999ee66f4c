//! Entry point: parse flags, set up logging, bind the socket, serve until SIGTERM/SIGINT;
//! or, with `check`, validate SecretProviderClass manifests and exit; or, with `ready`, probe
//! whether this container's provider serves the socket (the readiness probe).

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
        Command::Ready => ready(&config),
    }
}

/// The readiness probe: one line on stdout (ready) or stderr (why not), exit 0 or 1.
fn ready(config: &akv_csi_provider::Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("not ready: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let path = &config.endpoint.path;
    match runtime.block_on(server::check_ready(path, config.healthz_timeout)) {
        Ok(ready) => {
            println!(
                "ready: {} is served by this container's provider (pid {})",
                path.display(),
                ready.pid
            );
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("not ready: {reason}");
            ExitCode::FAILURE
        }
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
    let socket = match server::bind(&config.endpoint.path, config.socket_takeover).await {
        Ok(socket) => socket,
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
    // The socket is removed on the way out, if the path still holds ours.
    let result = akv_csi_provider::run(socket, &config, shutdown).await;
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

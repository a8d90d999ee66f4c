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

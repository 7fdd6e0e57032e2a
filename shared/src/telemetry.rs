//! Structured logging: JSON lines to stdout and to a daily-rotated file per process.
//!
//! Each HTTP request runs inside a `request` span carrying its `request_id` (see
//! [`crate::http`]); JSON lines include the current span's fields, so every line a request
//! causes can be found by that id in the router's and the subgraphs' logs alike.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::LogSettings;

/// Keeps the file writer's background thread alive; logs are flushed when it drops.
#[must_use = "dropping the guard stops file logging"]
pub struct TelemetryGuard {
    _file_writer: WorkerGuard,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}")]
    Filter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("failed to open the log directory")]
    LogFile(#[source] tracing_appender::rolling::InitError),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled(#[source] tracing_subscriber::util::TryInitError),
}

/// Installs the global subscriber for `process` (used as the log file name).
pub fn init(process: &str, settings: &LogSettings, log_dir: &Path) -> Result<TelemetryGuard, TelemetryError> {
    let directives = settings.filter.clone().unwrap_or_else(|| settings.level.clone());
    let filter = EnvFilter::builder()
        .parse(&directives)
        .map_err(|source| TelemetryError::Filter {
            filter: directives.clone(),
            source,
        })?;
    let file_appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(process)
        .filename_suffix("log")
        .max_log_files(settings.retention_days.max(1))
        .build(log_dir)
        .map_err(TelemetryError::LogFile)?;
    let (file_writer, guard) = tracing_appender::non_blocking(file_appender);
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().json().with_current_span(true).with_span_list(false))
        .with(
            fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(file_writer),
        )
        .try_init()
        .map_err(TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { _file_writer: guard })
}

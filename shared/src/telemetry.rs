//! Structured logging and tracing: JSON lines to stdout and to a daily-rotated file per
//! process, and, when a collector is configured, OTLP trace export.
//!
//! Each HTTP request runs inside a `request` span carrying its `request_id` and, when the
//! caller is part of a trace (a W3C `traceparent` from the router or a client), its
//! `trace_id` (see [`crate::http`]). JSON lines include the current span's fields, so every
//! line a request causes can be found by either id in the router's and the subgraphs'
//! logs alike.
//!
//! OTLP export is optional (`OTEL_EXPORTER_OTLP_ENDPOINT`): without it no OpenTelemetry
//! layer is installed at all, so tracing costs nothing beyond the log lines.

use std::path::Path;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource, runtime::TokioCurrentThread, trace::SdkTracerProvider,
    trace::span_processor_with_async_runtime::BatchSpanProcessor,
};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::LogSettings;

/// Keeps the file writer's background thread and the trace exporter alive; logs are
/// flushed and pending spans exported when it drops.
#[must_use = "dropping the guard stops file logging and trace export"]
pub struct TelemetryGuard {
    _file_writer: WorkerGuard,
    tracer_provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("failed to flush traces on exit: {error}");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}")]
    Filter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("failed to create the log directory")]
    LogDirectory(#[source] std::io::Error),
    #[error("failed to open the log directory")]
    LogFile(#[source] tracing_appender::rolling::InitError),
    #[error("invalid OTLP endpoint {endpoint:?}")]
    Otlp {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled(#[source] tracing_subscriber::util::TryInitError),
}

/// Installs the global subscriber for `process` (the log file name and the traces'
/// `service.name`).
pub fn init(process: &str, settings: &LogSettings, log_dir: &Path) -> Result<TelemetryGuard, TelemetryError> {
    let directives = settings.filter.clone().unwrap_or_else(|| settings.level.clone());
    let filter = EnvFilter::builder()
        .parse(&directives)
        .map_err(|source| TelemetryError::Filter {
            filter: directives.clone(),
            source,
        })?;
    // The appender prunes old files before it writes its first one: the directory must
    // exist by then.
    std::fs::create_dir_all(log_dir).map_err(TelemetryError::LogDirectory)?;
    let file_appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(process)
        .filename_suffix("log")
        .max_log_files(settings.retention_days.max(1))
        .build(log_dir)
        .map_err(TelemetryError::LogFile)?;
    let (file_writer, guard) = tracing_appender::non_blocking(file_appender);
    let tracer_provider = settings
        .otlp_endpoint
        .as_deref()
        .filter(|endpoint| !endpoint.is_empty())
        .map(|endpoint| otlp_tracer_provider(process, endpoint))
        .transpose()?;
    let otel_layer = tracer_provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(process.to_owned())));
    tracing_subscriber::registry()
        .with(filter)
        .with(otel_layer)
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
    if let Some(endpoint) = &settings.otlp_endpoint {
        tracing::info!(%endpoint, "exporting traces over OTLP/HTTP");
    }
    Ok(TelemetryGuard {
        _file_writer: guard,
        tracer_provider,
    })
}

/// Spans are batched and exported from a thread of their own (a current-thread runtime),
/// so exporting never competes with request handling and works in any process.
fn otlp_tracer_provider(process: &str, endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let traces_url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url)
        .build()
        .map_err(|source| TelemetryError::Otlp {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let processor = BatchSpanProcessor::builder(exporter, TokioCurrentThread).build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(Resource::builder().with_service_name(process.to_owned()).build())
        .build())
}

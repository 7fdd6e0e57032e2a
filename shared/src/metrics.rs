//! Prometheus metrics of a process: one global recorder, rendered at `GET /metrics` by
//! every service ([`crate::http::service_router`]).
//!
//! Code anywhere records through the `metrics` facade (`metrics::counter!` …); this module
//! installs the Prometheus recorder on first use. A process has exactly one recorder, so
//! several services started in one test process share it; their series are told apart by
//! the `cache`/`service` labels.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder the first time.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        handle
    })
}

/// The metrics in the Prometheus text format.
pub fn render() -> String {
    prometheus().render()
}

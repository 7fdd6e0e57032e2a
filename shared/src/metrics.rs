//! Prometheus metrics of a process: one global recorder, rendered at `GET /metrics` by
//! every service ([`crate::http::service_router`]).
//!
//! Code anywhere records through the `metrics` facade (`metrics::counter!` …); this module
//! installs the Prometheus recorder on first use. A process has exactly one recorder, so
//! several services started in one test process share it; their series are told apart by
//! the `cache`/`service` labels.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram buckets (Prometheus histograms, so quantiles aggregate across replicas): from
/// a near-cache hit (sub-millisecond) to a request at its timeout.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder the first time.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS_SECONDS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
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

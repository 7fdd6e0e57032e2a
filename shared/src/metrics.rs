//! Prometheus metrics of a process: one global recorder, rendered at `GET /metrics` by
//! every service ([`crate::http::service_router`]).
//!
//! Code anywhere records through the `metrics` facade (`metrics::counter!` …); this module
//! installs the Prometheus recorder on first use. A process has exactly one recorder, so
//! several services started in one test process share it; their series are told apart by
//! the `cache`/`service` labels.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram buckets (Prometheus histograms, so quantiles aggregate across replicas): from
/// a near-cache hit (sub-millisecond) to a request at its timeout.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

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
        keep_up(handle.clone());
        handle
    })
}

/// A recorder built by hand (not `install()`) keeps every histogram sample until
/// something drains it, and only a scrape did: a process nobody scraped kept every
/// request's timing samples in memory. A thread of its own rather than a task, because
/// the first caller's runtime may be one of many short-lived ones (tests start services
/// on theirs).
fn keep_up(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                handle.run_upkeep();
            }
        });
    if let Err(error) = started {
        tracing::warn!(%error, "failed to start the metrics upkeep thread; histograms drain only when scraped");
    }
}

/// The metrics in the Prometheus text format.
pub fn render() -> String {
    prometheus().render()
}

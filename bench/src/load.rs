//! The load generator: a fixed number of clients, each running one scenario iteration after
//! another for a fixed time after a warm-up, with latencies in an HdrHistogram.
//!
//! Closed-loop on purpose: a client sends its next request when the previous one is
//! answered, so throughput is what the target sustains at that concurrency and latency is
//! what each client waited. Responses are only scanned for an `"errors"` key, never
//! parsed, so the generator spends as little of the shared CPU as it can.

use std::{
    collections::BTreeMap,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

/// One iteration of a scenario for client `client` (0-based), its `n`th: sends its
/// request(s) and says whether they succeeded.
pub type Iteration =
    Arc<dyn Fn(reqwest::Client, usize, u64) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What one measurement saw.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub iterations: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Microseconds per successful iteration.
    pub latency: Histogram<u64>,
    pub first_error: Option<String>,
    /// Failed iterations by kind: `HTTP 503`, `TRANSPORT`, or the GraphQL error's code.
    pub error_kinds: BTreeMap<String, u64>,
}

impl LoadResult {
    pub fn throughput(&self) -> f64 {
        (self.iterations - self.errors) as f64 / self.elapsed.as_secs_f64()
    }

    /// The `quantile` latency in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }
}

/// A client for one measurement: its own connection pool, so targets never share one.
pub fn client(concurrency: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Runs `iteration` from `concurrency` clients: `warmup` unmeasured, then `measure`.
pub async fn drive(concurrency: usize, warmup: Duration, measure: Duration, iteration: Iteration) -> LoadResult {
    let http = client(concurrency);
    let started = Instant::now();
    let measure_from = started + warmup;
    let until = measure_from + measure;
    let clients = (0..concurrency).map(|client_index| {
        let http = http.clone();
        let iteration = iteration.clone();
        tokio::spawn(async move {
            let mut latency = new_histogram();
            let (mut iterations, mut errors, mut first_error) = (0u64, 0u64, None);
            let mut error_kinds: BTreeMap<String, u64> = BTreeMap::new();
            let mut n = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                let outcome = iteration(http.clone(), client_index, n).await;
                n += 1;
                if sent < measure_from {
                    continue;
                }
                iterations += 1;
                match outcome {
                    Ok(()) => {
                        let micros = sent.elapsed().as_micros().max(1) as u64;
                        let _ = latency.record(micros.min(latency.high()));
                    }
                    Err(error) => {
                        errors += 1;
                        *error_kinds.entry(error_kind(&error)).or_default() += 1;
                        first_error.get_or_insert(error);
                    }
                }
            }
            (latency, iterations, errors, first_error, error_kinds)
        })
    });
    let mut result = LoadResult {
        iterations: 0,
        errors: 0,
        elapsed: measure,
        latency: new_histogram(),
        first_error: None,
        error_kinds: BTreeMap::new(),
    };
    for joined in futures::future::join_all(clients).await {
        let Ok((latency, iterations, errors, first_error, error_kinds)) = joined else {
            result.errors += 1;
            continue;
        };
        for (kind, count) in error_kinds {
            *result.error_kinds.entry(kind).or_default() += count;
        }
        let _ = result.latency.add(&latency);
        result.iterations += iterations;
        result.errors += errors;
        if result.first_error.is_none() {
            result.first_error = first_error;
        }
    }
    // The last iterations may end after `until`: count the time they actually took.
    result.elapsed = started.elapsed().saturating_sub(warmup).max(measure);
    result
}

/// What kind of failure an iteration's error (as [`post`] words it) is: the HTTP status
/// of a non-2xx answer, `TRANSPORT` for a request that got no answer, else the first
/// GraphQL error's `extensions.code` (`UNCODED` when it has none).
pub fn error_kind(error: &str) -> String {
    if let Some(status) = error.strip_prefix("HTTP ") {
        return format!("HTTP {}", status.split(':').next().unwrap_or(status).trim());
    }
    if error.starts_with("send:") || error.starts_with("read:") {
        return "TRANSPORT".to_owned();
    }
    let marker = "\"code\":\"";
    error
        .find(marker)
        .map(|at| &error[at + marker.len()..])
        .and_then(|rest| rest.split('"').next())
        .map_or_else(|| "UNCODED".to_owned(), str::to_owned)
}

/// 1 µs to 60 s at 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

/// POSTs a GraphQL request and fails on a non-2xx status or an `errors` key.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
) -> Result<bytes::Bytes, String> {
    let mut request = http.post(url).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|error| format!("send: {error}"))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|error| format!("read: {error}"))?;
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(1000)])
        ));
    }
    if contains(&bytes, b"\"errors\"") {
        return Err(String::from_utf8_lossy(&bytes[..bytes.len().min(1000)]).into_owned());
    }
    Ok(bytes)
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

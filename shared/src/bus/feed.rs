//! The embedded event log over HTTP: how a consumer in another process reads a
//! publishing service's topics when no Kafka is configured.
//!
//! The publishing service mounts [`feed_routes`] (internal routes, never exposed through
//! the router); consumers elsewhere use [`RemoteLog`], a [`LogSource`] speaking to them.
//! Reads long-poll, so a new event reaches a remote consumer within one poll interval
//! without busy requests.
//!
//! - `GET  /internal/events/{topic}?after=&max=&waitMs=` → a [`LogBatch`]
//! - `GET  /internal/events/{topic}/groups/{group}` → `{"committedOffset": n}`
//! - `PUT  /internal/events/{topic}/groups/{group}` with `{"committedOffset": n}`
//! - `POST /internal/events/{topic}` with `{"key": …, "record": …}`: dead letters only

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    routing::get,
};
use serde::{Deserialize, Serialize};

use super::log::{EmbeddedLog, LogBatch, LogError, LogSource};
use crate::AppError;

/// Longest wait a reader may ask for; well inside the services' request timeout.
const MAX_WAIT: Duration = Duration::from_secs(10);
/// Most records per read.
const MAX_BATCH: u64 = 1000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReadParams {
    #[serde(default)]
    after: i64,
    max: Option<u64>,
    wait_ms: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CommittedOffset {
    committed_offset: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadLetter {
    key: Option<String>,
    record: serde_json::Value,
}

/// The internal routes serving `log`.
pub fn feed_routes(log: EmbeddedLog) -> Router {
    Router::new()
        .route("/internal/events/{topic}", get(read).post(append_dead_letter))
        .route("/internal/events/{topic}/groups/{group}", get(committed).put(commit))
        .with_state(log)
}

/// Topic and group names are short dotted identifiers: anything else is a mistake.
fn checked_name<'a>(field: &str, name: &'a str) -> Result<&'a str, AppError> {
    let valid = !name.is_empty()
        && name.len() <= 120
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if valid {
        Ok(name)
    } else {
        Err(AppError::bad_input(
            field,
            "must be 1–120 characters of a-z, 0-9, '.', '_', '-'",
        ))
    }
}

fn to_app_error(error: LogError) -> AppError {
    match error {
        LogError::Refused(message) => AppError::bad_input("topic", message),
        other => AppError::Unavailable(other.into()),
    }
}

#[tracing::instrument(skip(log))]
async fn read(
    State(log): State<EmbeddedLog>,
    Path(topic): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<Json<LogBatch>, AppError> {
    let topic = checked_name("topic", &topic)?;
    if params.after < 0 {
        return Err(AppError::bad_input("after", "must not be negative"));
    }
    let max = params.max.unwrap_or(500).clamp(1, MAX_BATCH);
    let wait = Duration::from_millis(params.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    let batch = log.read(topic, params.after, max, wait).await.map_err(to_app_error)?;
    Ok(Json(batch))
}

#[tracing::instrument(skip(log))]
async fn committed(
    State(log): State<EmbeddedLog>,
    Path((topic, group)): Path<(String, String)>,
) -> Result<Json<CommittedOffset>, AppError> {
    let committed_offset = log
        .committed(checked_name("group", &group)?, checked_name("topic", &topic)?)
        .await
        .map_err(to_app_error)?;
    Ok(Json(CommittedOffset { committed_offset }))
}

#[tracing::instrument(skip(log))]
async fn commit(
    State(log): State<EmbeddedLog>,
    Path((topic, group)): Path<(String, String)>,
    Json(body): Json<CommittedOffset>,
) -> Result<StatusCode, AppError> {
    if body.committed_offset < 0 {
        return Err(AppError::bad_input("committedOffset", "must not be negative"));
    }
    log.commit(
        checked_name("group", &group)?,
        checked_name("topic", &topic)?,
        body.committed_offset,
    )
    .await
    .map_err(to_app_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[tracing::instrument(skip(log, body))]
async fn append_dead_letter(
    State(log): State<EmbeddedLog>,
    Path(topic): Path<String>,
    Json(body): Json<DeadLetter>,
) -> Result<StatusCode, AppError> {
    log.append_dead_letter(checked_name("topic", &topic)?, body.key.as_deref(), &body.record)
        .await
        .map_err(to_app_error)?;
    Ok(StatusCode::CREATED)
}

/// Another service's embedded log, read over HTTP.
pub struct RemoteLog {
    /// The publishing service's origin, e.g. `http://127.0.0.1:4004`.
    origin: String,
    http: reqwest::Client,
}

impl RemoteLog {
    /// The log of the service whose GraphQL endpoint is `graphql_url`.
    pub fn new(graphql_url: &str) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let origin = crate::config::origin_of(graphql_url);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            // Long enough for the longest long-poll plus the reply.
            .timeout(MAX_WAIT + Duration::from_secs(5))
            .build()
            .context("failed to build the event feed's HTTP client")?;
        Ok(Self { origin, http })
    }

    fn failed(&self, reason: impl std::fmt::Display) -> LogError {
        LogError::Remote {
            origin: self.origin.clone(),
            reason: reason.to_string(),
        }
    }

    async fn checked(&self, response: reqwest::Result<reqwest::Response>) -> Result<reqwest::Response, LogError> {
        let response = response.map_err(|error| self.failed(error))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            Err(self.failed(format!("{status}: {}", body.chars().take(300).collect::<String>())))
        }
    }
}

#[async_trait::async_trait]
impl LogSource for RemoteLog {
    async fn read(&self, topic: &str, after: i64, max: u64, wait: Duration) -> Result<LogBatch, LogError> {
        let url = format!("{}/internal/events/{topic}", self.origin);
        let wait_ms = wait.min(MAX_WAIT).as_millis() as u64;
        let request = self.http.get(url).query(&[
            ("after", after.to_string()),
            ("max", max.to_string()),
            ("waitMs", wait_ms.to_string()),
        ]);
        let response = self.checked(request.send().await).await?;
        response.json().await.map_err(|error| self.failed(error))
    }

    async fn committed(&self, group: &str, topic: &str) -> Result<i64, LogError> {
        let url = format!("{}/internal/events/{topic}/groups/{group}", self.origin);
        let response = self.checked(self.http.get(url).send().await).await?;
        let body: CommittedOffset = response.json().await.map_err(|error| self.failed(error))?;
        Ok(body.committed_offset)
    }

    async fn commit(&self, group: &str, topic: &str, offset: i64) -> Result<(), LogError> {
        let url = format!("{}/internal/events/{topic}/groups/{group}", self.origin);
        let body = CommittedOffset {
            committed_offset: offset,
        };
        self.checked(self.http.put(url).json(&body).send().await)
            .await
            .map(drop)
    }

    async fn append_dead_letter(
        &self,
        topic: &str,
        key: Option<&str>,
        record: &serde_json::Value,
    ) -> Result<(), LogError> {
        let url = format!("{}/internal/events/{topic}", self.origin);
        let body = DeadLetter {
            key: key.map(str::to_owned),
            record: record.clone(),
        };
        self.checked(self.http.post(url).json(&body).send().await)
            .await
            .map(drop)
    }

    fn origin(&self) -> String {
        self.origin.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_and_group_names_are_short_lowercase_dotted_identifiers() {
        for name in [
            "catalog.product",
            "catalog.product.dlq",
            "cart.order-events",
            "catalog.price-history.g2",
        ] {
            assert!(checked_name("topic", name).is_ok(), "{name}");
        }
        let too_long = "a".repeat(121);
        for name in [
            "",
            "Catalog",
            "catalog product",
            "../etc",
            "catalog/product",
            too_long.as_str(),
        ] {
            assert!(checked_name("topic", name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn a_remote_log_lives_at_the_services_origin() {
        let log = RemoteLog::new("http://catalog:4002/graphql").unwrap();
        assert_eq!(log.origin(), "http://catalog:4002");
        let log = RemoteLog::new("http://catalog:4002/").unwrap();
        assert_eq!(log.origin(), "http://catalog:4002");
    }
}

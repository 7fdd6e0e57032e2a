//! Database connections: PostgreSQL when `DATABASE_URL` is set, an embedded SQLite file
//! per service otherwise.
//!
//! On PostgreSQL each service owns one schema (`catalog`, `identity`, `orders`) and
//! connects with its `search_path` set to it, so the services can share one database
//! server without seeing each other's tables, and each keeps its own migration history.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, RuntimeErr};
use sea_orm_migration::MigratorTrait;
use secrecy::ExposeSecret;

use crate::config::{Settings, display_path};

/// How long a pooled connection may sit idle before it is pinged on its way out of the
/// pool: well under the idle timeouts of servers, proxies and firewalls that drop
/// connections silently.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(30);

/// Which kind of database a service ended up on; logged at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres { schema: String },
    EmbeddedSqlite { path: String },
}

/// The `/ready` probes of a service's stores: its database, and Redis when it uses one.
pub fn store_probes(
    db: &DatabaseConnection,
    redis: Option<redis::aio::ConnectionManager>,
) -> Vec<std::sync::Arc<dyn crate::http::ReadinessProbe>> {
    let mut probes: Vec<std::sync::Arc<dyn crate::http::ReadinessProbe>> =
        vec![std::sync::Arc::new(DatabaseProbe(db.clone()))];
    if let Some(redis) = redis {
        probes.push(std::sync::Arc::new(crate::redis_store::RedisProbe(redis)));
    }
    probes
}

impl DatabaseKind {
    /// Says in the log which database `service` uses: the operator must be able to tell
    /// the embedded default from a configured PostgreSQL.
    pub fn log_ready(&self, service: &str) {
        match self {
            DatabaseKind::Postgres { schema } => {
                tracing::info!(service, database = "postgresql", schema, "database ready")
            }
            DatabaseKind::EmbeddedSqlite { path } => tracing::info!(
                service,
                database = "embedded-sqlite",
                path,
                "database ready (embedded default: DATABASE_URL is not set)"
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("failed to create the data directory {path}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to prepare schema {schema}")]
    Schema {
        schema: String,
        #[source]
        source: DbErr,
    },
    #[error("failed to connect to the database")]
    Connect(#[source] DbErr),
    #[error("failed to apply migrations")]
    Migrate(#[source] DbErr),
}

/// Connects the service `schema` to its database, creating the schema (PostgreSQL) or the
/// file (SQLite) when missing.
pub async fn connect(settings: &Settings, schema: &str) -> Result<(DatabaseConnection, DatabaseKind), DatabaseError> {
    match &settings.database_url {
        Some(url) => {
            let url = url.expose_secret();
            ensure_postgres_schema(url, schema).await?;
            let mut options = pool_options(url.to_owned(), settings.database_max_connections);
            options.set_schema_search_path(schema.to_owned());
            let connection = Database::connect(options).await.map_err(DatabaseError::Connect)?;
            Ok((
                connection,
                DatabaseKind::Postgres {
                    schema: schema.to_owned(),
                },
            ))
        }
        None => {
            let path = settings.embedded_database_path(schema);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| DatabaseError::DataDir {
                    path: display_path(parent),
                    source,
                })?;
            }
            let url = format!("sqlite://{}?mode=rwc", path.display());
            // One connection: SQLite serialises writers anyway, and a second connection's
            // deferred transaction that reads and then writes fails at once with "database
            // is locked" when another writer committed in between (measured: catalog
            // writes against the outbox relay). One connection makes every transaction
            // wait its turn instead.
            let mut options = pool_options(url, 1);
            // With one connection, waiting for it is queueing behind the other writers,
            // not a sign of an outage: give a loaded machine longer than PostgreSQL's
            // fail-fast bound before answering UNAVAILABLE.
            options.acquire_timeout(Duration::from_secs(15));
            let connection = Database::connect(options).await.map_err(DatabaseError::Connect)?;
            Ok((
                connection,
                DatabaseKind::EmbeddedSqlite {
                    path: display_path(&path),
                },
            ))
        }
    }
}

/// Connects and applies the service's pending migrations.
pub async fn connect_and_migrate<M: MigratorTrait>(
    settings: &Settings,
    schema: &str,
) -> Result<(DatabaseConnection, DatabaseKind), DatabaseError> {
    let (connection, kind) = connect(settings, schema).await?;
    M::up(&connection, None).await.map_err(DatabaseError::Migrate)?;
    Ok((connection, kind))
}

fn pool_options(url: String, max_connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections.max(1))
        .min_connections(1)
        // Fail fast when the database is gone: callers answer UNAVAILABLE instead of hanging.
        .connect_timeout(Duration::from_secs(3))
        .acquire_timeout(Duration::from_secs(3))
        .idle_timeout(Duration::from_secs(300))
        // SQLx pings every connection as it returns to the pool; pinging it again as it
        // leaves (the default) added a round trip to every pool checkout. Only a
        // connection idle long enough for a server, proxy or firewall to have dropped it
        // is pinged; a hot one that died since its release fails its statement with a
        // connection error (`UNAVAILABLE`) and is discarded.
        .test_before_acquire_if_idle_for(IDLE_BEFORE_PING)
        .sqlx_logging(false);
    options
}

async fn ensure_postgres_schema(url: &str, schema: &str) -> Result<(), DatabaseError> {
    let schema_error = |source| DatabaseError::Schema {
        schema: schema.to_owned(),
        source,
    };
    if !schema.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return Err(schema_error(DbErr::Custom(format!("invalid schema name {schema:?}"))));
    }
    let connection = Database::connect(pool_options(url.to_owned(), 1))
        .await
        .map_err(DatabaseError::Connect)?;
    connection
        .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .await
        .map_err(schema_error)?;
    connection.close().await.map_err(DatabaseError::Connect)?;
    Ok(())
}

/// Whether `error` means the database could not be reached (as opposed to a bad query).
/// Such errors surface to clients as `UNAVAILABLE`.
pub fn is_connection_error(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            is_sqlx_connection_error(inner)
        }
        _ => false,
    }
}

fn is_sqlx_connection_error(error: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match error {
        Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => true,
        // A server that ended the session (restart, `pg_terminate_backend`) says so on
        // the connection before closing it: the next statement reads that answer.
        Error::Database(error) => error.code().is_some_and(|code| is_connection_sqlstate(&code)),
        _ => false,
    }
}

/// SQLSTATE classes 08 (connection exception) and 57P (the server shut the session down
/// or cannot take it yet): the database is unreachable, not the statement wrong.
fn is_connection_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P")
}

/// Whether `error` is a unique-constraint violation, which callers map to `CONFLICT`.
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// Readiness probe for a database connection.
pub struct DatabaseProbe(pub DatabaseConnection);

#[async_trait::async_trait]
impl crate::http::ReadinessProbe for DatabaseProbe {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|error| {
            tracing::warn!(error = %error, "database readiness check failed");
            "unreachable".to_owned()
        })
    }
}

/// Number of SQL statements a connection has executed; how tests assert "one query per
/// batch" instead of assuming it.
#[derive(Debug, Clone, Default)]
pub struct StatementCounter(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl StatementCounter {
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Makes `db` count its statements and record their latency as the metric
/// `db_query_duration_seconds{service}`. Call before cloning the connection: clones made
/// earlier do not report.
pub fn instrument(db: &mut DatabaseConnection, service: &'static str) -> StatementCounter {
    let counter = StatementCounter::default();
    let shared = counter.0.clone();
    db.set_metric_callback(move |info| {
        shared.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        metrics::histogram!("db_query_duration_seconds", "service" => service).record(info.elapsed.as_secs_f64());
        if info.failed {
            metrics::counter!("db_query_errors_total", "service" => service).increment(1);
        }
    });
    counter
}

#[cfg(test)]
mod tests {
    use super::is_connection_sqlstate;

    #[test]
    fn a_session_the_server_ended_counts_as_unreachable_and_a_bad_statement_does_not() {
        for unreachable in ["08006", "08003", "57P01", "57P02", "57P03"] {
            assert!(is_connection_sqlstate(unreachable), "{unreachable}");
        }
        for statement_fault in ["23505", "40001", "42P01", "57014"] {
            assert!(!is_connection_sqlstate(statement_fault), "{statement_fault}");
        }
    }
}

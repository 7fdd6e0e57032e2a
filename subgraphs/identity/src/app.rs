//! Wiring of the identity service: database, keys, session store, schema, HTTP.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use uuid::Uuid;
use vitrina_migrations::identity::Migrator;
use vitrina_shared::{
    auth::{TokenValidator, sessions::SessionStatus},
    config::Settings,
    db,
    http::{HttpService, graphql_routes, service_router},
    redis_store,
};

use crate::{
    DATABASE_SCHEMA,
    accounts::{Accounts, SessionPolicy},
    bootstrap::{self, BootstrapOutcome},
    graphql,
    keys::{KeyPolicy, KeyRing},
    routes,
    sessions::{MemorySessions, RedisSessions, SessionStore},
    throttle::{Counters, LoginThrottle, MemoryCounters, RedisCounters, ThrottlePolicy},
    tokens::TokenIssuer,
};

/// How often identity re-reads its keys (rotation by another instance, or due rotation).
const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(300);

/// identity's own session check: its store, directly.
struct StoreSessionStatus(Arc<dyn SessionStore>);

#[async_trait::async_trait]
impl SessionStatus for StoreSessionStatus {
    async fn is_active(&self, session_id: Uuid) -> anyhow::Result<bool> {
        Ok(self.0.get(session_id).await?.is_some())
    }
}

/// An identity service bound to its port and ready to run.
pub struct Application {
    http: HttpService,
    db: DatabaseConnection,
    keys: Arc<KeyRing>,
    key_refresh: tokio::task::JoinHandle<()>,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let (db, kind) = db::connect_and_migrate::<Migrator>(settings, DATABASE_SCHEMA)
            .await
            .context("failed to prepare the identity database")?;
        kind.log_ready("identity");

        let redis = redis_store::connect_if_configured(settings)
            .await
            .context("failed to connect identity to Redis")?;
        let (sessions, counters): (Arc<dyn SessionStore>, Box<dyn Counters>) = match &redis {
            Some(redis) => {
                tracing::info!(store = "redis", "sessions and login throttling in Redis");
                (
                    Arc::new(RedisSessions::new(redis.clone())),
                    Box::new(RedisCounters::new(redis.clone())),
                )
            }
            None => {
                tracing::info!(
                    store = "embedded",
                    "sessions and login throttling in memory (embedded default: REDIS_URL is not set); sessions end when identity restarts"
                );
                (Arc::new(MemorySessions::default()), Box::<MemoryCounters>::default())
            }
        };

        let auth = &settings.auth;
        let access_lifetime = Duration::from_secs(auth.access_token_ttl_seconds);
        let keys = Arc::new(
            KeyRing::load(
                db.clone(),
                KeyPolicy {
                    rotation: Duration::from_secs(auth.key_rotation_days * 86_400),
                    publish_after_retirement: access_lifetime + Duration::from_secs(auth.clock_skew_seconds),
                },
            )
            .await
            .context("failed to load the signing keys")?,
        );

        match bootstrap::ensure_admin(&db, settings).await {
            Ok(BootstrapOutcome::NotConfigured | BootstrapOutcome::AdminExists) => {}
            Ok(outcome) => tracing::warn!(?outcome, "bootstrap administrator ready"),
            Err(error) => return Err(anyhow::anyhow!("failed to bootstrap the administrator: {error}")),
        }

        let tokens = TokenIssuer::new(
            keys.clone(),
            auth.issuer.clone(),
            auth.audience.clone(),
            access_lifetime,
        );
        let accounts = Arc::new(Accounts::new(
            db.clone(),
            tokens,
            sessions.clone(),
            LoginThrottle::new(counters, ThrottlePolicy::default()),
            SessionPolicy {
                idle_lifetime: Duration::from_secs(auth.refresh_token_ttl_days * 86_400),
                reuse_grace: Duration::from_secs(auth.refresh_reuse_grace_seconds),
            },
        ));
        let validator = Arc::new(TokenValidator::new(
            &settings.token_policy(),
            keys.clone(),
            Arc::new(StoreSessionStatus(sessions.clone())),
        ));

        let schema = graphql::build_schema(accounts);
        let probes = db::store_probes(&db, redis);
        let router = service_router(
            "identity",
            graphql_routes(schema, validator).merge(routes::routes(keys.clone(), sessions)),
            probes,
        );
        let address = settings.bind_address(settings.ports.identity);
        let http = HttpService::bind(&address, router)
            .await
            .with_context(|| format!("failed to bind identity to {address}"))?;
        let key_refresh = tokio::spawn(refresh_keys_periodically(keys.clone()));
        Ok(Self {
            http,
            db,
            keys,
            key_refresh,
        })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The key ring, for tests that rotate keys.
    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.clone()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(vitrina_shared::shutdown::signal()).await?;
        Ok(())
    }

    pub async fn run_until(self, stop: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let served = self.http.run_until(stop).await.context("identity HTTP server failed");
        self.key_refresh.abort();
        self.db.close().await.context("failed to close the identity database")?;
        served
    }
}

async fn refresh_keys_periodically(keys: Arc<KeyRing>) {
    let mut interval = tokio::time::interval(KEY_REFRESH_INTERVAL);
    interval.tick().await;
    loop {
        interval.tick().await;
        if let Err(error) = keys.refresh().await {
            tracing::warn!(
                error = format!("{error:#}"),
                "signing key refresh failed; keeping the current keys"
            );
        }
    }
}

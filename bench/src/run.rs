//! One run: prepare the databases, start the system and the competitors, measure every
//! scenario against every target, write the report, clean up.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use vitrina_orders::paypal::simulator;

use crate::{
    load::{self, Iteration, LoadResult},
    options::Options,
    processes::{Process, free_port, wait_ready},
    report::{self, Round, Row},
    scenarios::{self, Data},
    seed::{self, BenchDatabase},
};

/// Products of the everyday catalog; the large one has `--large-catalog`.
const SMALL_CATALOG: u64 = 10_000;
const CATEGORIES: usize = 100;
/// Product ids the scenarios draw from.
const SAMPLED_PRODUCTS: u64 = 5_000;
/// A measurement starts once each process of the comparison used less than [`QUIET_CPU`]
/// of CPU time over one [`QUIET_SAMPLE`] (2 % of a core; idle services use about 1 %), or
/// after [`SETTLE_LIMIT`].
const QUIET_SAMPLE: Duration = Duration::from_millis(500);
const QUIET_CPU: Duration = Duration::from_millis(10);
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

pub async fn run(options: Options) -> anyhow::Result<()> {
    let admin = seed::connect(&format!("{}/postgres", options.postgres.trim_end_matches('/'))).await?;
    let work = tempfile::Builder::new().prefix("vitrina-bench-").tempdir()?;
    let mut databases = Vec::new();
    let outcome = match options.soak_minutes {
        Some(minutes) => crate::soak::soak(&options, minutes, work.path(), &admin, &mut databases).await,
        None => measure_everything(&options, work.path(), &admin, &mut databases).await,
    };
    for database in databases {
        database.drop(&admin).await;
    }
    if outcome.is_err() {
        // Keep the processes' logs for the post-mortem.
        eprintln!("bench: logs kept in {}", work.keep().display());
    }
    outcome
}

/// Where the processes' URLs and ports are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ports {
    pub identity: u16,
    pub catalog: u16,
    pub cart: u16,
    pub orders: u16,
}

impl Ports {
    fn free() -> anyhow::Result<Self> {
        Ok(Self {
            identity: free_port()?,
            catalog: free_port()?,
            cart: free_port()?,
            orders: free_port()?,
        })
    }

    fn env(&self) -> Vec<(String, String)> {
        let url = |port: u16| format!("http://127.0.0.1:{port}/graphql");
        [
            ("IDENTITY_PORT", self.identity.to_string()),
            ("CATALOG_PORT", self.catalog.to_string()),
            ("CART_PORT", self.cart.to_string()),
            ("ORDERS_PORT", self.orders.to_string()),
            ("IDENTITY_URL", url(self.identity)),
            ("CATALOG_URL", url(self.catalog)),
            ("CART_URL", url(self.cart)),
            ("ORDERS_URL", url(self.orders)),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
    }
}

/// What every `vitrina` process of the run shares.
pub(crate) struct Launch<'a> {
    options: &'a Options,
    vitrina: PathBuf,
    repo: PathBuf,
    work: &'a Path,
}

impl Launch<'_> {
    fn env(&self, database_url: &str, ports: &Ports, data_dir: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("VITRINA_CONFIG", self.work.join("absent.toml").display().to_string()),
            ("DATA_DIR", self.work.join(data_dir).display().to_string()),
            ("DATABASE_URL", database_url.to_owned()),
            ("REDIS_URL", self.options.redis.clone()),
            ("LOG_LEVEL", "warn".to_owned()),
            // Shoppers sign in once, before the measurements.
            ("ACCESS_TOKEN_TTL_SECONDS", "14400".to_owned()),
            (
                "ROUTER_CONFIG_FILE_PATH",
                self.repo.join("router/router.yaml").display().to_string(),
            ),
            (
                "SUPERGRAPH_FILE",
                self.repo.join("supergraph.graphql").display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        env.extend(ports.env());
        env
    }

    async fn migrate(&self, database_url: &str, service: Option<&str>) -> anyhow::Result<()> {
        let mut args = vec!["migrate"];
        if let Some(service) = service {
            args.extend(["--service", service]);
        }
        let status = tokio::process::Command::new(&self.vitrina)
            .args(&args)
            .envs(self.env(database_url, &Ports::free()?, "migrate"))
            .stdout(std::process::Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "`vitrina migrate` failed on {database_url}");
        Ok(())
    }

    /// `vitrina serve <service>`, known in the report as `name`.
    async fn subgraph(
        &self,
        name: &str,
        service: &str,
        env: &[(String, String)],
        port: u16,
    ) -> anyhow::Result<Process> {
        let process = Process::start(name, &self.vitrina, &["serve", service], env, self.work)?;
        wait_ready(&format!("http://127.0.0.1:{port}/ready"), Duration::from_secs(60))
            .await
            .with_context(|| format!("{name} did not start (see its log)"))?;
        Ok(process)
    }

    /// `vitrina paypal-simulator`: PayPal's stand-in, outside the orders service as PayPal
    /// is in production. Returns the process and the variables that point the orders
    /// service at it.
    async fn paypal_simulator(&self, env: &[(String, String)]) -> anyhow::Result<(Process, Vec<(String, String)>)> {
        let port = free_port()?;
        let process = Process::start(
            "paypal-simulator",
            &self.vitrina,
            &["paypal-simulator", "--port", &port.to_string()],
            env,
            self.work,
        )?;
        let base_url = format!("http://127.0.0.1:{port}");
        wait_ready(&format!("{base_url}/simulator/stats"), Duration::from_secs(60))
            .await
            .context("the PayPal simulator did not start (see its log)")?;
        let paypal = [
            ("PAYPAL_BASE_URL", base_url),
            ("PAYPAL_CLIENT_ID", simulator::CLIENT_ID.to_owned()),
            ("PAYPAL_CLIENT_SECRET", simulator::CLIENT_SECRET.to_owned()),
            ("PAYPAL_WEBHOOK_ID", simulator::WEBHOOK_ID.to_owned()),
        ];
        Ok((
            process,
            paypal.into_iter().map(|(key, value)| (key.to_owned(), value)).collect(),
        ))
    }

    /// Our router (`vitrina router`), with or without its response cache.
    async fn router(
        &self,
        name: &str,
        env: &[(String, String)],
        response_cache: bool,
    ) -> anyhow::Result<(Process, String)> {
        let port = free_port()?;
        let mut env = env.to_vec();
        env.push(("ROUTER_PORT".into(), port.to_string()));
        env.push(("ROUTER_RESPONSE_CACHE_ENABLED".into(), response_cache.to_string()));
        let process = Process::start(name, &self.vitrina, &["router"], &env, self.work)?;
        let url = format!("http://127.0.0.1:{port}/graphql");
        wait_ready(&format!("http://127.0.0.1:{port}/health"), Duration::from_secs(60)).await?;
        Ok((process, url))
    }

    /// The stock Hive Router binary with our configuration minus our plugins.
    async fn stock_router(&self, binary: &Path, env: &[(String, String)]) -> anyhow::Result<(Process, String)> {
        let config = std::fs::read_to_string(self.repo.join("router/router.yaml"))?;
        let (without_plugins, _) = config
            .split_once("\nplugins:")
            .context("router.yaml has no `plugins:` section at its end")?;
        let path = self.work.join("stock-router.yaml");
        std::fs::write(&path, format!("{without_plugins}\n"))?;
        let port = free_port()?;
        let mut env = env.to_vec();
        env.push(("ROUTER_PORT".into(), port.to_string()));
        env.push(("ROUTER_CONFIG_FILE_PATH".into(), path.display().to_string()));
        let process = Process::start("stock-hive-router", binary, &[], &env, self.work)?;
        wait_ready(&format!("http://127.0.0.1:{port}/health"), Duration::from_secs(60)).await?;
        Ok((process, format!("http://127.0.0.1:{port}/graphql")))
    }

    /// Apollo Gateway (Node) on the same supergraph and subgraphs.
    async fn gateway(&self, dir: &Path, env: &[(String, String)]) -> anyhow::Result<(Process, String)> {
        let port = free_port()?;
        let mut env = env.to_vec();
        env.push(("PORT".into(), port.to_string()));
        env.push(("NODE_ENV".into(), "production".into()));
        let script = dir.join("server.mjs");
        let node = PathBuf::from("node");
        let process = Process::start(
            "apollo-gateway",
            &node,
            &[script.to_str().context("non-UTF-8 path")?],
            &env,
            self.work,
        )?;
        wait_ready(&format!("http://127.0.0.1:{port}/health"), Duration::from_secs(60)).await?;
        Ok((process, format!("http://127.0.0.1:{port}/graphql")))
    }

    /// nginx as a plain reverse-proxy hop in front of the catalog.
    async fn nginx(&self, binary: &Path, catalog_port: u16) -> anyhow::Result<(Process, String)> {
        let port = free_port()?;
        let prefix = self.work.join("nginx");
        std::fs::create_dir_all(prefix.join("logs"))?;
        let config = format!(
            "daemon off;\nworker_processes 1;\nerror_log {prefix}/logs/error.log warn;\npid {prefix}/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {prefix}/body;\n  proxy_temp_path {prefix}/proxy;\n\
             \x20 upstream catalog {{ server 127.0.0.1:{catalog_port}; keepalive 64; }}\n\
             \x20 server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://catalog;\n\
             \x20     proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n",
            prefix = prefix.display()
        );
        let path = prefix.join("nginx.conf");
        std::fs::write(&path, config)?;
        let process = Process::start(
            "nginx",
            binary,
            &[
                "-p",
                prefix.to_str().context("non-UTF-8 path")?,
                "-c",
                path.to_str().context("non-UTF-8 path")?,
            ],
            &[],
            self.work,
        )?;
        wait_ready(&format!("http://127.0.0.1:{port}/health"), Duration::from_secs(30)).await?;
        Ok((process, format!("http://127.0.0.1:{port}/graphql")))
    }
}

/// One target of a comparison: what to drive, and whose memory to watch.
struct Candidate<'a> {
    target: String,
    iteration: Iteration,
    watched: Vec<&'a Process>,
}

impl<'a> Candidate<'a> {
    fn new(target: &str, iteration: Iteration, watched: Vec<&'a Process>) -> Self {
        Self {
            target: target.to_owned(),
            iteration,
            watched,
        }
    }
}

/// One round of one candidate.
struct Measured {
    result: LoadResult,
    /// Each watched process's peak RSS (bytes).
    peak_rss: Vec<(String, u64)>,
    /// Each watched process's CPU time per measured iteration (µs).
    cpu_per_iteration: Vec<(String, f64)>,
}

/// The order of `count` candidates in round `round`: each round starts one candidate later.
fn rotated(count: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..count).map(move |place| (place + round) % count.max(1))
}

/// The measurements of one run, in order.
struct Bench<'a> {
    options: &'a Options,
    rows: Vec<Row>,
}

impl Bench<'_> {
    /// Measures every candidate of `scenario` in interleaved rounds, each starting one
    /// candidate later (A B C, B C A, C A B, …), and keeps each one's median round by
    /// throughput: neither a drift of the machine during the comparison nor the place in
    /// a round (right after the direct call's cold subgraph caches, say) can favour one of
    /// them. Peak RSS is the highest of the rounds. Every round is kept as well, for the
    /// comparisons the report makes round by round ([`report::paired`]).
    async fn compare(&mut self, scenario: &str, candidates: Vec<Candidate<'_>>) {
        self.compare_at(scenario, candidates, self.options.concurrency).await;
    }

    /// [`Bench::compare`] with `concurrency` clients instead of the run's.
    async fn compare_at(&mut self, scenario: &str, candidates: Vec<Candidate<'_>>, concurrency: usize) {
        if !self.options.includes(scenario) {
            return;
        }
        // Every process of the comparison, each once: a measurement waits until all of them
        // are quiet, not only its own, so work one candidate left behind (Apollo Gateway's,
        // in the runs that showed it) does not land on whoever is measured next.
        let mut everyone: Vec<&Process> = Vec::new();
        for process in candidates
            .iter()
            .flat_map(|candidate| candidate.watched.iter().copied())
        {
            if !everyone.iter().any(|known| std::ptr::eq(*known, process)) {
                everyone.push(process);
            }
        }
        let mut rounds: Vec<Vec<Measured>> = candidates.iter().map(|_| Vec::new()).collect();
        for round in 0..self.options.rounds() {
            for index in rotated(candidates.len(), round) {
                settle(&everyone).await;
                rounds[index].push(self.measure_once(&candidates[index], concurrency).await);
            }
        }
        for (candidate, mut results) in candidates.into_iter().zip(rounds) {
            let mut peak_rss: Vec<(String, u64)> = Vec::new();
            for measured in &results {
                for (name, bytes) in &measured.peak_rss {
                    match peak_rss.iter_mut().find(|(known, _)| known == name) {
                        Some((_, peak)) => *peak = (*peak).max(*bytes),
                        None => peak_rss.push((name.clone(), *bytes)),
                    }
                }
            }
            let rounds = results
                .iter()
                .map(|measured| Round {
                    throughput: measured.result.throughput(),
                    cpu_per_iteration: measured.cpu_per_iteration.clone(),
                })
                .collect();
            results.sort_by(|a, b| a.result.throughput().total_cmp(&b.result.throughput()));
            let Measured {
                result,
                cpu_per_iteration,
                ..
            } = results.swap_remove(results.len() / 2);
            let cpu = crate::report::per_process(&cpu_per_iteration, |micros| format!("{micros:.0}"));
            eprintln!(
                "bench: {scenario:<24} {:<36} {:>7.0}/s p50 {:>7.2} ms p99 {:>7.2} ms errors {} cpu µs/it [{}]{}",
                candidate.target,
                result.throughput(),
                result.ms(0.50),
                result.ms(0.99),
                result.errors,
                cpu,
                result
                    .first_error
                    .as_deref()
                    .map(|error| format!(" (first: {})", error.chars().take(160).collect::<String>()))
                    .unwrap_or_default(),
            );
            self.rows.push(Row {
                scenario: scenario.to_owned(),
                target: candidate.target,
                result,
                peak_rss,
                cpu_per_iteration,
                rounds,
            });
        }
    }

    /// One measurement of `candidate`; the caller has waited for a quiet system.
    async fn measure_once(&self, candidate: &Candidate<'_>, concurrency: usize) -> Measured {
        for process in &candidate.watched {
            process.reset_peak_rss();
        }
        let cpu_now = || -> Vec<f64> {
            candidate
                .watched
                .iter()
                .map(|process| process.cpu_seconds().unwrap_or(0.0))
                .collect()
        };
        // CPU is sampled over the measured window only, as the iterations are counted.
        let cpu_during_measurement = async {
            tokio::time::sleep(self.options.warmup()).await;
            let before = cpu_now();
            tokio::time::sleep(self.options.measure()).await;
            let after = cpu_now();
            after
                .iter()
                .zip(before)
                .map(|(after, before)| after - before)
                .collect::<Vec<_>>()
        };
        let (result, cpu) = tokio::join!(
            load::drive(
                concurrency,
                self.options.warmup(),
                self.options.measure(),
                candidate.iteration.clone(),
            ),
            cpu_during_measurement
        );
        let peak_rss = candidate
            .watched
            .iter()
            .map(|process| (process.name.clone(), process.peak_rss_bytes().unwrap_or(0)))
            .collect();
        let iterations = result.iterations.max(1) as f64;
        let cpu_per_iteration = candidate
            .watched
            .iter()
            .zip(cpu)
            .map(|(process, seconds)| (process.name.clone(), seconds * 1e6 / iterations))
            .collect();
        Measured {
            result,
            peak_rss,
            cpu_per_iteration,
        }
    }
}

/// Waits until every process of `watched` is quiet (see [`QUIET_CPU`]). A checkout leaves
/// work behind it (outbox relays, projections, stock events), and without this wait it
/// would land on whichever target is measured next.
async fn settle(watched: &[&Process]) {
    let used = || -> Vec<f64> {
        watched
            .iter()
            .map(|process| process.cpu_seconds().unwrap_or(0.0))
            .collect()
    };
    let started = Instant::now();
    let mut before = used();
    loop {
        tokio::time::sleep(QUIET_SAMPLE).await;
        let now = used();
        let busiest = now
            .iter()
            .zip(&before)
            .map(|(now, before)| now - before)
            .fold(0.0, f64::max);
        if busiest < QUIET_CPU.as_secs_f64() {
            return;
        }
        if started.elapsed() >= SETTLE_LIMIT {
            eprintln!("bench: the system is still busy after {SETTLE_LIMIT:?}; measuring anyway");
            return;
        }
        before = now;
    }
}

/// The everyday system of a run: 10,000 products, every subgraph and our router on this
/// machine's PostgreSQL and Redis (events through the outbox into the embedded event log),
/// the PayPal simulator in a process of its own, with shoppers signed in and guest carts filled through the router.
pub(crate) struct Everyday {
    pub identity: Process,
    pub catalog: Process,
    pub cart: Process,
    pub orders: Process,
    /// PayPal's stand-in (`vitrina paypal-simulator`).
    pub paypal: Process,
    pub router: Process,
    pub router_url: String,
    pub database_url: String,
    pub ports: Ports,
    pub env: Vec<(String, String)>,
    pub data: Arc<Data>,
}

impl Everyday {
    pub async fn start(
        launch: &Launch<'_>,
        admin: &sea_orm::DatabaseConnection,
        databases: &mut Vec<BenchDatabase>,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let options = launch.options;
        seed::empty_redis(&options.redis).await?;
        let small = BenchDatabase::create(admin, &options.postgres, "small").await?;
        let database_url = small.url.clone();
        databases.push(small);
        launch.migrate(&database_url, None).await?;
        let db = seed::connect(&database_url).await?;
        let categories = seed::seed_catalog(&db, SMALL_CATALOG, CATEGORIES).await?;
        let products = seed::product_ids(&db, SAMPLED_PRODUCTS).await?;
        let ports = Ports::free()?;
        let mut env = launch.env(&database_url, &ports, "small");
        env.extend(
            extra_env
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned())),
        );
        let (paypal, paypal_env) = launch.paypal_simulator(&env).await?;
        env.extend(paypal_env);
        let identity = launch.subgraph("identity", "identity", &env, ports.identity).await?;
        let catalog = launch.subgraph("catalog", "catalog", &env, ports.catalog).await?;
        let orders = launch.subgraph("orders", "orders", &env, ports.orders).await?;
        let cart = launch.subgraph("cart", "cart", &env, ports.cart).await?;
        let (router, router_url) = launch.router("router", &env, true).await?;
        let shoppers = seed::shoppers(&router_url, options.concurrency).await?;
        let guest_tokens = seed::guest_carts(&router_url, &products, options.concurrency, 3).await?;
        let data = Arc::new(Data {
            categories,
            products,
            guest_tokens,
            shoppers,
        });
        Ok(Self {
            identity,
            catalog,
            cart,
            orders,
            paypal,
            router,
            router_url,
            database_url,
            ports,
            env,
            data,
        })
    }

    /// What stands behind the router, whose memory and CPU every measurement watches: the
    /// four subgraphs and PayPal's stand-in.
    pub fn behind_router(&self) -> [&Process; 5] {
        [&self.identity, &self.catalog, &self.cart, &self.orders, &self.paypal]
    }
}

/// Where the run's scratch files go and which `vitrina` binary it starts.
pub(crate) fn launch<'a>(options: &'a Options, work: &'a Path) -> anyhow::Result<Launch<'a>> {
    Ok(Launch {
        options,
        vitrina: options.vitrina_binary()?,
        repo: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("bench/ has no parent")?
            .to_path_buf(),
        work,
    })
}

async fn measure_everything(
    options: &Options,
    work: &Path,
    admin: &sea_orm::DatabaseConnection,
    databases: &mut Vec<BenchDatabase>,
) -> anyhow::Result<()> {
    let started = chrono::Utc::now();
    let launch = launch(options, work)?;
    let everyday = Everyday::start(&launch, admin, databases, &[]).await?;
    let (catalog, router, router_url) = (&everyday.catalog, &everyday.router, everyday.router_url.as_str());
    let (ports, env, data) = (everyday.ports, &everyday.env, &everyday.data);
    let (router_uncached, router_uncached_url) = launch.router("router-no-response-cache", env, false).await?;
    let competitors = Competitors::start(&launch, options, env, ports.catalog).await?;

    let mut bench = Bench {
        options,
        rows: Vec::new(),
    };
    let catalog_direct = format!("http://127.0.0.1:{}/graphql", ports.catalog);
    let behind_router = everyday.behind_router();
    let watched = |router| with_router(&behind_router, router);

    // (a) listing: the floor (the subgraph itself), a plain proxy hop, the routers.
    let mut candidates = vec![Candidate::new(
        DIRECT,
        scenarios::listing(&catalog_direct, data.clone()),
        vec![catalog],
    )];
    if let Some((nginx, url)) = &competitors.nginx {
        candidates.push(Candidate::new(
            NGINX,
            scenarios::listing(url, data.clone()),
            vec![catalog, nginx],
        ));
    }
    candidates.push(Candidate::new(
        OURS_UNCACHED,
        scenarios::listing(&router_uncached_url, data.clone()),
        watched(&router_uncached),
    ));
    candidates.push(Candidate::new(
        OURS,
        scenarios::listing(router_url, data.clone()),
        watched(router),
    ));
    candidates.extend(competitors.candidates(&behind_router, |url| scenarios::listing(url, data.clone())));
    bench.compare(LISTING, candidates).await;

    // The hop's own latency, on an idle machine: one client, so nothing queues for a core.
    let mut candidates = vec![
        Candidate::new(DIRECT, scenarios::listing(&catalog_direct, data.clone()), vec![catalog]),
        Candidate::new(
            OURS_UNCACHED,
            scenarios::listing(&router_uncached_url, data.clone()),
            watched(&router_uncached),
        ),
    ];
    if let Some((nginx, url)) = &competitors.nginx {
        candidates.push(Candidate::new(
            NGINX,
            scenarios::listing(url, data.clone()),
            vec![catalog, nginx],
        ));
    }
    if let Some((stock, url)) = &competitors.stock {
        candidates.push(Candidate::new(
            STOCK,
            scenarios::listing(url, data.clone()),
            watched(stock),
        ));
    }
    bench.compare_at(LISTING_ONE_CLIENT, candidates, 1).await;

    // (b) product page + cart: a join across two subgraphs (never response-cached).
    let mut candidates = vec![Candidate::new(
        OURS,
        scenarios::product_page(router_url, data.clone()),
        watched(router),
    )];
    candidates.extend(competitors.candidates(&behind_router, |url| scenarios::product_page(url, data.clone())));
    bench.compare("b product page + cart", candidates).await;

    // (d) checkout before (c), so the account pages list orders.
    let mut candidates = vec![Candidate::new(
        OURS,
        scenarios::checkout(router_url, data.clone()),
        watched(router),
    )];
    if let Some((stock, url)) = &competitors.stock {
        candidates.push(Candidate::new(
            STOCK,
            scenarios::checkout(url, data.clone()),
            watched(stock),
        ));
    }
    bench.compare("d checkout", candidates).await;

    let mut candidates = vec![Candidate::new(
        OURS,
        scenarios::account(router_url, data.clone()),
        watched(router),
    )];
    candidates.extend(competitors.candidates(&behind_router, |url| scenarios::account(url, data.clone())));
    bench.compare("c me + myOrders", candidates).await;

    let mut candidates = vec![
        Candidate::new(OURS, scenarios::mixed(router_url, data.clone()), watched(router)),
        Candidate::new(
            OURS_UNCACHED,
            scenarios::mixed(&router_uncached_url, data.clone()),
            watched(&router_uncached),
        ),
    ];
    if let Some((stock, url)) = &competitors.stock {
        candidates.push(Candidate::new(
            STOCK,
            scenarios::mixed(url, data.clone()),
            watched(stock),
        ));
    }
    bench.compare("e mixed storefront", candidates).await;

    // The listing again on a large catalog, interleaved with the everyday one: keyset
    // pagination must keep p99 flat. A failure here still leaves the report of the rest.
    if !options.quick && options.includes(BY_CATALOG_SIZE) {
        let large: anyhow::Result<()> = async {
            let large = BenchDatabase::create(admin, &options.postgres, "large").await?;
            let large_url = large.url.clone();
            databases.push(large);
            launch.migrate(&large_url, Some("catalog")).await?;
            let large_db = seed::connect(&large_url).await?;
            let large_categories = seed::seed_catalog(&large_db, options.large_catalog, CATEGORIES).await?;
            let mut large_ports = ports;
            large_ports.catalog = free_port()?;
            // Its own Redis database: the two catalogs' cache keys are the same, their rows not.
            let large_redis = seed::next_redis_database(&options.redis)?;
            seed::empty_redis(&large_redis).await?;
            let mut large_env = launch.env(&large_url, &large_ports, "large");
            for (key, value) in &mut large_env {
                if key == "REDIS_URL" {
                    value.clone_from(&large_redis);
                }
            }
            let large_catalog = launch
                .subgraph("catalog-large", "catalog", &large_env, large_ports.catalog)
                .await?;
            let (large_router, large_router_url) = launch.router("router-large", &large_env, false).await?;
            let large_data = Arc::new(Data {
                categories: large_categories,
                products: Vec::new(),
                guest_tokens: Vec::new(),
                shoppers: Vec::new(),
            });
            let candidates = vec![
                Candidate::new(
                    &format!("{} products", report::count(SMALL_CATALOG)),
                    scenarios::listing(&router_uncached_url, data.clone()),
                    watched(&router_uncached),
                ),
                Candidate::new(
                    &format!("{} products", report::count(options.large_catalog)),
                    scenarios::listing(&large_router_url, large_data),
                    vec![&large_catalog, &large_router],
                ),
            ];
            bench.compare(BY_CATALOG_SIZE, candidates).await;
            Ok(())
        }
        .await;
        if let Err(error) = large {
            eprintln!("bench: the large catalog was not measured: {error:#}");
        }
    }

    let finished = chrono::Utc::now();
    let versions = report::Versions::collect(options).await;
    report::write(options, &bench.rows, started, finished, &versions)?;
    Ok(())
}

/// What stands behind the routers, and one router: the processes a measurement through
/// that router loads.
fn with_router<'a>(behind_router: &[&'a Process], router: &'a Process) -> Vec<&'a Process> {
    let mut all = behind_router.to_vec();
    all.push(router);
    all
}

/// Names of the targets, as the report reads them.
pub const DIRECT: &str = "catalog subgraph, direct";
pub const NGINX: &str = "nginx → catalog";
pub const OURS: &str = "vitrina router";
pub const OURS_UNCACHED: &str = "vitrina router, response cache off";
pub const STOCK: &str = "stock Hive Router 0.2.19";
pub const GATEWAY: &str = "Apollo Gateway";
pub const LISTING: &str = "a listing (10k)";
pub const LISTING_ONE_CLIENT: &str = "a listing (10k), 1 client";
pub const BY_CATALOG_SIZE: &str = "a listing by catalog size (router, response cache off)";

/// The other routers and the proxy hop, each when its binary was provided.
struct Competitors {
    stock: Option<(Process, String)>,
    gateway: Option<(Process, String)>,
    nginx: Option<(Process, String)>,
}

impl Competitors {
    async fn start(
        launch: &Launch<'_>,
        options: &Options,
        env: &[(String, String)],
        catalog_port: u16,
    ) -> anyhow::Result<Self> {
        if options.quick {
            return Ok(Self {
                stock: None,
                gateway: None,
                nginx: None,
            });
        }
        let stock = match &options.stock_router {
            Some(binary) => Some(launch.stock_router(binary, env).await?),
            None => None,
        };
        let gateway = match &options.gateway_dir {
            Some(dir) => Some(launch.gateway(dir, env).await?),
            None => None,
        };
        let nginx = match &options.nginx {
            Some(binary) => Some(launch.nginx(binary, catalog_port).await?),
            None => None,
        };
        Ok(Self { stock, gateway, nginx })
    }

    /// `scenario` through the stock Hive Router and Apollo Gateway, where they run.
    fn candidates<'a>(
        &'a self,
        behind_router: &[&'a Process],
        iteration: impl Fn(&str) -> Iteration,
    ) -> Vec<Candidate<'a>> {
        [(STOCK, &self.stock), (GATEWAY, &self.gateway)]
            .into_iter()
            .filter_map(|(name, competitor)| {
                let (process, url) = competitor.as_ref()?;
                Some(Candidate::new(
                    name,
                    iteration(url),
                    with_router(behind_router, process),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::rotated;

    #[test]
    fn every_candidate_takes_every_place_once_in_as_many_rounds() {
        let rounds: Vec<Vec<usize>> = (0..3).map(|round| rotated(3, round).collect()).collect();
        assert_eq!(rounds, vec![vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1]]);
        assert_eq!(rotated(0, 1).count(), 0);
    }
}

//! The soak run (`scripts/soak.sh`, default 5 minutes): the storefront's mixed traffic at
//! the highest rate the machine sustains (closed loop at the run's concurrency), purchases
//! going through their whole life on scarce stock, then the checks a long run must pass:
//! no 5xx and no request left unanswered, no leaked database or Redis connections, memory
//! flat once warm, and every order consistent with stock, events and read models
//! ([`crate::invariants`]). Writes `bench/results/soak.md`; exits non-zero when a check fails.

use std::{fmt::Write as _, sync::Arc, time::Duration};

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::{
    invariants,
    load::{self, LoadResult},
    options::Options,
    processes::Process,
    report::Versions,
    run::{Everyday, launch},
    scenarios,
    seed::{self, BenchDatabase},
};

/// Length of one load slice: memory is sampled between slices.
const SLICE: Duration = Duration::from_secs(30);
/// Products every purchase draws from, and the units each starts with: enough orders to
/// sell them out, so refusals and releases are part of the run.
const SCARCE_PRODUCTS: usize = 40;
const SCARCE_UNITS: i64 = 60;
/// Unpaid orders expire within the run, so expiry is part of it too.
const PAYMENT_TTL_SECONDS: &str = "60";
/// Every in-process cache's bound: small enough that each cache is full within the first
/// half, so memory that still grows in the second half is a leak, not a cache filling up.
const CACHE_MEMORY_MAX_MB: &str = "8";
/// Error kinds that must never happen, however hard the machine is pushed.
fn is_failure(kind: &str) -> bool {
    kind.starts_with("HTTP 5")
        || kind == "TRANSPORT"
        || matches!(kind, "INTERNAL" | "INTERNAL_SERVER_ERROR" | "UNCODED")
}

/// One slice's load and every process's resident memory at its end.
struct Slice {
    result: LoadResult,
    rss: Vec<(String, u64)>,
}

pub async fn soak(
    options: &Options,
    minutes: u64,
    work: &std::path::Path,
    admin: &DatabaseConnection,
    databases: &mut Vec<BenchDatabase>,
) -> anyhow::Result<()> {
    let started = chrono::Utc::now();
    let launch = launch(options, work)?;
    let everyday = Everyday::start(
        &launch,
        admin,
        databases,
        &[
            ("ORDER_PAYMENT_TTL_SECONDS", PAYMENT_TTL_SECONDS),
            ("CACHE_MEMORY_MAX_MB", CACHE_MEMORY_MAX_MB),
        ],
    )
    .await?;
    let db = seed::connect(&everyday.database_url).await?;
    let scarce: Vec<String> = everyday.data.products[..SCARCE_PRODUCTS].to_vec();
    db.execute_unprepared(&format!(
        "UPDATE catalog.stock SET on_hand = {SCARCE_UNITS} WHERE product_id IN ({})",
        scarce.iter().map(|id| format!("'{id}'")).collect::<Vec<_>>().join(",")
    ))
    .await
    .context("failed to make stock scarce")?;
    invariants::snapshot_stock(&db).await?;
    let database_name = everyday
        .database_url
        .rsplit('/')
        .next()
        .context("no database in the URL")?
        .to_owned();
    let redis_before = redis_clients(&options.redis).await?;

    let processes: Vec<&Process> = everyday.behind_router().into_iter().chain([&everyday.router]).collect();
    let iteration = scenarios::soak_mix(&everyday.router_url, everyday.data.clone(), Arc::new(scarce));
    let slices = (minutes * 60).div_ceil(SLICE.as_secs()).max(1);
    let mut measured = Vec::new();
    let mut peak_connections = 0;
    for n in 0..slices {
        let result = load::drive(options.concurrency, Duration::ZERO, SLICE, iteration.clone()).await;
        peak_connections = peak_connections.max(connections(admin, &database_name).await?.0);
        let rss = processes
            .iter()
            .map(|process| (process.name.clone(), process.rss_bytes().unwrap_or(0)))
            .collect();
        eprintln!(
            "soak: {:>3} s {:>6.0}/s p99 {:>7.2} ms errors {:?}",
            (n + 1) * SLICE.as_secs(),
            result.throughput(),
            result.ms(0.99),
            result.error_kinds
        );
        measured.push(Slice { result, rss });
    }

    // Quiet: pools keep idle connections, but none may be busy or inside a transaction.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (connections_after, busy_after) = connections(admin, &database_name).await?;
    let redis_after = redis_clients(&options.redis).await?;
    let verdict = invariants::reconcile(&db, Duration::from_secs(120)).await?;

    let mut out = String::new();
    let passed = write_report(
        &mut out,
        Summary {
            options,
            minutes,
            started,
            slices: &measured,
            peak_connections,
            connections_after,
            busy_after,
            redis_before,
            redis_after,
            verdict: &verdict,
        },
    )
    .await?;
    std::fs::create_dir_all(&options.out)?;
    let path = options.out.join("soak.md");
    std::fs::write(&path, &out)?;
    eprintln!("soak: report written to {}", path.display());
    anyhow::ensure!(passed, "the soak run failed a check (see {})", path.display());
    Ok(())
}

/// Connections to the run's database: all of them, and those not idle (busy, or idle
/// inside a transaction).
async fn connections(admin: &DatabaseConnection, database: &str) -> anyhow::Result<(i64, i64)> {
    let row = admin
        .query_one_raw(Statement::from_string(
            admin.get_database_backend(),
            format!(
                "SELECT count(*) AS total, count(*) FILTER (WHERE state <> 'idle') AS busy
                 FROM pg_stat_activity WHERE datname = '{database}'"
            ),
        ))
        .await?
        .context("pg_stat_activity returned no row")?;
    Ok((row.try_get("", "total")?, row.try_get("", "busy")?))
}

/// Clients connected to the Redis server.
async fn redis_clients(url: &str) -> anyhow::Result<usize> {
    let client = redis::Client::open(url).context("invalid Redis URL")?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut connection).await?;
    // Less this connection of ours.
    Ok(list.lines().count().saturating_sub(1))
}

/// What the report is written from.
struct Summary<'a> {
    options: &'a Options,
    minutes: u64,
    started: chrono::DateTime<chrono::Utc>,
    slices: &'a [Slice],
    peak_connections: i64,
    connections_after: i64,
    busy_after: i64,
    redis_before: usize,
    redis_after: usize,
    verdict: &'a invariants::Verdict,
}

/// Writes the report; returns whether every check passed.
async fn write_report(out: &mut String, summary: Summary<'_>) -> anyhow::Result<bool> {
    let Summary {
        options,
        minutes,
        started,
        slices,
        ..
    } = summary;
    let versions = Versions::collect(options).await;
    let iterations: u64 = slices.iter().map(|slice| slice.result.iterations).sum();
    let mut kinds: std::collections::BTreeMap<&str, u64> = Default::default();
    for slice in slices {
        for (kind, count) in &slice.result.error_kinds {
            *kinds.entry(kind).or_default() += count;
        }
    }
    let failures: u64 = kinds
        .iter()
        .filter(|(kind, _)| is_failure(kind))
        .map(|(_, count)| count)
        .sum();
    let mut checks: Vec<(String, bool)> = Vec::new();
    checks.push((
        format!("no 5xx, no unanswered request, no uncoded or internal error: {failures} of {iterations}"),
        failures == 0,
    ));
    // Pools are bounded (4 services × DATABASE_MAX_CONNECTIONS 10); after the load none is
    // left busy or inside a transaction.
    checks.push((
        format!(
            "database connections: peak {}, after the load {} of which {} busy (bound 40, busy 0)",
            summary.peak_connections, summary.connections_after, summary.busy_after
        ),
        summary.peak_connections <= 40 && summary.busy_after == 0,
    ));
    checks.push((
        format!(
            "Redis clients: {} before, {} after (no growth beyond 4)",
            summary.redis_before, summary.redis_after
        ),
        summary.redis_after <= summary.redis_before + 4,
    ));
    // Flat once warm: a leak grows with the traffic served, so the second half of the run
    // must not add more than 5 % (+ 4 MB of allocator slack) to each process.
    let half = slices.len() / 2;
    let mut memory_flat = true;
    let mut memory_lines = Vec::new();
    if let (Some(middle), Some(last)) = (slices.get(half.saturating_sub(1)), slices.last()) {
        for ((name, at_half), (_, at_end)) in middle.rss.iter().zip(&last.rss) {
            let flat = *at_end as f64 <= *at_half as f64 * 1.05 + 4.0 * 1024.0 * 1024.0;
            memory_flat &= flat;
            memory_lines.push(format!("{name} {} → {} MB", mb(*at_half), mb(*at_end)));
        }
    }
    checks.push((
        format!("memory flat over the second half: {}", memory_lines.join(", ")),
        memory_flat,
    ));
    for (name, violations) in &summary.verdict.results {
        checks.push((format!("{name}: {violations} violations"), *violations == 0));
    }

    writeln!(out, "# Vitrina soak run\n")?;
    writeln!(
        out,
        "{minutes} minutes of mixed storefront traffic through the router at {} closed-loop clients \
         (50 % listings, 30 % product pages with the cart, 15 % account pages, 5 % purchases that are \
         paid, cancelled or left to expire, on {SCARCE_PRODUCTS} products of {SCARCE_UNITS} units each; \
         unpaid orders expire after {PAYMENT_TTL_SECONDS} s; caches bounded at {CACHE_MEMORY_MAX_MB} MB so they \
         are full before the second half), then the checks below. Started {}, machine: {}. Command: `scripts/soak.sh{}`.\n",
        options.concurrency,
        started.format("%Y-%m-%d %H:%M UTC"),
        versions.machine,
        if minutes == 5 {
            String::new()
        } else {
            format!(" --minutes {minutes}")
        },
    )?;
    writeln!(out, "## Checks\n\n| check | result |\n|---|---|")?;
    for (check, passed) in &checks {
        writeln!(out, "| {check} | {} |", if *passed { "passed" } else { "**FAILED**" })?;
    }
    writeln!(
        out,
        "\nOrders at the end: {} ({} events); the checks settled {:.1} s after the load.\n",
        summary
            .verdict
            .orders_by_status
            .iter()
            .map(|(status, count)| format!("{count} {status}"))
            .collect::<Vec<_>>()
            .join(", "),
        summary.verdict.events,
        summary.verdict.waited.as_secs_f64(),
    )?;
    writeln!(out, "Refusals and errors by code over the run: {kinds:?}\n")?;
    writeln!(out, "## Over time\n")?;
    let names: Vec<&str> = slices
        .first()
        .map(|slice| slice.rss.iter().map(|(name, _)| name.as_str()).collect())
        .unwrap_or_default();
    writeln!(
        out,
        "| at | iterations/s | p50 ms | p99 ms | errors | {} |",
        names
            .iter()
            .map(|name| format!("{name} RSS MB"))
            .collect::<Vec<_>>()
            .join(" | ")
    )?;
    writeln!(out, "|---|---|---|---|---|{}", "---|".repeat(names.len()))?;
    for (n, slice) in slices.iter().enumerate() {
        writeln!(
            out,
            "| {} s | {:.0} | {:.2} | {:.2} | {} | {} |",
            (n as u64 + 1) * SLICE.as_secs(),
            slice.result.throughput(),
            slice.result.ms(0.5),
            slice.result.ms(0.99),
            slice.result.errors,
            slice
                .rss
                .iter()
                .map(|(_, bytes)| mb(*bytes))
                .collect::<Vec<_>>()
                .join(" | ")
        )?;
    }
    Ok(checks.iter().all(|(_, passed)| *passed))
}

fn mb(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / 1024.0 / 1024.0)
}

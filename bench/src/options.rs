//! What a run measures and against what; every option has an environment variable so
//! `scripts/bench.sh` can pass the competitors it prepared.

use std::{path::PathBuf, time::Duration};

#[derive(Debug, clap::Parser)]
#[command(about = "Vitrina's load harness: starts what it measures, drives it, writes bench/results/")]
pub struct Options {
    /// Development mode (≤ 2 minutes): 10,000 products, short measurements, our router
    /// and the direct subgraph only.
    #[arg(long)]
    pub quick: bool,
    /// Instead of the report: a soak run of this many minutes of mixed storefront load,
    /// then the checks (no 5xx, no leaked connections, memory flat, invariants); writes
    /// `soak.md` (`scripts/soak.sh`).
    #[arg(long, env = "BENCH_SOAK_MINUTES")]
    pub soak_minutes: Option<u64>,
    /// Only these scenarios, by letter (`--only c,d`): for investigating one gap without
    /// the whole report. The report then goes to `partial.md` so `report.md` is kept.
    #[arg(long, env = "BENCH_ONLY", value_delimiter = ',')]
    pub only: Vec<char>,
    /// Concurrent clients of every measurement.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 32)]
    pub concurrency: usize,
    /// Measured seconds per target (default 10, quick 3).
    #[arg(long, env = "BENCH_SECONDS")]
    pub seconds: Option<u64>,
    /// Interleaved rounds per comparison; each target's median round is reported
    /// (default 5, quick 1). Five, because one target's ratio to another swings by
    /// about ±10 % between single rounds on a 2-core machine, too much to judge a 5 %
    /// target from three.
    #[arg(long, env = "BENCH_ROUNDS")]
    pub rounds: Option<usize>,
    /// Unmeasured seconds before each measurement (default 2, quick 1).
    #[arg(long, env = "BENCH_WARMUP_SECONDS")]
    pub warmup_seconds: Option<u64>,
    /// PostgreSQL server (no database): each run creates its own databases and drops them.
    #[arg(
        long,
        env = "BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pub postgres: String,
    /// Redis for carts, sessions, caches and persisted queries: a database of its own, as
    /// every run empties it first (the large catalog's system uses, and empties, the
    /// database numbered one above).
    #[arg(long, env = "BENCH_REDIS_URL", default_value = "redis://127.0.0.1:6379/14")]
    pub redis: String,
    /// Size of the large catalog (listing p99 is compared against 10,000 products).
    #[arg(long, env = "BENCH_LARGE_CATALOG", default_value_t = 1_000_000)]
    pub large_catalog: u64,
    /// The `vitrina` binary (default: beside this one).
    #[arg(long, env = "VITRINA_BIN")]
    pub vitrina: Option<PathBuf>,
    /// The stock Hive Router binary of the same version (`scripts/bench.sh` builds it).
    #[arg(long, env = "STOCK_HIVE_ROUTER_BIN")]
    pub stock_router: Option<PathBuf>,
    /// Directory holding `server.mjs` and its installed `node_modules` (Apollo Gateway).
    #[arg(long, env = "APOLLO_GATEWAY_DIR")]
    pub gateway_dir: Option<PathBuf>,
    /// The nginx binary for the reverse-proxy floor.
    #[arg(long, env = "NGINX_BIN")]
    pub nginx: Option<PathBuf>,
    /// Where the report goes.
    #[arg(long, env = "BENCH_OUT", default_value = "bench/results")]
    pub out: PathBuf,
}

impl Options {
    pub fn measure(&self) -> Duration {
        Duration::from_secs(self.seconds.unwrap_or(if self.quick { 3 } else { 10 }))
    }

    pub fn rounds(&self) -> usize {
        self.rounds.unwrap_or(if self.quick { 1 } else { 5 }).max(1)
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs(self.warmup_seconds.unwrap_or(if self.quick { 1 } else { 2 }))
    }

    /// Whether the scenario named `scenario` ("a listing (10k)", "d checkout", …) is measured.
    pub fn includes(&self, scenario: &str) -> bool {
        self.only.is_empty()
            || scenario
                .chars()
                .next()
                .is_some_and(|letter| self.only.contains(&letter))
    }

    /// The report's file name (without extension).
    pub fn report_name(&self) -> &'static str {
        match (self.quick, self.only.is_empty()) {
            (true, _) => "quick",
            (false, false) => "partial",
            (false, true) => "report",
        }
    }

    /// The `scripts/bench.sh` arguments that select this run's mode, as the report quotes them.
    pub fn arguments(&self) -> String {
        let mut arguments = String::new();
        if self.quick {
            arguments.push_str(" --quick");
        }
        if !self.only.is_empty() {
            let letters: Vec<String> = self.only.iter().map(char::to_string).collect();
            arguments.push_str(&format!(" --only {}", letters.join(",")));
        }
        arguments
    }

    pub fn vitrina_binary(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.vitrina {
            return Ok(path.clone());
        }
        let beside = std::env::current_exe()?.with_file_name("vitrina");
        anyhow::ensure!(
            beside.exists(),
            "no `vitrina` binary at {} (scripts/bench.sh builds it beside this harness, or set VITRINA_BIN)",
            beside.display()
        );
        Ok(beside)
    }
}

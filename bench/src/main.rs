//! `vitrina-bench`: Vitrina's load harness (run it with `scripts/bench.sh`).
//!
//! It starts everything it measures on free ports (the subgraphs and our router from the
//! `vitrina` binary, the stock Hive Router, Apollo Gateway, nginx), seeds the data, drives
//! each target with a fixed number of concurrent clients for a fixed time after a warm-up,
//! and writes a Markdown report and a PNG chart to `bench/results/`. Every comparison is
//! measured in one run on one machine: on a noisy machine the ratios hold where absolute
//! numbers drift.

mod invariants;
mod load;
mod options;
mod processes;
mod report;
mod run;
mod scenarios;
mod seed;
mod soak;

use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    let options = options::Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run::run(options))
}

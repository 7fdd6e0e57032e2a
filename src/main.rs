//! `vitrina`: one binary for every process of the system.
//!
//! `cargo run --release` (no subcommand) launches the whole system; the subcommands run a
//! single process (`serve catalog`, `router`) or an operation (`migrate`, `sdl`).

use std::process::ExitCode;

use clap::Parser;
use hive_router::{RouterGlobalAllocator, configure_global_allocator};
use vitrina::cli::{Cli, Command};

configure_global_allocator!();

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or_default();
    // The router brings its own runtime (ntex); everything else runs on tokio.
    if let Command::Router = command {
        // SAFETY: nothing has started a thread yet; the router starts its own below.
        if let Err(error) = unsafe { vitrina_router::prepare_environment() } {
            eprintln!("router failed: {error}");
            return ExitCode::FAILURE;
        }
        return match vitrina_router::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("router failed: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(vitrina::cli::run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vitrina: {error:#}");
            ExitCode::FAILURE
        }
    }
}

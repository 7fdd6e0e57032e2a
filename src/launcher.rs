//! The one-command run: starts every subgraph, waits until each is ready, starts the
//! router in front of them, prints where to go, and stops everything on Ctrl-C/SIGTERM.
//!
//! Each part runs as its own process of this same binary (`vitrina serve …`,
//! `vitrina router`), exactly as in production, so a crash in one is contained and the
//! fault tests can kill one. Children are stopped with SIGTERM, then SIGKILL after a
//! grace period, so Ctrl-C always returns within a few seconds.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use nix::{sys::signal::Signal, unistd::Pid};
use tokio::process::{Child, Command};
use vitrina_shared::{
    config::{Settings, client_host},
    shutdown::Signals,
};

use crate::services::Service;

/// How long a child gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(4);
/// How long a part may take to become ready (first start migrates and seeds).
const READY_TIMEOUT: Duration = Duration::from_secs(90);

enum Startup {
    Ready,
    Interrupted,
}

/// A running child process.
struct Part {
    name: &'static str,
    child: Child,
}

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    // First of all, so that Ctrl-C during start-up also stops the children cleanly.
    let mut signals = Signals::listen().context("failed to listen for Ctrl-C and SIGTERM")?;
    let executable = std::env::current_exe().context("failed to locate the vitrina executable")?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let mut parts = Vec::new();
    let startup = tokio::select! {
        started = start_all(settings, &executable, &http, &mut parts) => started.map(|()| Startup::Ready),
        _ = signals.recv() => Ok(Startup::Interrupted),
    };
    match startup {
        Ok(Startup::Ready) => {}
        Ok(Startup::Interrupted) => {
            stop_all(&mut parts).await;
            return Ok(());
        }
        Err(error) => {
            stop_all(&mut parts).await;
            return Err(error);
        }
    }

    let endpoint = format!(
        "http://{}:{}/graphql",
        client_host(&settings.host),
        settings.ports.router
    );
    println!();
    println!("  Vitrina is up.");
    println!("  GraphQL endpoint : {endpoint}");
    println!(
        "  Apollo Sandbox   : https://studio.apollographql.com/sandbox/explorer?endpoint={}",
        urlencoding::encode(&endpoint)
    );
    println!("  Press Ctrl-C to stop.");
    println!();

    let outcome = tokio::select! {
        _ = signals.recv() => Ok(()),
        exited = first_exit(&mut parts) => Err(exited),
    };
    stop_all(&mut parts).await;
    outcome
}

async fn start_all(
    settings: &Settings,
    executable: &PathBuf,
    http: &reqwest::Client,
    parts: &mut Vec<Part>,
) -> anyhow::Result<()> {
    for service in Service::ALL {
        let mut command = Command::new(executable);
        command.args(["serve", service.name()]);
        if std::env::var_os("SEED_DEMO_DATA").is_none() {
            command.env("SEED_DEMO_DATA", "true");
        }
        parts.push(spawn(service.name(), command)?);
        let ready = format!(
            "http://{}:{}/ready",
            client_host(&settings.host),
            service.port(settings)
        );
        wait_until_ready(service.name(), &ready, http, parts).await?;
    }

    let mut router = Command::new(executable);
    router.arg("router");
    if std::env::var_os("ROUTER_CONFIG_FILE_PATH").is_none() {
        router.env("ROUTER_CONFIG_FILE_PATH", "router/router.yaml");
    }
    router
        .env("ROUTER_PORT", settings.ports.router.to_string())
        .env("BIND_HOST", &settings.host);
    for service in Service::ALL {
        let (variable, url) = service.url(settings);
        router.env(variable, url);
    }
    parts.push(spawn("router", router)?);
    let ready = format!(
        "http://{}:{}/health",
        client_host(&settings.host),
        settings.ports.router
    );
    wait_until_ready("router", &ready, http, parts).await
}

fn spawn(name: &'static str, mut command: Command) -> anyhow::Result<Part> {
    command.stdin(Stdio::null()).kill_on_drop(true);
    let child = command.spawn().with_context(|| format!("failed to start {name}"))?;
    tracing::info!(part = name, pid = child.id(), "started");
    Ok(Part { name, child })
}

async fn wait_until_ready(name: &str, url: &str, http: &reqwest::Client, parts: &mut [Part]) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            tracing::info!(part = name, url, "ready");
            return Ok(());
        }
        for part in parts.iter_mut() {
            if let Some(status) = part.child.try_wait()? {
                bail!("{} exited during start-up ({status})", part.name);
            }
        }
        if Instant::now() > deadline {
            bail!("{name} was not ready within {READY_TIMEOUT:?} ({url})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resolves with an error naming the first part that exits on its own. `parts` is never
/// empty here: the router was just started.
async fn first_exit(parts: &mut [Part]) -> anyhow::Error {
    let waits: Vec<_> = parts
        .iter_mut()
        .map(|part| {
            Box::pin(async move {
                let status = part.child.wait().await;
                anyhow::anyhow!("{} exited unexpectedly ({status:?}); stopping everything", part.name)
            })
        })
        .collect();
    futures::future::select_all(waits).await.0
}

/// SIGTERM to everyone (router first, so it stops taking traffic), then SIGKILL for
/// whoever outlives the grace period.
async fn stop_all(parts: &mut [Part]) {
    for part in parts.iter().rev() {
        if let Some(pid) = part.child.id() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
    for part in parts.iter_mut().rev() {
        match tokio::time::timeout(STOP_GRACE, part.child.wait()).await {
            Ok(_) => tracing::info!(part = part.name, "stopped"),
            Err(_) => {
                tracing::warn!(part = part.name, "did not stop in time; killing");
                let _ = part.child.kill().await;
            }
        }
    }
}

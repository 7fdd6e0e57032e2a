//! The one-command run: `vitrina` with no subcommand, as `cargo run --release` starts it.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use serde_json::json;

use crate::helpers::{data, free_port, graphql, repo_root, wait_for_ok};

struct Launch {
    child: std::process::Child,
    router_url: String,
}

async fn launch(data_dir: &std::path::Path, router_port: u16, catalog_port: u16) -> Launch {
    let child = Command::new(env!("CARGO_BIN_EXE_vitrina"))
        .current_dir(repo_root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data_dir)
        .env("ROUTER_PORT", router_port.to_string())
        .env("CATALOG_PORT", catalog_port.to_string())
        .env("CART_PORT", free_port().to_string())
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("launch vitrina");
    wait_for_ok(
        &format!("http://127.0.0.1:{router_port}/health"),
        Duration::from_secs(90),
    )
    .await;
    Launch {
        child,
        router_url: format!("http://127.0.0.1:{router_port}/graphql"),
    }
}

/// Sends Ctrl-C's signal and returns how long the whole system took to exit.
fn interrupt(mut launch: Launch) -> Duration {
    let started = Instant::now();
    nix::sys::signal::kill(Pid::from_raw(launch.child.id() as i32), Signal::SIGINT).expect("signal");
    loop {
        if let Some(status) = launch.child.try_wait().expect("wait") {
            assert!(status.success(), "launcher exited with {status}");
            return started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = launch.child.kill();
            panic!("launcher did not exit within 10 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn product_ids(url: &str) -> Vec<String> {
    let response = graphql(url, "{ products(first: 100) { edges { node { id } } } }", json!({})).await;
    data(&response)["products"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_one_command_run_serves_seeded_data_stops_on_ctrl_c_and_reuses_its_data() {
    let data_dir = tempfile::tempdir().unwrap();
    let (router_port, catalog_port) = (free_port(), free_port());

    let first = launch(data_dir.path(), router_port, catalog_port).await;
    let seeded = product_ids(&first.router_url).await;
    assert_eq!(seeded.len(), 10, "the demo catalog is seeded into an empty database");
    let in_stock = graphql(
        &first.router_url,
        "{ products(first: 1, filter: { inStock: true }) { edges { node { id } } } }",
        json!({}),
    )
    .await;
    let added = graphql(
        &first.router_url,
        "mutation($id: ID!) { addToCart(productId: $id, quantity: 1) { itemCount lines { product { name } } } }",
        json!({ "id": data(&in_stock)["products"]["edges"][0]["node"]["id"] }),
    )
    .await;
    assert_eq!(data(&added)["addToCart"]["itemCount"], 1, "the cart runs too");
    let stop_time = interrupt(first);
    assert!(
        stop_time < Duration::from_secs(5),
        "every process exits within 5 s of Ctrl-C (took {stop_time:?})"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", catalog_port)).is_err(),
        "the catalog process is gone"
    );

    let second = launch(data_dir.path(), router_port, catalog_port).await;
    assert_eq!(
        product_ids(&second.router_url).await,
        seeded,
        "a second run reuses the data, unchanged"
    );
    interrupt(second);
}

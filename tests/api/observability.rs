//! Correlation: one request id in the router's and the subgraph's logs.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;

use crate::helpers::{free_port, repo_root, wait_for_ok};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_logs(dir: &std::path::Path, prefix: &str) -> String {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_request_id_sent_to_the_router_appears_in_router_and_subgraph_logs() {
    let data_dir = tempfile::tempdir().unwrap();
    let (catalog_port, router_port) = (free_port(), free_port());
    let _catalog = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_vitrina"))
            .args(["serve", "catalog"])
            .env("DATA_DIR", data_dir.path())
            .env("CATALOG_PORT", catalog_port.to_string())
            .env("LOG_LEVEL", "debug")
            .stdout(Stdio::null())
            .spawn()
            .expect("start catalog"),
    );
    wait_for_ok(
        &format!("http://127.0.0.1:{catalog_port}/ready"),
        Duration::from_secs(30),
    )
    .await;
    let router_log = data_dir.path().join("router.stdout");
    let _router = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_vitrina"))
            .arg("router")
            .env("ROUTER_CONFIG_FILE_PATH", repo_root().join("router/router.yaml"))
            .env("SUPERGRAPH_FILE", repo_root().join("supergraph.graphql"))
            .env("ROUTER_PORT", router_port.to_string())
            .env("CATALOG_URL", format!("http://127.0.0.1:{catalog_port}/graphql"))
            .env("LOG_LEVEL", "info")
            .stdout(std::fs::File::create(&router_log).unwrap())
            .spawn()
            .expect("start router"),
    );
    wait_for_ok(
        &format!("http://127.0.0.1:{router_port}/health"),
        Duration::from_secs(30),
    )
    .await;
    let request_id = format!("trace-me-{}", uuid::Uuid::new_v4().simple());

    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{router_port}/graphql"))
        .header("x-request-id", &request_id)
        .json(&json!({ "query": "{ categories { id } }" }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let in_catalog = read_logs(&data_dir.path().join("logs"), "catalog").contains(&request_id);
        let in_router = std::fs::read_to_string(&router_log)
            .unwrap_or_default()
            .contains(&request_id);
        if in_catalog && in_router {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "request id in catalog log: {in_catalog}, in router log: {in_router}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

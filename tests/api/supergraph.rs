//! Drift checks: the committed SDL files and `supergraph.graphql` must be exactly what the
//! current code composes to, so the router never plans against a stale graph.

use std::process::Command;

use vitrina::services::Service;

use crate::helpers::repo_root;

#[test]
fn committed_subgraph_sdl_files_match_what_the_code_publishes() {
    for service in Service::ALL {
        let committed = std::fs::read_to_string(service.sdl_path()).unwrap_or_default();
        assert!(
            committed == service.sdl(),
            "{} is stale: run scripts/compose.sh",
            service.sdl_path().display()
        );
    }
}

/// Composes the subgraphs' current SDL (from code, not from the committed files) and
/// compares the result with the committed supergraph.
#[test]
fn committed_supergraph_matches_a_fresh_composition_of_the_current_subgraphs() {
    let scratch = tempfile::tempdir().unwrap();
    let mut config = String::from("federation_version: =2.3.2\nsubgraphs:\n");
    let committed_config = std::fs::read_to_string(repo_root().join("supergraph.yaml")).unwrap();
    for service in Service::ALL {
        let file = scratch.path().join(format!("{}.graphql", service.name()));
        std::fs::write(&file, service.sdl()).unwrap();
        let routing_url = routing_url_of(&committed_config, service.name());
        config.push_str(&format!(
            "  {}:\n    routing_url: {routing_url}\n    schema:\n      file: {}\n",
            service.name(),
            file.display()
        ));
    }
    let config_path = scratch.path().join("supergraph.yaml");
    std::fs::write(&config_path, config).unwrap();
    let script = repo_root().join("scripts/compose/compose.mjs");
    assert!(
        repo_root().join("scripts/compose/node_modules").is_dir(),
        "composition needs its npm packages: run `npm ci --prefix scripts/compose` (the test command does)"
    );

    let output = Command::new("node")
        .arg(script)
        .arg("--config")
        .arg(&config_path)
        .arg("--output")
        .arg(repo_root().join("supergraph.graphql"))
        .arg("--check")
        .output()
        .expect("node runs");

    assert!(
        output.status.success(),
        "supergraph.graphql differs from a fresh composition: run scripts/compose.sh\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn routing_url_of(config: &str, name: &str) -> String {
    let section = config
        .split(&format!("  {name}:\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("{name} missing from supergraph.yaml"));
    section
        .lines()
        .find_map(|line| line.trim().strip_prefix("routing_url:"))
        .map(|url| url.trim().to_owned())
        .unwrap_or_else(|| panic!("{name} has no routing_url"))
}

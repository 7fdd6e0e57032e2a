//! Documentation that must not drift from the code.

use vitrina_shared::config::ENVIRONMENT_VARIABLES;

use crate::helpers::repo_root;

#[test]
fn the_readme_configuration_table_lists_every_environment_variable_exactly_as_the_code_describes_it() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    for variable in ENVIRONMENT_VARIABLES {
        let row = format!("| `{}` | {} |", variable.name, variable.description);
        assert!(readme.contains(&row), "README.md lacks the row:\n{row}");
    }
}

/// The variables `docker-compose.yml` sets for Vitrina's own containers (the `x-vitrina`
/// anchor and every service built from it), read line by line: a key in upper case under
/// such a block. Other services (PostgreSQL, Redis, Kafka) use their images' variables.
fn compose_variables(compose: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut ours = false;
    let mut block: Vec<&str> = Vec::new();
    let flush = |block: &mut Vec<&str>, ours: bool, found: &mut Vec<String>| {
        if ours {
            for line in block.iter() {
                let key = line.trim_start().split(':').next().unwrap_or_default();
                if !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                {
                    found.push(key.to_owned());
                }
            }
        }
        block.clear();
    };
    let mut section = "";
    for line in compose.lines() {
        let indent = line.len() - line.trim_start().len();
        if indent == 0 && !line.trim().is_empty() && !line.starts_with('#') {
            flush(&mut block, ours, &mut found);
            section = line;
            ours = line.starts_with("x-vitrina");
        } else if section.starts_with("services") && indent == 2 && line.trim_end().ends_with(':') {
            flush(&mut block, ours, &mut found);
            ours = false;
        }
        if line.contains("<<: *vitrina") && !line.contains("vitrina-env") {
            ours = true;
        }
        block.push(line);
    }
    flush(&mut block, ours, &mut found);
    found.sort();
    found.dedup();
    found
}

#[test]
fn every_variable_docker_compose_and_the_env_example_set_is_one_vitrina_reads() {
    let known: Vec<&str> = ENVIRONMENT_VARIABLES.iter().map(|variable| variable.name).collect();
    let compose = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    let set_by_compose = compose_variables(&compose);
    assert!(
        set_by_compose.contains(&"DATABASE_URL".to_owned()),
        "{set_by_compose:?}"
    );
    assert!(
        set_by_compose.contains(&"PAYPAL_CLIENT_ID".to_owned()),
        "{set_by_compose:?}"
    );
    for name in &set_by_compose {
        assert!(
            known.contains(&name.as_str()),
            "docker-compose.yml sets {name}, which Vitrina does not read"
        );
    }
    assert!(
        !set_by_compose.contains(&"POSTGRES_USER".to_owned()),
        "image variables are not ours"
    );
    let example = std::fs::read_to_string(repo_root().join(".env.example")).unwrap();
    for line in example
        .lines()
        .filter(|line| !line.starts_with('#') && line.contains('='))
    {
        let name = line.split('=').next().unwrap_or_default();
        assert!(
            known.contains(&name),
            ".env.example sets {name}, which Vitrina does not read"
        );
    }
}

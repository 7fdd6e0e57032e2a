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

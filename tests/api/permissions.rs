//! The permission matrix: every mutation (and every restricted query) of the composed
//! supergraph, called through the router by an anonymous caller and by a user of each
//! role, must be allowed or refused exactly as the shared rule table says. The expected
//! outcomes are computed from that table, so a new mutation without a rule fails here.

use apollo_compiler::{Schema, schema::ExtendedType};
use serde_json::json;
use vitrina_shared::auth::{
    Role,
    principal::{PERMISSION_REQUIRED, SIGN_IN_REQUIRED},
    rules::{OPERATION_RULES, Root, rule_for},
};

use crate::{
    helpers::{PASSWORD, Store, data, graphql_as, spawn_system_with_admin, supergraph},
    identity::{sign_in, signed_in_customer, unique_email},
};

fn root_fields(schema: &Schema, root: &str) -> Vec<String> {
    let Some(ExtendedType::Object(object)) = schema.types.get(root) else {
        return Vec::new();
    };
    object
        .fields
        .keys()
        .map(|name| name.to_string())
        .filter(|name| !name.starts_with('_'))
        .collect()
}

#[test]
fn every_mutation_of_the_supergraph_has_exactly_one_rule_and_no_rule_is_stale() {
    let schema = supergraph();
    for field in root_fields(&schema, "Mutation") {
        assert!(
            rule_for(Root::Mutation, &field).is_some(),
            "Mutation.{field} has no row in vitrina_shared::auth::rules::OPERATION_RULES"
        );
    }
    for rule in OPERATION_RULES {
        let root = match rule.root {
            Root::Query => "Query",
            Root::Mutation => "Mutation",
        };
        assert!(
            root_fields(&schema, root).contains(&rule.field.to_string()),
            "the rule for {root}.{} names no field of the supergraph",
            rule.field
        );
    }
}

/// A literal of `ty` that passes GraphQL validation (so that only authorisation decides).
fn literal(schema: &Schema, ty: &apollo_compiler::schema::Type) -> String {
    if ty.is_list() {
        return format!("[{}]", literal(schema, ty.item_type()));
    }
    let name = ty.inner_named_type().as_str();
    match name {
        "ID" => format!("\"{}\"", uuid::Uuid::new_v4()),
        "String" => format!("\"{}\"", unique_email()),
        "Int" => "1".into(),
        "Float" => "1.5".into(),
        "Boolean" => "true".into(),
        _ => match schema.types.get(name) {
            Some(ExtendedType::Enum(enumeration)) => enumeration.values.keys().next().unwrap().to_string(),
            Some(ExtendedType::InputObject(input)) => {
                let fields: Vec<String> = input
                    .fields
                    .iter()
                    .filter(|(_, field)| field.ty.is_non_null() && field.default_value.is_none())
                    .map(|(field_name, field)| format!("{field_name}: {}", literal(schema, &field.ty)))
                    .collect();
                format!("{{ {} }}", fields.join(", "))
            }
            _ => "\"1\"".into(),
        },
    }
}

/// `root { field(args…) { __typename } }` with literal arguments.
fn operation(schema: &Schema, root: Root, field_name: &str) -> String {
    let (keyword, type_name) = match root {
        Root::Query => ("query", "Query"),
        Root::Mutation => ("mutation", "Mutation"),
    };
    let Some(ExtendedType::Object(object)) = schema.types.get(type_name) else {
        panic!("no {type_name} type");
    };
    let field = object.fields.get(field_name).unwrap();
    let arguments: Vec<String> = field
        .arguments
        .iter()
        .filter(|argument| argument.ty.is_non_null() && argument.default_value.is_none())
        .map(|argument| format!("{}: {}", argument.name, literal(schema, &argument.ty)))
        .collect();
    let arguments = if arguments.is_empty() {
        String::new()
    } else {
        format!("({})", arguments.join(", "))
    };
    let selection = match schema.types.get(field.ty.inner_named_type().as_str()) {
        Some(ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_)) => " { __typename }",
        _ => "",
    };
    format!("{keyword} {{ {field_name}{arguments}{selection} }}")
}

#[tokio::test]
async fn every_operation_allows_or_refuses_each_role_exactly_as_the_rule_table_says() {
    let (system, admin_email) = spawn_system_with_admin(Store::EmbeddedSqlite, false).await;
    let url = &system.router.url;
    let admin = sign_in(url, &admin_email, PASSWORD).await;
    let admin_token = admin["accessToken"].as_str().unwrap().to_owned();

    // One account per role: CUSTOMER only, or CUSTOMER plus the role (as staff accounts are).
    let mut accounts: Vec<(Role, String)> = Vec::new();
    for role in Role::ALL {
        let (email, login) = signed_in_customer(url).await;
        if role != Role::Customer {
            let (_, granted) = graphql_as(
                url,
                Some(&admin_token),
                "mutation($id: ID!, $role: Role!) { grantRole(userId: $id, role: $role) { id } }",
                json!({ "id": login["user"]["id"], "role": role }),
            )
            .await;
            data(&granted);
        }
        accounts.push((role, email));
    }

    let schema = supergraph();
    let mut checked = 0;
    let mut report = Vec::new();
    for rule in OPERATION_RULES {
        let document = operation(&schema, rule.root, rule.field);
        let callers: Vec<Option<&(Role, String)>> = std::iter::once(None).chain(accounts.iter().map(Some)).collect();
        for caller in callers {
            // A fresh session per call: `logout` and friends must not disturb the next one.
            let token = match caller {
                Some((_, email)) => Some(
                    sign_in(url, email, PASSWORD).await["accessToken"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                ),
                None => None,
            };
            let roles: Option<Vec<Role>> = caller.map(|(role, _)| {
                if *role == Role::Customer {
                    vec![Role::Customer]
                } else {
                    vec![Role::Customer, *role]
                }
            });
            let expected_allowed = rule.access.allows(roles.as_deref());
            let (_, response) = graphql_as(url, token.as_deref(), &document, json!({})).await;
            let code = response["errors"][0]["extensions"]["code"].as_str().map(str::to_owned);
            // Refused by the access rule, as opposed to failing for another reason (a
            // dummy refresh token is UNAUTHENTICATED too, but not by authorisation).
            let message = response["errors"][0]["message"].as_str().unwrap_or_default();
            let refused = matches!(code.as_deref(), Some("FORBIDDEN" | "UNAUTHENTICATED"))
                && (message == SIGN_IN_REQUIRED || message.starts_with(PERMISSION_REQUIRED));
            let who = caller.map_or("anonymous".to_owned(), |(role, _)| role.to_string());
            if expected_allowed == refused {
                report.push(format!(
                    "{document} as {who}: expected {}, got {response}",
                    if expected_allowed { "allowed" } else { "refused" }
                ));
            }
            if !expected_allowed {
                let want = if caller.is_none() {
                    "UNAUTHENTICATED"
                } else {
                    "FORBIDDEN"
                };
                if code.as_deref() != Some(want) {
                    report.push(format!("{document} as {who}: expected {want}, got {response}"));
                }
            }
            checked += 1;
        }
    }
    assert!(
        report.is_empty(),
        "{} of {checked} checks failed:\n{}",
        report.len(),
        report.join("\n")
    );
    assert!(checked >= OPERATION_RULES.len() * 5);
}

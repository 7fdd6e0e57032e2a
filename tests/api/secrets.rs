//! Secrets never reach the logs: the whole system, as `cargo run --release` starts it and
//! logging at `debug`, goes through sign-up, sign-in, refresh, a guest cart, checkout, a
//! PayPal payment and sign-out, with a few refused attempts; then every log file and the
//! processes' own output are searched for every secret that passed through.
//!
//! Session ids are not searched for: a session id names a session (every access token
//! carries it as `sid`) and grants nothing, and identity logs it on sign-in and sign-out
//! for the audit trail. The refresh token is the session's credential, and it is searched.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine as _;
use nix::{sys::signal::Signal, unistd::Pid};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{data, free_port, graphql, graphql_as, repo_root, test_settings, wait_for_ok};

const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { id } }";
const LOGIN: &str = "mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken refreshToken } }";
const REFRESH: &str =
    "mutation($refreshToken: String!) { refreshSession(refreshToken: $refreshToken) { accessToken refreshToken } }";
const ADD: &str = "mutation($productId: ID!, $guestToken: String) {
  addToCart(productId: $productId, quantity: 1, guestToken: $guestToken) { guestToken itemCount } }";
const MERGE: &str = "mutation($guestToken: String!) { mergeGuestCart(guestToken: $guestToken) { itemCount } }";
const CHECKOUT: &str = "mutation($input: CheckoutInput!) { checkout(input: $input) { order { id } approvalUrl } }";
const CAPTURE: &str = "mutation($orderId: ID!) { capturePayment(orderId: $orderId) { status } }";
const IN_STOCK: &str = "{ products(first: 1, filter: { inStock: true }) { edges { node { id } } } }";

/// A token's signature, the part that makes it a credential.
fn signature(token: &str) -> &str {
    token.rsplit('.').next().unwrap_or(token)
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer} in {value:#}"))
        .to_owned()
}

/// Every log line the run wrote: the daily files of every process and what they printed.
fn all_output(data_dir: &Path, captured: &[&Path]) -> String {
    let mut output = String::new();
    for entry in std::fs::read_dir(data_dir.join("logs")).unwrap().flatten() {
        output.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    for path in captured {
        output.push_str(&std::fs::read_to_string(path).unwrap_or_default());
    }
    output
}

/// The identity's private signing keys, read from its embedded database.
async fn signing_keys(data_dir: &Path) -> Vec<String> {
    let path = test_settings(data_dir, &[]).embedded_database_path(vitrina_identity::DATABASE_SCHEMA);
    let db = Database::connect(format!("sqlite://{}?mode=ro", path.display()))
        .await
        .unwrap();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Sqlite,
            "SELECT private_key FROM signing_key",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get::<String>("", "private_key").unwrap())
        .collect()
}

#[tokio::test]
async fn no_password_token_key_or_payment_secret_appears_in_the_logs_of_a_full_run_at_debug_level() {
    let data_dir = tempfile::tempdir().unwrap();
    let router_port = free_port();
    let admin_email = format!("admin-{}@example.com", Uuid::now_v7().simple());
    let admin_password = format!("admin pass {}", Uuid::new_v4().simple());
    let stdout_path = data_dir.path().join("launcher.stdout");
    let stderr_path = data_dir.path().join("launcher.stderr");
    let mut launcher = Command::new(env!("CARGO_BIN_EXE_vitrina"))
        .current_dir(repo_root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data_dir.path())
        .env("ROUTER_PORT", router_port.to_string())
        .envs(["IDENTITY_PORT", "CATALOG_PORT", "CART_PORT", "ORDERS_PORT"].map(|name| (name, free_port().to_string())))
        .env("LOG_LEVEL", "debug")
        .env("BOOTSTRAP_ADMIN_EMAIL", &admin_email)
        .env("BOOTSTRAP_ADMIN_PASSWORD", &admin_password)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("launch vitrina");
    wait_for_ok(
        &format!("http://127.0.0.1:{router_port}/health"),
        Duration::from_secs(90),
    )
    .await;
    let url = format!("http://127.0.0.1:{router_port}/graphql");

    let mut secrets: Vec<(&str, String)> = vec![("admin password", admin_password.clone())];
    let admin = graphql(&url, LOGIN, json!({ "email": admin_email, "password": admin_password })).await;
    secrets.push(("admin access token", text(data(&admin), "/login/accessToken")));

    let email = format!("shopper-{}@example.com", Uuid::now_v7().simple());
    let password = format!("shopper pass {}", Uuid::new_v4().simple());
    let wrong_password = format!("wrong pass {}", Uuid::new_v4().simple());
    secrets.push(("customer password", password.clone()));
    secrets.push(("mistyped password", wrong_password.clone()));
    data(
        &graphql(
            &url,
            REGISTER,
            json!({ "input": { "email": email, "password": password, "name": "Ada" } }),
        )
        .await,
    );
    let (_, refused) = graphql_as(&url, None, LOGIN, json!({ "email": email, "password": wrong_password })).await;
    assert!(refused.get("errors").is_some(), "a wrong password is refused");
    let login = graphql(&url, LOGIN, json!({ "email": email, "password": password })).await;
    let first_refresh = text(data(&login), "/login/refreshToken");
    secrets.push(("refresh token", first_refresh.clone()));
    let refreshed = graphql(&url, REFRESH, json!({ "refreshToken": first_refresh })).await;
    let token = text(data(&refreshed), "/refreshSession/accessToken");
    secrets.push((
        "rotated refresh token",
        text(data(&refreshed), "/refreshSession/refreshToken"),
    ));
    secrets.push(("access token", token.clone()));
    let forged = format!(
        "{}.{}",
        &token[..token.rfind('.').unwrap()],
        "Zm9yZ2VkLXNpZ25hdHVyZS1mb3ItdGhlLXRlc3Q"
    );
    let (_, refused) = graphql_as(&url, Some(&forged), "{ me { id } }", json!({})).await;
    assert!(refused.get("errors").is_some(), "a forged token is refused");
    secrets.push(("forged token", forged));

    let in_stock = graphql(&url, IN_STOCK, json!({})).await;
    let product = text(data(&in_stock), "/products/edges/0/node/id");
    let guest = graphql(&url, ADD, json!({ "productId": product })).await;
    let guest_token = text(data(&guest), "/addToCart/guestToken");
    secrets.push(("guest cart token", guest_token.clone()));
    data(
        &graphql_as(&url, Some(&token), MERGE, json!({ "guestToken": guest_token }))
            .await
            .1,
    );
    let (_, placed) = graphql_as(
        &url,
        Some(&token),
        CHECKOUT,
        json!({ "input": { "idempotencyKey": "secrets-run", "shippingAddress": {
            "fullName": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH", "countryCode": "GB" } } }),
    )
    .await;
    let order_id = text(data(&placed), "/checkout/order/id");
    let approval = reqwest::get(text(data(&placed), "/checkout/approvalUrl"))
        .await
        .unwrap();
    assert!(approval.status().is_success());
    let (_, captured) = graphql_as(&url, Some(&token), CAPTURE, json!({ "orderId": order_id })).await;
    assert_eq!(text(data(&captured), "/capturePayment/status"), "PAID");
    data(&graphql_as(&url, Some(&token), "mutation { logout }", json!({})).await.1);

    use vitrina_orders::paypal::simulator::{CLIENT_ID, CLIENT_SECRET};
    secrets.push(("PayPal client secret", CLIENT_SECRET.to_owned()));
    secrets.push((
        "PayPal basic credentials",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")),
    ));
    for key in signing_keys(data_dir.path()).await {
        secrets.push(("private signing key", key));
    }

    // Ctrl-C, so every process flushes its log writer on the way out.
    nix::sys::signal::kill(Pid::from_raw(launcher.id() as i32), Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while launcher.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the launcher did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }

    let output = all_output(data_dir.path(), &[&stdout_path, &stderr_path]);
    let lines = output.lines().count();
    assert!(
        lines > 200 && output.contains("\"level\":\"DEBUG\""),
        "the run logged at debug ({lines} lines)"
    );
    let mut leaked = Vec::new();
    for (what, secret) in &secrets {
        let needles: Vec<&str> = if secret.matches('.').count() == 2 {
            vec![secret.as_str(), signature(secret)]
        } else {
            vec![secret.as_str()]
        };
        if let Some(line) = output
            .lines()
            .find(|line| needles.iter().any(|needle| line.contains(needle)))
        {
            let masked = needles
                .iter()
                .fold(line.to_owned(), |line, needle| line.replace(needle, "<SECRET>"));
            leaked.push(format!("{what}: {}", masked.chars().take(400).collect::<String>()));
        }
    }
    assert!(leaked.is_empty(), "found in the logs:\n{}", leaked.join("\n"));
    eprintln!(
        "secrets: {} secrets searched for in {lines} log lines, 0 found",
        secrets.len()
    );
}

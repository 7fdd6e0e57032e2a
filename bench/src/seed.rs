//! Test data: fresh PostgreSQL databases per run, catalogs grown in SQL (a million rows in
//! seconds, not hours), and shoppers created through the public API like real ones.

use std::time::Instant;

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

/// A database of this run, dropped by [`BenchDatabase::drop`].
pub struct BenchDatabase {
    pub name: String,
    pub url: String,
}

impl BenchDatabase {
    pub async fn create(admin: &DatabaseConnection, server: &str, label: &str) -> anyhow::Result<Self> {
        let name = format!("vitrina_bench_{label}_{}", uuid::Uuid::now_v7().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .with_context(|| format!("failed to create database {name}"))?;
        Ok(Self {
            url: format!("{}/{name}", server.trim_end_matches('/')),
            name,
        })
    }

    pub async fn drop(self, admin: &DatabaseConnection) {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name))
            .await;
    }
}

/// Empties the run's Redis database. Cache entries outlive a run (and its PostgreSQL
/// databases): without this, a catalog could read the category tree another run's
/// database cached under the same key, and every category filter would match nothing.
pub async fn empty_redis(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url).context("invalid Redis URL")?;
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("failed to connect to {url}"))?;
    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut connection)
        .await
        .with_context(|| format!("failed to empty {url}"))
}

/// The Redis database numbered one above `url`'s, for a second system of the run whose
/// caches must not mix with the first one's (same keys, another PostgreSQL database).
pub fn next_redis_database(url: &str) -> anyhow::Result<String> {
    let mut parsed = reqwest::Url::parse(url).with_context(|| format!("invalid Redis URL {url}"))?;
    let number: u32 = match parsed.path().trim_start_matches('/') {
        "" => 0,
        number => number
            .parse()
            .with_context(|| format!("{url} names no database number"))?,
    };
    parsed.set_path(&format!("/{}", number + 1));
    Ok(parsed.to_string())
}

pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    Database::connect(url)
        .await
        .with_context(|| format!("failed to connect to {url}"))
}

/// Fills a migrated, empty catalog: `categories` categories and `products` ACTIVE products
/// spread over them, each with stock enough that no checkout of a run can exhaust it.
/// Returns the category ids.
pub async fn seed_catalog(db: &DatabaseConnection, products: u64, categories: usize) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    db.execute_unprepared(&format!(
        "INSERT INTO catalog.category (id, name, slug, parent_id, created_at, updated_at)
         SELECT gen_random_uuid(), 'Bench category ' || i, 'bench-category-' || i, NULL, now(), now()
         FROM generate_series(1, {categories}) AS i"
    ))
    .await
    .context("failed to seed categories")?;
    db.execute_unprepared(&format!(
        "WITH categories AS (SELECT array_agg(id ORDER BY slug) AS ids FROM catalog.category)
         INSERT INTO catalog.product (id, sku, slug, name, description, price_minor, currency, status, category_id, attributes, version, created_at, updated_at)
         SELECT gen_random_uuid(), 'BENCH-' || i, 'bench-product-' || i, 'Bench product ' || i, 'A product of the load harness.',
                1000 + (i::bigint * 7919) % 100000, 'EUR', 'ACTIVE', ids[1 + i % {categories}], '{{}}', 1,
                now() - make_interval(secs => i), now()
         FROM generate_series(1, {products}) AS i, categories"
    ))
    .await
    .context("failed to seed products")?;
    db.execute_unprepared(
        "INSERT INTO catalog.stock (product_id, on_hand, reserved, updated_at)
         SELECT id, 1000000000, 0, now() FROM catalog.product",
    )
    .await
    .context("failed to seed stock")?;
    // One statement per call: VACUUM cannot run in the implicit transaction of a batch.
    for table in ["catalog.product", "catalog.stock", "catalog.category"] {
        db.execute_unprepared(&format!("VACUUM ANALYZE {table}"))
            .await
            .with_context(|| format!("failed to analyze {table}"))?;
    }
    eprintln!("bench: seeded {products} products in {:.1?}", started.elapsed());
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT id::text AS id FROM catalog.category ORDER BY slug",
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get::<String>("", "id").map_err(Into::into))
        .collect()
}

/// The ids of up to `limit` products, spread over the whole catalog.
pub async fn product_ids(db: &DatabaseConnection, limit: u64) -> anyhow::Result<Vec<String>> {
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT id::text AS id FROM catalog.product ORDER BY sku LIMIT {limit}"),
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get::<String>("", "id").map_err(Into::into))
        .collect()
}

/// A GraphQL call made while preparing a run: any error stops the run.
pub async fn graphql(url: &str, bearer: Option<&str>, query: &str, variables: Value) -> anyhow::Result<Value> {
    let mut request = reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await?.json().await?;
    anyhow::ensure!(body.get("errors").is_none(), "{query}: {body}");
    Ok(body["data"].clone())
}

/// A signed-in shopper.
#[derive(Debug, Clone)]
pub struct Shopper {
    pub access_token: String,
}

/// Registers and signs in `count` shoppers through the router.
pub async fn shoppers(router: &str, count: usize) -> anyhow::Result<Vec<Shopper>> {
    let run = uuid::Uuid::now_v7().simple().to_string();
    let mut shoppers = Vec::with_capacity(count);
    for n in 0..count {
        let email = format!("shopper-{n}-{run}@bench.example");
        let password = "correct horse battery staple";
        graphql(
            router,
            None,
            "mutation($input: RegisterInput!) { register(input: $input) { id } }",
            json!({ "input": { "email": email, "password": password, "name": format!("Shopper {n}") } }),
        )
        .await?;
        let login = graphql(
            router,
            None,
            "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }",
            json!({ "email": email, "password": password }),
        )
        .await?;
        let access_token = login["login"]["accessToken"]
            .as_str()
            .context("login answered without an access token")?
            .to_owned();
        shoppers.push(Shopper { access_token });
    }
    Ok(shoppers)
}

/// One anonymous cart per client, holding `lines` products; returns their guest tokens.
pub async fn guest_carts(router: &str, products: &[String], count: usize, lines: usize) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(count);
    for n in 0..count {
        let mut token: Option<String> = None;
        for line in 0..lines {
            let product = &products[(n * lines + line * 7919) % products.len()];
            let data = graphql(
                router,
                None,
                "mutation($productId: ID!, $guestToken: String) { addToCart(productId: $productId, quantity: 1, guestToken: $guestToken) { guestToken } }",
                json!({ "productId": product, "guestToken": token }),
            )
            .await?;
            token = data["addToCart"]["guestToken"].as_str().map(str::to_owned).or(token);
        }
        tokens.push(token.context("addToCart returned no guest token")?);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::next_redis_database;

    #[test]
    fn the_next_redis_database_is_numbered_one_above() {
        assert_eq!(
            next_redis_database("redis://127.0.0.1:6379/14").unwrap(),
            "redis://127.0.0.1:6379/15"
        );
        assert_eq!(
            next_redis_database("redis://127.0.0.1:6379").unwrap(),
            "redis://127.0.0.1:6379/1"
        );
        assert!(next_redis_database("redis://127.0.0.1:6379/cache").is_err());
    }
}

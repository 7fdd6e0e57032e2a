//! The demo catalog the one-command run starts with: a few categories and products, with
//! stock, written only into an empty catalog so a restart never duplicates or overwrites.

use catalog_entity::{category, product, stock};
use chrono::Utc;
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait, PaginatorTrait, TransactionTrait};
use uuid::Uuid;

use crate::domain::ProductStatus;

struct DemoCategory {
    slug: &'static str,
    name: &'static str,
    parent: Option<&'static str>,
}

struct DemoProduct {
    sku: &'static str,
    slug: &'static str,
    name: &'static str,
    description: &'static str,
    price_minor: i64,
    category: &'static str,
    stock: i32,
    attributes: &'static str,
}

const CATEGORIES: &[DemoCategory] = &[
    DemoCategory {
        slug: "apparel",
        name: "Apparel",
        parent: None,
    },
    DemoCategory {
        slug: "t-shirts",
        name: "T-Shirts",
        parent: Some("apparel"),
    },
    DemoCategory {
        slug: "hoodies",
        name: "Hoodies",
        parent: Some("apparel"),
    },
    DemoCategory {
        slug: "home",
        name: "Home",
        parent: None,
    },
    DemoCategory {
        slug: "mugs",
        name: "Mugs",
        parent: Some("home"),
    },
    DemoCategory {
        slug: "books",
        name: "Books",
        parent: None,
    },
];

const PRODUCTS: &[DemoProduct] = &[
    DemoProduct {
        sku: "TS-FERRIS-M",
        slug: "ferris-tee",
        name: "Ferris T-Shirt",
        description: "Organic cotton tee with Ferris the crab.",
        price_minor: 2400,
        category: "t-shirts",
        stock: 120,
        attributes: r#"{"material":"cotton","colour":"orange"}"#,
    },
    DemoProduct {
        sku: "TS-GRAPHQL-M",
        slug: "graphql-tee",
        name: "GraphQL T-Shirt",
        description: "Pink logo on black, relaxed fit.",
        price_minor: 2200,
        category: "t-shirts",
        stock: 80,
        attributes: r#"{"material":"cotton","colour":"black"}"#,
    },
    DemoProduct {
        sku: "TS-FEDERATION-L",
        slug: "federation-tee",
        name: "Federation T-Shirt",
        description: "One graph, many services.",
        price_minor: 2600,
        category: "t-shirts",
        stock: 0,
        attributes: r#"{"material":"cotton","colour":"white"}"#,
    },
    DemoProduct {
        sku: "HD-ASYNC-L",
        slug: "async-hoodie",
        name: "Async Hoodie",
        description: "Warm while you await.",
        price_minor: 5900,
        category: "hoodies",
        stock: 40,
        attributes: r#"{"material":"fleece","colour":"grey"}"#,
    },
    DemoProduct {
        sku: "HD-ZERO-COST-M",
        slug: "zero-cost-hoodie",
        name: "Zero-Cost Hoodie",
        description: "Abstractions included at no extra charge.",
        price_minor: 6400,
        category: "hoodies",
        stock: 25,
        attributes: r#"{"material":"fleece","colour":"navy"}"#,
    },
    DemoProduct {
        sku: "MUG-BORROW",
        slug: "borrow-checker-mug",
        name: "Borrow Checker Mug",
        description: "Holds exactly one mutable coffee.",
        price_minor: 1400,
        category: "mugs",
        stock: 200,
        attributes: r#"{"capacity_ml":350}"#,
    },
    DemoProduct {
        sku: "MUG-LIFETIME",
        slug: "lifetime-mug",
        name: "'static Lifetime Mug",
        description: "Outlives every meeting.",
        price_minor: 1600,
        category: "mugs",
        stock: 150,
        attributes: r#"{"capacity_ml":400}"#,
    },
    DemoProduct {
        sku: "BK-RUST-BOOK",
        slug: "the-rust-book",
        name: "The Rust Programming Language",
        description: "The classic introduction, in print.",
        price_minor: 3999,
        category: "books",
        stock: 60,
        attributes: r#"{"pages":560}"#,
    },
    DemoProduct {
        sku: "BK-ZERO2PROD",
        slug: "zero-to-production",
        name: "Zero To Production In Rust",
        description: "Backend development, end to end.",
        price_minor: 4500,
        category: "books",
        stock: 35,
        attributes: r#"{"pages":600}"#,
    },
    DemoProduct {
        sku: "BK-GRAPHQL",
        slug: "production-graphql",
        name: "Production Ready GraphQL",
        description: "Designing and running GraphQL APIs.",
        price_minor: 3500,
        category: "books",
        stock: 5,
        attributes: r#"{"pages":400}"#,
    },
];

/// Writes the demo catalog when the catalog has no products yet. Returns whether it did.
pub async fn seed_demo_catalog_if_empty(db: &DatabaseConnection) -> Result<bool, sea_orm::DbErr> {
    if product::Entity::find().count(db).await? > 0 {
        return Ok(false);
    }
    let txn = db.begin().await?;
    let now = Utc::now();
    let mut category_ids = std::collections::HashMap::new();
    for demo in CATEGORIES {
        let id = Uuid::now_v7();
        category_ids.insert(demo.slug, id);
        category::Entity::insert(category::ActiveModel {
            id: Set(id),
            name: Set(demo.name.to_owned()),
            slug: Set(demo.slug.to_owned()),
            parent_id: Set(demo.parent.and_then(|parent| category_ids.get(parent).copied())),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    for demo in PRODUCTS {
        let id = Uuid::now_v7();
        let attributes =
            serde_json::from_str(demo.attributes).map_err(|error| sea_orm::DbErr::Json(error.to_string()))?;
        product::Entity::insert(product::ActiveModel {
            id: Set(id),
            sku: Set(demo.sku.to_owned()),
            slug: Set(demo.slug.to_owned()),
            name: Set(demo.name.to_owned()),
            description: Set(Some(demo.description.to_owned())),
            price_minor: Set(demo.price_minor),
            currency: Set("EUR".to_owned()),
            status: Set(ProductStatus::Active.as_str().to_owned()),
            category_id: Set(category_ids.get(demo.category).copied()),
            attributes: Set(attributes),
            version: Set(1),
            created_at: Set(Utc::now()),
            updated_at: Set(Utc::now()),
        })
        .exec_without_returning(&txn)
        .await?;
        stock::Entity::insert(stock::ActiveModel {
            product_id: Set(id),
            on_hand: Set(demo.stock),
            reserved: Set(0),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(true)
}

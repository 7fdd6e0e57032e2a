//! The production profile's start-up gate: under `APP_ENV=production` a process refuses to
//! start on an embedded default or without a secret it needs.
//!
//! The embedded defaults (SQLite, in-process stores, the embedded event log, the PayPal
//! simulator) let `cargo run --release` work on a bare machine. In production each of
//! them would be a silent failure: a per-container SQLite file, carts that vanish with a
//! restart, payments nobody collects. Every process checks what it uses before it
//! binds a port, and names every problem at once, so one failed start tells the operator
//! all that is missing.

use crate::config::{AppEnv, Settings};

/// A real dependency a process needs in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    PostgreSql,
    Redis,
    Kafka,
    PayPal,
}

#[derive(Debug, thiserror::Error)]
#[error("APP_ENV=production: {process} refuses to start: {}", .problems.join("; "))]
pub struct ProductionNotReady {
    pub process: String,
    pub problems: Vec<String>,
}

/// Passes in development; in production, fails naming every requirement `settings`
/// leaves to an embedded default or without its secret.
pub fn check(settings: &Settings, process: &str, requirements: &[Requirement]) -> Result<(), ProductionNotReady> {
    if settings.app_env != AppEnv::Production {
        return Ok(());
    }
    let problems: Vec<String> = requirements
        .iter()
        .flat_map(|requirement| problems_with(settings, *requirement))
        .chain(
            settings
                .seed_demo_data
                .then(|| "SEED_DEMO_DATA must be off (demo products are not for sale)".to_owned()),
        )
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ProductionNotReady {
            process: process.to_owned(),
            problems,
        })
    }
}

fn problems_with(settings: &Settings, requirement: Requirement) -> Vec<String> {
    use secrecy::ExposeSecret as _;
    let unset = |name: &str, instead: &str| format!("{name} is unset ({instead} is for development only)");
    match requirement {
        Requirement::PostgreSql => match &settings.database_url {
            None => vec![unset("DATABASE_URL", "the embedded SQLite database")],
            Some(url) if !is_postgres_url(url.expose_secret()) => {
                vec!["DATABASE_URL must be a postgres:// URL".to_owned()]
            }
            Some(_) => vec![],
        },
        Requirement::Redis => match &settings.redis_url {
            None => vec![unset("REDIS_URL", "the in-process store and cache")],
            Some(_) => vec![],
        },
        Requirement::Kafka => match settings.kafka_brokers.as_deref().map(str::trim) {
            None | Some("") => vec![unset("KAFKA_BROKERS", "the embedded event log")],
            Some(_) => vec![],
        },
        Requirement::PayPal => {
            let paypal = &settings.paypal;
            let mut problems = Vec::new();
            if paypal.client_id.as_deref().is_none_or(str::is_empty) {
                problems.push(unset("PAYPAL_CLIENT_ID", "the PayPal simulator"));
            }
            if paypal
                .client_secret
                .as_ref()
                .is_none_or(|secret| secret.expose_secret().is_empty())
            {
                problems.push("PAYPAL_CLIENT_SECRET is unset (a secret, never defaulted)".to_owned());
            }
            if paypal.webhook_id.as_deref().is_none_or(str::is_empty) {
                problems.push("PAYPAL_WEBHOOK_ID is unset (webhooks cannot be verified without it)".to_owned());
            }
            problems
        }
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Settings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .chain([("VITRINA_CONFIG".to_owned(), "/nonexistent/vitrina.toml".to_owned())])
            .collect();
        Settings::load_from(|name| vars.get(name).cloned()).expect("settings load")
    }

    const EVERYTHING: [Requirement; 4] = [
        Requirement::PostgreSql,
        Requirement::Redis,
        Requirement::Kafka,
        Requirement::PayPal,
    ];

    #[test]
    fn development_starts_on_embedded_defaults() {
        check(&settings(&[]), "orders", &EVERYTHING).unwrap();
    }

    #[test]
    fn production_names_every_embedded_default_and_missing_secret_at_once() {
        let error = check(&settings(&[("APP_ENV", "production")]), "orders", &EVERYTHING).unwrap_err();
        let message = error.to_string();
        for name in [
            "DATABASE_URL",
            "REDIS_URL",
            "KAFKA_BROKERS",
            "PAYPAL_CLIENT_ID",
            "PAYPAL_CLIENT_SECRET",
            "PAYPAL_WEBHOOK_ID",
        ] {
            assert!(message.contains(name), "{name} missing from: {message}");
        }
        assert!(
            message.starts_with("APP_ENV=production: orders refuses to start"),
            "{message}"
        );
    }

    #[test]
    fn production_asks_only_for_what_the_process_uses() {
        let error = check(
            &settings(&[("APP_ENV", "production")]),
            "router",
            &[Requirement::Redis, Requirement::Kafka],
        )
        .unwrap_err();
        assert_eq!(error.problems.len(), 2, "{error}");
    }

    #[test]
    fn production_starts_with_real_parts_and_credentials() {
        let ready = settings(&[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://vitrina@db/vitrina"),
            ("REDIS_URL", "redis://cache:6379"),
            ("KAFKA_BROKERS", "kafka:9092"),
            ("PAYPAL_CLIENT_ID", "client"),
            ("PAYPAL_CLIENT_SECRET", "secret"),
            ("PAYPAL_WEBHOOK_ID", "WH-1"),
        ]);
        check(&ready, "orders", &EVERYTHING).unwrap();
    }

    #[test]
    fn production_refuses_a_sqlite_url_and_demo_data() {
        let error = check(
            &settings(&[
                ("APP_ENV", "production"),
                ("DATABASE_URL", "sqlite://catalog.sqlite"),
                ("SEED_DEMO_DATA", "true"),
            ]),
            "catalog",
            &[Requirement::PostgreSql],
        )
        .unwrap_err();
        assert_eq!(error.problems.len(), 2, "{error}");
        assert!(error.to_string().contains("postgres://"), "{error}");
        assert!(error.to_string().contains("SEED_DEMO_DATA"), "{error}");
    }
}

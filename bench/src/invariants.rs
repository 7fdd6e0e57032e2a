//! The invariant checker of the soak run: after the load, every order must agree with the
//! stock it holds or took, with the events it published, and with the read model built
//! from those events — reconciled in SQL across the catalog's and the orders' schemas of
//! the run's database.
//!
//! Events are asynchronous (the outbox relay, then the stock-effects consumer and the
//! order-view projection), so the checks are repeated until they pass or a deadline ends;
//! a violation still there at the deadline is a real one.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// The order status each event type leaves an order in (its last event decides).
const STATUS_BY_LAST_EVENT: &str = "CASE o.status
    WHEN 'PENDING_PAYMENT' THEN 'OrderPlaced' WHEN 'PAID' THEN 'OrderPaid'
    WHEN 'CANCELLED' THEN 'OrderCancelled' WHEN 'EXPIRED' THEN 'OrderExpired'
    WHEN 'REFUNDED' THEN 'OrderRefunded' WHEN 'FULFILLED' THEN 'OrderFulfilled' END";

/// The state an order's stock reservation must be in, by the order's status.
const RESERVATION_BY_STATUS: &str = "CASE o.status
    WHEN 'PENDING_PAYMENT' THEN 'HELD' WHEN 'PAID' THEN 'COMMITTED' WHEN 'FULFILLED' THEN 'COMMITTED'
    WHEN 'CANCELLED' THEN 'RELEASED' WHEN 'EXPIRED' THEN 'RELEASED' WHEN 'REFUNDED' THEN 'RETURNED' END";

/// One invariant: its name and a query counting the rows that break it.
struct Check {
    name: &'static str,
    violations: String,
}

fn checks() -> Vec<Check> {
    let check = |name, violations: &str| Check {
        name,
        violations: violations.to_owned(),
    };
    vec![
        check(
            "every order published exactly one OrderPlaced",
            "SELECT count(*) FROM orders.orders o WHERE (SELECT count(*) FROM orders.outbox e
               WHERE e.aggregate_id = o.id AND e.event_type = 'OrderPlaced') <> 1",
        ),
        check(
            "every event belongs to an order",
            "SELECT count(*) FROM orders.outbox e WHERE NOT EXISTS (SELECT 1 FROM orders.orders o WHERE o.id = e.aggregate_id)",
        ),
        check(
            "every order's last event is its status",
            &format!(
                "SELECT count(*) FROM orders.orders o WHERE {STATUS_BY_LAST_EVENT} IS DISTINCT FROM
                   (SELECT e.event_type FROM orders.outbox e WHERE e.aggregate_id = o.id ORDER BY e.position DESC LIMIT 1)"
            ),
        ),
        check(
            "every event was published",
            "SELECT (SELECT count(*) FROM orders.outbox WHERE published_at IS NULL)
                  + (SELECT count(*) FROM catalog.outbox WHERE published_at IS NULL)",
        ),
        check(
            "the order read model matches every order",
            "SELECT count(*) FROM orders.orders o FULL JOIN orders.order_view v ON v.order_id = o.id
               WHERE o.id IS NULL OR v.order_id IS NULL OR v.status <> o.status OR v.total_minor <> o.total_minor",
        ),
        check(
            "every order line holds or took its units",
            &format!(
                "SELECT count(*) FROM orders.order_lines l JOIN orders.orders o ON o.id = l.order_id
                   LEFT JOIN catalog.stock_reservation r ON r.order_id = l.order_id AND r.product_id = l.product_id
                   WHERE r.order_id IS NULL OR r.quantity <> l.quantity OR r.state <> {RESERVATION_BY_STATUS}"
            ),
        ),
        check(
            "a reservation without an order was released",
            "SELECT count(*) FROM catalog.stock_reservation r
               WHERE r.state <> 'RELEASED' AND NOT EXISTS (SELECT 1 FROM orders.orders o WHERE o.id = r.order_id)",
        ),
        check(
            "reserved stock is the sum of held reservations",
            "SELECT count(*) FROM catalog.stock s WHERE s.reserved <> coalesce((SELECT sum(r.quantity)
               FROM catalog.stock_reservation r WHERE r.product_id = s.product_id AND r.state = 'HELD'), 0)",
        ),
        check(
            "stock on hand is the start less the units paid for",
            "SELECT count(*) FROM catalog.stock s JOIN public.soak_initial_stock i ON i.product_id = s.product_id
               WHERE s.on_hand <> i.on_hand - coalesce((SELECT sum(r.quantity) FROM catalog.stock_reservation r
                 WHERE r.product_id = s.product_id AND r.state = 'COMMITTED'), 0)",
        ),
        check(
            "never oversold",
            "SELECT count(*) FROM catalog.stock WHERE on_hand < 0 OR reserved > on_hand",
        ),
    ]
}

/// Records stock on hand before the load, for the "start less the units paid for" check.
pub async fn snapshot_stock(db: &DatabaseConnection) -> anyhow::Result<()> {
    db.execute_unprepared(
        "CREATE TABLE public.soak_initial_stock AS SELECT product_id, on_hand FROM catalog.stock;
         ALTER TABLE public.soak_initial_stock ADD PRIMARY KEY (product_id)",
    )
    .await
    .context("failed to snapshot the stock")?;
    Ok(())
}

/// What the checker found: each invariant with its violations, and the orders it covered.
#[derive(Debug)]
pub struct Verdict {
    pub results: Vec<(&'static str, i64)>,
    pub orders_by_status: Vec<(String, i64)>,
    pub events: i64,
    pub waited: Duration,
}

/// Runs every check until all pass or `deadline` has passed.
pub async fn reconcile(db: &DatabaseConnection, deadline: Duration) -> anyhow::Result<Verdict> {
    let started = Instant::now();
    loop {
        let mut results = Vec::new();
        for check in checks() {
            results.push((check.name, count(db, &check.violations).await?));
        }
        let settled = results.iter().all(|(_, violations)| *violations == 0);
        if settled || started.elapsed() >= deadline {
            let rows = db
                .query_all_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT status, count(*) AS n FROM orders.orders GROUP BY status ORDER BY status",
                ))
                .await?;
            let orders_by_status = rows
                .iter()
                .map(|row| Ok((row.try_get::<String>("", "status")?, row.try_get::<i64>("", "n")?)))
                .collect::<anyhow::Result<_>>()?;
            return Ok(Verdict {
                results,
                orders_by_status,
                events: count(db, "SELECT count(*) FROM orders.outbox").await?,
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .with_context(|| format!("failed to run {sql}"))?
        .context("a count returned no row")?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

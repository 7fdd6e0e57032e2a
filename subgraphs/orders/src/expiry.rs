//! The expiry sweep: unpaid orders whose time is up expire and give their stock back
//! (an order PayPal already approved is captured instead; see
//! [`crate::service::Orders::expire_due`]). Runs beside the HTTP server; with several
//! instances each sweeps, and the locked, state-checked move makes a double expiry a no-op.

use std::time::Duration;

use vitrina_shared::shutdown::Shutdown;

use crate::service::Orders;

/// Orders examined per round; the next round follows at once while there are more.
const BATCH: u64 = 100;

/// How often to look for due orders: a tenth of the payment window, between 1 s and 30 s.
pub fn sweep_interval(payment_ttl: Duration) -> Duration {
    (payment_ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

pub async fn run(orders: Orders, every: Duration, mut shutdown: Shutdown) {
    while !shutdown.is_shutdown() {
        let pause = match orders.expire_due(BATCH).await {
            Ok(expired) if expired as u64 >= BATCH => Duration::ZERO,
            Ok(expired) => {
                if expired > 0 {
                    tracing::info!(expired, "unpaid orders expired");
                }
                every
            }
            Err(error) => {
                tracing::warn!(%error, "order expiry sweep failed; retrying");
                every
            }
        };
        tokio::select! {
            () = shutdown.recv() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_follows_the_payment_window_within_bounds() {
        assert_eq!(sweep_interval(Duration::from_secs(1800)), Duration::from_secs(30));
        assert_eq!(sweep_interval(Duration::from_secs(60)), Duration::from_secs(6));
        assert_eq!(sweep_interval(Duration::from_secs(2)), Duration::from_secs(1));
    }
}

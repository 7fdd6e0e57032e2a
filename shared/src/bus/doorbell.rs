//! Wake-ups for the event backbone's waiting loops, so an idle process does no work.
//!
//! Where it sits: the outbox relay waits for a committed event and every waiting
//! event-log read (a local consumer, or a remote reader's long poll served by the
//! topic's home) waits for a record of its topic. Instead of asking the database every
//! few milliseconds, they wait on a doorbell that the writing code rings after its write
//! is visible: [`crate::outbox::commit`] after the commit, [`super::EmbeddedLog`] after an
//! append. A ring is never lost: a [`Listener`] remembers the rings it has not yet seen,
//! so one that comes between a reader's look and its wait ends the wait at once.
//!
//! Rings reach only this process. Writers in another process sharing the database (a
//! second replica) are seen by the waiters' slow safety-net poll.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::watch;

/// Doorbells of one kind, one per name (a topic, or the outbox).
pub(crate) struct Doorbells {
    /// A bell is created by its first listener and kept: the names are a service's few
    /// topics. A ring for a name nobody listens to yet has no one to wake.
    bells: LazyLock<Mutex<HashMap<String, watch::Sender<u64>>>>,
}

/// Rung after a transaction with outbox rows committed.
pub(crate) static OUTBOX_COMMITS: Doorbells = Doorbells::new();
/// The outbox bell's one name: a process's relays all wake, and each looks at its own
/// outbox (one query; usually there is one relay per process).
pub(crate) const ANY_OUTBOX: &str = "";
/// Rung per topic after records were appended to the embedded log.
pub(crate) static LOG_APPENDS: Doorbells = Doorbells::new();

impl Doorbells {
    const fn new() -> Self {
        Self {
            bells: LazyLock::new(Default::default),
        }
    }

    /// Wakes everyone waiting on `name`.
    pub(crate) fn ring(&self, name: &str) {
        if let Some(bell) = self.lock().get(name) {
            bell.send_modify(|rings| *rings = rings.wrapping_add(1));
        }
    }

    /// A listener for `name`, which has seen no ring yet.
    pub(crate) fn listen(&self, name: &str) -> Listener {
        let mut bells = self.lock();
        let bell = bells.entry(name.to_owned()).or_insert_with(|| watch::Sender::new(0));
        let mut rings = bell.subscribe();
        rings.mark_unchanged();
        Listener { rings }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        // The map is never left half-changed, so a panic elsewhere does not spoil it.
        self.bells.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One waiter's view of a bell.
pub(crate) struct Listener {
    rings: watch::Receiver<u64>,
}

impl Listener {
    /// Forgets the rings so far; call it just before looking for work, so that a ring
    /// after the look ends the next [`Listener::wait`].
    pub(crate) fn mark_seen(&mut self) {
        self.rings.mark_unchanged();
    }

    /// Waits until the bell rang since [`Listener::mark_seen`], or `at_most` passed.
    pub(crate) async fn wait(&mut self, at_most: Duration) {
        // `changed` fails only once the bell is dropped, and the bells live as long as
        // the process; a failure is then as good as a ring.
        let _ = tokio::time::timeout(at_most, self.rings.changed()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn a_ring_after_the_look_ends_the_wait_at_once() {
        let bells = Doorbells::new();
        let mut listener = bells.listen("catalog.product");
        listener.mark_seen();
        bells.ring("catalog.product");
        let started = Instant::now();
        listener.wait(Duration::from_secs(10)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_ring_before_the_look_is_forgotten_by_mark_seen() {
        let bells = Doorbells::new();
        let mut listener = bells.listen("catalog.product");
        bells.ring("catalog.product");
        listener.mark_seen();
        let started = Instant::now();
        listener.wait(Duration::from_millis(50)).await;
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_ring_wakes_only_its_own_name() {
        let bells = Doorbells::new();
        let mut product = bells.listen("catalog.product");
        let mut stock = bells.listen("catalog.stock");
        bells.ring("catalog.stock");
        let started = Instant::now();
        stock.wait(Duration::from_secs(10)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        let started = Instant::now();
        product.wait(Duration::from_millis(50)).await;
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_waiting_listener_is_woken_by_a_ring_from_another_task() {
        let bells: &'static Doorbells = Box::leak(Box::new(Doorbells::new()));
        let mut listener = bells.listen("orders.order");
        let ringer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            bells.ring("orders.order");
        });
        let started = Instant::now();
        listener.wait(Duration::from_secs(10)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        ringer.await.unwrap();
    }
}

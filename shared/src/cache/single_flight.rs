//! Single flight: concurrent misses of the same cache address share one load.
//!
//! A batch of misses registers each address it is about to load; a reader that misses an
//! address already registered waits for that load instead of starting its own. The
//! registration is removed by the load's task when it ends, however it ends.
//!
//! Each load runs as a task of its own, not inside the reader that started it: a reader
//! whose request is cancelled (a client gone, a router timeout) must not leave a
//! half-run load parked in the registry, unpolled, still holding what it held at that
//! moment (a pool permit or connection: on the embedded store, the only one) until
//! another reader of the same address happened to poll it again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures::{
    FutureExt as _,
    future::{BoxFuture, Shared},
};

use crate::error::AppError;

/// Encoded values by cache address.
type Loaded = Arc<HashMap<String, Vec<u8>>>;
type Flight = Shared<BoxFuture<'static, Result<Loaded, Arc<AppError>>>>;

#[derive(Default)]
pub(super) struct SingleFlight {
    flights: Arc<Mutex<HashMap<String, Flight>>>,
}

impl SingleFlight {
    /// Loads the `(key, address)` pairs, joining loads already in flight for any of the
    /// addresses. `load` receives only the pairs nobody is loading yet and returns
    /// encoded values by address.
    pub(super) async fn run<K, F, Fut>(&self, missing: Vec<(K, String)>, load: F) -> Result<Vec<(K, Vec<u8>)>, AppError>
    where
        K: Clone + Send + 'static,
        F: FnOnce(Vec<(K, String)>) -> Fut,
        Fut: Future<Output = Result<HashMap<String, Vec<u8>>, AppError>> + Send + 'static,
    {
        let mut waits: Vec<(K, String, Flight)> = Vec::with_capacity(missing.len());
        {
            let mut flights = self
                .flights
                .lock()
                .map_err(|_| AppError::internal(anyhow::anyhow!("single-flight registry poisoned")))?;
            let mut to_load = Vec::new();
            for (key, address) in missing {
                match flights.get(&address) {
                    Some(flight) => waits.push((key, address, flight.clone())),
                    None => to_load.push((key, address)),
                }
            }
            if !to_load.is_empty() {
                let addresses: Vec<String> = to_load.iter().map(|(_, address)| address.clone()).collect();
                let registration = Registration {
                    registry: Arc::clone(&self.flights),
                    addresses: addresses.clone(),
                };
                let pending = load(to_load.clone());
                let task = tokio::spawn(async move {
                    // Dropped when the load ends, however it ends (a panic included).
                    let _registration = registration;
                    pending.await.map(Arc::new).map_err(Arc::new)
                });
                let flight: Flight = async move {
                    task.await.unwrap_or_else(|failure| {
                        Err(Arc::new(AppError::internal(anyhow::anyhow!(
                            "cache load task failed: {failure}"
                        ))))
                    })
                }
                .boxed()
                .shared();
                for address in addresses {
                    flights.insert(address, flight.clone());
                }
                waits.extend(to_load.into_iter().map(|(key, address)| (key, address, flight.clone())));
            }
        }

        let mut values = Vec::with_capacity(waits.len());
        for (key, address, flight) in waits {
            // Clones of one `Shared` resolve together, so awaiting them in turn is cheap.
            let loaded = flight.await.map_err(|error| replay(&error))?;
            if let Some(bytes) = loaded.get(&address) {
                values.push((key, bytes.clone()));
            }
        }
        Ok(values)
    }
}

/// A load's entries in the registry, removed when the load's task drops it: on success,
/// on error, and on a panic, which would otherwise leave the failed flight registered and
/// hand its error to every later reader of those addresses.
struct Registration {
    registry: Arc<Mutex<HashMap<String, Flight>>>,
    addresses: Vec<String>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // A poisoned registry is unusable anyway; `run` reports that to the next reader.
        if let Ok(mut flights) = self.registry.lock() {
            for address in &self.addresses {
                flights.remove(address);
            }
        }
    }
}

/// The same failure for every reader that shared a load: client-facing errors keep their
/// message and code; internal causes keep their text for the log.
fn replay(error: &AppError) -> AppError {
    match error {
        AppError::BadUserInput { field, message } => AppError::BadUserInput {
            field: field.clone(),
            message: message.clone(),
        },
        AppError::Unauthenticated(message) => AppError::Unauthenticated(message.clone()),
        AppError::Forbidden(message) => AppError::Forbidden(message.clone()),
        AppError::NotFound { entity } => AppError::NotFound { entity },
        AppError::Conflict(message) => AppError::Conflict(message.clone()),
        AppError::Unavailable(cause) => AppError::Unavailable(anyhow::anyhow!("{cause:#}")),
        AppError::Internal(cause) => AppError::Internal(anyhow::anyhow!("{cause:#}")),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        time::Duration,
    };

    use super::*;

    #[tokio::test]
    async fn concurrent_misses_of_one_address_share_a_single_load() {
        let flights = Arc::new(SingleFlight::default());
        let loads = Arc::new(AtomicUsize::new(0));
        let readers = (0..32).map(|_| {
            let flights = Arc::clone(&flights);
            let loads = Arc::clone(&loads);
            tokio::spawn(async move {
                flights
                    .run(vec![(1_u32, "product@g/1".to_owned())], |keys| async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(keys
                            .into_iter()
                            .map(|(_, address)| (address, b"\"mug\"".to_vec()))
                            .collect())
                    })
                    .await
            })
        });
        for reader in futures::future::join_all(readers).await {
            let values = reader.unwrap().unwrap();
            assert_eq!(values, vec![(1, b"\"mug\"".to_vec())]);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert!(
            flights.flights.lock().unwrap().is_empty(),
            "finished flights are unregistered"
        );
    }

    #[tokio::test]
    async fn a_load_whose_reader_is_cancelled_still_finishes_and_is_unregistered() {
        let flights = Arc::new(SingleFlight::default());
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let finished = Arc::new(AtomicUsize::new(0));
        let reader = {
            let flights = Arc::clone(&flights);
            let finished = Arc::clone(&finished);
            tokio::spawn(async move {
                flights
                    .run(vec![(1_u32, "a".to_owned())], |_| async move {
                        let _ = released.await;
                        finished.fetch_add(1, Ordering::SeqCst);
                        Ok(HashMap::from([("a".to_owned(), b"1".to_vec())]))
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        reader.abort();
        let _ = reader.await;
        release.send(()).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !flights.flights.lock().unwrap().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the abandoned load never finished"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "the load ran to its end with no reader"
        );
    }

    #[tokio::test]
    async fn a_failed_load_fails_every_waiter_with_the_same_code_and_is_not_remembered() {
        let flights = SingleFlight::default();
        let error = flights
            .run(vec![(1_u32, "a".to_owned())], |_| async {
                Err::<HashMap<String, Vec<u8>>, _>(AppError::Unavailable(anyhow::anyhow!("db down")))
            })
            .await
            .unwrap_err();
        assert_eq!(error.code(), crate::ErrorCode::Unavailable);
        let values = flights
            .run(vec![(1_u32, "a".to_owned())], |_| async {
                Ok(HashMap::from([("a".to_owned(), b"1".to_vec())]))
            })
            .await
            .unwrap();
        assert_eq!(values.len(), 1);
    }

    #[tokio::test]
    async fn a_load_that_panics_is_unregistered_so_the_next_reader_loads_afresh() {
        let flights = SingleFlight::default();
        let error = flights
            .run(vec![(1_u32, "a".to_owned())], |_| async {
                if "a".len() == 1 {
                    panic!("the load panics (on purpose, in a test)");
                }
                Ok(HashMap::new())
            })
            .await
            .unwrap_err();
        assert_eq!(error.code(), crate::ErrorCode::Internal);
        let values = flights
            .run(vec![(1_u32, "a".to_owned())], |_| async {
                Ok(HashMap::from([("a".to_owned(), b"1".to_vec())]))
            })
            .await
            .expect("a fresh load, not the panicked one's error");
        assert_eq!(values, vec![(1, b"1".to_vec())]);
    }
}

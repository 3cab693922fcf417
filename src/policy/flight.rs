//! A bounded cache whose loads are single-flight and detached.
//!
//! Concurrent requests for a cold key share one load. The load runs in its own task, so a
//! crawler that disconnects while waiting never cancels it for the others; its result is cached
//! when it completes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

/// A load in flight, awaited by any number of requests.
pub type SharedLoad<V> = Shared<BoxFuture<'static, Arc<V>>>;

pub struct FlightCache<V> {
    cache: moka::sync::Cache<String, Arc<V>>,
    in_flight: Mutex<HashMap<String, SharedLoad<V>>>,
}

impl<V> std::fmt::Debug for FlightCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightCache").field("entries", &self.cache.entry_count()).finish()
    }
}

impl<V: Send + Sync + 'static> FlightCache<V> {
    /// Wraps a bounded moka cache (its capacity and weigher bound the memory).
    pub fn new(cache: moka::sync::Cache<String, Arc<V>>) -> Arc<Self> {
        Arc::new(Self { cache, in_flight: Mutex::new(HashMap::new()) })
    }

    /// Entries cached now, and their total weight (as the cache's weigher counts it).
    pub fn size(&self) -> (u64, u64) {
        self.cache.run_pending_tasks();
        (self.cache.entry_count(), self.cache.weighted_size())
    }

    /// The cached value for `key`, whatever its age (the caller judges freshness).
    pub fn cached(&self, key: &str) -> Option<Arc<V>> {
        self.cache.get(key)
    }

    /// Joins the load in flight for `key`, or starts `load` in its own task. `failed` builds the
    /// value waiters get if the task dies (it must be a safe, fail-closed value).
    pub fn load<F>(
        self: &Arc<Self>,
        key: &str,
        load: F,
        failed: impl FnOnce(String) -> V + Send + 'static,
    ) -> SharedLoad<V>
    where
        F: Future<Output = V> + Send + 'static,
    {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(running) = in_flight.get(key) {
            return running.clone();
        }
        let this = self.clone();
        let task_key = key.to_string();
        let task = tokio::spawn(async move {
            let value = Arc::new(load.await);
            this.cache.insert(task_key.clone(), value.clone());
            this.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&task_key);
            value
        });
        let shared =
            async move { task.await.unwrap_or_else(|e| Arc::new(failed(format!("the load task failed: {e}")))) }
                .boxed()
                .shared();
        in_flight.insert(key.to_string(), shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_loads_share_one_run_and_survive_cancellation() {
        let cache: Arc<FlightCache<usize>> = FlightCache::new(moka::sync::Cache::new(10));
        let runs = Arc::new(AtomicUsize::new(0));
        let start = |cache: &Arc<FlightCache<usize>>| {
            let runs = runs.clone();
            cache.load(
                "k",
                async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    runs.fetch_add(1, Ordering::SeqCst) + 41
                },
                |_| 0,
            )
        };
        let first = tokio::spawn(start(&cache));
        first.abort(); // the first waiter goes away
        let values: Vec<Arc<usize>> = futures_util::future::join_all((0..10).map(|_| start(&cache))).await;
        assert!(values.iter().all(|v| **v == 41));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(cache.cached("k").map(|v| *v), Some(41));
    }
}

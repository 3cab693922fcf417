//! Politeness per origin: `Crawl-delay` pacing per crawler and a cap on concurrent requests.
//!
//! A crawler whose robots.txt group sets `Crawl-delay: N` gets at most one request every N
//! seconds to that origin (capped by `robots.max_crawl_delay`): requests wait their turn in
//! arrival order. Independently, at most `politeness.max_concurrent_per_origin` requests to an
//! origin are in flight at once. State is kept in bounded caches that forget idle origins.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Idle origins are forgotten after this long (their pacing state no longer matters).
const IDLE: Duration = Duration::from_secs(600);
const MAX_TRACKED: u64 = 100_000;

pub struct Politeness {
    max_concurrent: usize,
    /// (origin, crawler) → the earliest instant the next request may start.
    next_slot: moka::sync::Cache<(String, String), Arc<Mutex<Option<Instant>>>>,
    in_flight: moka::sync::Cache<String, Arc<Semaphore>>,
}

impl std::fmt::Debug for Politeness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Politeness").field("max_concurrent", &self.max_concurrent).finish()
    }
}

impl Politeness {
    /// (origin, crawler) pairs and origins tracked now.
    pub fn tracked(&self) -> (u64, u64) {
        self.next_slot.run_pending_tasks();
        self.in_flight.run_pending_tasks();
        (self.next_slot.entry_count(), self.in_flight.entry_count())
    }

    pub fn new(max_concurrent: usize) -> Self {
        Self {
            max_concurrent,
            next_slot: moka::sync::Cache::builder().max_capacity(MAX_TRACKED).time_to_idle(IDLE).build(),
            in_flight: moka::sync::Cache::builder().max_capacity(MAX_TRACKED).time_to_idle(IDLE).build(),
        }
    }

    /// Waits until this crawler may send its next request to `origin`; returns the time waited.
    pub async fn wait_turn(&self, origin: &str, crawler: &str, delay: Duration) -> Duration {
        let slot = self.next_slot.get_with((origin.to_string(), crawler.to_string()), Default::default);
        let now = Instant::now();
        let start = {
            let mut next = slot.lock().await;
            let start = next.map_or(now, |at| at.max(now));
            *next = Some(start + delay);
            start
        };
        tokio::time::sleep_until(start).await;
        start - now
    }

    /// A slot among the requests in flight to `origin`; held until the response head arrives.
    pub async fn enter(&self, origin: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = self.in_flight.get_with(origin.to_string(), || Arc::new(Semaphore::new(self.max_concurrent)));
        semaphore.acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn crawl_delay_spaces_requests_per_crawler_and_origin() {
        let politeness = Politeness::new(8);
        let delay = Duration::from_secs(2);
        assert_eq!(politeness.wait_turn("https://a", "bot", delay).await, Duration::ZERO);
        assert_eq!(politeness.wait_turn("https://a", "bot", delay).await, Duration::from_secs(2));
        assert_eq!(politeness.wait_turn("https://a", "bot", delay).await, Duration::from_secs(2));
        // Another crawler or another origin has its own pace.
        assert_eq!(politeness.wait_turn("https://a", "other", delay).await, Duration::ZERO);
        assert_eq!(politeness.wait_turn("https://b", "bot", delay).await, Duration::ZERO);
    }

    #[tokio::test]
    async fn concurrency_per_origin_is_capped() {
        let politeness = Politeness::new(2);
        let first = politeness.enter("https://a").await;
        let second = politeness.enter("https://a").await;
        assert!(first.is_some() && second.is_some());
        let third = tokio::time::timeout(Duration::from_millis(50), politeness.enter("https://a")).await;
        assert!(third.is_err(), "a third request to the same origin waits");
        assert!(politeness.enter("https://b").await.is_some(), "other origins are independent");
        drop(first);
        assert!(politeness.enter("https://a").await.is_some());
    }
}

//! The robots.txt cache against a real origin with injected time: TTL, Cache-Control, background
//! refresh, the last-good-copy rule and retries after an unreachable fetch.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Canned, TestOrigin};
use consentry::config::Config;
use consentry::policy::ManualClock;
use consentry::policy::robots::{FetchOutcome, RobotsCache, SiteVerdict};
use consentry::proxy::forward::Upstream;
use consentry::proxy::target::{Target, parse_absolute};

const HOUR: Duration = Duration::from_secs(3600);

struct Fixture {
    origin: TestOrigin,
    cache: Arc<RobotsCache>,
    clock: Arc<ManualClock>,
    target: Target,
}

impl Fixture {
    async fn new() -> Self {
        let origin = TestOrigin::plain().await;
        let mut config = Config::builtin();
        config.proxy.allow_private_destinations = true;
        let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)));
        let upstream = Upstream::new(&config).expect("upstream");
        let cache = RobotsCache::new(config.robots.clone(), upstream, clock.clone());
        let target = parse_absolute(&origin.url("/page").parse().expect("uri")).expect("target");
        Self { origin, cache, clock, target }
    }

    async fn blocked(&self, path: &str) -> bool {
        let policy = self.cache.get(&self.target, "TestBot/1.0").await;
        match policy.verdict {
            SiteVerdict::DisallowAll => true,
            SiteVerdict::AllowAll => false,
            SiteVerdict::Rules => !policy.rules.check("TestBot", path).allowed,
        }
    }

    fn fetches(&self) -> usize {
        self.origin.hits("/robots.txt")
    }

    /// Readiness for background work: the origin has seen `n` robots.txt fetches.
    async fn wait_for_fetches(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.fetches() < n {
            assert!(std::time::Instant::now() < deadline, "expected {n} fetches, saw {}", self.fetches());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The refreshed copy is stored right after the origin answers.
        while self.cache.fetch_count() < n as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[tokio::test]
async fn a_good_copy_is_trusted_for_the_ttl_then_refetched() {
    let f = Fixture::new().await;
    f.origin.robots("User-agent: *\nDisallow: /a\n");
    assert!(f.blocked("/a").await);
    f.clock.advance(HOUR);
    assert!(f.blocked("/a").await);
    assert_eq!(f.fetches(), 1, "cached within the TTL");

    f.origin.robots("User-agent: *\nDisallow: /b\n");
    f.clock.advance(24 * HOUR);
    assert!(!f.blocked("/a").await, "expired: the new file applies");
    assert!(f.blocked("/b").await);
    assert_eq!(f.fetches(), 2);
}

#[tokio::test]
async fn hot_origins_are_refreshed_in_the_background_before_expiry() {
    let f = Fixture::new().await;
    f.origin.robots("User-agent: *\nDisallow: /a\n");
    assert!(f.blocked("/a").await);
    f.origin.robots("User-agent: *\nDisallow: /b\n");
    f.clock.advance(20 * HOUR); // past 80% of 24 h, before expiry
    assert!(f.blocked("/a").await, "the copy in force answers at once");
    f.wait_for_fetches(2).await;
    assert!(f.blocked("/b").await, "the refreshed copy is used next");
    assert_eq!(f.fetches(), 2);
}

#[tokio::test]
async fn a_shorter_max_age_wins() {
    let f = Fixture::new().await;
    f.origin
        .set("/robots.txt", Canned::body("User-agent: *\nDisallow: /a\n").with_header("cache-control", "max-age=300"));
    assert!(f.blocked("/a").await);
    f.clock.advance(Duration::from_secs(200));
    assert!(f.blocked("/a").await);
    assert_eq!(f.fetches(), 1);
    f.clock.advance(Duration::from_secs(200));
    assert!(f.blocked("/a").await);
    assert_eq!(f.fetches(), 2, "max-age=300 expired after 400 s");
}

#[tokio::test]
async fn unreachable_uses_the_last_good_copy_for_30_days_then_disallows_all() {
    let f = Fixture::new().await;
    f.origin.robots("User-agent: *\nDisallow: /a\n");
    assert!(f.blocked("/a").await);
    assert!(!f.blocked("/open").await);

    f.origin.set("/robots.txt", Canned::status(503));
    f.clock.advance(25 * HOUR);
    assert!(!f.blocked("/open").await, "the good copy (25 h old) still applies while unreachable");
    let policy = f.cache.get(&f.target, "TestBot").await;
    assert!(policy.stale);
    assert!(matches!(policy.outcome, FetchOutcome::Unreachable { .. }));

    f.clock.advance(30 * 24 * HOUR);
    assert!(f.blocked("/open").await, "a copy older than 30 days is not used: disallow all");
}

#[tokio::test]
async fn an_unreachable_verdict_is_retried_after_unreachable_ttl() {
    let f = Fixture::new().await;
    f.origin.set("/robots.txt", Canned::status(500));
    assert!(f.blocked("/x").await);
    f.clock.advance(Duration::from_secs(30));
    assert!(f.blocked("/x").await);
    assert_eq!(f.fetches(), 1, "cached for robots.unreachable_ttl (60 s)");
    f.origin.set("/robots.txt", Canned::status(404));
    f.clock.advance(Duration::from_secs(31));
    assert!(!f.blocked("/x").await, "retried: now 404, allow all");
    assert_eq!(f.fetches(), 2);
}

#[tokio::test]
async fn a_crawler_that_goes_away_does_not_cancel_the_shared_fetch() {
    let f = Fixture::new().await;
    f.origin.set("/robots.txt", Canned::body("User-agent: *\nDisallow: /a\n").with_delay(Duration::from_millis(300)));
    let cache = f.cache.clone();
    let target = f.target.clone();
    let first = tokio::spawn(async move { cache.get(&target, "TestBot").await });
    // Readiness: the fetch has reached the origin.
    while f.fetches() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.abort(); // the crawler disconnects
    assert!(f.blocked("/a").await, "a second waiter gets the result of the same fetch");
    assert_eq!(f.fetches(), 1);
}

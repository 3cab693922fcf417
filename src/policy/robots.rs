//! robots.txt per origin: the RFC 9309 fetch state machine, the cache and single flight.
//!
//! | fetch result | verdict |
//! |---|---|
//! | 2xx | the parsed rules (first `robots.max_bytes` bytes) |
//! | 4xx except 429 | allow all (RFC 9309 §2.3.1.3) |
//! | 429 | unreachable (or allow all with `robots.on_429 = "allow"`) |
//! | 5xx, timeout, DNS/connect/TLS failure | unreachable: disallow all, or the last good copy if younger than `robots.max_stale_age` |
//! | more than 5 redirects, a loop, a redirect without `Location` | unreachable |
//!
//! Rules fetched through redirects apply to the original origin. A good copy is trusted for
//! `robots.cache_ttl` (or a shorter `Cache-Control: max-age`, never below a minute) and refreshed
//! in the background once 80% of that has passed, so hot origins never wait. Concurrent requests
//! for a cold origin share one fetch, which runs in its own task: a crawler that disconnects does
//! not cancel it for the others.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::Clock;
use super::fetch::{Attempt, Fetcher};
use super::flight::{FlightCache, SharedLoad};
use crate::config::RobotsConfig;
use crate::decide::{Effect, Finding, Source};
use crate::proxy::forward::Upstream;
use crate::proxy::target::Target;
use crate::signals::robots::RobotsTxt;

/// A site's `max-age` below this would turn every request into a fetch.
const MIN_TTL: Duration = Duration::from_secs(60);

pub use super::fetch::FetchOutcome;

/// What applies to an origin after its latest fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteVerdict {
    /// Evaluate the rules.
    Rules,
    /// No robots.txt restrictions (4xx).
    AllowAll,
    /// robots.txt unreachable and no usable good copy: nothing may be fetched.
    DisallowAll,
}

/// An origin's robots.txt as the decision uses it, with everything a reason needs to cite.
#[derive(Debug, Clone)]
pub struct RobotsPolicy {
    /// `scheme://host[:port]/robots.txt` of the original origin.
    pub url: String,
    pub verdict: SiteVerdict,
    pub rules: Arc<RobotsTxt>,
    /// The latest attempt.
    pub outcome: FetchOutcome,
    /// URLs followed after the first (redirect targets), of the copy in force.
    pub redirects: Vec<String>,
    /// sha256 (hex) of the exact bytes evaluated, for `Rules`.
    pub sha256: Option<String>,
    /// Bytes evaluated (after the `max_bytes` cut).
    pub size: usize,
    /// When the copy in force was fetched.
    pub fetched_at: SystemTime,
    /// `Rules` from an earlier good copy because the latest attempt was unreachable.
    pub stale: bool,
    pub expires_at: SystemTime,
    pub refresh_at: SystemTime,
    /// AI signals inside the groups (`Content-Usage`, `Content-Signal`), parsed once per token.
    pub embedded: super::findings::EmbeddedMemo,
}

impl RobotsPolicy {
    /// How the fetch went, in the words a reason shows.
    pub fn outcome_text(&self) -> String {
        match &self.outcome {
            FetchOutcome::Fetched { status } => format!("fetched ({status})"),
            FetchOutcome::Unavailable { status } => format!("unavailable ({status}): allow all (RFC 9309 §2.3.1.3)"),
            FetchOutcome::Unreachable { reason } => format!("unreachable: {reason}"),
            FetchOutcome::Refused { reason } => format!("refused: {reason}"),
        }
    }
}

/// The per-origin robots.txt cache with single-flight fetching.
#[derive(Debug)]
pub struct RobotsCache {
    config: RobotsConfig,
    fetcher: Fetcher,
    clock: Arc<dyn Clock>,
    flights: Arc<FlightCache<RobotsPolicy>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl RobotsCache {
    pub fn new(config: RobotsConfig, upstream: Upstream, clock: Arc<dyn Clock>) -> Arc<Self> {
        // Weigh entries by body size with a floor, so both the byte and the entry bound hold.
        let floor = (config.cache_max_bytes / config.cache_max_entries.max(1)).max(1);
        let cache = moka::sync::Cache::builder()
            .max_capacity(config.cache_max_bytes)
            .weigher(move |_key: &String, policy: &Arc<RobotsPolicy>| {
                u32::try_from((policy.size as u64).max(floor)).unwrap_or(u32::MAX)
            })
            .build();
        let fetcher = Fetcher::new(upstream, config.on_429);
        Arc::new(Self {
            config,
            fetcher,
            clock,
            flights: FlightCache::new(cache),
            fetches: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Origins cached now, and the bytes they weigh (`robots.cache_max_bytes` bounds it).
    pub fn cache_size(&self) -> (u64, u64) {
        self.flights.size()
    }

    /// Fetch attempts started so far (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The robots.txt policy for `target`'s origin: cached, or fetched once for all waiters.
    pub async fn get(self: &Arc<Self>, target: &Target, user_agent: &str) -> Arc<RobotsPolicy> {
        let key = target.origin();
        let now = self.clock.now();
        let cached = self.flights.cached(&key);
        match cached {
            Some(policy) if now < policy.expires_at => {
                metrics::counter!("consentry_policy_cache_total", "file" => "robots.txt", "result" => "hit")
                    .increment(1);
                if now >= policy.refresh_at {
                    // Refresh in the background; this request uses the copy still in force.
                    drop(self.fetch_shared(&key, user_agent, Some(policy.clone())));
                }
                policy
            }
            previous => {
                metrics::counter!("consentry_policy_cache_total", "file" => "robots.txt", "result" => "miss")
                    .increment(1);
                self.fetch_shared(&key, user_agent, previous).await
            }
        }
    }

    /// Joins the fetch in flight for the origin `key`, or starts one.
    fn fetch_shared(
        self: &Arc<Self>,
        key: &str,
        user_agent: &str,
        previous: Option<Arc<RobotsPolicy>>,
    ) -> SharedLoad<RobotsPolicy> {
        let this = self.clone();
        let url = format!("{key}/robots.txt");
        let failed_url = url.clone();
        let user_agent = user_agent.to_string();
        let clock = self.clock.clone();
        self.flights.load(key, async move { this.fetch(&url, &user_agent, previous).await }, move |reason| {
            unreachable_policy(failed_url, reason, clock.now(), Duration::ZERO)
        })
    }

    /// One complete fetch (redirects included) within `robots.fetch_timeout`, settled against the
    /// previous copy.
    async fn fetch(&self, url: &str, user_agent: &str, previous: Option<Arc<RobotsPolicy>>) -> RobotsPolicy {
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = self.clock.now();
        let config = &self.config;
        let attempt = self.fetcher.fetch(url, user_agent, config.max_bytes, config.fetch_timeout.0).await;
        metrics::counter!("consentry_policy_fetches_total", "file" => "robots.txt", "outcome" => outcome_label(&attempt.outcome))
            .increment(1);
        self.settle(url, attempt, previous, started)
    }

    /// Turns an attempt into the policy in force, using the previous good copy when allowed.
    fn settle(
        &self,
        url: &str,
        attempt: Attempt,
        previous: Option<Arc<RobotsPolicy>>,
        now: SystemTime,
    ) -> RobotsPolicy {
        let config = &self.config;
        match attempt.outcome {
            FetchOutcome::Fetched { .. } => {
                let body = attempt.body.unwrap_or_default();
                let ttl = attempt.max_age.map_or(config.cache_ttl.0, |age| age.clamp(MIN_TTL, config.cache_ttl.0));
                RobotsPolicy {
                    url: url.to_string(),
                    verdict: SiteVerdict::Rules,
                    rules: Arc::new(RobotsTxt::parse(&body, config.max_bytes)),
                    outcome: attempt.outcome,
                    redirects: attempt.redirects,
                    sha256: Some(hex::encode(Sha256::digest(&body))),
                    size: body.len(),
                    fetched_at: now,
                    stale: false,
                    expires_at: now + ttl,
                    refresh_at: now + ttl.mul_f64(0.8),
                    embedded: Default::default(),
                }
            }
            FetchOutcome::Unavailable { .. } => RobotsPolicy {
                url: url.to_string(),
                verdict: SiteVerdict::AllowAll,
                rules: Arc::new(RobotsTxt::allow_all()),
                outcome: attempt.outcome,
                redirects: attempt.redirects,
                sha256: None,
                size: 0,
                fetched_at: now,
                stale: false,
                expires_at: now + config.cache_ttl.0,
                refresh_at: now + config.cache_ttl.0.mul_f64(0.8),
                embedded: Default::default(),
            },
            FetchOutcome::Unreachable { .. } | FetchOutcome::Refused { .. } => {
                let retry = config.unreachable_ttl.0;
                let usable = previous.filter(|p| {
                    p.verdict == SiteVerdict::Rules
                        && now.duration_since(p.fetched_at).is_ok_and(|age| age < config.max_stale_age.0)
                        && !matches!(attempt.outcome, FetchOutcome::Refused { .. })
                });
                match usable {
                    Some(previous) => RobotsPolicy {
                        outcome: attempt.outcome,
                        stale: true,
                        expires_at: now + retry,
                        refresh_at: now + retry,
                        ..(*previous).clone()
                    },
                    None => {
                        let mut policy = unreachable_policy(url.to_string(), String::new(), now, retry);
                        policy.outcome = attempt.outcome;
                        policy.redirects = attempt.redirects;
                        policy
                    }
                }
            }
        }
    }
}

/// A short label for metrics.
pub fn outcome_label(outcome: &FetchOutcome) -> &'static str {
    match outcome {
        FetchOutcome::Fetched { .. } => "fetched",
        FetchOutcome::Unavailable { .. } => "unavailable",
        FetchOutcome::Unreachable { .. } => "unreachable",
        FetchOutcome::Refused { .. } => "refused",
    }
}

fn unreachable_policy(url: String, reason: String, now: SystemTime, retry: Duration) -> RobotsPolicy {
    RobotsPolicy {
        url,
        verdict: SiteVerdict::DisallowAll,
        rules: Arc::new(RobotsTxt::allow_all()),
        outcome: FetchOutcome::Unreachable { reason },
        redirects: Vec::new(),
        sha256: None,
        size: 0,
        fetched_at: now,
        stale: false,
        expires_at: now + retry,
        refresh_at: now + retry,
        embedded: Default::default(),
    }
}

/// The robots.txt findings for one request (pure): the crawler's own token, then every honoured
/// token that has a group of its own. `/robots.txt` itself is never judged.
pub fn findings(
    policy: &RobotsPolicy,
    token: &str,
    honor_tokens: &[String],
    path_and_query: &str,
    now: SystemTime,
) -> Vec<Finding> {
    let mut found = Vec::new();
    let path_only = path_and_query.split('?').next().unwrap_or(path_and_query);
    if path_only == "/robots.txt" {
        return found;
    }
    let fetch = fetch_note(policy, now);
    match policy.verdict {
        SiteVerdict::AllowAll => {
            found.push(finding(policy, Effect::Allow, policy.outcome_text(), None, fetch));
        }
        SiteVerdict::DisallowAll => {
            let rule = format!("robots.txt {} (RFC 9309 §2.3.1.4: complete disallow)", policy.outcome_text());
            found.push(finding(policy, Effect::Disallow, rule, None, fetch));
        }
        SiteVerdict::Rules => {
            let own = policy.rules.check(token, path_and_query);
            found.push(match_finding(policy, token, &own, &fetch));
            for honoured in honor_tokens.iter().filter(|t| !t.eq_ignore_ascii_case(token)) {
                if let Some(verdict) = policy.rules.check_specific(honoured, path_and_query)
                    && !verdict.allowed
                {
                    found.push(match_finding(policy, honoured, &verdict, &fetch));
                }
            }
        }
    }
    found
}

fn match_finding(
    policy: &RobotsPolicy,
    token: &str,
    verdict: &crate::signals::robots::RobotsMatch,
    fetch: &str,
) -> Finding {
    let effect = if verdict.allowed { Effect::Allow } else { Effect::Disallow };
    let group = verdict
        .group
        .as_ref()
        .map(|g| format!("User-agent: {} (line {})", g.token, g.line))
        .unwrap_or_else(|| "no group".into());
    let (rule, line) = match &verdict.rule {
        Some(rule) => (rule.text.clone(), Some(rule.line)),
        None => ("no matching rule".to_string(), None),
    };
    finding(policy, effect, rule, line, format!("token {token}; group {group}; {fetch}"))
}

fn finding(policy: &RobotsPolicy, effect: Effect, rule: String, line: Option<u32>, detail: String) -> Finding {
    Finding {
        source: Source::Robots,
        effect,
        purposes: Vec::new(),
        rule: Some(rule),
        line,
        evidence: Some(policy.url.clone()),
        evidence_sha256: policy.sha256.clone(),
        detail: Some(detail),
        entry_id: None,
        creator: None,
    }
}

/// "fetched (200), 1 redirect, cached, age 12s" and the like.
fn fetch_note(policy: &RobotsPolicy, now: SystemTime) -> String {
    let age = now.duration_since(policy.fetched_at).unwrap_or_default().as_secs();
    let mut note = policy.outcome_text();
    if !policy.redirects.is_empty() {
        note.push_str(&format!(", via {}", policy.redirects.join(" -> ")));
    }
    if policy.stale {
        note.push_str(", using the last good copy");
    }
    note.push_str(&format!(", age {age}s"));
    note
}

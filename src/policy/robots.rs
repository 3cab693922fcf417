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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use http::header::{self, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use super::Clock;
use crate::config::{On429, RobotsConfig};
use crate::decide::{Effect, Finding, Source};
use crate::proxy::forward::{Upstream, UpstreamError};
use crate::proxy::target::Target;
use crate::signals::robots::RobotsTxt;

/// RFC 9309 §2.3.1.2: follow at least five consecutive redirects.
const MAX_REDIRECTS: usize = 5;
/// A site's `max-age` below this would turn every request into a fetch.
const MIN_TTL: Duration = Duration::from_secs(60);

/// What the last fetch attempt of an origin's robots.txt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// 2xx: rules parsed.
    Fetched { status: u16 },
    /// 4xx (not 429, unless configured): allow all.
    Unavailable { status: u16 },
    /// 5xx, 429, network failure, too many redirects: disallow all (or the last good copy).
    Unreachable { reason: String },
    /// The network policy refused the destination itself.
    Refused { reason: String },
}

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

type SharedFetch = Shared<BoxFuture<'static, Arc<RobotsPolicy>>>;

/// The per-origin robots.txt cache with single-flight fetching.
pub struct RobotsCache {
    config: RobotsConfig,
    upstream: Upstream,
    clock: Arc<dyn Clock>,
    cache: moka::sync::Cache<String, Arc<RobotsPolicy>>,
    in_flight: Mutex<HashMap<String, SharedFetch>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for RobotsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobotsCache").field("entries", &self.cache.entry_count()).finish()
    }
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
        Arc::new(Self {
            config,
            upstream,
            clock,
            cache,
            in_flight: Mutex::new(HashMap::new()),
            fetches: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Fetch attempts started so far (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The robots.txt policy for `target`'s origin: cached, or fetched once for all waiters.
    pub async fn get(self: &Arc<Self>, target: &Target, user_agent: &str) -> Arc<RobotsPolicy> {
        let key = target.origin();
        let now = self.clock.now();
        let cached = self.cache.get(&key);
        match cached {
            Some(policy) if now < policy.expires_at => {
                if now >= policy.refresh_at {
                    // Refresh in the background; this request uses the copy still in force.
                    drop(self.shared_fetch(&key, target, user_agent, Some(policy.clone())));
                }
                policy
            }
            previous => self.shared_fetch(&key, target, user_agent, previous).await,
        }
    }

    /// Joins the fetch in flight for `key`, or starts one in its own task.
    fn shared_fetch(
        self: &Arc<Self>,
        key: &str,
        target: &Target,
        user_agent: &str,
        previous: Option<Arc<RobotsPolicy>>,
    ) -> SharedFetch {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(fetch) = in_flight.get(key) {
            return fetch.clone();
        }
        let this = self.clone();
        let url = format!("{}/robots.txt", target.origin());
        let task_key = key.to_string();
        let user_agent = user_agent.to_string();
        let task = tokio::spawn(async move {
            let policy = Arc::new(this.fetch(&url, &user_agent, previous).await);
            this.cache.insert(task_key.clone(), policy.clone());
            this.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&task_key);
            policy
        });
        let failed_url = format!("{}/robots.txt", target.origin());
        let clock = self.clock.clone();
        let shared = async move {
            task.await.unwrap_or_else(|e| {
                let reason = format!("the fetch task failed: {e}");
                Arc::new(unreachable_policy(failed_url, reason, clock.now(), Duration::ZERO))
            })
        }
        .boxed()
        .shared();
        in_flight.insert(key.to_string(), shared.clone());
        shared
    }

    /// One complete fetch (redirects included) within `robots.fetch_timeout`, settled against the
    /// previous copy.
    async fn fetch(&self, url: &str, user_agent: &str, previous: Option<Arc<RobotsPolicy>>) -> RobotsPolicy {
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = self.clock.now();
        let timeout = self.config.fetch_timeout.0;
        let attempt = match tokio::time::timeout(timeout, self.attempt(url, user_agent)).await {
            Ok(attempt) => attempt,
            Err(_) => Attempt::failed(FetchOutcome::Unreachable { reason: format!("no answer within {timeout:?}") }),
        };
        self.settle(url, attempt, previous, started)
    }

    /// Follows up to [`MAX_REDIRECTS`] redirects and reads at most `max_bytes` of the body.
    async fn attempt(&self, url: &str, user_agent: &str) -> Attempt {
        let mut current = url.to_string();
        let mut redirects = Vec::new();
        loop {
            let response = match self.request(&current, user_agent).await {
                Ok(response) => response,
                // The origin itself is refused: the request will be too (network policy).
                Err(UpstreamError::Refused(reason)) if redirects.is_empty() => {
                    return Attempt::failed(FetchOutcome::Refused { reason });
                }
                // A redirect into a refused range is just an unusable robots.txt.
                Err(UpstreamError::Refused(reason)) => {
                    let reason = format!("redirected to a refused destination: {reason}");
                    return Attempt::failed(FetchOutcome::Unreachable { reason }).with_redirects(redirects);
                }
                Err(UpstreamError::Timeout(reason) | UpstreamError::Failed(reason)) => {
                    return Attempt::failed(FetchOutcome::Unreachable { reason }).with_redirects(redirects);
                }
            };
            let status = response.status();
            if status.is_redirection() {
                let next = match redirect_target(&current, response.headers().get(header::LOCATION)) {
                    Ok(next) => next,
                    Err(reason) => {
                        return Attempt::failed(FetchOutcome::Unreachable { reason }).with_redirects(redirects);
                    }
                };
                if next == url || redirects.contains(&next) {
                    let reason = format!("redirect loop at {next}");
                    return Attempt::failed(FetchOutcome::Unreachable { reason }).with_redirects(redirects);
                }
                redirects.push(next.clone());
                if redirects.len() > MAX_REDIRECTS {
                    let reason = format!("more than {MAX_REDIRECTS} redirects");
                    return Attempt::failed(FetchOutcome::Unreachable { reason }).with_redirects(redirects);
                }
                current = next;
                continue;
            }
            let max_age = max_age(response.headers().get(header::CACHE_CONTROL));
            let outcome = self.classify(status);
            let body = match outcome {
                FetchOutcome::Fetched { .. } => match read_prefix(response.into_body(), self.config.max_bytes).await {
                    Ok(body) => Some(body),
                    Err(reason) => {
                        let reason = format!("reading the body failed: {reason}");
                        return Attempt::failed(FetchOutcome::Unreachable { reason }).with_redirects(redirects);
                    }
                },
                _ => None,
            };
            return Attempt { outcome, body, redirects, max_age };
        }
    }

    async fn request(
        &self,
        url: &str,
        user_agent: &str,
    ) -> Result<http::Response<hyper::body::Incoming>, UpstreamError> {
        let uri: Uri = url.parse().map_err(|e| UpstreamError::Failed(format!("invalid URL {url}: {e}")))?;
        let mut request = Request::get(uri)
            .header(header::ACCEPT, "text/plain, */*;q=0.1")
            .body(crate::proxy::answer::empty())
            .map_err(|e| UpstreamError::Failed(e.to_string()))?;
        if let Ok(agent) = HeaderValue::from_str(user_agent) {
            request.headers_mut().insert(header::USER_AGENT, agent);
        }
        self.upstream.send(request).await
    }

    fn classify(&self, status: StatusCode) -> FetchOutcome {
        let code = status.as_u16();
        if status.is_success() {
            FetchOutcome::Fetched { status: code }
        } else if status == StatusCode::TOO_MANY_REQUESTS && self.config.on_429 == On429::Unreachable {
            FetchOutcome::Unreachable { reason: "429 Too Many Requests (robots.on_429 = \"unreachable\")".into() }
        } else if status.is_client_error() {
            FetchOutcome::Unavailable { status: code }
        } else {
            FetchOutcome::Unreachable { reason: format!("status {status}") }
        }
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

struct Attempt {
    outcome: FetchOutcome,
    body: Option<Bytes>,
    redirects: Vec<String>,
    max_age: Option<Duration>,
}

impl Attempt {
    fn failed(outcome: FetchOutcome) -> Self {
        Self { outcome, body: None, redirects: Vec::new(), max_age: None }
    }

    fn with_redirects(mut self, redirects: Vec<String>) -> Self {
        self.redirects = redirects;
        self
    }
}

/// Reads at most `limit` bytes of a body; the rest is never read.
async fn read_prefix<B>(mut body: B, limit: usize) -> Result<Bytes, String>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut collected = BytesMut::new();
    while collected.len() < limit {
        match body.frame().await {
            None => break,
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    collected.extend_from_slice(data);
                }
            }
        }
    }
    collected.truncate(limit);
    Ok(collected.freeze())
}

/// The absolute URL a redirect points to (http or https only).
fn redirect_target(current: &str, location: Option<&HeaderValue>) -> Result<String, String> {
    let location = location
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| "redirect without a usable Location".to_string())?;
    let base: Uri = current.parse().map_err(|_| format!("invalid URL {current}"))?;
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    let absolute = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else if location.contains("://") {
        return Err(format!("redirect to an unsupported scheme: {location}"));
    } else {
        let directory = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{scheme}://{authority}{directory}/{location}")
    };
    absolute.parse::<Uri>().map_err(|_| format!("redirect to an invalid URL: {location}"))?;
    Ok(absolute)
}

/// `max-age` from `Cache-Control`, when present and valid.
fn max_age(value: Option<&HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?;
    text.split(',')
        .find_map(|directive| {
            let (name, value) = directive.trim().split_once('=')?;
            name.trim().eq_ignore_ascii_case("max-age").then(|| value.trim().trim_matches('"').parse().ok()).flatten()
        })
        .map(Duration::from_secs)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_targets_resolve_like_a_browser() {
        let base = "https://site.example/robots.txt";
        let loc = |v: &'static str| HeaderValue::from_static(v);
        assert_eq!(redirect_target(base, Some(&loc("/r2"))).as_deref(), Ok("https://site.example/r2"));
        assert_eq!(redirect_target(base, Some(&loc("//cdn.example/r"))).as_deref(), Ok("https://cdn.example/r"));
        assert_eq!(redirect_target(base, Some(&loc("http://x.example/r"))).as_deref(), Ok("http://x.example/r"));
        assert_eq!(redirect_target("https://s/a/b", Some(&loc("c"))).as_deref(), Ok("https://s/a/c"));
        assert!(redirect_target(base, None).is_err());
        assert!(redirect_target(base, Some(&loc("ftp://x/r"))).is_err());
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(max_age(Some(&v("public, max-age=300"))), Some(Duration::from_secs(300)));
        assert_eq!(max_age(Some(&v("no-cache"))), None);
        assert_eq!(max_age(None), None);
    }
}

//! AI policy files: per origin `/ai.txt` (Spawning) and `/.well-known/tdmrep.json` (TDMRep), and
//! RSL licence documents by URL.
//!
//! Fetched, cached and single-flighted like robots.txt, through the same upstream client. A 4xx
//! means the site publishes no such file (no signal); 5xx, timeouts and network failures are
//! recorded as `unreachable`, and `policy.on_signal_unreachable` decides whether that blocks.
//! Good copies are trusted for `robots.cache_ttl` (or a shorter `max-age`), failures for
//! `robots.unreachable_ttl`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::Clock;
use super::fetch::{FetchOutcome, Fetcher};
use super::flight::FlightCache;
use crate::config::RobotsConfig;
use crate::proxy::target::Target;
use crate::signals::ai_txt::AiTxt;
use crate::signals::rsl::RslDocument;
use crate::signals::tdmrep::TdmRepFile;

/// Bytes of an ai.txt or tdmrep.json that are read (both are small in practice).
const MAX_FILE_BYTES: usize = 512_000;
/// A site's `max-age` below this would turn every request into a fetch.
const MIN_TTL: Duration = Duration::from_secs(60);

/// What an origin's policy file said.
#[derive(Debug)]
pub enum FileState<T> {
    /// 2xx: parsed.
    Found(T),
    /// 4xx: the site publishes no such file.
    Absent { status: u16 },
    /// Could not be fetched for a reason other than absence.
    Unreachable { reason: String },
}

/// One origin's copy of a policy file.
#[derive(Debug)]
pub struct SiteFile<T> {
    pub url: String,
    pub state: FileState<T>,
    /// sha256 (hex) of the bytes parsed.
    pub sha256: Option<String>,
    pub size: usize,
    pub fetched_at: SystemTime,
    pub expires_at: SystemTime,
}

/// The per-origin caches of ai.txt and tdmrep.json.
#[derive(Debug)]
pub struct SiteFiles {
    fetcher: Fetcher,
    clock: Arc<dyn Clock>,
    config: RobotsConfig,
    ai_txt: Arc<FlightCache<SiteFile<AiTxt>>>,
    tdmrep: Arc<FlightCache<SiteFile<TdmRepFile>>>,
    rsl: Arc<FlightCache<SiteFile<RslDocument>>>,
}

impl SiteFiles {
    pub fn new(fetcher: Fetcher, clock: Arc<dyn Clock>, config: RobotsConfig) -> Arc<Self> {
        let ai_txt = FlightCache::new(bounded_cache(&config));
        let tdmrep = FlightCache::new(bounded_cache(&config));
        let rsl = FlightCache::new(bounded_cache(&config));
        Arc::new(Self { ai_txt, tdmrep, rsl, fetcher, clock, config })
    }

    /// Entries cached now, by file.
    pub fn cache_entries(&self) -> [(&'static str, u64); 3] {
        [("ai.txt", self.ai_txt.size().0), ("tdmrep.json", self.tdmrep.size().0), ("rsl", self.rsl.size().0)]
    }

    /// The origin's `/ai.txt`.
    pub async fn ai_txt(self: &Arc<Self>, target: &Target, user_agent: &str) -> Arc<SiteFile<AiTxt>> {
        self.get(&self.ai_txt, target, "/ai.txt", user_agent, AiTxt::parse).await
    }

    /// The origin's `/.well-known/tdmrep.json`.
    pub async fn tdmrep(self: &Arc<Self>, target: &Target, user_agent: &str) -> Arc<SiteFile<TdmRepFile>> {
        self.get(&self.tdmrep, target, "/.well-known/tdmrep.json", user_agent, TdmRepFile::parse).await
    }

    /// An RSL licence document, by its URL (named in robots.txt `License:` or a `Link` header).
    pub async fn rsl(self: &Arc<Self>, url: &str, user_agent: &str) -> Arc<SiteFile<RslDocument>> {
        self.get_url(&self.rsl, url.to_string(), user_agent, |body| RslDocument::parse(body, false)).await
    }

    async fn get<T: Send + Sync + 'static>(
        self: &Arc<Self>,
        cache: &Arc<FlightCache<SiteFile<T>>>,
        target: &Target,
        path: &'static str,
        user_agent: &str,
        parse: fn(&[u8]) -> T,
    ) -> Arc<SiteFile<T>> {
        self.get_url(cache, format!("{}{path}", target.origin()), user_agent, parse).await
    }

    async fn get_url<T: Send + Sync + 'static>(
        self: &Arc<Self>,
        cache: &Arc<FlightCache<SiteFile<T>>>,
        url: String,
        user_agent: &str,
        parse: fn(&[u8]) -> T,
    ) -> Arc<SiteFile<T>> {
        if let Some(file) = cache.cached(&url)
            && self.clock.now() < file.expires_at
        {
            return file;
        }
        let this = self.clone();
        let user_agent = user_agent.to_string();
        let task_url = url.clone();
        let failed_url = url.clone();
        let clock = self.clock.clone();
        let failed = move |reason| SiteFile {
            url: failed_url,
            state: FileState::Unreachable { reason },
            sha256: None,
            size: 0,
            fetched_at: clock.now(),
            expires_at: clock.now(),
        };
        cache.load(&url, async move { this.fetch(&task_url, &user_agent, parse).await }, failed).await
    }

    async fn fetch<T>(&self, url: &str, user_agent: &str, parse: fn(&[u8]) -> T) -> SiteFile<T> {
        let now = self.clock.now();
        let config = &self.config;
        let attempt = self.fetcher.fetch(url, user_agent, MAX_FILE_BYTES, config.fetch_timeout.0).await;
        let file = file_label(url);
        let label = super::robots::outcome_label(&attempt.outcome);
        metrics::counter!("consentry_policy_fetches_total", "file" => file, "outcome" => label).increment(1);
        let good_ttl = attempt.max_age.map_or(config.cache_ttl.0, |age| age.clamp(MIN_TTL, config.cache_ttl.0));
        let (state, ttl, body) = match attempt.outcome {
            FetchOutcome::Fetched { .. } => {
                let body = attempt.body.unwrap_or_default();
                (FileState::Found(parse(&body)), good_ttl, Some(body))
            }
            FetchOutcome::Unavailable { status } => (FileState::Absent { status }, good_ttl, None),
            FetchOutcome::Unreachable { reason } | FetchOutcome::Refused { reason } => {
                (FileState::Unreachable { reason }, config.unreachable_ttl.0, None)
            }
        };
        SiteFile {
            url: url.to_string(),
            state,
            sha256: body.as_ref().map(|b| hex::encode(Sha256::digest(b))),
            size: body.as_ref().map_or(0, |b| b.len()),
            fetched_at: now,
            expires_at: now + ttl,
        }
    }
}

/// A cache bounded like the robots.txt cache: by bytes, with a per-entry floor bounding entries.
fn bounded_cache<T: Send + Sync + 'static>(config: &RobotsConfig) -> moka::sync::Cache<String, Arc<SiteFile<T>>> {
    let floor = (config.cache_max_bytes / config.cache_max_entries.max(1)).max(1);
    moka::sync::Cache::builder()
        .max_capacity(config.cache_max_bytes)
        .weigher(move |_: &String, file: &Arc<SiteFile<T>>| {
            u32::try_from((file.size as u64).max(floor)).unwrap_or(u32::MAX)
        })
        .build()
}

fn file_label(url: &str) -> &'static str {
    if url.ends_with("/ai.txt") {
        "ai.txt"
    } else if url.ends_with("/.well-known/tdmrep.json") {
        "tdmrep.json"
    } else {
        "rsl"
    }
}

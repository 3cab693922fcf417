//! Registry feeds: JSON Lines files of entries published by a registry operator, pulled on an
//! interval and mirrored into the store.
//!
//! One pull is all or nothing: the body (conditional on the last `ETag`), then, when the feed
//! has a `public_key`, its detached Ed25519 signature, then every line validated. Only a
//! complete, valid, correctly signed feed replaces the feed's entries (in one transaction);
//! anything else keeps the previous set and is recorded (`registry_feeds.error`, metrics, log).
//! Entry ids are namespaced per feed so that no feed can overwrite another source's entry.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use ed25519_dalek::{Signature, VerifyingKey};
use http::header::{self, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::entry::{Entry, ValidEntry};
use super::import;
use super::store::{FeedState, WriteSummary};
use super::sync::Registry;
use crate::config::FeedConfig;
use crate::proxy::forward::Upstream;
use crate::storage::now_ms;

const USER_AGENT: &str = concat!("Consentry-Registry/", env!("CARGO_PKG_VERSION"));
/// Largest detached signature file read.
const MAX_SIGNATURE_BYTES: usize = 1024;
/// Time one pull (feed and signature) may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(120);

/// Parses a base64 Ed25519 public key (32 bytes).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = BASE64.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| format!("{} bytes, expected 32", b.len()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// Checks a detached signature (base64 of 64 bytes, surrounding whitespace ignored) over `body`.
pub fn verify_signature(key: &VerifyingKey, body: &[u8], signature_text: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(signature_text).map_err(|_| "the signature is not text".to_string())?;
    let bytes = BASE64.decode(text.trim()).map_err(|e| format!("the signature is not base64: {e}"))?;
    let bytes: [u8; 64] =
        bytes.try_into().map_err(|b: Vec<u8>| format!("the signature has {} bytes, expected 64", b.len()))?;
    key.verify_strict(body, &Signature::from_bytes(&bytes))
        .map_err(|_| "the signature does not match the feed body and public key".to_string())
}

/// The stored id of a feed entry: the feed's namespace plus the line's own id, or a hash of the
/// entry's content when the line has none (stable while the line does not change).
pub fn feed_entry_id(feed_url: &str, entry: &ValidEntry) -> String {
    let namespace = &hex::encode(Sha256::digest(feed_url.as_bytes()))[..12];
    match &entry.id {
        Some(id) => format!("feed-{namespace}-{id}"),
        None => {
            let content = format!("{:?}|{:?}|{}|{}", entry.target, entry.purposes, entry.creator, entry.contact);
            format!("feed-{namespace}-{}", &hex::encode(Sha256::digest(content.as_bytes()))[..24])
        }
    }
}

/// How one pull ended.
#[derive(Debug)]
pub enum PullOutcome {
    /// `304 Not Modified`: the stored entries are current.
    NotModified,
    Replaced {
        summary: WriteSummary,
        entries: usize,
        etag: Option<String>,
    },
    Failed(String),
}

/// Pulls one feed on its interval.
pub struct FeedPuller {
    pub registry: Arc<Registry>,
    pub upstream: Upstream,
    pub feed: FeedConfig,
    pub max_bytes: usize,
}

impl FeedPuller {
    /// Pulls now, then every `interval`, until `shutdown`; keeps the age metric current.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut next_pull = tokio::time::Instant::now();
        let mut age_tick = tokio::time::interval(Duration::from_secs(1));
        // The last success as this puller recorded it: the age gauge needs no query.
        let mut succeeded_ms = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep_until(next_pull) => {
                    succeeded_ms = self.pull_and_record().await.succeeded_ms;
                    next_pull = tokio::time::Instant::now() + self.feed.interval.0;
                }
                _ = age_tick.tick() => {
                    if let Some(succeeded) = succeeded_ms {
                        let age = (now_ms() - succeeded).max(0) as f64 / 1000.0;
                        metrics::gauge!("consentry_registry_feed_age_seconds", "feed" => self.feed.url.clone()).set(age);
                    }
                }
            }
        }
    }

    /// One pull, recorded in `registry_feeds`, the metrics and the log; returns what was recorded.
    pub async fn pull_and_record(&self) -> FeedState {
        let store = &self.registry.store;
        let previous = store.feed_state(&self.feed.url).await.ok().flatten();
        let etag = previous.as_ref().and_then(|p| p.etag.clone());
        let outcome = match tokio::time::timeout(PULL_TIMEOUT, self.pull(etag.as_deref())).await {
            Ok(outcome) => outcome,
            Err(_) => PullOutcome::Failed(format!("no complete answer within {PULL_TIMEOUT:?}")),
        };
        let now = now_ms();
        let mut state = previous.unwrap_or(FeedState {
            url: self.feed.url.clone(),
            etag: None,
            checked_ms: now,
            succeeded_ms: None,
            entries: 0,
            error: None,
        });
        state.checked_ms = now;
        let feed = self.feed.url.clone();
        match &outcome {
            PullOutcome::NotModified => {
                state.succeeded_ms = Some(now);
                state.error = None;
            }
            PullOutcome::Replaced { summary, entries, etag } => {
                state.succeeded_ms = Some(now);
                state.error = None;
                state.etag = etag.clone();
                state.entries = i64::try_from(*entries).unwrap_or(i64::MAX);
                tracing::info!(%feed, entries, ?summary, "registry feed applied");
                self.registry.changed();
            }
            PullOutcome::Failed(reason) => {
                metrics::counter!("consentry_registry_feed_failures_total", "feed" => feed.clone()).increment(1);
                tracing::warn!(%feed, %reason, "registry feed not applied; its previous entries stay in force");
                state.error = Some(reason.clone());
            }
        }
        if let Some(succeeded) = state.succeeded_ms {
            metrics::gauge!("consentry_registry_feed_last_success_seconds", "feed" => feed.clone())
                .set(succeeded as f64 / 1000.0);
        }
        if let Err(error) = store.save_feed_state(&state).await {
            tracing::warn!(%feed, %error, "cannot record the feed's state");
        }
        state
    }

    async fn pull(&self, etag: Option<&str>) -> PullOutcome {
        let (status, headers, body) = match self.get(&self.feed.url, etag, self.max_bytes).await {
            Ok(answer) => answer,
            Err(reason) => return PullOutcome::Failed(reason),
        };
        if status == StatusCode::NOT_MODIFIED {
            return PullOutcome::NotModified;
        }
        if !status.is_success() {
            return PullOutcome::Failed(format!("the feed answered {status}"));
        }
        if !self.feed.public_key.is_empty()
            && let Err(reason) = self.check_signature(&body).await
        {
            return PullOutcome::Failed(reason);
        }
        let entries = match self.entries(&body) {
            Ok(entries) => entries,
            Err(reason) => return PullOutcome::Failed(reason),
        };
        let source = format!("feed:{}", self.feed.url);
        match self.registry.store.replace_source(&source, &entries, now_ms()).await {
            Ok(summary) => PullOutcome::Replaced {
                summary,
                entries: entries.len(),
                etag: headers.get(header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string),
            },
            Err(error) => PullOutcome::Failed(format!("cannot store the feed's entries: {error}")),
        }
    }

    async fn check_signature(&self, body: &[u8]) -> Result<(), String> {
        let key = parse_public_key(&self.feed.public_key).map_err(|e| format!("registry.feeds public_key: {e}"))?;
        let url = self.feed.signature_url();
        let (status, _, signature) = self.get(&url, None, MAX_SIGNATURE_BYTES).await?;
        if !status.is_success() {
            return Err(format!("the signature {url} answered {status}"));
        }
        verify_signature(&key, body, &signature)
    }

    /// Validated entries with their stored ids; any invalid line rejects the whole feed.
    fn entries(&self, body: &[u8]) -> Result<Vec<Entry>, String> {
        let lines = import::parse_bytes(body, import::Format::JsonLines).map_err(|errors| {
            let shown: Vec<String> = errors.iter().take(5).map(ToString::to_string).collect();
            format!("invalid feed ({} problems): {}", errors.len(), shown.join("; "))
        })?;
        let source = format!("feed:{}", self.feed.url);
        let now = now_ms();
        Ok(lines
            .into_iter()
            .map(|(_, mut valid)| {
                valid.id = Some(feed_entry_id(&self.feed.url, &valid));
                valid.into_entry(String::new, &source, now)
            })
            .collect())
    }

    async fn get(
        &self,
        url: &str,
        etag: Option<&str>,
        max_bytes: usize,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("invalid URL {url}: {e}"))?;
        let mut request = Request::get(uri)
            .header(header::USER_AGENT, USER_AGENT)
            .body(crate::proxy::answer::empty())
            .map_err(|e| e.to_string())?;
        if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
            request.headers_mut().insert(header::IF_NONE_MATCH, etag);
        }
        let response = self.upstream.send(request).await.map_err(|e| format!("{url}: {e}"))?;
        let (parts, body) = response.into_parts();
        if parts.status.is_redirection() {
            let location = parts.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("?");
            return Err(format!("{url} redirects to {location}; configure the final URL"));
        }
        let body = Limited::new(body, max_bytes)
            .collect()
            .await
            .map_err(|e| format!("reading {url} failed (limit {max_bytes} bytes): {e}"))?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        let public = BASE64.encode(signing.verifying_key().as_bytes());
        let key = parse_public_key(&public).expect("key");
        let body = b"{\"creator\":\"a\",\"domain\":\"example.org\"}\n";
        let signature = BASE64.encode(signing.sign(body).to_bytes());
        assert_eq!(verify_signature(&key, body, format!("{signature}\n").as_bytes()), Ok(()));
        assert!(verify_signature(&key, b"tampered", signature.as_bytes()).is_err());
        assert!(verify_signature(&key, body, b"not base64!").is_err());
        assert!(parse_public_key("AAAA").is_err());
    }

    #[test]
    fn feed_ids_are_namespaced_and_stable() {
        let valid = |id: Option<&str>| ValidEntry {
            id: id.map(str::to_string),
            creator: "Ann".into(),
            contact: String::new(),
            target: super::super::EntryTarget::Domain {
                domain: "example.org".into(),
                include_subdomains: true,
                paths: vec![],
            },
            purposes: vec![crate::decide::Purpose::AiTrain],
        };
        let a = feed_entry_id("https://a.example/feed", &valid(None));
        assert_eq!(a, feed_entry_id("https://a.example/feed", &valid(None)));
        assert_ne!(a, feed_entry_id("https://b.example/feed", &valid(None)));
        assert!(feed_entry_id("https://a.example/feed", &valid(Some("x1"))).ends_with("-x1"));
    }
}

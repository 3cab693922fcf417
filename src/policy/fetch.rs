//! Fetching policy files (robots.txt, ai.txt, tdmrep.json, ...) over the upstream client.
//!
//! One complete fetch follows up to five redirects (RFC 9309 §2.3.1.2; across hosts too), reads at
//! most `max_bytes` of a 2xx body, and classifies the answer: 2xx fetched, 4xx unavailable (429
//! unreachable unless `robots.on_429 = "allow"`), 5xx and network failures unreachable, and a
//! destination the network policy refuses as refused.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::BodyExt;

use crate::config::On429;
use crate::proxy::forward::{Upstream, UpstreamError};

/// RFC 9309 §2.3.1.2: follow at least five consecutive redirects.
const MAX_REDIRECTS: usize = 5;

/// What one fetch attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// 2xx: the body was read.
    Fetched { status: u16 },
    /// 4xx (not 429, unless configured): the file does not exist for us.
    Unavailable { status: u16 },
    /// 5xx, 429, network failure, too many redirects: the file's content is unknown.
    Unreachable { reason: String },
    /// The network policy refused the destination itself.
    Refused { reason: String },
}

/// Fetches policy files through the shared upstream client.
#[derive(Debug, Clone)]
pub struct Fetcher {
    upstream: Upstream,
    on_429: On429,
}

impl Fetcher {
    pub fn new(upstream: Upstream, on_429: On429) -> Self {
        Self { upstream, on_429 }
    }

    /// One complete fetch of `url` within `timeout`, as `user_agent`.
    pub async fn fetch(&self, url: &str, user_agent: &str, max_bytes: usize, timeout: Duration) -> Attempt {
        match tokio::time::timeout(timeout, self.attempt(url, user_agent, max_bytes)).await {
            Ok(attempt) => attempt,
            // The origin may have answered and then trickled: say the fetch timed out, and which
            // setting bounds it.
            Err(_) => Attempt::failed(FetchOutcome::Unreachable {
                reason: format!("timed out: the fetch did not complete within {timeout:?} (robots.fetch_timeout)"),
            }),
        }
    }

    /// Follows up to [`MAX_REDIRECTS`] redirects and reads at most `max_bytes` of the body.
    async fn attempt(&self, url: &str, user_agent: &str, max_bytes: usize) -> Attempt {
        let mut current = url.to_string();
        let mut redirects = Vec::new();
        loop {
            let response = match self.request(&current, user_agent).await {
                Ok(response) => response,
                // The origin itself is refused: the request will be too (network policy).
                Err(UpstreamError::Refused(reason)) if redirects.is_empty() => {
                    return Attempt::failed(FetchOutcome::Refused { reason });
                }
                // A redirect into a refused range is just an unusable policy file.
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
                FetchOutcome::Fetched { .. } => match read_prefix(response.into_body(), max_bytes).await {
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
        } else if status == StatusCode::TOO_MANY_REQUESTS && self.on_429 == On429::Unreachable {
            FetchOutcome::Unreachable { reason: "429 Too Many Requests (robots.on_429 = \"unreachable\")".into() }
        } else if status.is_client_error() {
            FetchOutcome::Unavailable { status: code }
        } else {
            FetchOutcome::Unreachable { reason: format!("status {status}") }
        }
    }
}

/// The outcome of one complete fetch of a policy file.
#[derive(Debug)]
pub struct Attempt {
    pub outcome: FetchOutcome,
    /// The first `max_bytes` bytes of a 2xx body.
    pub body: Option<Bytes>,
    /// URLs followed after the first.
    pub redirects: Vec<String>,
    /// `Cache-Control: max-age` of the final answer.
    pub max_age: Option<Duration>,
}

impl Attempt {
    pub fn failed(outcome: FetchOutcome) -> Self {
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

//! The request path, top to bottom.
//!
//! ```text
//! listen ─▶ identify ─▶ target ─▶ gather policy ─▶ decide ─▶ forward or block ─▶ answer
//!  (1)        (2)         (3)          (4)           (5)          (6)
//! ```
//! Plain requests (`GET http://…`) enter at [`handle_plain`]; `CONNECT` enters [`connect`], which
//! either intercepts the tunnel (its inner requests then enter at [`connect::handle_in_tunnel`])
//! or, with interception off, splices bytes after a host-level decision. Both paths meet in
//! [`process`], so one request is judged the same way whichever way it arrived.

pub mod answer;
pub mod connect;
pub mod connections;
pub mod connector;
pub mod forward;
pub mod identify;
pub mod inspect;
pub mod listen;
pub mod slow_client;
pub mod target;

use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{AuditLog, AuditRecord};
use crate::config::{Config, CrawlerProfile, OnUnreachable};
use crate::decide::{self, Crawler, Decision, Effect, Evidence, Reason, Source, Stage, Verdict};
use crate::policy::fetch::Fetcher;
use crate::policy::files::SiteFiles;
use crate::policy::findings::TdmFileValue;
use crate::policy::politeness::Politeness;
use crate::policy::robots::{FetchOutcome, RobotsCache, SiteVerdict};
use crate::policy::{self, Clock, SystemClock};
use crate::registry::Registry;
use crate::tls::{LeafMinter, TlsSetupError};
use answer::BlockBody;
use forward::{Upstream, UpstreamError};
use identify::Profiles;
use target::Target;

pub type BoxError = Box<dyn StdError + Send + Sync>;
/// The body type of everything the proxy sends, upstream and to the crawler.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Everything the request path shares, built once at start-up.
pub struct ProxyState {
    pub config: Arc<Config>,
    pub profiles: Profiles,
    pub upstream: Upstream,
    /// `None` when `tls.intercept = false`.
    pub interception: Option<connect::Interception>,
    /// Cancelled on SIGINT/SIGTERM: listeners stop accepting, connections drain.
    pub shutdown: CancellationToken,
    /// Every connection and tunnel task, so shutdown can wait for them.
    pub tasks: TaskTracker,
    pub robots: Arc<RobotsCache>,
    /// ai.txt and tdmrep.json per origin.
    pub files: Arc<SiteFiles>,
    pub politeness: Politeness,
    /// Each profile's `honor_tokens` with `@lists` expanded.
    pub honor_tokens: HashMap<String, Vec<String>>,
    pub clock: Arc<dyn Clock>,
    /// `None` when `storage.url = "none"` (decisions are then only logged).
    pub audit: Option<AuditLog>,
    /// This node's name in audit records.
    pub node: String,
    /// The creators' registry; `None` only in tools and tests that run without a database.
    pub registry: Option<Arc<Registry>>,
    /// Open client connections: the slot limit, the per-address limit, idle reclaim.
    pub connections: Arc<connections::ConnectionTable>,
}

impl ProxyState {
    pub fn new(
        config: Arc<Config>,
        minter: Option<Arc<LeafMinter>>,
        audit: Option<AuditLog>,
        registry: Option<Arc<Registry>>,
    ) -> Result<Self, TlsSetupError> {
        let interception = match (config.tls.intercept, minter) {
            (true, Some(minter)) => Some(connect::Interception::new(minter)?),
            _ => None,
        };
        let upstream = Upstream::new(&config)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Ok(Self {
            profiles: Profiles::new(&config.crawlers),
            robots: RobotsCache::new(config.robots.clone(), upstream.clone(), clock.clone()),
            files: SiteFiles::new(
                Fetcher::new(upstream.clone(), config.robots.on_429),
                clock.clone(),
                config.robots.clone(),
            ),
            politeness: Politeness::new(config.politeness.max_concurrent_per_origin),
            honor_tokens: expand_honor_tokens(&config.crawlers),
            clock,
            audit,
            node: config.node_name(),
            registry,
            upstream,
            interception,
            connections: connections::ConnectionTable::new(
                config.proxy.max_connections,
                config.proxy.max_connections_per_client,
            ),
            config,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }
}

/// Each profile's honoured tokens with `@name` lists expanded (unknown lists were refused when the
/// config was validated).
fn expand_honor_tokens(crawlers: &[CrawlerProfile]) -> HashMap<String, Vec<String>> {
    crawlers
        .iter()
        .map(|crawler| {
            let tokens = crawler
                .honor_tokens
                .iter()
                .flat_map(|token| match token.strip_prefix('@') {
                    Some(list) => crate::signals::robots::token_list(list).unwrap_or_default(),
                    None => vec![token.clone()],
                })
                .collect();
            (crawler.name.clone(), tokens)
        })
        .collect()
}

/// One accepted client connection.
pub struct ClientConn {
    pub peer: SocketAddr,
    /// Its entry in the connection table; `registration.activity` says whether it is busy.
    pub registration: connections::Registration,
    /// Held by the connection and any tunnel it opens: `proxy.max_connections` counts both.
    _permit: OwnedSemaphorePermit,
}

impl ClientConn {
    pub fn new(peer: SocketAddr, registration: connections::Registration, permit: OwnedSemaphorePermit) -> Self {
        Self { peer, registration, _permit: permit }
    }

    pub fn activity(&self) -> &Arc<connections::Activity> {
        &self.registration.activity
    }
}

/// One request on its way through the pipeline, after identify and parse.
pub struct Exchange {
    pub request_id: String,
    pub profile: Arc<CrawlerProfile>,
    pub target: Target,
    pub method: Method,
    /// The `User-Agent` sent upstream: the profile's, else the crawler's own.
    pub user_agent: String,
    pub notes: Vec<String>,
    pub started: Instant,
}

impl Exchange {
    pub fn new(
        request_id: String,
        profile: Arc<CrawlerProfile>,
        target: Target,
        method: Method,
        headers: &HeaderMap,
    ) -> Self {
        let crawler_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
        let user_agent = profile.user_agent.as_deref().or(crawler_agent).unwrap_or(&profile.token).to_string();
        Self { request_id, profile, target, method, user_agent, notes: Vec::new(), started: Instant::now() }
    }
}

/// The outcome of stages 4 and 5 for one request.
pub struct Judgement {
    pub decision: Decision,
    /// The `Crawl-delay` that applies to this crawler at this origin, already capped.
    pub crawl_delay: Option<Duration>,
    /// tdmrep.json's rule for this path, decided with the response's header and meta.
    pub tdm_file: TdmFileValue,
    /// The RSL licence token to present (`Authorization: License …`), when a held licence applies.
    pub license_token: Option<String>,
}

/// RFC 9112 §3.2: a request with more than one `Host` line gets 400, even when they agree: the
/// proxy and the origin might each read another one.
pub fn repeated_host<B>(request: &Request<B>) -> Option<&'static str> {
    (request.headers().get_all(header::HOST).iter().nth(1).is_some())
        .then_some("the request has more than one Host header line (RFC 9112 §3.2)")
}

/// A fresh request id: UUIDv7, so ids sort by time.
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Entry point for requests on the proxy port.
pub async fn handle_plain(
    state: Arc<ProxyState>,
    conn: Arc<ClientConn>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let request_id = new_request_id();
    if let Some(problem) = head_too_large(&state, &request) {
        return answer::error(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &request_id, "head_too_large", &problem);
    }
    if is_loop(&request) {
        let reason = "the request already passed through Consentry (Via); refusing to forward it to itself";
        return answer::error(StatusCode::LOOP_DETECTED, &request_id, "loop_detected", reason);
    }
    if let Some(problem) = repeated_host(&request) {
        return answer::error(StatusCode::BAD_REQUEST, &request_id, "bad_request", problem);
    }
    if request.method() == Method::CONNECT {
        return connect::handle_connect(state, conn, request_id, request).await;
    }
    let target = match target::parse_absolute(request.uri()) {
        Ok(target) => target,
        Err(e) => return answer::error(StatusCode::BAD_REQUEST, &request_id, "bad_request", &e.to_string()),
    };
    let profile = match state.profiles.identify(request.headers().get(header::PROXY_AUTHORIZATION)) {
        Ok(profile) => profile,
        Err(e) => return answer::auth_required(&request_id, &e.to_string()),
    };
    let exchange = Exchange::new(request_id, profile, target, request.method().clone(), request.headers());
    process(&state, exchange, request).await
}

/// Stages 4 to 8 for one identified, parsed request: gather, decide, forward or block, record.
pub async fn process(state: &ProxyState, exchange: Exchange, request: Request<Incoming>) -> Response<ProxyBody> {
    let client_version = request.version();
    let Judgement { mut decision, crawl_delay, tdm_file, license_token } = match judge(state, &exchange).await {
        Ok(judgement) => judgement,
        Err(refused) => {
            let decision = network_policy_decision(refused.clone());
            let response = upstream_error_answer(&exchange, UpstreamError::Refused(refused));
            return finish(state, &exchange, &decision, response).await;
        }
    };
    if decision.stops_request() {
        let response = block_answer(state, &exchange, &decision);
        return finish(state, &exchange, &decision, response).await;
    }
    let origin = exchange.target.origin();
    if let Some(delay) = crawl_delay {
        let waited = state.politeness.wait_turn(&origin, &exchange.profile.name, delay).await;
        decision.notes.push(format!("crawl-delay {delay:?}: waited {waited:?} for this crawler's turn"));
    }
    let _in_flight = state.politeness.enter(&origin).await;
    // Only a request with a body can fail while it is read; most crawler requests have none.
    let body_failure = (!http_body::Body::is_end_stream(request.body())).then(|| Arc::new(OnceLock::new()));
    let upstream_request = match upstream_request(&exchange, request, license_token.as_deref(), body_failure.as_ref()) {
        Ok(request) => request,
        Err(reason) => return answer::error(StatusCode::BAD_REQUEST, &exchange.request_id, "bad_request", &reason),
    };
    let inspected = match state.upstream.send(upstream_request).await {
        Ok(response) => inspect_response(state, &exchange, response, &tdm_file, &mut decision).await,
        Err(error) => Err(error),
    };
    let response = match inspected {
        Ok(Some(response)) => deliver(response, &exchange, &decision, client_version),
        // Withheld: the body is dropped unread and the crawler gets the block answer.
        Ok(None) => block_answer(state, &exchange, &decision),
        Err(error) => {
            let body_failure = body_failure.as_deref().and_then(OnceLock::get);
            failed_exchange_answer(&exchange, &mut decision, error, body_failure)
        }
    };
    finish(state, &exchange, &decision, response).await
}

/// The answer when the exchange with the origin failed. When reading the crawler's own body failed
/// first (a malformed chunk, an upload cut short), the request is at fault: `400`, not a `502`
/// that would blame the origin.
fn failed_exchange_answer(
    exchange: &Exchange,
    decision: &mut Decision,
    error: UpstreamError,
    body_failure: Option<&String>,
) -> Response<ProxyBody> {
    let Some(body_failure) = body_failure else {
        decision.notes.push(format!("upstream failed: {error}"));
        return upstream_error_answer(exchange, error);
    };
    decision.notes.push(format!("the request body failed: {body_failure}"));
    let reason = format!("the request body is malformed or incomplete: {body_failure}");
    answer::error(StatusCode::BAD_REQUEST, &exchange.request_id, "bad_request", &reason)
}

/// Stage 8: records the decision and releases the answer. With `sync` durability the answer
/// waits for the commit; if the audit log cannot take the record, the crawler gets `503` instead
/// (fail closed: nothing is delivered that is not on the record).
pub async fn finish(
    state: &ProxyState,
    exchange: &Exchange,
    decision: &Decision,
    response: Response<ProxyBody>,
) -> Response<ProxyBody> {
    let status = response.status();
    log_decision(exchange, decision, status);
    metrics::counter!("consentry_requests_total", "decision" => decision.header_value(), "crawler" => exchange.profile.name.clone())
        .increment(1);
    for source in decision.reasons.iter().filter(|r| r.effect == Effect::Disallow).map(|r| r.source.as_str()) {
        metrics::counter!("consentry_blocking_reasons_total", "source" => source).increment(1);
    }
    metrics::histogram!("consentry_request_seconds").record(exchange.started.elapsed().as_secs_f64());
    let Some(audit) = &state.audit else { return response };
    let bytes =
        response.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let record = AuditRecord::new(
        &exchange.request_id,
        now_ms(state.clock.now()),
        &state.node,
        &exchange.profile.name,
        &exchange.profile.purposes,
        exchange.method.as_str(),
        &exchange.target.to_string(),
        &exchange.target.host_port.host,
        decision,
        status.as_u16(),
        bytes,
        exchange.started.elapsed().as_secs_f64() * 1000.0,
    );
    match audit.record(record).await {
        Ok(()) => response,
        Err(unavailable) => {
            tracing::error!(request_id = %exchange.request_id, error = %unavailable, "answer withheld: not on the record");
            answer::error(
                StatusCode::SERVICE_UNAVAILABLE,
                &exchange.request_id,
                "audit_unavailable",
                &unavailable.to_string(),
            )
        }
    }
}

fn now_ms(now: std::time::SystemTime) -> i64 {
    now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Enforces `proxy.max_header_bytes` and `proxy.max_headers` exactly (hyper's read buffer limit
/// is only approximate: a head that arrives in one read may exceed it).
pub fn head_too_large<B>(state: &ProxyState, request: &Request<B>) -> Option<String> {
    let limits = &state.config.proxy;
    let headers = request.headers();
    if headers.len() > limits.max_headers {
        return Some(format!("{} header fields, more than the {} accepted", headers.len(), limits.max_headers));
    }
    // Request line plus "name: value\r\n" per field.
    let line = request.method().as_str().len() + request.uri().to_string().len() + 12;
    let size = headers.iter().fold(line, |sum, (name, value)| sum + name.as_str().len() + value.len() + 4);
    (size > limits.max_header_bytes)
        .then(|| format!("the request head is {size} bytes, more than the {} accepted", limits.max_header_bytes))
}

/// Whether the request already went through a Consentry (its `Via` names our pseudonym).
fn is_loop<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|via| via.split(',').any(|hop| hop.split_whitespace().nth(1) == Some(forward::VIA_PSEUDONYM)))
}

/// Stages 4 and 5: gather the evidence for this request and decide. `Err` carries the reason when
/// gathering itself was refused because the network policy forbids the destination.
pub async fn judge(state: &ProxyState, exchange: &Exchange) -> Result<Judgement, String> {
    let judgement = judge_target(state, exchange, &exchange.target).await?;
    if judgement.decision.stops_request() {
        return Ok(judgement);
    }
    // Fail closed on paths servers disagree about: judged also as a server that reads encoded
    // slashes, backslashes or `;` parameters would serve it, and blocked if that reading is.
    let Some(alternative) = exchange.target.alternative_reading() else {
        return Ok(judgement);
    };
    let mut other = judge_target(state, exchange, &alternative).await?;
    if !other.decision.stops_request() {
        return Ok(judgement);
    }
    other.decision.notes.push(format!(
        "some servers read the path {} as {} (encoded slashes, backslashes or `;` parameters); it is blocked under that reading",
        exchange.target.path_and_query, alternative.path_and_query
    ));
    Ok(other)
}

/// Stages 4 and 5 for `target`: the exchange's own, or another reading of its path.
async fn judge_target(state: &ProxyState, exchange: &Exchange, target: &Target) -> Result<Judgement, String> {
    let profile = &exchange.profile;
    let agent = exchange.user_agent.as_str();
    let (robots, ai_txt, tdmrep) = tokio::join!(
        state.robots.get(target, agent),
        state.files.ai_txt(target, agent),
        state.files.tdmrep(target, agent)
    );
    if let FetchOutcome::Refused { reason } = &robots.outcome {
        return Err(reason.clone());
    }
    let honoured = state.honor_tokens.get(&profile.name).map_or(&[][..], |tokens| &tokens[..]);
    let path = &target.path_and_query;
    let now = state.clock.now();
    let mut findings = policy::robots::findings(&robots, &profile.token, honoured, path, now);
    // The AI signals inside robots.txt, parsed once per fetched file and token.
    let embedded = (robots.verdict == SiteVerdict::Rules)
        .then(|| robots.embedded.get(&robots.rules, &profile.token, state.config.signals.reading()));
    // Content-Usage / Content-Signal rules in robots.txt apply only to crawlable paths.
    let crawlable = !findings.iter().any(|f| f.effect == Effect::Disallow);
    if let Some(embedded) = embedded.as_ref().filter(|_| crawlable) {
        findings.extend(embedded.findings(path, &robots.url, robots.sha256.as_deref()));
    }
    if let Some(registry) = &state.registry {
        findings.extend(registry.findings(target));
    }
    let block_unreachable = state.config.policy.on_signal_unreachable == OnUnreachable::Block;
    findings.extend(policy::findings::ai_txt_findings(
        &ai_txt,
        &crawler_tokens(state, profile),
        path,
        block_unreachable,
    ));
    let (tdm_file, tdm_findings) = policy::findings::tdm_file_value(&tdmrep, path, block_unreachable);
    findings.extend(tdm_findings);
    let mut license_token = None;
    if let Some(licenses) = embedded.as_ref().map(|e| e.licenses()).filter(|l| !l.is_empty()) {
        let licenses = &licenses[..licenses.len().min(MAX_LICENSES)];
        let url = target.to_string();
        let (rsl_findings, token) = rsl_evidence(state, profile, licenses, &url, agent, "robots.txt License").await;
        findings.extend(rsl_findings);
        license_token = token;
    }
    let evidence = Evidence { findings, notes: exchange.notes.clone() };
    let mut decision = decide::decide(&crawler_of(state, profile), &evidence, Stage::Request);
    let crawl_delay = match robots.verdict {
        SiteVerdict::Rules => robots.rules.crawl_delay(&profile.token).map(|(seconds, line)| {
            let (delay, note) = cap_crawl_delay(seconds, state.config.robots.max_crawl_delay.0);
            decision.notes.push(format!("Crawl-delay: {seconds} (robots.txt line {line}){note}"));
            delay
        }),
        _ => None,
    };
    if license_token.is_some() {
        decision.notes.push("an RSL licence this crawler holds applies: sent as Authorization: License".into());
    }
    Ok(Judgement { decision, crawl_delay, tdm_file, license_token })
}

/// Most RSL licence documents read for one request (robots.txt or `Link` may name several).
const MAX_LICENSES: usize = 4;

/// Reads the named RSL licence documents (cached, single-flight) and judges `url` under each.
/// Returns the findings and, when a held licence is needed and held, its token.
async fn rsl_evidence(
    state: &ProxyState,
    profile: &CrawlerProfile,
    licenses: &[String],
    url: &str,
    user_agent: &str,
    announced: &str,
) -> (Vec<decide::Finding>, Option<String>) {
    let documents = futures_util::future::join_all(licenses.iter().map(|l| state.files.rsl(l, user_agent))).await;
    let mut findings = Vec::new();
    let mut token = None;
    for document in documents {
        let held = profile.licenses.iter().find(|held| held.url == document.url);
        findings.extend(policy::findings::rsl_findings(&document, url, held.is_some(), announced));
        if let Some(held) = held {
            token = Some(held.token.clone());
        }
    }
    (findings, token)
}

/// The robots tokens a crawler answers to: its own, then every honoured one.
fn crawler_tokens<'a>(state: &'a ProxyState, profile: &'a CrawlerProfile) -> Vec<&'a str> {
    let mut tokens = vec![profile.token.as_str()];
    if let Some(honoured) = state.honor_tokens.get(&profile.name) {
        tokens.extend(honoured.iter().map(String::as_str));
    }
    tokens
}

/// The crawler as the decision engine sees it.
fn crawler_of<'a>(state: &ProxyState, profile: &'a CrawlerProfile) -> Crawler<'a> {
    Crawler { name: &profile.name, purposes: &profile.purposes, mode: profile.mode.unwrap_or(state.config.proxy.mode) }
}

/// Stage 7: the response's signals (headers, and for HTML the `<head>` from a bounded prefix),
/// decided at stage `response` and folded into `decision`. Returns the response to deliver (its
/// body re-assembled from the held prefix and the rest), `None` when it must be withheld, or why
/// the origin's body could not be read up to the end of its head (it failed, or stalled for
/// `upstream.response_timeout`).
async fn inspect_response(
    state: &ProxyState,
    exchange: &Exchange,
    response: Response<Incoming>,
    tdm_file: &TdmFileValue,
    decision: &mut Decision,
) -> Result<Option<Response<ProxyBody>>, UpstreamError> {
    let profile = &exchange.profile;
    let (parts, body) = response.into_parts();
    let header_text = |name| parts.headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let content_type = header_text(header::CONTENT_TYPE);
    let is_image = content_type.is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("image/"));
    let (body, head) = if inspect::is_html(content_type) && head_can_matter(state, profile) {
        let encoding = header_text(header::CONTENT_ENCODING);
        // The scan waits for the origin's bytes: a head that stalls must not hold the crawler forever.
        let limit = state.config.upstream.response_timeout.0;
        let scan = inspect::scan_head(body, encoding, state.config.inspect.max_head_bytes);
        match tokio::time::timeout(limit, scan).await {
            Ok(Ok(scanned)) => {
                decision.notes.extend(scanned.signals.problems.iter().map(|p| format!("HTML head scan: {p}")));
                (scanned.body.boxed_unsync(), Some(scanned.signals))
            }
            // The origin broke off or stalled while we read the head: nothing is delivered.
            Ok(Err(e)) => {
                return Err(UpstreamError::Failed(format!("the origin's body failed during the HTML head scan: {e}")));
            }
            Err(_) => {
                return Err(UpstreamError::Timeout(format!(
                    "the origin sent no end of its HTML <head> within {limit:?} (upstream.response_timeout)"
                )));
            }
        }
    } else {
        (body.map_err(BoxError::from).boxed_unsync(), None)
    };
    let tokens = crawler_tokens(state, profile);
    let url = exchange.target.to_string();
    let metas = head.as_ref().map(|h| h.metas.as_slice());
    let reading = state.config.signals.reading();
    let response_signals = policy::findings::ResponseSignals { headers: &parts.headers, metas, is_image, tdm_file };
    let mut findings = policy::findings::response_findings(&response_signals, &url, &tokens, reading);
    findings.extend(response_license_findings(state, exchange, &parts, head.as_ref()).await);
    if !findings.is_empty() {
        let evidence = Evidence { findings, notes: Vec::new() };
        decision.absorb_response(decide::decide(&crawler_of(state, profile), &evidence, Stage::Response));
    }
    Ok((!decision.stops_request()).then(|| Response::from_parts(parts, body)))
}

/// RSL in the response: licence documents announced by `Link: <…>; rel="license";
/// type="application/rsl+xml"` (or `<link rel="license">` in the head) are read and judged, and a
/// `401`/`402` with `WWW-Authenticate: License` is recorded.
async fn response_license_findings(
    state: &ProxyState,
    exchange: &Exchange,
    parts: &http::response::Parts,
    head: Option<&inspect::HeadSignals>,
) -> Vec<decide::Finding> {
    let link_lines: Vec<String> = parts
        .headers
        .get_all(header::LINK)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let (links, _problems) = crate::signals::rsl::license_links(&link_lines);
    let origin = exchange.target.origin();
    let absolute = |href: &str| if href.starts_with('/') { format!("{origin}{href}") } else { href.to_string() };
    let mut urls: Vec<String> = links.iter().map(|l| absolute(&l.url)).collect();
    if let Some(head) = head {
        let rsl_type = |t: &Option<String>| t.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("application/rsl+xml"));
        urls.extend(head.license_links.iter().filter(|(_, t)| rsl_type(t)).map(|(href, _)| absolute(href)));
    }
    urls.retain(|u| u.starts_with("http://") || u.starts_with("https://"));
    urls.dedup();
    urls.truncate(MAX_LICENSES);
    let url = exchange.target.to_string();
    let (mut findings, _token) =
        rsl_evidence(state, &exchange.profile, &urls, &url, &exchange.user_agent, "response Link").await;
    let status = parts.status.as_u16();
    if status == 401 || status == 402 {
        let challenges: Vec<String> = parts
            .headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if let Some(challenge) = crate::signals::rsl::license_challenge(&challenges) {
            findings.push(decide::Finding {
                source: decide::Source::Rsl,
                effect: Effect::Unknown,
                purposes: Vec::new(),
                rule: Some(format!("{status} WWW-Authenticate: {}", challenge.raw)),
                line: None,
                evidence: Some(url.clone()),
                evidence_sha256: None,
                detail: Some("the origin asks for an RSL licence token".into()),
                entry_id: None,
                creator: None,
            });
        }
    }
    findings
}

/// Whether `<head>` signals could change anything for this crawler: `noai` and TDMRep speak to
/// AI and TDM purposes (and TDMRep to search in EU-strict reading); a pure search crawler's
/// pages are not held back for a scan.
fn head_can_matter(state: &ProxyState, profile: &CrawlerProfile) -> bool {
    state.config.inspect.html
        && (state.config.signals.eu_strict || profile.purposes.iter().any(|p| *p != decide::Purpose::Search))
}

/// The pacing interval for a `Crawl-delay` value, and a note when it was capped.
fn cap_crawl_delay(seconds: f64, cap: Duration) -> (Duration, String) {
    let wanted = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
    if wanted > cap { (cap, format!(", capped at {cap:?} (robots.max_crawl_delay)")) } else { (wanted, String::new()) }
}

/// The block answer for a decision that stops the request.
pub fn block_answer(state: &ProxyState, exchange: &Exchange, decision: &Decision) -> Response<ProxyBody> {
    let status =
        StatusCode::from_u16(state.config.proxy.block_status).unwrap_or(StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    answer::blocked(status, &block_body(exchange, decision, &exchange.target.to_string()), decision)
}

pub fn block_body<'a>(exchange: &'a Exchange, decision: &'a Decision, url: &'a str) -> BlockBody<'a> {
    BlockBody {
        request_id: &exchange.request_id,
        verdict: decision.verdict,
        stage: decision.stage,
        mode: decision.mode,
        url,
        crawler: &exchange.profile.name,
        purposes: &exchange.profile.purposes,
        reasons: &decision.reasons,
        notes: &decision.notes,
    }
}

/// Maps a failed upstream exchange to its answer: `403` network policy, `504` timeout, `502` else.
pub fn upstream_error_answer(exchange: &Exchange, error: UpstreamError) -> Response<ProxyBody> {
    let id = &exchange.request_id;
    match error {
        UpstreamError::Refused(message) => {
            let decision = network_policy_decision(message);
            let url = exchange.target.to_string();
            answer::blocked(StatusCode::FORBIDDEN, &block_body(exchange, &decision, &url), &decision)
        }
        UpstreamError::Timeout(reason) => answer::error(StatusCode::GATEWAY_TIMEOUT, id, "upstream_timeout", &reason),
        UpstreamError::Failed(reason) => answer::error(StatusCode::BAD_GATEWAY, id, "upstream_failed", &reason),
    }
}

/// The decision for a destination the network policy refuses: always enforced, whatever the mode
/// (it protects the operator's network, not a creator's preference).
pub fn network_policy_decision(reason: String) -> Decision {
    Decision {
        verdict: Verdict::Block,
        stage: Stage::Request,
        mode: decide::Mode::Enforce,
        reasons: vec![Reason {
            source: Source::NetworkPolicy,
            effect: Effect::Disallow,
            purpose: None,
            rule: Some(reason),
            line: None,
            evidence: Some("proxy.allow_private_destinations = false".into()),
            evidence_sha256: None,
            detail: None,
            entry_id: None,
            creator: None,
        }],
        notes: Vec::new(),
    }
}

/// Builds the request sent to the origin: absolute URI, no hop-by-hop fields, `Host` from the
/// target, the profile's user agent, `Via`, and the body streamed through. The first error reading
/// the crawler's body is kept in `body_failure`, when given (the upstream client reports it only as
/// its own).
fn upstream_request(
    exchange: &Exchange,
    request: Request<Incoming>,
    license_token: Option<&str>,
    body_failure: Option<&Arc<OnceLock<String>>>,
) -> Result<Request<ProxyBody>, String> {
    let (mut parts, body) = request.into_parts();
    parts.uri = exchange.target.uri().map_err(|e| format!("cannot rebuild the target URI: {e}"))?;
    let received_version = parts.version;
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    forward::strip_hop_by_hop(headers);
    // The client derives Host from the URI authority (and HTTP/2 uses :authority instead).
    headers.remove(header::HOST);
    if let Some(agent) = &exchange.profile.user_agent {
        let value = HeaderValue::from_str(agent).map_err(|_| "the profile's user_agent is not a valid header value")?;
        headers.insert(header::USER_AGENT, value);
    }
    if let Some(token) = license_token {
        let value = HeaderValue::from_str(&format!("License {token}"))
            .map_err(|_| "the held RSL licence token is not a valid header value")?;
        headers.insert(header::AUTHORIZATION, value);
    }
    forward::add_via(headers, received_version);
    let body = match body_failure.cloned() {
        Some(failure) => body
            .map_err(move |error| {
                let _ = failure.set(forward::error_chain(&error));
                BoxError::from(error)
            })
            .boxed_unsync(),
        None => body.map_err(BoxError::from).boxed_unsync(),
    };
    Ok(Request::from_parts(parts, body))
}

/// Stage 6 for an allowed request: the origin's response, cleaned, with Consentry's headers.
fn deliver(
    response: Response<ProxyBody>,
    exchange: &Exchange,
    decision: &Decision,
    client_version: Version,
) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    let origin_version = parts.version;
    forward::strip_hop_by_hop(&mut parts.headers);
    forward::add_via(&mut parts.headers, origin_version);
    parts.headers.insert(answer::DECISION_HEADER, HeaderValue::from_static(decision.header_value()));
    parts.version = client_version;
    let mut response = Response::from_parts(parts, body);
    answer::set_request_id(&mut response, &exchange.request_id);
    response
}

/// One structured debug event per decision. The record itself goes to the audit store, not to
/// the log stream (DESIGN §8), so at the default `info` level this costs nothing per request.
fn log_decision(exchange: &Exchange, decision: &Decision, status: StatusCode) {
    if !tracing::enabled!(target: "consentry::decision", tracing::Level::DEBUG) {
        return;
    }
    let sources: Vec<&str> =
        decision.reasons.iter().filter(|r| r.effect == Effect::Disallow).map(|r| r.source.as_str()).collect();
    tracing::debug!(
        target: "consentry::decision",
        request_id = %exchange.request_id,
        crawler = %exchange.profile.name,
        method = %exchange.method,
        url = %exchange.target,
        decision = decision.header_value(),
        stage = ?decision.stage,
        sources = ?sources,
        notes = ?decision.notes,
        status = status.as_u16(),
        duration_ms = exchange.started.elapsed().as_secs_f64() * 1000.0,
    );
}

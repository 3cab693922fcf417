//! The creators' portal on the public listener: prove control of a domain, then file and
//! withdraw objections for it yourself.
//!
//! 1. `POST /v1/claims {"domain","contact"}` returns a token to publish, either as a DNS TXT
//!    record at `_consentry-challenge.<domain>` or at
//!    `https://<domain>/.well-known/consentry-challenge/<token>`.
//! 2. `POST /v1/claims/{id}/verify` checks both (DNS through [`dns::TxtChecker`], HTTP through the
//!    proxy's own upstream client, so the network policy and resolver overrides apply) and returns
//!    an API key, shown once and stored only as a hash.
//! 3. `POST | GET /v1/objections`, `DELETE /v1/objections/{id}` with `Authorization: Bearer <key>`,
//!    for the verified domain and its subdomains only.
//!
//! Every `/v1` request is rate-limited per client IP, authenticated ones also per key; bodies are
//! capped; every refusal is JSON that says what was wrong.

pub mod dns;
pub mod transparency;

pub use transparency::Transparency;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequest, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::proxy::ProxyState;
use crate::registry::entry::{EntryDraft, normalize_domain};
use crate::registry::store::{Claim, ListFilter};
use crate::registry::{Entry, Registry};
use crate::storage::{StoreError, now_ms};

/// Where the HTTP challenge is published, under the claimed domain.
pub const CHALLENGE_PATH: &str = "/.well-known/consentry-challenge/";
/// Where the DNS challenge is published, in front of the claimed domain.
pub const CHALLENGE_LABEL: &str = "_consentry-challenge";
/// Largest challenge file read.
const MAX_CHALLENGE_BYTES: usize = 4096;
/// Objections one domain may hold through the portal (imports and feeds are not limited).
const MAX_OBJECTIONS_PER_DOMAIN: u32 = 10_000;
const MAX_CONTACT: usize = 320;

/// What the portal's handlers share.
#[derive(Clone)]
pub struct PublicState(Arc<Inner>);

struct Inner {
    registry: Arc<Registry>,
    proxy: Arc<ProxyState>,
    /// `Err` keeps the reason the resolver could not be built (shown as the DNS check's failure).
    dns: Result<dns::TxtChecker, String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_key: DefaultKeyedRateLimiter<String>,
    /// The transparency log, when this node keeps one.
    transparency: Option<Transparency>,
}

impl PublicState {
    pub fn new(registry: Arc<Registry>, proxy: Arc<ProxyState>, transparency: Option<Transparency>) -> Self {
        let config = &proxy.config.public;
        let dns = dns::TxtChecker::new(&config.dns_nameservers, config.verify_timeout.0);
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        let per_ip = DefaultKeyedRateLimiter::keyed(per_minute(config.rate_limit_per_ip));
        let per_key = DefaultKeyedRateLimiter::keyed(per_minute(config.rate_limit_per_key));
        Self(Arc::new(Inner { registry, proxy, dns, per_ip, per_key, transparency }))
    }
}

/// The portal router; tests drive it without a socket.
pub fn router(state: PublicState) -> Router {
    let api = Router::new()
        .route("/v1/claims", post(create_claim))
        .route("/v1/claims/{id}", get(show_claim))
        .route("/v1/claims/{id}/verify", post(verify_claim))
        .route("/v1/objections", get(list_objections).post(create_objection))
        .route("/v1/objections/{id}", delete(delete_objection))
        .merge(transparency::creator_routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), limit_per_ip));
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(api)
        .merge(transparency::open_routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint".into()) })
        .with_state(state)
}

/// Serves the portal until the proxy shuts down.
pub async fn serve(listener: TcpListener, state: PublicState) {
    let shutdown = state.0.proxy.shutdown.clone();
    // Keyed limiters keep a cell per key ever seen: forget the idle ones now and then.
    let limiters = state.clone();
    let cleanup = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiters.0.per_ip.retain_recent();
            limiters.0.per_key.retain_recent();
        }
    });
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await {
        tracing::error!(error = %e, "public listener failed");
    }
    cleanup.abort();
}

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP))], Html(include_str!("public/page.html")))
}

/// The page loads nothing from elsewhere and talks only to this origin.
const PAGE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'";

// === errors ===

/// A JSON refusal: `{"error": code, "reason": text, ...extra}`.
struct ApiError {
    status: StatusCode,
    body: serde_json::Value,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, reason: String) -> Self {
        Self { status, body: json!({ "error": code, "reason": reason }), retry_after: None }
    }

    fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        if let Some(map) = self.body.as_object_mut() {
            map.insert(key.to_string(), value);
        }
        self
    }

    fn invalid(reason: String) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", reason)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "registry store query failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the registry store is unavailable".into())
    }
}

/// A JSON body, bounded by `public.max_body_bytes`, with errors that name the field.
struct JsonBody<T>(T);

impl<T: serde::de::DeserializeOwned> FromRequest<PublicState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &PublicState) -> Result<Self, Self::Rejection> {
        let limit = state.0.proxy.config.public.max_body_bytes;
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("application/json"));
        if !is_json {
            let reason = "send the body as JSON with Content-Type: application/json".into();
            return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", reason));
        }
        let bytes: Bytes = match Limited::new(request.into_body(), limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                let reason = format!("the body is larger than the {limit} bytes accepted (public.max_body_bytes)");
                return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", reason));
            }
        };
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(deserializer).map(JsonBody).map_err(|e| {
            let path = e.path().to_string();
            let reason = if path == "." { e.inner().to_string() } else { format!("`{path}`: {}", e.inner()) };
            ApiError::invalid(format!("invalid JSON body: {reason}"))
        })
    }
}

// === rate limits and authentication ===

fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip())
}

fn too_many(limiter: &str, not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> ApiError {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    metrics::counter!("consentry_public_rate_limited_total", "limit" => limiter.to_string()).increment(1);
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests {limiter}; retry in {seconds}s"),
    );
    error.retry_after = Some(seconds.max(1));
    error
}

async fn limit_per_ip(State(state): State<PublicState>, request: Request, next: Next) -> Response {
    match state.0.per_ip.check_key(&client_ip(&request)) {
        Ok(()) => next.run(request).await,
        Err(not_until) => too_many("from this address", not_until).into_response(),
    }
}

/// The verified claim behind `Authorization: Bearer <api key>`, after the per-key limit.
async fn authenticate(state: &PublicState, headers: &axum::http::HeaderMap) -> Result<Claim, ApiError> {
    let unauthorized = |reason: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", reason.to_string());
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| unauthorized("send Authorization: Bearer <api key from POST /v1/claims/{id}/verify>"))?;
    // Only the hash is stored; looking it up by hash also makes the comparison independent of
    // how many characters of a guess were right.
    let claim =
        state.0.registry.store.claim_by_key(&sha256_hex(key)).await?.ok_or_else(|| unauthorized("unknown API key"))?;
    state.0.per_key.check_key(&claim.id).map_err(|not_until| too_many("for this API key", not_until))?;
    Ok(claim)
}

// === claims ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClaim {
    domain: String,
    contact: String,
}

async fn create_claim(
    State(state): State<PublicState>,
    JsonBody(new): JsonBody<NewClaim>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let domain = normalize_domain(&new.domain).map_err(|p| ApiError::invalid(format!("`domain`: {p}")))?;
    let contact = new.contact.trim().to_string();
    if contact.is_empty() || contact.chars().count() > MAX_CONTACT || contact.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "`contact`: give an address we can reach (1 to {MAX_CONTACT} characters)"
        )));
    }
    let now = now_ms();
    let ttl = i64::try_from(state.0.proxy.config.public.claim_ttl.0.as_millis()).unwrap_or(i64::MAX);
    let claim = Claim {
        id: format!("c-{}", uuid::Uuid::now_v7().simple()),
        domain,
        contact,
        token: hex::encode(rand::random::<[u8; 24]>()),
        created_ms: now,
        expires_ms: now.saturating_add(ttl),
        verified_ms: None,
        verified_by: None,
    };
    state.0.registry.store.insert_claim(&claim).await?;
    metrics::counter!("consentry_public_claims_total").increment(1);
    Ok((StatusCode::CREATED, Json(claim_json(&claim))))
}

fn claim_json(claim: &Claim) -> serde_json::Value {
    json!({
        "claim_id": claim.id,
        "domain": claim.domain,
        "token": claim.token,
        "dns_name": format!("{CHALLENGE_LABEL}.{}", claim.domain),
        "http_url": challenge_url(claim),
        "expires": crate::audit::rfc3339(claim.expires_ms),
        "verified": claim.verified_ms.is_some(),
        "verified_by": claim.verified_by,
    })
}

fn challenge_url(claim: &Claim) -> String {
    format!("https://{}{CHALLENGE_PATH}{}", claim.domain, claim.token)
}

async fn find_claim(state: &PublicState, id: &str) -> Result<Claim, ApiError> {
    state
        .0
        .registry
        .store
        .claim(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_claim", format!("no claim has the id {id:?}")))
}

async fn show_claim(
    State(state): State<PublicState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let claim = find_claim(&state, &id).await?;
    Ok(Json(claim_json(&claim)))
}

async fn verify_claim(
    State(state): State<PublicState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let claim = find_claim(&state, &id).await?;
    let now = now_ms();
    if claim.verified_ms.is_none() && now >= claim.expires_ms {
        let reason = format!("the claim expired at {}; start a new claim", crate::audit::rfc3339(claim.expires_ms));
        return Err(ApiError::new(StatusCode::GONE, "claim_expired", reason));
    }
    let (dns, http) = tokio::join!(check_dns(&state, &claim), check_http(&state, &claim));
    let checks = json!({
        "dns": dns.as_ref().map_or_else(|e| e.clone(), |()| "ok".to_string()),
        "http": http.as_ref().map_or_else(|e| e.clone(), |()| "ok".to_string()),
    });
    let method = match (&dns, &http) {
        (Ok(()), _) => "dns",
        (_, Ok(())) => "http",
        _ => {
            let reason = "neither the DNS nor the HTTP challenge shows the claim's token (see checks)".into();
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "verification_failed", reason)
                .with("verified", json!(false))
                .with("checks", checks));
        }
    };
    let api_key = format!("csk_{}", hex::encode(rand::random::<[u8; 32]>()));
    state.0.registry.store.verify_claim(&claim.id, method, &sha256_hex(&api_key), now).await?;
    metrics::counter!("consentry_public_verified_claims_total", "method" => method).increment(1);
    tracing::info!(claim = %claim.id, domain = %claim.domain, method, "domain claim verified");
    Ok(Json(json!({
        "verified": true,
        "claim_id": claim.id,
        "domain": claim.domain,
        "method": method,
        "api_key": api_key,
        "checks": checks,
    })))
}

async fn check_dns(state: &PublicState, claim: &Claim) -> Result<(), String> {
    let checker = state.0.dns.as_ref().map_err(|e| format!("no DNS resolver: {e}"))?;
    let name = format!("{CHALLENGE_LABEL}.{}", claim.domain);
    let records = checker.txt_records(&name).await?;
    if records.iter().any(|r| r.trim() == claim.token) {
        Ok(())
    } else {
        Err(format!("{} TXT record(s) at {name}, none is the token", records.len()))
    }
}

async fn check_http(state: &PublicState, claim: &Claim) -> Result<(), String> {
    let url = challenge_url(claim);
    let timeout = state.0.proxy.config.public.verify_timeout.0;
    match tokio::time::timeout(timeout, fetch_challenge(state, &url)).await {
        Ok(Ok(body)) if body.trim() == claim.token => Ok(()),
        Ok(Ok(_)) => Err(format!("{url} does not hold the token (the body must be exactly the token)")),
        Ok(Err(reason)) => Err(reason),
        Err(_) => Err(format!("{url}: no answer within {timeout:?}")),
    }
}

async fn fetch_challenge(state: &PublicState, url: &str) -> Result<String, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let request = http::Request::get(uri)
        .header(header::USER_AGENT, concat!("Consentry-Verify/", env!("CARGO_PKG_VERSION")))
        .body(crate::proxy::answer::empty())
        .map_err(|e| e.to_string())?;
    let response = state.0.proxy.upstream.send(request).await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url} answered {status} (redirects are not followed)"));
    }
    let body = Limited::new(response.into_body(), MAX_CHALLENGE_BYTES)
        .collect()
        .await
        .map_err(|e| format!("{url}: reading the body failed: {e}"))?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

// === objections ===

/// Whether `host` is the verified domain or one of its subdomains.
fn within(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

async fn create_objection(
    State(state): State<PublicState>,
    headers: axum::http::HeaderMap,
    JsonBody(mut draft): JsonBody<EntryDraft>,
) -> Result<(StatusCode, Json<Entry>), ApiError> {
    let claim = authenticate(&state, &headers).await?;
    if draft.id.is_some() {
        return Err(ApiError::invalid("`id`: objection ids are assigned by the registry; leave it out".into()));
    }
    if draft.creator.as_deref().is_none_or(|c| c.trim().is_empty()) {
        draft.creator = Some(claim.contact.clone());
    }
    if draft.contact.is_none() {
        draft.contact = Some(claim.contact.clone());
    }
    let valid = draft.validate().map_err(|problems| {
        let reason = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        ApiError::invalid(reason).with("problems", json!(problems))
    })?;
    let host = valid.target.host().to_string();
    if !within(&host, &claim.domain) {
        let reason = format!("{host} is not {} or one of its subdomains: verify a claim for it first", claim.domain);
        return Err(ApiError::new(StatusCode::FORBIDDEN, "outside_verified_domain", reason));
    }
    if state.0.registry.store.count(&objections_of(&claim)).await? >= i64::from(MAX_OBJECTIONS_PER_DOMAIN) {
        let reason = format!("{} holds {MAX_OBJECTIONS_PER_DOMAIN} objections already", claim.domain);
        return Err(ApiError::new(StatusCode::CONFLICT, "too_many_objections", reason));
    }
    let now = now_ms();
    let entry = valid.into_entry(crate::registry::cli::new_entry_id, &format!("claim:{}", claim.id), now);
    state.0.registry.store.upsert(std::slice::from_ref(&entry), now).await?;
    state.0.registry.changed();
    tracing::info!(entry = %entry.id, domain = %claim.domain, "objection filed through the portal");
    Ok((StatusCode::CREATED, Json(entry)))
}

/// The portal-filed objections under the claim's domain and its subdomains (any verified claim
/// of the domain may manage them: each one proved control of it).
fn objections_of(claim: &Claim) -> ListFilter {
    ListFilter {
        domain: Some(claim.domain.clone()),
        source_prefix: Some("claim:".into()),
        limit: Some(MAX_OBJECTIONS_PER_DOMAIN),
        ..ListFilter::default()
    }
}

async fn list_objections(
    State(state): State<PublicState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let claim = authenticate(&state, &headers).await?;
    let items = state.0.registry.store.list(&objections_of(&claim)).await?;
    Ok(Json(json!({ "domain": claim.domain, "items": items })))
}

async fn delete_objection(
    State(state): State<PublicState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let claim = authenticate(&state, &headers).await?;
    let not_found = || {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_objection", format!("no objection {id:?} for {}", claim.domain))
    };
    let entry = state.0.registry.store.get(&id).await?.ok_or_else(not_found)?;
    // Entries of other domains, imports and feeds look the same as absent ones: no probing.
    if !entry.source.starts_with("claim:") || !within(entry.target.host(), &claim.domain) {
        return Err(not_found());
    }
    if !state.0.registry.store.remove_from_source(&id, &entry.source, now_ms()).await? {
        return Err(not_found());
    }
    state.0.registry.changed();
    Ok(StatusCode::NO_CONTENT)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::EntryTarget;

    #[test]
    fn subdomains_are_within_and_lookalikes_are_not() {
        assert!(within("example.org", "example.org"));
        assert!(within("www.example.org", "example.org"));
        assert!(!within("badexample.org", "example.org"));
        assert!(!within("example.org.evil", "example.org"));
        assert!(!within("org", "example.org"));
    }

    #[test]
    fn target_hosts_of_url_entries_are_checked() {
        let target = EntryTarget::Url { url: "https://img.example.org/a.png".into() };
        assert!(within(target.host(), "example.org"));
    }
}

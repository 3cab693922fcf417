//! The admin listener: the operator API, the dashboard, metrics, health and readiness.
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /healthz` | none | the process is up |
//! | `GET /readyz` | none | accepting requests and the audit store answers |
//! | `GET /metrics` | none | Prometheus text |
//! | `GET /api/decisions` | bearer | filtered, paginated decisions, newest first |
//! | `GET /api/decisions/{request_id}` | bearer | one decision with every reason |
//! | `GET /api/stats` | bearer | counts by verdict, source, host, crawler, and blocks over time |
//! | `GET /api/export?format=csv\|jsonl` | bearer | the filtered view as a download |
//! | `GET /` | token in the page | the operator dashboard |
//!
//! Wrong tokens are limited per client address (`admin.max_failed_auth_per_minute`): past the
//! allowance the address is locked out (429 with `Retry-After`) whatever it presents, so guessing
//! the token gets a few tries a minute. The API takes only a bearer header (no cookies) and sends
//! no CORS headers, so other sites' pages can neither ride on a session nor read answers.
//!
//! Filters (`verdict`, `crawler`, `host`, `source`, `since`, `until`, `q`, `limit`, `cursor`);
//! `since`/`until` take milliseconds since the epoch, an RFC 3339 time, or a duration back
//! from now such as `1h`.

pub mod dashboard;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use crate::audit::{AuditRecord, AuditStore, Filter};
use crate::proxy::ProxyState;

/// What the admin routes need.
#[derive(Clone)]
pub struct AdminState {
    pub store: Option<AuditStore>,
    pub token: Arc<str>,
    pub metrics: Option<PrometheusHandle>,
    pub proxy: Arc<ProxyState>,
    pub lockout: Arc<AuthLockout>,
}

/// Failed-token bookkeeping per client address.
pub struct AuthLockout {
    failures: governor::DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses that used up their allowance, and until when they are refused.
    locked: dashmap::DashMap<IpAddr, Instant>,
}

impl AuthLockout {
    pub fn new(failures_per_minute: u32) -> Self {
        let quota = governor::Quota::per_minute(NonZeroU32::new(failures_per_minute).unwrap_or(NonZeroU32::MIN));
        Self { failures: governor::RateLimiter::keyed(quota), locked: dashmap::DashMap::new() }
    }

    /// Seconds `ip` must still wait, if it is locked out.
    fn locked_for(&self, ip: IpAddr) -> Option<u64> {
        let until = *self.locked.get(&ip)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.locked.remove(&ip);
            return None;
        }
        Some(left.as_secs() + u64::from(left.subsec_nanos() > 0))
    }

    /// Counts a wrong token from `ip`; returns the lockout in seconds once the allowance is spent.
    fn failed(&self, ip: IpAddr) -> Option<u64> {
        let not_until = self.failures.check_key(&ip).err()?;
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        self.locked.insert(ip, Instant::now() + wait);
        metrics::counter!("consentry_admin_auth_lockouts_total").increment(1);
        Some(wait.as_secs().max(1))
    }
}

/// The admin router; tests drive it without a socket.
pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/api/decisions", get(list_decisions))
        .route("/api/decisions/{request_id}", get(get_decision))
        .route("/api/stats", get(stats))
        .route("/api/export", get(export))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .route("/", get(dashboard::page))
        .merge(api)
        .with_state(state)
}

/// Serves the admin router until shutdown.
pub async fn serve(listener: TcpListener, state: AdminState) {
    let shutdown = state.proxy.shutdown.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await {
        tracing::error!(error = %e, "admin listener failed");
    }
}

/// A JSON error with a stable code and an explanation.
struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.1, "reason": self.2 });
        (self.0, Json(body)).into_response()
    }
}

impl From<crate::audit::StoreError> for ApiError {
    fn from(error: crate::audit::StoreError) -> Self {
        tracing::error!(%error, "audit store query failed");
        ApiError(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", error.to_string())
    }
}

fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip())
}

fn locked_out(seconds: u64) -> Response {
    let reason = format!("too many wrong tokens from this address; retry in {seconds}s");
    let mut response = ApiError(StatusCode::TOO_MANY_REQUESTS, "locked_out", reason).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let ip = client_ip(&request);
    // Checked before the token: a locked-out address learns nothing, even from the right token.
    if let Some(seconds) = state.lockout.locked_for(ip) {
        return locked_out(seconds);
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let valid = presented.is_some_and(|token| bool::from(token.as_bytes().ct_eq(state.token.as_bytes())));
    if !valid {
        if let Some(seconds) = state.lockout.failed(ip) {
            return locked_out(seconds);
        }
        let mut response =
            ApiError(StatusCode::UNAUTHORIZED, "unauthorized", "send Authorization: Bearer <admin token>".into())
                .into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"consentry\""));
        return response;
    }
    next.run(request).await
}

async fn ready(State(state): State<AdminState>) -> (StatusCode, String) {
    if state.proxy.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n".into());
    }
    let Some(store) = &state.store else {
        return (StatusCode::OK, "ready\n".into());
    };
    if !store.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, "audit store unreachable\n".into());
    }
    // Reads can work while commits fail (a full disk): after a failed commit, ready only once a
    // probe write commits again.
    if let Some(audit) = state.proxy.audit.as_ref().filter(|audit| audit.commit_failure().is_some()) {
        match store.probe_write().await {
            Ok(()) => audit.commits_again(),
            Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("audit store cannot commit: {e}\n")),
        }
    }
    (StatusCode::OK, "ready\n".into())
}

async fn render_metrics(State(state): State<AdminState>) -> Response {
    record_sizes(&state.proxy);
    let text = state.metrics.as_ref().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Sizes that are read when scraped rather than counted on the request path: open connections
/// and every bounded cache (each is bounded by configuration; a soak watches that they stay so).
fn record_sizes(proxy: &ProxyState) {
    metrics::gauge!("consentry_client_connections").set(proxy.connections.open() as f64);
    let (robots_entries, robots_bytes) = proxy.robots.cache_size();
    metrics::gauge!("consentry_cache_entries", "cache" => "robots.txt").set(robots_entries as f64);
    metrics::gauge!("consentry_cache_bytes", "cache" => "robots.txt").set(robots_bytes as f64);
    for (file, entries) in proxy.files.cache_entries() {
        metrics::gauge!("consentry_cache_entries", "cache" => file).set(entries as f64);
    }
    let (pacing, origins) = proxy.politeness.tracked();
    metrics::gauge!("consentry_cache_entries", "cache" => "crawl_delay").set(pacing as f64);
    metrics::gauge!("consentry_cache_entries", "cache" => "origin_concurrency").set(origins as f64);
    if let Some(interception) = &proxy.interception {
        metrics::gauge!("consentry_cache_entries", "cache" => "tls_leaves")
            .set(interception.minter().cached_leaves() as f64);
    }
}

/// The filters as they arrive in a query string.
#[derive(Debug, Default, Deserialize)]
pub struct FilterQuery {
    pub verdict: Option<String>,
    pub crawler: Option<String>,
    pub host: Option<String>,
    pub source: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub q: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// `csv` or `jsonl` for `/api/export`.
    pub format: Option<String>,
    /// Bucket width for `/api/stats`, e.g. `1h`.
    pub bucket: Option<String>,
}

impl FilterQuery {
    fn to_filter(&self, now: SystemTime) -> Result<Filter, ApiError> {
        Ok(Filter {
            verdict: self.verdict.clone(),
            crawler: self.crawler.clone(),
            host: self.host.clone(),
            source: self.source.clone(),
            since: self.since.as_deref().map(|t| parse_time(t, now)).transpose().map_err(bad("since"))?,
            until: self.until.as_deref().map(|t| parse_time(t, now)).transpose().map_err(bad("until"))?,
            q: self.q.clone(),
            limit: self.limit,
            cursor: self.cursor.clone(),
        })
    }
}

fn bad(name: &'static str) -> impl Fn(String) -> ApiError {
    move |reason| ApiError(StatusCode::BAD_REQUEST, "bad_parameter", format!("`{name}`: {reason}"))
}

/// Milliseconds since the epoch, an RFC 3339 time, or a duration back from `now` (`1h`, `7d`).
pub fn parse_time(text: &str, now: SystemTime) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let at = match humantime::parse_rfc3339_weak(text) {
        Ok(at) => at,
        Err(_) => {
            let back = humantime::parse_duration(text)
                .map_err(|_| format!("{text:?} is neither epoch milliseconds, an RFC 3339 time nor a duration"))?;
            now.checked_sub(back).unwrap_or(SystemTime::UNIX_EPOCH)
        }
    };
    Ok(at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
}

fn store(state: &AdminState) -> Result<&AuditStore, ApiError> {
    state.store.as_ref().ok_or_else(|| {
        ApiError(StatusCode::NOT_FOUND, "no_audit_log", "storage.url = \"none\": no decisions are kept".into())
    })
}

async fn list_decisions(
    State(state): State<AdminState>,
    Query(query): Query<FilterQuery>,
) -> Result<Json<crate::audit::Page>, ApiError> {
    let filter = query.to_filter(SystemTime::now())?;
    Ok(Json(store(&state)?.list(&filter).await?))
}

async fn get_decision(
    State(state): State<AdminState>,
    Path(request_id): Path<String>,
) -> Result<Json<AuditRecord>, ApiError> {
    match store(&state)?.get(&request_id).await? {
        Some(record) => Ok(Json(record)),
        None => Err(ApiError(StatusCode::NOT_FOUND, "not_found", format!("no decision {request_id:?}"))),
    }
}

async fn stats(
    State(state): State<AdminState>,
    Query(query): Query<FilterQuery>,
) -> Result<Json<crate::audit::Stats>, ApiError> {
    let filter = query.to_filter(SystemTime::now())?;
    let bucket = match query.bucket.as_deref() {
        Some(text) => humantime::parse_duration(text).map_err(|e| bad("bucket")(e.to_string()))?,
        None => Duration::from_secs(3600),
    };
    let bucket_ms = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX);
    Ok(Json(store(&state)?.stats(&filter, bucket_ms).await?))
}

/// Most records one export returns.
const EXPORT_LIMIT: usize = 100_000;

async fn export(State(state): State<AdminState>, Query(query): Query<FilterQuery>) -> Result<Response, ApiError> {
    let format = query.format.clone().unwrap_or_else(|| "jsonl".into());
    if format != "csv" && format != "jsonl" {
        return Err(bad("format")(format!("must be csv or jsonl, got {format:?}")));
    }
    let mut filter = query.to_filter(SystemTime::now())?;
    filter.limit = Some(1000);
    let store = store(&state)?;
    let mut records = Vec::new();
    loop {
        let page = store.list(&filter).await?;
        records.extend(page.items);
        match page.next_cursor {
            Some(cursor) if records.len() < EXPORT_LIMIT => filter.cursor = Some(cursor),
            _ => break,
        }
    }
    let (content_type, body) = if format == "csv" {
        ("text/csv; charset=utf-8", to_csv(&records))
    } else {
        ("application/x-ndjson", to_json_lines(&records))
    };
    let disposition = format!("attachment; filename=\"consentry-decisions.{format}\"");
    Ok(([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

/// One JSON object per line.
pub fn to_json_lines(records: &[AuditRecord]) -> String {
    records.iter().filter_map(|r| serde_json::to_string(r).ok()).map(|line| line + "\n").collect()
}

/// A CSV view: one row per decision, reasons summarised.
pub fn to_csv(records: &[AuditRecord]) -> String {
    let mut out = String::from("request_id,time_ms,node,crawler,method,url,host,decision,stage,status,sources,rules\n");
    for r in records {
        let rules: Vec<String> = r.reasons.iter().filter_map(|reason| reason.rule.clone()).collect();
        let fields = [
            r.request_id.clone(),
            r.time_ms.to_string(),
            r.node.clone(),
            r.crawler.clone(),
            r.method.clone(),
            r.url.clone(),
            r.host.clone(),
            r.decision.clone(),
            r.stage.as_str().to_string(),
            r.status.to_string(),
            r.blocking_sources().join(" "),
            rules.join(" | "),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// RFC 4180 quoting; a leading `=`, `+`, `-` or `@` is prefixed with `'` so spreadsheets do not
/// run URLs a crawler visited as formulas.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) { format!("'{value}") } else { value.to_string() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_three_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(parse_time("1234", now), Ok(1234));
        assert_eq!(parse_time("1h", now), Ok((10_000 - 3600) * 1000));
        assert_eq!(parse_time("1970-01-01T00:00:10Z", now), Ok(10_000));
        assert!(parse_time("yesterday-ish", now).is_err());
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }
}

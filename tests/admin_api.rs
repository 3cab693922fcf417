//! The operator API through its router, without sockets: authentication, filters, pagination,
//! stats and exports over a real SQLite store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use consentry::admin::{AdminState, router};
use consentry::audit::{AuditRecord, AuditStore};
use consentry::config::Config;
use consentry::decide::{Crawler, Effect, Evidence, Finding, Mode, Purpose, Source, Stage, decide};
use consentry::proxy::ProxyState;
use http_body_util::BodyExt;
use tower::ServiceExt;

const TOKEN: &str = "router-test-token";

fn record(i: i64, host: &str, blocked: bool) -> AuditRecord {
    let findings = if blocked {
        vec![Finding {
            source: Source::Robots,
            effect: Effect::Disallow,
            purposes: Vec::new(),
            rule: Some("Disallow: /private".into()),
            line: Some(2),
            evidence: Some(format!("https://{host}/robots.txt")),
            evidence_sha256: Some("ab".repeat(32)),
            detail: None,
            entry_id: None,
            creator: None,
        }]
    } else {
        Vec::new()
    };
    let crawler = Crawler { name: "acme", purposes: &[Purpose::AiTrain], mode: Mode::Enforce };
    let decision = decide(&crawler, &Evidence { findings, notes: Vec::new() }, Stage::Request);
    let path = if blocked { "private" } else { "open" };
    AuditRecord::new(
        &format!("req-{i:03}"),
        1_800_000_000_000 + i * 1000,
        "node-a",
        "acme",
        &[Purpose::AiTrain],
        "GET",
        &format!("https://{host}/{path}/{i}"),
        host,
        &decision,
        if blocked { 451 } else { 200 },
        None,
        1.5,
    )
}

async fn app() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = AuditStore::open(&format!("sqlite://{}/audit.db", dir.path().display())).await.expect("store");
    let records: Vec<AuditRecord> =
        (0..30).map(|i| record(i, if i % 3 == 0 { "a.example" } else { "b.example" }, i % 2 == 0)).collect();
    store.insert_batch(&records).await.expect("insert");
    let proxy = Arc::new(ProxyState::new(Arc::new(Config::builtin()), None, None, None).expect("state"));
    let lockout = std::sync::Arc::new(consentry::admin::AuthLockout::new(10));
    let state = AdminState { store: Some(store), token: TOKEN.into(), metrics: None, proxy, lockout };
    (router(state), dir)
}

async fn call(app: &axum::Router, uri: &str, token: Option<&str>) -> (StatusCode, Vec<u8>) {
    let mut request = Request::get(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app.clone().oneshot(request.body(Body::empty()).expect("request")).await.expect("response");
    let status = response.status();
    (status, response.into_body().collect().await.expect("body").to_bytes().to_vec())
}

async fn json(app: &axum::Router, uri: &str) -> serde_json::Value {
    let (status, body) = call(app, uri, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("json")
}

#[tokio::test]
async fn api_requires_the_bearer_token_but_health_does_not() {
    let (app, _dir) = app().await;
    assert_eq!(call(&app, "/api/decisions", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, "/api/decisions", Some("wrong")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(call(&app, "/readyz", None).await.0, StatusCode::OK);
    let (status, page) = call(&app, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains("<html"), "the dashboard is served");
}

#[tokio::test]
async fn filters_combine_and_pages_follow_the_cursor() {
    let (app, _dir) = app().await;
    let blocked_a = json(&app, "/api/decisions?verdict=block&host=a.example").await;
    let ids: Vec<&str> =
        blocked_a["items"].as_array().expect("items").iter().filter_map(|r| r["request_id"].as_str()).collect();
    assert_eq!(ids, ["req-024", "req-018", "req-012", "req-006", "req-000"], "newest first, both filters applied");

    let mut seen = Vec::new();
    let mut uri = "/api/decisions?limit=7".to_string();
    loop {
        let page = json(&app, &uri).await;
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter_map(|r| r["request_id"].as_str().map(str::to_string)),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/decisions?limit=7&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30, "every record exactly once across pages");
    seen.dedup();
    assert_eq!(seen.len(), 30);

    let since = json(&app, "/api/decisions?since=1800000020000&until=1800000023000").await;
    assert_eq!(since["items"].as_array().map(Vec::len), Some(3), "since inclusive, until exclusive");
    let q = json(&app, "/api/decisions?q=open/1").await;
    assert!(
        q["items"].as_array().expect("items").iter().all(|r| r["url"].as_str().is_some_and(|u| u.contains("open/1")))
    );
    let like_chars = json(&app, "/api/decisions?q=%25").await;
    assert_eq!(like_chars["items"].as_array().map(Vec::len), Some(0), "% is matched literally");
    let (status, _) = call(&app, "/api/decisions?since=someday", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn one_decision_stats_and_exports() {
    let (app, _dir) = app().await;
    let one = json(&app, "/api/decisions/req-004").await;
    assert_eq!(one["time"], "2027-01-15T08:00:04.000Z", "RFC 3339 next to time_ms");
    assert_eq!(one["reasons"][0]["rule"], "Disallow: /private");
    assert_eq!(one["evidence"][0]["sha256"], "ab".repeat(32));
    assert_eq!(call(&app, "/api/decisions/nope", Some(TOKEN)).await.0, StatusCode::NOT_FOUND);

    let stats = json(&app, "/api/stats?since=0").await;
    assert_eq!(stats["total"], 30);
    assert_eq!(stats["by_verdict"], serde_json::json!([["allow", 15], ["block", 15]]));
    assert_eq!(stats["by_source"], serde_json::json!([["robots", 15]]));
    assert_eq!(stats["by_host"][0], serde_json::json!(["b.example", 10]));
    let by_source = &stats["blocks_over_time_by_source"];
    assert_eq!(by_source[0][0], "robots");
    let robots_total: i64 = by_source[0][1].as_array().expect("series").iter().filter_map(|p| p[1].as_i64()).sum();
    assert_eq!(robots_total, 15, "every blocked decision in the per-source series");

    let (status, csv) = call(&app, "/api/export?format=csv&verdict=block", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(csv).expect("utf-8");
    assert_eq!(csv.lines().count(), 16);
    let (_, jsonl) = call(&app, "/api/export?format=jsonl&host=a.example", Some(TOKEN)).await;
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&jsonl).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(call(&app, "/api/export?format=xml", Some(TOKEN)).await.0, StatusCode::BAD_REQUEST);
}

//! The audit log end to end: every decision recorded (SQLite and PostgreSQL), served by the API
//! and `consentry log`, nothing answered missing after `kill -9`, fail-closed while the store is
//! down and recovery after.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestDatabase, TestOrigin, TestProxy, curl, psql};

async fn api(proxy: &TestProxy, path: &str) -> common::CurlResult {
    curl(&["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}"), &proxy.admin_url(path)]).await
}

fn log_cli(proxy: &TestProxy, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["log", "-c"])
        .arg(&proxy.config_path)
        .args(args)
        .output()
        .expect("consentry log");
    assert!(out.status.success(), "consentry log: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Drives allowed and blocked requests through a proxy on `storage_url` and checks the API, the
/// exports and the CLI see exactly them.
async fn decisions_are_on_the_record(storage_url: &str) {
    let origin = TestOrigin::plain().await;
    origin.robots("User-agent: *\nDisallow: /private\n");
    let proxy = TestProxy::loopback(&format!("[storage]\nurl = \"{storage_url}\"\n"));
    let mut allowed = Vec::new();
    let mut blocked = Vec::new();
    for i in 0..3 {
        let res = curl(&["-x", &proxy.url(), &origin.url(&format!("/open/{i}"))]).await;
        assert_eq!(res.status, 200);
        allowed.push(res.header("consentry-request-id").expect("id").to_string());
        let res = curl(&["-x", &proxy.url(), &origin.url(&format!("/private/{i}"))]).await;
        assert_eq!(res.status, 451);
        blocked.push(res.header("consentry-request-id").expect("id").to_string());
    }

    let unauthorized = curl(&[&proxy.admin_url("/api/decisions")]).await;
    assert_eq!(unauthorized.status, 401);

    let page = api(&proxy, "/api/decisions?verdict=block&limit=2").await.json();
    let ids: Vec<&str> =
        page["items"].as_array().expect("items").iter().filter_map(|r| r["request_id"].as_str()).collect();
    assert_eq!(ids, [blocked[2].as_str(), blocked[1].as_str()], "newest first, limited to 2");
    let cursor = page["next_cursor"].as_str().expect("more pages");
    let rest = api(&proxy, &format!("/api/decisions?verdict=block&cursor={cursor}")).await.json();
    assert_eq!(rest["items"][0]["request_id"].as_str(), Some(blocked[0].as_str()));
    assert!(rest["next_cursor"].is_null());

    let one = api(&proxy, &format!("/api/decisions/{}", blocked[0])).await.json();
    assert_eq!(one["url"], origin.url("/private/0"));
    assert_eq!(one["status"], 451);
    assert_eq!(one["reasons"][0]["rule"], "Disallow: /private");
    assert_eq!(one["evidence"][0]["url"], origin.url("/robots.txt"));
    assert_eq!(api(&proxy, "/api/decisions/no-such-id").await.status, 404);

    let by_query = api(&proxy, "/api/decisions?q=open/1").await.json();
    assert_eq!(by_query["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(by_query["items"][0]["request_id"].as_str(), Some(allowed[1].as_str()));
    let by_source = api(&proxy, "/api/decisions?source=robots").await.json();
    assert_eq!(by_source["items"].as_array().map(Vec::len), Some(3));
    let by_host = api(&proxy, "/api/decisions?host=elsewhere.example").await.json();
    assert_eq!(by_host["items"].as_array().map(Vec::len), Some(0));

    let stats = api(&proxy, "/api/stats?since=1h").await.json();
    assert_eq!(stats["total"], 6);
    assert_eq!(stats["by_source"], serde_json::json!([["robots", 3]]));

    let csv = api(&proxy, "/api/export?format=csv&verdict=block").await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").is_some_and(|t| t.starts_with("text/csv")));
    let text = csv.text();
    assert_eq!(text.lines().count(), 4, "header + 3 blocked rows: {text}");
    assert!(text.lines().nth(1).is_some_and(|row| row.contains("Disallow: /private")));

    let lines = log_cli(&proxy, &["--json", "--verdict", "block"]);
    let cli_ids: HashSet<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .filter_map(|v| v["request_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(cli_ids, blocked.iter().cloned().collect());
    let table = log_cli(&proxy, &["--since", "1h"]);
    assert!(table.contains("robots: Disallow: /private"), "{table}");

    assert_eq!(curl(&[&proxy.admin_url("/readyz")]).await.status, 200);
    let metrics = curl(&[&proxy.admin_url("/metrics")]).await.text();
    assert!(metrics.contains("consentry_requests_total{decision=\"block\""), "{metrics}");
    assert!(metrics.contains("consentry_audit_records_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_are_on_the_record_in_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    decisions_are_on_the_record(&format!("sqlite://{}/audit.db", dir.path().display())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_are_on_the_record_in_postgres() {
    let database = TestDatabase::create();
    decisions_are_on_the_record(&database.url()).await;
}

/// Sends requests for `path` on `origin` one after another until told to stop; returns the ids of
/// the answers that arrived complete.
async fn load(
    proxy_addr: std::net::SocketAddr,
    origin: std::net::SocketAddr,
    path: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<String> {
    let url = format!("http://{origin}{path}");
    let complete_body = format!("ok {path}");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut ids = Vec::new();
    while !*stop.borrow() {
        let Ok(mut stream) = tokio::net::TcpStream::connect(proxy_addr).await else { break };
        let request = format!("GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if stream.write_all(request.as_bytes()).await.is_err() {
            break;
        }
        let mut answer = Vec::new();
        if stream.read_to_end(&mut answer).await.is_err() {
            break;
        }
        let text = String::from_utf8_lossy(&answer);
        // Only a complete answer counts as received (the body "ok /…" ends it).
        if text.starts_with("HTTP/1.1 200")
            && text.ends_with(&complete_body)
            && let Some(id) = text.lines().find_map(|l| l.strip_prefix("consentry-request-id: "))
        {
            ids.push(id.trim().to_string());
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_answered_is_missing_after_kill_9() {
    let origin = TestOrigin::plain().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = format!("[storage]\nurl = \"sqlite://{}/audit.db\"\n", dir.path().display());
    let proxy = TestProxy::loopback(&storage);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers: Vec<_> =
        (0..8).map(|i| tokio::spawn(load(proxy.addr, origin.addr, format!("/load/{i}"), stop_rx.clone()))).collect();
    // Readiness: wait until a good number of answers went through, then kill mid-run.
    let deadline = Instant::now() + Duration::from_secs(30);
    while origin.seen().len() < 300 {
        assert!(Instant::now() < deadline, "load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = proxy.pid();
    let killed = Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
    assert!(killed.success());
    let _ = stop_tx.send(true);
    let mut answered = Vec::new();
    for worker in workers {
        answered.extend(worker.await.expect("worker"));
    }
    assert!(answered.len() >= 200, "only {} answers before the kill", answered.len());

    // Restart on the same store and read every record back.
    let config = std::fs::read_to_string(&proxy.config_path).expect("config");
    drop(proxy);
    let check_dir = tempfile::tempdir().expect("tempdir");
    let check_config = check_dir.path().join("c.toml");
    std::fs::write(&check_config, &config).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["log", "-c"])
        .arg(&check_config)
        .args(["--json", "--limit", "1000", "--verdict", "allow"])
        .output()
        .expect("consentry log");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logged: HashSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["request_id"].as_str().map(str::to_string))
        .collect();
    let missing: Vec<&String> = answered.iter().filter(|id| !logged.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests are not in the log: {missing:?}",
        missing.len(),
        answered.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_durability_fails_closed_while_the_store_is_down_and_recovers() {
    let database = TestDatabase::create();
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::loopback(&format!("[storage]\nurl = \"{}\"\n", database.url()));
    assert_eq!(curl(&["-x", &proxy.url(), &origin.url("/before")]).await.status, 200);

    let name = &database.name;
    psql(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"));
    psql(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"));
    let res = curl(&["-x", &proxy.url(), &origin.url("/during")]).await;
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(res.json()["error"], "audit_unavailable");
    assert_eq!(curl(&[&proxy.admin_url("/readyz")]).await.status, 503);

    psql(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"));
    let res = curl(&["-x", &proxy.url(), &origin.url("/after")]).await;
    assert_eq!(res.status, 200, "recovered by itself: {}", res.text());
    let id = res.header("consentry-request-id").expect("id").to_string();
    let record = api(&proxy, &format!("/api/decisions/{id}")).await;
    assert_eq!(record.status, 200);
    assert_eq!(curl(&[&proxy.admin_url("/readyz")]).await.status, 200);
    let metrics = curl(&[&proxy.admin_url("/metrics")]).await.text();
    assert!(metrics.contains("consentry_audit_store_errors_total"), "the outage is counted");
}

#[tokio::test(flavor = "multi_thread")]
async fn async_durability_keeps_every_record_through_a_clean_shutdown() {
    let origin = TestOrigin::plain().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let proxy = TestProxy::loopback(&format!(
        "[storage]\nurl = \"sqlite://{}/audit.db\"\ndurability = \"async\"\nqueue_size = 4\n",
        dir.path().display()
    ));
    let mut ids = Vec::new();
    for i in 0..20 {
        let res = curl(&["-x", &proxy.url(), &origin.url(&format!("/a/{i}"))]).await;
        assert_eq!(res.status, 200);
        ids.push(res.header("consentry-request-id").expect("id").to_string());
    }
    let config_path = proxy.config_path.clone();
    let keep = tempfile::tempdir().expect("tempdir");
    let config_copy = keep.path().join("c.toml");
    std::fs::copy(&config_path, &config_copy).expect("copy config");
    let status = tokio::task::spawn_blocking(move || proxy.terminate()).await.expect("join");
    assert!(status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["log", "-c"])
        .arg(&config_copy)
        .args(["--json", "--limit", "100"])
        .output()
        .expect("log");
    let logged: HashSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["request_id"].as_str().map(str::to_string))
        .collect();
    for id in &ids {
        assert!(logged.contains(id), "{id} missing after shutdown");
    }
}

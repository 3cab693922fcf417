//! The creators' registry end to end: `consentry registry` import/list/remove (JSON Lines and
//! CSV, all or nothing), entries honoured by a running proxy within a second, feeds pulled from a
//! real origin (changed, broken, signed), and two proxy processes sharing one PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{Canned, TestDatabase, TestOrigin, TestProxy, curl};
use ed25519_dalek::{Signer, SigningKey};

const CRAWLERS: &str = r#"
[[crawlers]]
name = "trainer"
password = "pw"
token = "TrainBot"
purposes = ["ai-train"]

[[crawlers]]
name = "searcher"
password = "pw"
token = "SearchBot"
purposes = ["search"]
"#;

/// A proxy that reaches `origin` as `host` (port kept) and knows the two crawlers.
fn proxy_for(origin: &TestOrigin, host: &str, extra: &str) -> TestProxy {
    TestProxy::loopback(&format!(
        "{CRAWLERS}\n[upstream]\nresolve = {{ \"{host}:{port}\" = \"{addr}\" }}\n{extra}",
        port = origin.port(),
        addr = origin.addr
    ))
}

async fn fetch(proxy: &TestProxy, crawler: &str, url: &str) -> common::CurlResult {
    curl(&["-x", &proxy.url(), "-U", &format!("{crawler}:pw"), url]).await
}

/// Requests `url` until its status is `want` or `within` passes; returns the last answer and
/// the time it took. Each attempt is a real request: the proxy's answer is the readiness signal.
async fn until_status(
    proxy: &TestProxy,
    crawler: &str,
    url: &str,
    want: u16,
    within: Duration,
) -> (common::CurlResult, Duration) {
    let started = Instant::now();
    loop {
        let res = fetch(proxy, crawler, url).await;
        if res.status == want || started.elapsed() > within {
            return (res, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn write(proxy: &TestProxy, name: &str, text: &str) -> String {
    let path = proxy.dir.path().join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

fn list_json(proxy: &TestProxy, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["registry", "list", "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = proxy.cli(&args);
    assert_eq!(code, 0, "{err}");
    out.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

#[tokio::test]
async fn import_list_and_remove_round_trip_in_json_lines_and_csv() {
    let proxy = TestProxy::loopback(CRAWLERS);
    let jsonl = write(
        &proxy,
        "entries.jsonl",
        concat!(
            "# artists' collective\n",
            r#"{"id":"ann-1","creator":"Ann","contact":"ann@art.example","domain":"art.example","paths":["/gallery/"],"purposes":["ai-train"]}"#,
            "\n\n",
            r#"{"creator":"Bo","url":"https://photos.example/img/sunset.jpg"}"#,
            "\n"
        ),
    );
    let (code, out, err) = proxy.cli(&["registry", "import", &jsonl]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 2 entries (2 new, 0 replaced)"), "{out}");

    let csv = write(
        &proxy,
        "more.csv",
        "creator,domain,include_subdomains,paths,purposes\n\
         \"Cy, the painter\",cy.example,no,/a/ /b/*.png$,ai-train|tdm\n\
         Di,di.example,,,\n",
    );
    let (code, out, err) = proxy.cli(&["registry", "import", &csv]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 2 entries"), "{out}");

    let all = list_json(&proxy, &[]);
    assert_eq!(all.len(), 4, "{all:?}");
    let ann = all.iter().find(|e| e["id"] == "ann-1").expect("ann's entry keeps its id");
    assert_eq!(ann["domain"], "art.example");
    assert_eq!(ann["include_subdomains"], true);
    assert_eq!(ann["paths"], serde_json::json!(["/gallery/"]));
    assert_eq!(ann["purposes"], serde_json::json!(["ai-train"]));
    assert_eq!(ann["source"], "import");
    let bo = all.iter().find(|e| e["creator"] == "Bo").expect("Bo");
    assert_eq!(bo["url"], "https://photos.example/img/sunset.jpg");
    assert_eq!(bo["purposes"], serde_json::json!(["ai-input", "ai-train", "tdm"]), "default purposes");
    let cy = all.iter().find(|e| e["creator"] == "Cy, the painter").expect("Cy");
    assert_eq!(cy["include_subdomains"], false);
    assert_eq!(cy["paths"], serde_json::json!(["/a/", "/b/*.png$"]));
    assert_eq!(cy["purposes"], serde_json::json!(["ai-train", "tdm"]));

    let only_cy = list_json(&proxy, &["--domain", "cy.example"]);
    assert_eq!(only_cy.len(), 1);
    let (code, table, _) = proxy.cli(&["registry", "list"]);
    assert_eq!(code, 0);
    assert!(table.contains("ann-1\tAnn\tart.example (+subdomains) /gallery/\tai-train\timport"), "{table}");

    let (code, out, _) = proxy.cli(&["registry", "remove", "ann-1"]);
    assert_eq!((code, out.trim()), (0, "removed ann-1"));
    assert_eq!(list_json(&proxy, &[]).len(), 3);
    let (code, _, err) = proxy.cli(&["registry", "remove", "ann-1"]);
    assert_eq!(code, 1);
    assert!(err.contains("no registry entry has the id \"ann-1\""), "{err}");

    // Re-importing the same id replaces the entry.
    let again = write(&proxy, "again.jsonl", r#"{"id":"ann-1","creator":"Ann B.","domain":"art.example"}"#);
    let (code, out, _) = proxy.cli(&["registry", "import", &again]);
    assert_eq!(code, 0);
    assert!(out.contains("1 new"), "{out}");
}

#[tokio::test]
async fn an_invalid_file_imports_nothing_and_names_every_problem() {
    let proxy = TestProxy::loopback(CRAWLERS);
    let path = write(
        &proxy,
        "broken.jsonl",
        concat!(
            r#"{"creator":"Ann","domain":"art.example"}"#,
            "\n",
            r#"{"creator":"Bo","domain":"not a domain"}"#,
            "\n",
            r#"{"creator":"Cy","domain":"cy.example","purposes":["ai-train","teleport"]}"#,
            "\n",
            "{not json\n",
        ),
    );
    let (code, out, err) = proxy.cli(&["registry", "import", &path]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(err.contains("line 2") && err.contains("`domain`"), "{err}");
    assert!(err.contains("line 3") && err.contains("`purposes`") && err.contains("teleport"), "{err}");
    assert!(err.contains("line 4"), "{err}");
    assert!(!err.contains("line 1:"), "the valid line is not a problem: {err}");
    assert!(list_json(&proxy, &[]).is_empty(), "all or nothing");

    let csv = write(&proxy, "broken.csv", "creator,domain,colour\nAnn,art.example,red\n");
    let (code, _, err) = proxy.cli(&["registry", "import", &csv]);
    assert_eq!(code, 1);
    assert!(err.contains("line 1") && err.contains("colour"), "{err}");
    assert!(list_json(&proxy, &[]).is_empty());
}

#[tokio::test]
async fn an_imported_entry_blocks_within_a_second_only_for_its_purposes() {
    let origin = TestOrigin::plain().await;
    origin.set("/gallery/piece.html", Canned::body("a painting"));
    origin.set("/about", Canned::body("about"));
    let proxy = proxy_for(&origin, "art.example", "");
    let piece = format!("http://art.example:{}/gallery/piece.html", origin.port());
    assert_eq!(fetch(&proxy, "trainer", &piece).await.status, 200, "no objection yet");

    let path = write(
        &proxy,
        "ann.jsonl",
        r#"{"id":"ann-1","creator":"Ann","domain":"art.example","paths":["/gallery/"],"purposes":["ai-train","ai-input"]}"#,
    );
    let (code, _, err) = proxy.cli(&["registry", "import", &path]);
    assert_eq!(code, 0, "{err}");
    let (res, took) = until_status(&proxy, "trainer", &piece, 451, Duration::from_secs(1)).await;
    assert_eq!(res.status, 451, "not honoured within 1s ({took:?}): {}", res.text());
    let hits = origin.hits("/gallery/piece.html");
    assert_eq!(fetch(&proxy, "trainer", &piece).await.status, 451);
    assert_eq!(origin.hits("/gallery/piece.html"), hits, "a blocked request never reaches the origin");
    let body = res.json();
    let reason = &body["reasons"][0];
    assert_eq!(reason["source"], "registry");
    assert_eq!(reason["effect"], "disallow");
    assert_eq!(reason["purpose"], "ai-train");
    assert_eq!(reason["entry_id"], "ann-1");
    assert_eq!(reason["creator"], "Ann");
    assert_eq!(reason["rule"], "art.example/gallery/", "the matched pattern");

    // A purpose the entry does not name, and a path it does not cover, pass.
    assert_eq!(fetch(&proxy, "searcher", &piece).await.status, 200);
    let about = format!("http://art.example:{}/about", origin.port());
    assert_eq!(fetch(&proxy, "trainer", &about).await.status, 200);
    let (code, _, _) = proxy.cli(&["registry", "remove", "ann-1"]);
    assert_eq!(code, 0);
    let (res, took) = until_status(&proxy, "trainer", &piece, 200, Duration::from_secs(1)).await;
    assert_eq!(res.status, 200, "removal not honoured within 1s ({took:?})");
}

#[tokio::test]
async fn subdomain_and_exact_url_entries_match_as_written() {
    let origin = TestOrigin::plain().await;
    origin.set("/img/a.png", Canned::body("png a"));
    origin.set("/img/b.png", Canned::body("png b"));
    let proxy = TestProxy::loopback(&format!(
        "{CRAWLERS}\n[upstream]\nresolve = {{ \"cdn.pics.example:{p}\" = \"{a}\", \"pics.example:{p}\" = \"{a}\", \"other.example:{p}\" = \"{a}\" }}\n",
        p = origin.port(),
        a = origin.addr
    ));
    let port = origin.port();
    let path = write(
        &proxy,
        "e.jsonl",
        &format!(
            "{}\n{}\n",
            r#"{"id":"sub","creator":"Eve","domain":"pics.example","include_subdomains":true,"paths":["/img/*.png$"]}"#,
            format_args!(r#"{{"id":"one","creator":"Fay","url":"http://other.example:{port}/img/%61.png"}}"#)
        ),
    );
    assert_eq!(proxy.cli(&["registry", "import", &path]).0, 0);
    let url = |host: &str, path: &str| format!("http://{host}:{port}{path}");
    let (res, _) =
        until_status(&proxy, "trainer", &url("cdn.pics.example", "/img/a.png"), 451, Duration::from_secs(2)).await;
    assert_eq!(res.status, 451);
    assert_eq!(res.json()["reasons"][0]["rule"], "*.pics.example/img/*.png$");
    // The exact URL entry matches after normalisation (%61 is "a"), and only that URL.
    let res = fetch(&proxy, "trainer", &url("other.example", "/img/a.png")).await;
    assert_eq!(res.status, 451, "{}", res.text());
    assert_eq!(res.json()["reasons"][0]["entry_id"], "one");
    assert_eq!(fetch(&proxy, "trainer", &url("other.example", "/img/b.png")).await.status, 200);
    assert_eq!(
        fetch(&proxy, "trainer", &url("other.example", "/img/./../img/a.png")).await.status,
        451,
        "dot segments"
    );
}

/// A feed origin answering `/feed.jsonl` (with an ETag) and `/feed.jsonl.sig`.
fn serve_feed(origin: &TestOrigin, body: &str, etag: &str) {
    origin.set("/feed.jsonl", Canned::body(body.to_string()).with_header("etag", etag));
}

#[tokio::test]
async fn a_feed_is_pulled_changed_broken_and_kept() {
    let origin = TestOrigin::plain().await;
    origin.set("/a", Canned::body("a"));
    origin.set("/b", Canned::body("b"));
    serve_feed(
        &origin,
        r#"{"id":"x","creator":"Registry One","domain":"site-a.example","purposes":["ai-train"]}"#,
        "\"v1\"",
    );
    let port = origin.port();
    let proxy = TestProxy::loopback(&format!(
        "{CRAWLERS}\n[upstream]\nresolve = {{ \"feeds.example:{port}\" = \"{a}\", \"site-a.example:{port}\" = \"{a}\", \"site-b.example:{port}\" = \"{a}\" }}\n\
         [[registry.feeds]]\nurl = \"http://feeds.example:{port}/feed.jsonl\"\ninterval = \"1s\"\n",
        a = origin.addr
    ));
    let a = format!("http://site-a.example:{port}/a");
    let b = format!("http://site-b.example:{port}/b");
    let (res, _) = until_status(&proxy, "trainer", &a, 451, Duration::from_secs(5)).await;
    assert_eq!(res.status, 451, "feed entry not applied: {}", proxy.stderr());
    let reason = &res.json()["reasons"][0];
    assert_eq!(reason["creator"], "Registry One");
    assert!(reason["entry_id"].as_str().is_some_and(|id| id.starts_with("feed-") && id.ends_with("-x")), "{reason}");
    let entries = list_json(&proxy, &[]);
    assert_eq!(entries[0]["source"], format!("feed:http://feeds.example:{port}/feed.jsonl"));

    // The next pull is conditional.
    let deadline = Instant::now() + Duration::from_secs(5);
    while origin.hits("/feed.jsonl") < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(origin.last("/feed.jsonl").header("if-none-match").as_deref(), Some("\"v1\""));

    // Changed: site-a's entry is gone, site-b's is new.
    serve_feed(
        &origin,
        r#"{"id":"y","creator":"Registry One","domain":"site-b.example","purposes":["ai-train"]}"#,
        "\"v2\"",
    );
    let (res, _) = until_status(&proxy, "trainer", &b, 451, Duration::from_secs(5)).await;
    assert_eq!(res.status, 451);
    let (res, _) = until_status(&proxy, "trainer", &a, 200, Duration::from_secs(2)).await;
    assert_eq!(res.status, 200, "entries no longer in the feed are removed");

    // Broken: an invalid line keeps the previous set and is recorded.
    serve_feed(&origin, "{\"creator\":\"R\",\"domain\":\"site-a.example\"}\n{broken\n", "\"v3\"");
    let metrics_url = proxy.admin_url("/metrics");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut metrics = String::new();
    while !metrics.contains("consentry_registry_feed_failures_total") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        metrics = curl(&[&metrics_url]).await.text();
    }
    assert!(metrics.contains("consentry_registry_feed_failures_total"), "{metrics}");
    assert!(metrics.contains("consentry_registry_feed_age_seconds"), "{metrics}");
    assert!(proxy.stderr().contains("line 2"), "the failure names the line");
    assert_eq!(fetch(&proxy, "trainer", &b).await.status, 451, "the previous set stays in force");
    assert_eq!(fetch(&proxy, "trainer", &a).await.status, 200, "the broken feed was not applied");

    // Unreachable: same.
    origin.set("/feed.jsonl", Canned::status(503));
    let hits = origin.hits("/feed.jsonl");
    let deadline = Instant::now() + Duration::from_secs(5);
    while origin.hits("/feed.jsonl") <= hits && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fetch(&proxy, "trainer", &b).await.status, 451);
}

#[tokio::test]
async fn a_signed_feed_is_applied_only_with_a_valid_signature() {
    let origin = TestOrigin::plain().await;
    origin.set("/p", Canned::body("p"));
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let public = BASE64.encode(key.verifying_key().as_bytes());
    let good = r#"{"id":"s1","creator":"Signed Registry","domain":"signed.example"}"#;
    serve_feed(&origin, good, "\"s1\"");
    origin.set("/feed.jsonl.sig", Canned::body(BASE64.encode(key.sign(good.as_bytes()).to_bytes())));
    let port = origin.port();
    let proxy = TestProxy::loopback(&format!(
        "{CRAWLERS}\n[upstream]\nresolve = {{ \"feeds.example:{port}\" = \"{a}\", \"signed.example:{port}\" = \"{a}\", \"forged.example:{port}\" = \"{a}\" }}\n\
         [[registry.feeds]]\nurl = \"http://feeds.example:{port}/feed.jsonl\"\ninterval = \"1s\"\npublic_key = \"{public}\"\n",
        a = origin.addr
    ));
    let signed = format!("http://signed.example:{port}/p");
    let (res, _) = until_status(&proxy, "trainer", &signed, 451, Duration::from_secs(5)).await;
    assert_eq!(res.status, 451, "{}", proxy.stderr());

    // A body changed without a new signature is refused; the signed set stays.
    let forged = r#"{"id":"f1","creator":"Forger","domain":"forged.example"}"#;
    serve_feed(&origin, forged, "\"f1\"");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy.stderr().contains("signature does not match") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(proxy.stderr().contains("signature does not match"), "{}", proxy.stderr());
    assert_eq!(fetch(&proxy, "trainer", &format!("http://forged.example:{port}/p")).await.status, 200);
    assert_eq!(fetch(&proxy, "trainer", &signed).await.status, 451);
}

#[tokio::test]
async fn two_proxies_on_one_postgresql_share_the_registry() {
    let db = TestDatabase::create();
    let origin = TestOrigin::plain().await;
    origin.set("/work", Canned::body("work"));
    let secrets = tempfile::tempdir().expect("tempdir");
    let key = common::shared_tlog_key(secrets.path());
    let storage = format!("[storage]\nurl = \"{}\"\n[tlog]\nkey_file = \"{}\"\n", db.url(), key.display());
    let node_a = proxy_for(&origin, "shared.example", &storage);
    let node_b = proxy_for(&origin, "shared.example", &storage);
    let url = format!("http://shared.example:{}/work", origin.port());
    assert_eq!(fetch(&node_b, "trainer", &url).await.status, 200);

    // Filed through node A's config (the same database), honoured by node B.
    let path = write(&node_a, "shared.jsonl", r#"{"id":"pg-1","creator":"Gil","domain":"shared.example"}"#);
    let (code, _, err) = node_a.cli(&["registry", "import", &path]);
    assert_eq!(code, 0, "{err}");
    let (res, took) = until_status(&node_b, "trainer", &url, 451, Duration::from_secs(5)).await;
    assert_eq!(res.status, 451, "node B did not see the entry within 5s ({took:?})");
    assert_eq!(res.json()["reasons"][0]["entry_id"], "pg-1");
    let (res, _) = until_status(&node_a, "trainer", &url, 451, Duration::from_secs(5)).await;
    assert_eq!(res.status, 451);

    let (code, _, _) = node_b.cli(&["registry", "remove", "pg-1"]);
    assert_eq!(code, 0);
    let (res, _) = until_status(&node_a, "trainer", &url, 200, Duration::from_secs(5)).await;
    assert_eq!(res.status, 200, "removal seen by node A");
}

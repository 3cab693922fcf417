//! AI opt-out signals end to end: in robots.txt groups before the fetch, and in response headers
//! after it (the body is withheld), for crawlers of each purpose.

mod common;

use common::{Canned, TestOrigin, TestProxy, curl};

const CRAWLERS: &str = r#"
[[crawlers]]
name = "trainer"
password = "pw"
token = "TrainBot"
purposes = ["ai-train"]
honor_tokens = ["GPTBot"]

[[crawlers]]
name = "plaintrainer"
password = "pw"
token = "PlainTrainBot"
purposes = ["ai-train"]

[[crawlers]]
name = "searcher"
password = "pw"
token = "SearchBot"
purposes = ["search"]

[[crawlers]]
name = "rag"
password = "pw"
token = "RagBot"
purposes = ["ai-input"]

[[crawlers]]
name = "miner"
password = "pw"
token = "MineBot"
purposes = ["tdm"]
"#;

fn shared_example(name: &str) -> String {
    let path = format!("{}/../shared/data/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn get(proxy: &TestProxy, crawler: &str, url: &str) -> common::CurlResult {
    curl(&["-x", &proxy.url(), "-U", &format!("{crawler}:pw"), url]).await
}

/// Serves `/page` with `header: value` and returns what each crawler gets.
async fn statuses_for_header(extra_config: &str, header: &str, value: &str) -> Vec<(&'static str, u16)> {
    let origin = TestOrigin::plain().await;
    origin.set("/page", Canned::body("<html>content</html>").with_header(header, value));
    let proxy = TestProxy::loopback(&format!("{extra_config}\n{CRAWLERS}"));
    let mut out = Vec::new();
    for crawler in ["trainer", "searcher", "rag", "miner"] {
        out.push((crawler, get(&proxy, crawler, &origin.url("/page")).await.status));
    }
    out
}

#[tokio::test]
async fn response_headers_withhold_the_body_per_purpose() {
    let cases: Vec<(&str, &str, &str, [u16; 4])> = vec![
        // (config, header, value, [trainer, searcher, rag, miner])
        ("", "x-robots-tag", "noai", [451, 200, 451, 451]),
        ("", "x-robots-tag", "noindex, nofollow", [200, 200, 200, 200]),
        ("", "x-robots-tag", "GPTBot: noai", [451, 200, 200, 200]),
        ("", "x-robots-tag", "otherbot: noai", [200, 200, 200, 200]),
        ("", "content-usage", "train-ai=n", [451, 200, 200, 200]),
        ("", "content-usage", "search=n", [200, 451, 200, 200]),
        ("", "content-usage", "Train-AI=n", [200, 200, 200, 200]),
        ("", "content-usage", "train-ai=\"n\"", [200, 200, 200, 200]),
        ("", "content-usage", "ai=n", [200, 200, 200, 200]),
        ("[signals]\naipref_legacy = true\n", "content-usage", "ai=n", [451, 200, 200, 200]),
        ("", "content-signal", "search=yes, ai-input=no", [200, 200, 451, 200]),
        ("", "content-signal", "AI-TRAIN=NO", [451, 200, 200, 200]),
        ("", "tdm-reservation", "1", [451, 200, 451, 451]),
        ("", "tdm-reservation", "0", [200, 200, 200, 200]),
        ("[signals]\neu_strict = true\n", "tdm-reservation", "1", [451, 451, 451, 451]),
    ];
    for (config, header, value, expected) in cases {
        let got = statuses_for_header(config, header, value).await;
        let got: Vec<u16> = got.iter().map(|(_, status)| *status).collect();
        assert_eq!(got, expected, "{config}{header}: {value} (trainer, searcher, rag, miner)");
    }
}

#[tokio::test]
async fn a_withheld_response_explains_itself() {
    let origin = TestOrigin::plain().await;
    origin.set("/page", Canned::body("secret content").with_header("x-robots-tag", "noai"));
    let proxy = TestProxy::loopback(CRAWLERS);
    let res = get(&proxy, "trainer", &origin.url("/page")).await;
    assert_eq!(res.status, 451);
    assert!(!res.text().contains("secret content"), "the body is withheld");
    let body = res.json();
    assert_eq!(body["stage"], "response");
    let reason = &body["reasons"][0];
    assert_eq!(reason["source"], "x-robots-tag");
    assert_eq!(reason["purpose"], "ai-train");
    assert_eq!(reason["rule"], "X-Robots-Tag: noai");
    assert_eq!(reason["evidence"], origin.url("/page"));
    assert_eq!(origin.hits("/page"), 1, "response-stage decisions are taken after the fetch");
}

#[tokio::test]
async fn monitor_mode_delivers_a_withheld_response_as_would_block() {
    let origin = TestOrigin::plain().await;
    origin.set("/page", Canned::body("content").with_header("content-usage", "train-ai=n"));
    let proxy = TestProxy::loopback(&format!("mode = \"monitor\"\n{CRAWLERS}"));
    let res = get(&proxy, "trainer", &origin.url("/page")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "content");
    assert_eq!(res.header("consentry-decision"), Some("would-block"));
}

#[tokio::test]
async fn content_signals_in_robots_txt_block_before_the_fetch() {
    let origin = TestOrigin::plain().await;
    origin.robots(&shared_example("cloudflare-managed-robots.txt"));
    let proxy = TestProxy::loopback(CRAWLERS);
    let res = get(&proxy, "trainer", &origin.url("/article")).await;
    assert_eq!(res.status, 451);
    assert_eq!(res.json()["reasons"][0]["source"], "robots", "trainer honours GPTBot, disallowed outright");
    let res = get(&proxy, "plaintrainer", &origin.url("/article")).await;
    assert_eq!(res.status, 451, "Content-signal: ai-train=no");
    let reason = &res.json()["reasons"][0];
    assert_eq!(reason["source"], "content-signal");
    assert_eq!(reason["purpose"], "ai-train");
    assert_eq!(reason["evidence"], origin.url("/robots.txt"));
    assert!(reason["line"].as_u64().is_some());
    assert_eq!(origin.hits("/article"), 0, "blocked before the fetch");
    assert_eq!(get(&proxy, "searcher", &origin.url("/article")).await.status, 200, "search=yes");
    assert_eq!(get(&proxy, "rag", &origin.url("/article")).await.status, 200, "ai-input not stated");
}

#[tokio::test]
async fn content_usage_in_robots_txt_follows_the_longest_path() {
    let origin = TestOrigin::plain().await;
    origin.robots(&shared_example("aipref-attach-05-robots.txt"));
    let proxy = TestProxy::loopback(CRAWLERS);
    let res = get(&proxy, "trainer", &origin.url("/article")).await;
    assert_eq!(res.status, 451);
    assert_eq!(res.json()["reasons"][0]["source"], "content-usage");
    assert_eq!(get(&proxy, "trainer", &origin.url("/ai-ok/article")).await.status, 200, "/ai-ok/ train-ai=y");
    assert_eq!(get(&proxy, "searcher", &origin.url("/article")).await.status, 200);
    let res = get(&proxy, "searcher", &origin.url("/never/x")).await;
    assert_eq!(res.status, 451);
    assert_eq!(res.json()["reasons"][0]["source"], "robots", "access rules come first");
}

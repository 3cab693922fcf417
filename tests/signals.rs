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

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test]
async fn meta_noai_in_a_gzipped_html_head_withholds_the_page() {
    let origin = TestOrigin::plain().await;
    let page = format!(
        "<!doctype html><html><head><title>Art</title>{}<meta name=\"robots\" content=\"noai, noimageai\"></head><body>{}</body></html>",
        "<meta name=\"description\" content=\"x\">".repeat(200),
        "painting ".repeat(20_000)
    );
    let compressed = gzip(page.as_bytes());
    origin.set(
        "/art",
        Canned::body(compressed.clone())
            .with_header("content-type", "text/html; charset=utf-8")
            .with_header("content-encoding", "gzip"),
    );
    let proxy = TestProxy::loopback(CRAWLERS);
    let res = get(&proxy, "plaintrainer", &origin.url("/art")).await;
    assert_eq!(res.status, 451);
    let body = res.json();
    assert_eq!(body["stage"], "response");
    assert_eq!(body["reasons"][0]["source"], "meta-robots");
    assert_eq!(body["reasons"][0]["rule"], "<meta name=\"robots\" content=\"noai, noimageai\">");

    // A search crawler gets the page, byte-identical and still compressed.
    let res =
        curl(&["-x", &proxy.url(), "-U", "searcher:pw", "-H", "Accept-Encoding: gzip", &origin.url("/art")]).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, compressed);
}

#[tokio::test]
async fn ai_txt_disallows_training_on_matching_files() {
    let origin = TestOrigin::plain().await;
    origin.set("/ai.txt", Canned::body(shared_example("spawning-ai.txt")));
    let proxy = TestProxy::loopback(CRAWLERS);
    let res = get(&proxy, "plaintrainer", &origin.url("/papers/thesis.pdf")).await;
    assert_eq!(res.status, 451, "{}", res.text());
    let reason = &res.json()["reasons"][0];
    assert_eq!(reason["source"], "ai-txt");
    assert_eq!(reason["rule"], "Disallow: *.pdf");
    assert_eq!(reason["evidence"], origin.url("/ai.txt"));
    assert_eq!(origin.hits("/papers/thesis.pdf"), 0, "ai.txt decides before the fetch");
    assert_eq!(get(&proxy, "searcher", &origin.url("/papers/thesis.pdf")).await.status, 200);
    assert_eq!(get(&proxy, "rag", &origin.url("/papers/thesis.pdf")).await.status, 200, "ai.txt speaks to training");
}

#[tokio::test]
async fn tdmrep_file_header_and_meta_follow_tdmrep_precedence() {
    let origin = TestOrigin::plain().await;
    origin.set("/.well-known/tdmrep.json", Canned::body(shared_example("tdmrep-multi.json")));
    origin
        .set("/directory-a/page", Canned::body("<p>reserved by the file</p>").with_header("content-type", "text/html"));
    origin.set("/directory-a/lifted", Canned::body("lifted").with_header("tdm-reservation", "0"));
    origin.set(
        "/directory-a/meta",
        Canned::body("<html><head><meta name=\"tdm-reservation\" content=\"1\"></head><body>x</body></html>")
            .with_header("content-type", "text/html")
            .with_header("tdm-reservation", "0"),
    );
    let proxy = TestProxy::loopback(CRAWLERS);
    let res = get(&proxy, "miner", &origin.url("/directory-a/page")).await;
    assert_eq!(res.status, 451);
    let reason = &res.json()["reasons"][0];
    assert_eq!(reason["source"], "tdmrep");
    assert_eq!(reason["evidence"], origin.url("/.well-known/tdmrep.json"));
    assert_eq!(
        get(&proxy, "miner", &origin.url("/directory-a/lifted")).await.status,
        200,
        "header 0 overrides the file"
    );
    let res = get(&proxy, "miner", &origin.url("/directory-a/meta")).await;
    assert_eq!(res.status, 451, "meta 1 overrides header 0");
    assert_eq!(res.json()["reasons"][0]["detail"], "HTML meta");
    assert_eq!(get(&proxy, "miner", &origin.url("/elsewhere")).await.status, 200, "no rule matches");
    assert_eq!(get(&proxy, "searcher", &origin.url("/directory-a/page")).await.status, 200);
}

#[tokio::test]
async fn unreachable_ai_policy_files_are_recorded_or_block_when_configured() {
    let origin = TestOrigin::plain().await;
    origin.set("/ai.txt", Canned::status(503));
    let proxy = TestProxy::loopback(CRAWLERS);
    let res = get(&proxy, "plaintrainer", &origin.url("/a")).await;
    assert_eq!(res.status, 200, "on_signal_unreachable = allow (default)");

    let proxy = TestProxy::loopback(&format!("{CRAWLERS}\n[policy]\non_signal_unreachable = \"block\"\n"));
    let res = get(&proxy, "plaintrainer", &origin.url("/a")).await;
    assert_eq!(res.status, 451);
    let reason = &res.json()["reasons"][0];
    assert_eq!(reason["source"], "ai-txt");
    assert!(reason["rule"].as_str().is_some_and(|r| r.contains("unreachable")), "{reason}");
    assert_eq!(get(&proxy, "searcher", &origin.url("/a")).await.status, 200, "ai.txt does not concern search");
}

const RSL_DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rsl xmlns="https://rslstandard.org/rsl">
  <content url="/">
    <license>
      <permits type="usage">search ai-input</permits>
      <prohibits type="usage">ai-train</prohibits>
    </license>
  </content>
  <content url="/paid/" server="https://licensing.example">
    <license>
      <permits type="usage">search ai-input</permits>
      <payment type="subscription"/>
    </license>
  </content>
</rsl>
"#;

#[tokio::test]
async fn rsl_licences_in_robots_txt_are_read_and_held_licences_are_presented() {
    let origin = TestOrigin::plain().await;
    let license_url = origin.url("/license.xml");
    origin.robots(&format!("License: {license_url}\n\nUser-agent: *\nAllow: /\n"));
    origin.set("/license.xml", Canned::body(RSL_DOC).with_header("content-type", "application/rsl+xml"));
    let licensed = format!(
        "\n[[crawlers]]\nname = \"licensed\"\npassword = \"pw\"\ntoken = \"LicensedBot\"\npurposes = [\"ai-input\"]\nlicenses = [{{ url = \"{license_url}\", token = \"tok-123\" }}]\n"
    );
    let proxy = TestProxy::loopback(&format!("{CRAWLERS}{licensed}"));

    let res = get(&proxy, "plaintrainer", &origin.url("/story")).await;
    assert_eq!(res.status, 451, "{}", res.text());
    let reason = &res.json()["reasons"][0];
    assert_eq!(reason["source"], "rsl");
    assert_eq!(reason["purpose"], "ai-train");
    assert_eq!(reason["evidence"], license_url);
    assert_eq!(origin.hits("/story"), 0);
    assert_eq!(get(&proxy, "searcher", &origin.url("/story")).await.status, 200);
    assert_eq!(get(&proxy, "rag", &origin.url("/story")).await.status, 200, "ai-input permitted on /");

    let res = get(&proxy, "rag", &origin.url("/paid/report")).await;
    assert_eq!(res.status, 451, "a licence server: a token is required");
    assert_eq!(origin.hits("/paid/report"), 0);
    let res = get(&proxy, "licensed", &origin.url("/paid/report")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(origin.last("/paid/report").header("authorization").as_deref(), Some("License tok-123"));
    assert_eq!(origin.hits("/license.xml"), 1, "the licence document is fetched once and cached");
}

#[tokio::test]
async fn rsl_link_headers_withhold_and_licence_challenges_pass_through() {
    let origin = TestOrigin::plain().await;
    let license_url = origin.url("/license.xml");
    origin.set("/license.xml", Canned::body(RSL_DOC));
    origin.set(
        "/story",
        Canned::body("story")
            .with_header("link", &format!("<{license_url}>; rel=\"license\"; type=\"application/rsl+xml\"")),
    );
    origin.set("/locked", Canned::status(402).with_header("www-authenticate", "License error=\"invalid_token\""));
    let proxy = TestProxy::loopback(CRAWLERS);
    let res = get(&proxy, "plaintrainer", &origin.url("/story")).await;
    assert_eq!(res.status, 451);
    let body = res.json();
    assert_eq!(body["stage"], "response");
    assert_eq!(body["reasons"][0]["source"], "rsl");
    assert_eq!(get(&proxy, "searcher", &origin.url("/story")).await.status, 200);
    let res = get(&proxy, "searcher", &origin.url("/locked")).await;
    assert_eq!(res.status, 402, "the origin's licence challenge reaches the crawler");
}

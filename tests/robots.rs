//! robots.txt end to end: real origins serving every fetch outcome, the real proxy, real clients.

mod common;

use std::time::Duration;

use common::{Canned, TestOrigin, TestProxy, curl};

const ACME: &str = r#"
[[crawlers]]
name = "acme"
password = "pw"
token = "AcmeBot"
user_agent = "AcmeBot/1.0"
purposes = ["ai-train"]
honor_tokens = ["GPTBot"]

[[crawlers]]
name = "searcher"
password = "pw"
token = "SearchBot"
purposes = ["search"]

[[crawlers]]
name = "trainer"
password = "pw"
token = "TrainBot"
purposes = ["ai-train"]
honor_tokens = ["@ai-training"]
"#;

async fn get(proxy: &TestProxy, crawler: &str, url: &str) -> common::CurlResult {
    curl(&["-x", &proxy.url(), "-U", &format!("{crawler}:pw"), url]).await
}

#[tokio::test]
async fn disallowed_path_is_blocked_with_every_reason_and_never_reaches_the_origin() {
    let origin = TestOrigin::plain().await;
    let robots =
        "# comment\nUser-agent: AcmeBot\nDisallow: /private\nAllow: /private/ok\n\nUser-agent: *\nDisallow: /\n";
    origin.robots(robots);
    let proxy = TestProxy::loopback(ACME);

    let res = get(&proxy, "acme", &origin.url("/private/page")).await;
    assert_eq!(res.status, 451, "{}", res.text());
    assert_eq!(res.header("consentry-decision"), Some("block"));
    let body = res.json();
    assert_eq!(body["verdict"], "block");
    assert_eq!(body["stage"], "request");
    assert_eq!(body["crawler"], "acme");
    assert_eq!(body["url"], origin.url("/private/page"));
    assert_eq!(body["purposes"], serde_json::json!(["ai-train"]));
    let reason = &body["reasons"][0];
    assert_eq!(reason["source"], "robots");
    assert_eq!(reason["effect"], "disallow");
    assert_eq!(reason["rule"], "Disallow: /private");
    assert_eq!(reason["line"], 3);
    assert_eq!(reason["evidence"], origin.url("/robots.txt"));
    let sha = common::hex(&<sha2::Sha256 as sha2::Digest>::digest(robots.as_bytes()));
    assert_eq!(reason["evidence_sha256"], sha.as_str());
    let detail = reason["detail"].as_str().expect("detail");
    assert!(detail.contains("token AcmeBot") && detail.contains("User-agent: AcmeBot (line 2)"), "{detail}");
    assert!(detail.contains("fetched (200)"), "{detail}");
    assert_eq!(origin.hits("/private/page"), 0, "a blocked request must not reach the origin");

    let res = get(&proxy, "acme", &origin.url("/private/ok/x")).await;
    assert_eq!(res.status, 200, "longer Allow wins");
    let res = get(&proxy, "acme", &origin.url("/public")).await;
    assert_eq!(res.status, 200, "the AcmeBot group replaces *");
    let res = get(&proxy, "searcher", &origin.url("/public")).await;
    assert_eq!(res.status, 451, "other crawlers fall back to *");
    // robots.txt itself is always allowed, and fetched by the proxy once for all of this.
    let res = get(&proxy, "searcher", &origin.url("/robots.txt")).await;
    assert_eq!(res.status, 200);
    let policy_fetches = origin.seen().iter().filter(|r| r.path == "/robots.txt").count();
    assert_eq!(policy_fetches, 2, "one policy fetch, plus the crawler's own request for /robots.txt");
    assert_eq!(origin.seen()[0].header("user-agent").as_deref(), Some("AcmeBot/1.0"), "fetched as the crawler");
}

#[tokio::test]
async fn honoured_tokens_block_and_the_ai_training_list_applies() {
    let origin = TestOrigin::plain().await;
    origin.robots("User-agent: GPTBot\nDisallow: /\n\nUser-agent: CCBot\nDisallow: /cc\n");
    let proxy = TestProxy::loopback(ACME);
    let res = get(&proxy, "acme", &origin.url("/any")).await;
    assert_eq!(res.status, 451, "acme honours GPTBot");
    let reason = &res.json()["reasons"][0];
    assert!(reason["detail"].as_str().is_some_and(|d| d.contains("token GPTBot")), "{reason}");
    let res = get(&proxy, "searcher", &origin.url("/any")).await;
    assert_eq!(res.status, 200, "searcher honours nothing and has no group: allowed");
    let res = get(&proxy, "trainer", &origin.url("/cc/page")).await;
    assert_eq!(res.status, 451, "@ai-training includes CCBot");
}

#[tokio::test]
async fn fetch_outcomes_follow_rfc_9309() {
    // (robots.txt reply, expected status of a request for /page)
    let cases: Vec<(&str, Canned, u16)> = vec![
        ("404", Canned::status(404), 200),
        ("401", Canned::status(401), 200),
        ("403", Canned::status(403), 200),
        ("410", Canned::status(410), 200),
        ("429", Canned::status(429), 451),
        ("500", Canned::status(500), 451),
        ("503", Canned::status(503), 451),
        ("reset", Canned::reset(), 451),
        ("redirect without Location", Canned::status(302), 451),
    ];
    for (name, reply, expected) in cases {
        let origin = TestOrigin::plain().await;
        origin.set("/robots.txt", reply);
        let proxy = TestProxy::loopback(ACME);
        let res = get(&proxy, "searcher", &origin.url("/page")).await;
        assert_eq!(res.status, expected, "robots.txt {name}: {}", res.text());
        if expected == 451 {
            let reason = &res.json()["reasons"][0];
            assert_eq!(reason["source"], "robots", "{name}");
            assert!(reason["rule"].as_str().is_some_and(|r| r.contains("unreachable")), "{name}: {reason}");
            assert_eq!(origin.hits("/page"), 0, "{name}");
        } else {
            assert!(res.header("consentry-decision") == Some("allow"), "{name}");
        }
    }
}

#[tokio::test]
async fn on_429_allow_follows_the_rfc_literally() {
    let origin = TestOrigin::plain().await;
    origin.set("/robots.txt", Canned::status(429));
    let proxy = TestProxy::loopback(&format!("{ACME}\n[robots]\non_429 = \"allow\"\n"));
    assert_eq!(get(&proxy, "searcher", &origin.url("/page")).await.status, 200);
}

#[tokio::test]
async fn redirects_are_followed_up_to_five_and_rules_apply_to_the_original_origin() {
    let origin = TestOrigin::plain().await;
    let other = TestOrigin::plain().await;
    // Five redirects, the last one cross-host: followed.
    origin.set("/robots.txt", Canned::redirect("/r1"));
    for i in 1..4 {
        origin.set(&format!("/r{i}"), Canned::redirect(&format!("/r{}", i + 1)));
    }
    origin.set("/r4", Canned::redirect(&other.url("/real-robots.txt")));
    other.set("/real-robots.txt", Canned::body("User-agent: *\nDisallow: /secret\n"));
    let proxy = TestProxy::loopback(ACME);
    let res = get(&proxy, "searcher", &origin.url("/secret")).await;
    assert_eq!(res.status, 451, "{}", res.text());
    let reason = &res.json()["reasons"][0];
    assert_eq!(reason["evidence"], origin.url("/robots.txt"), "rules apply to the original origin");
    assert!(reason["detail"].as_str().is_some_and(|d| d.contains("real-robots.txt")), "{reason}");
    assert_eq!(get(&proxy, "searcher", &origin.url("/open")).await.status, 200);

    // Six redirects: unreachable.
    let origin = TestOrigin::plain().await;
    origin.set("/robots.txt", Canned::redirect("/r1"));
    for i in 1..6 {
        origin.set(&format!("/r{i}"), Canned::redirect(&format!("/r{}", i + 1)));
    }
    origin.set("/r6", Canned::body("User-agent: *\nAllow: /\n"));
    let proxy = TestProxy::loopback(ACME);
    let res = get(&proxy, "searcher", &origin.url("/open")).await;
    assert_eq!(res.status, 451);
    assert!(res.json()["reasons"][0]["rule"].as_str().is_some_and(|r| r.contains("more than 5 redirects")));

    // A loop: unreachable.
    let origin = TestOrigin::plain().await;
    origin.set("/robots.txt", Canned::redirect("/a"));
    origin.set("/a", Canned::redirect("/robots.txt"));
    let proxy = TestProxy::loopback(ACME);
    let res = get(&proxy, "searcher", &origin.url("/open")).await;
    assert_eq!(res.status, 451);
    assert!(res.json()["reasons"][0]["rule"].as_str().is_some_and(|r| r.contains("loop")));
}

#[tokio::test]
async fn only_the_first_512000_bytes_count_and_bom_and_bad_bytes_are_tolerated() {
    let origin = TestOrigin::plain().await;
    let mut big = b"\xEF\xBB\xBFUser-agent: *\nDisallow: /early\n".to_vec();
    while big.len() < 600_000 {
        big.extend_from_slice(b"# filler line to make this file larger than the parse limit\n");
    }
    big.extend_from_slice(b"Disallow: /late\n");
    origin.set("/robots.txt", Canned::body(big));
    let proxy = TestProxy::loopback(ACME);
    assert_eq!(get(&proxy, "searcher", &origin.url("/early")).await.status, 451, "BOM skipped");
    assert_eq!(get(&proxy, "searcher", &origin.url("/late")).await.status, 200, "beyond max_bytes is ignored");

    let origin = TestOrigin::plain().await;
    origin.set("/robots.txt", Canned::body(b"User-agent: *\n\xff\xfe bad bytes\nDisallow: /x\xe9\n".to_vec()));
    let proxy = TestProxy::loopback(ACME);
    let res = get(&proxy, "searcher", &origin.url("/y")).await;
    assert_eq!(res.status, 200, "lossy decoding keeps the file usable: {}", res.text());
}

#[tokio::test]
async fn concurrent_first_requests_share_one_fetch() {
    let origin = TestOrigin::plain().await;
    origin
        .set("/robots.txt", Canned::body("User-agent: *\nDisallow: /blocked\n").with_delay(Duration::from_millis(300)));
    let proxy = TestProxy::loopback("");
    let addr = proxy.addr;
    let origin_addr = origin.addr;
    let mut tasks = Vec::new();
    for i in 0..500 {
        tasks.push(tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let path = if i % 2 == 0 { "/blocked" } else { "/open" };
            let request = format!("GET http://{origin_addr}{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.expect("write");
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.expect("read");
            (path, String::from_utf8_lossy(&answer).to_string())
        }));
    }
    for task in tasks {
        let (path, answer) = task.await.expect("task");
        let expected = if path == "/blocked" { "HTTP/1.1 451" } else { "HTTP/1.1 200" };
        assert!(answer.starts_with(expected), "{path}: {answer:.80}");
    }
    assert_eq!(origin.hits("/robots.txt"), 1, "500 concurrent first requests, one robots.txt fetch");
}

#[tokio::test]
async fn crawl_delay_paces_each_crawler() {
    let origin = TestOrigin::plain().await;
    origin.robots("User-agent: *\nCrawl-delay: 1\n");
    let proxy = TestProxy::loopback(ACME);
    for _ in 0..3 {
        let res = get(&proxy, "searcher", &origin.url("/paced")).await;
        assert_eq!(res.status, 200);
    }
    let arrivals: Vec<_> = origin.seen().iter().filter(|r| r.path == "/paced").map(|r| r.at).collect();
    assert_eq!(arrivals.len(), 3);
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(950), "requests {gap:?} apart with Crawl-delay: 1");
    }
    let log = proxy.stderr();
    assert!(log.contains("crawl-delay"), "the wait is recorded");
}

#[tokio::test]
async fn monitor_mode_forwards_and_says_would_block() {
    let origin = TestOrigin::plain().await;
    origin.robots("User-agent: *\nDisallow: /\n");
    let proxy = TestProxy::loopback(&format!("mode = \"monitor\"\n{ACME}"));
    let res = get(&proxy, "searcher", &origin.url("/page")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("consentry-decision"), Some("would-block"));
    assert_eq!(origin.hits("/page"), 1);
}

#[tokio::test]
async fn block_status_403_is_honoured() {
    let origin = TestOrigin::plain().await;
    origin.robots("User-agent: *\nDisallow: /\n");
    let proxy = TestProxy::loopback(&format!("block_status = 403\n{ACME}"));
    let res = get(&proxy, "searcher", &origin.url("/page")).await;
    assert_eq!(res.status, 403);
    assert_eq!(res.json()["reasons"][0]["source"], "robots");
}

#[tokio::test]
async fn https_requests_in_a_tunnel_are_judged_by_the_tls_origins_robots() {
    let origin = TestOrigin::tls().await;
    origin.robots("User-agent: *\nDisallow: /private\n");
    let proxy = TestProxy::loopback(&format!("[tls]\nupstream_roots = [\"{}\"]\n", origin.ca_path().display()));
    let ca = proxy.ca_file();
    let ca = ca.to_str().expect("path");
    let res = curl(&["-x", &proxy.url(), "--cacert", ca, "--http2", &origin.url("/private/x")]).await;
    assert_eq!(res.status, 451, "{}", res.stderr);
    assert_eq!(res.json()["url"], origin.url("/private/x"));
    let res = curl(&["-x", &proxy.url(), "--cacert", ca, &origin.url("/public")]).await;
    assert_eq!(res.status, 200);
}

#[tokio::test]
async fn interception_off_applies_host_level_robots() {
    let origin = TestOrigin::tls().await;
    origin.robots("User-agent: *\nDisallow: /\n");
    let proxy = TestProxy::loopback(&format!(
        "[tls]\nintercept = false\nupstream_roots = [\"{}\"]\n",
        origin.ca_path().display()
    ));
    let res =
        curl(&["-x", &proxy.url(), "--cacert", origin.ca_path().to_str().expect("path"), &origin.url("/x")]).await;
    assert_eq!(res.connect_status, 451, "{}", res.stderr);
    assert_eq!(origin.hits("/x"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn consentry_check_explains_the_verdict() {
    let origin = TestOrigin::plain().await;
    origin.robots("User-agent: *\nDisallow: /private\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!("data_dir = \"{}\"\n[proxy]\nallow_private_destinations = true\n{ACME}", dir.path().display()),
    )
    .expect("write");
    // The origin runs on this test's runtime: run the CLI off it.
    let run = |json: bool, path: &str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_consentry"));
        command.args(["check", "-c"]).arg(&config).args(["--crawler", "searcher"]);
        if json {
            command.arg("--json");
        }
        command.arg(origin.url(path));
        tokio::task::block_in_place(|| command.output().expect("run check"))
    };
    let out = run(false, "/private/a");
    assert_eq!(out.status.code(), Some(3), "blocked");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verdict:  BLOCK"), "{text}");
    assert!(text.contains("Disallow: /private") && text.contains("line:     2"), "{text}");
    let out = run(true, "/private/a");
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["reasons"][0]["rule"], "Disallow: /private");
    let out = run(false, "/open");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["check", "-c"])
        .arg(&config)
        .args(["--crawler", "nobody", "http://example.com/"])
        .output()
        .expect("run");
    // (no origin is contacted for an unknown crawler)
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no crawler named \"nobody\""));
}

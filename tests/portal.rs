//! The creators' portal end to end: claim a domain, prove control (HTTP challenge on a real TLS
//! origin, DNS challenge on a real local DNS server), file an objection, see crawlers blocked by
//! it, withdraw it; and every refusal: another creator's domain, bad input, oversized bodies,
//! unknown keys, expired claims, rate limits.

mod common;

use std::time::{Duration, Instant};

use common::dns::TestDns;
use common::{Canned, TestOrigin, TestProxy, curl};
use serde_json::{Value, json};

use common::TRAINER as CRAWLER;

/// A proxy whose upstream reaches the TLS `origin` as `site.test:443`, whose DNS challenge goes
/// to `dns`, with `public` keys added to `[public]`.
fn portal_proxy(origin: &TestOrigin, dns: &TestDns, public: &str) -> TestProxy {
    TestProxy::loopback(&format!(
        "{CRAWLER}\n[tls]\nupstream_roots = [\"{ca}\"]\n[upstream]\nresolve = {{ \"site.test:443\" = \"{addr}\" }}\n\
         [public]\ndns_nameservers = [\"{dns}\"]\nverify_timeout = \"3s\"\n{public}",
        ca = origin.ca_path().display(),
        addr = origin.addr,
        dns = dns.addr(),
    ))
}

async fn call(proxy: &TestProxy, method: &str, path: &str, body: Option<&str>, key: Option<&str>) -> (u16, Value) {
    let url = proxy.public_url(path);
    let mut args: Vec<String> = vec!["-X".into(), method.into(), url];
    if let Some(body) = body {
        args.extend(["-H".into(), "Content-Type: application/json".into(), "--data-binary".into(), body.into()]);
    }
    if let Some(key) = key {
        args.extend(["-H".into(), format!("Authorization: Bearer {key}")]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let res = curl(&refs).await;
    let json = if res.body.is_empty() { Value::Null } else { res.json() };
    (res.status, json)
}

async fn claim(proxy: &TestProxy, domain: &str) -> Value {
    let body = json!({ "domain": domain, "contact": format!("owner@{domain}") }).to_string();
    let (status, claim) = call(proxy, "POST", "/v1/claims", Some(&body), None).await;
    assert_eq!(status, 201, "{claim}");
    claim
}

async fn crawl(proxy: &TestProxy, ca: &str, url: &str) -> common::CurlResult {
    curl(&["-x", &proxy.url(), "-U", "trainer:pw", "--cacert", ca, url]).await
}

#[tokio::test]
async fn claim_verify_by_http_object_block_and_withdraw() {
    let origin = TestOrigin::tls().await;
    origin.set("/private/sketch.png", Canned::body("sketch"));
    let dns = TestDns::start().await;
    let proxy = portal_proxy(&origin, &dns, "");
    let ca = proxy.ca_file().display().to_string();
    let page = "https://site.test/private/sketch.png";
    assert_eq!(crawl(&proxy, &ca, page).await.status, 200);

    let claim = claim(&proxy, "Site.Test").await;
    assert_eq!(claim["domain"], "site.test");
    assert_eq!(claim["dns_name"], "_consentry-challenge.site.test");
    let token = claim["token"].as_str().expect("token");
    let id = claim["claim_id"].as_str().expect("id");
    assert_eq!(claim["http_url"], format!("https://site.test/.well-known/consentry-challenge/{token}"));

    // Before the token is published, both checks fail and say why.
    let (status, failed) = call(&proxy, "POST", &format!("/v1/claims/{id}/verify"), None, None).await;
    assert_eq!(status, 422, "{failed}");
    assert_eq!(failed["verified"], false);
    assert!(failed["checks"]["http"].as_str().is_some_and(|c| c.contains("does not hold the token")), "{failed}");
    assert!(failed["checks"]["dns"].as_str().is_some_and(|c| c.contains("_consentry-challenge.site.test")), "{failed}");

    origin.set(&format!("/.well-known/consentry-challenge/{token}"), Canned::body(format!("{token}\n")));
    let (status, verified) = call(&proxy, "POST", &format!("/v1/claims/{id}/verify"), None, None).await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["method"], "http");
    let key = verified["api_key"].as_str().expect("api key").to_string();
    assert!(!proxy.stderr().contains(&key), "the API key is never logged");

    let objection = r#"{"creator":"Site Owner","domain":"site.test","paths":["/private/"],"purposes":["ai-train"]}"#;
    let (status, entry) = call(&proxy, "POST", "/v1/objections", Some(objection), Some(&key)).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["source"], format!("claim:{id}"));
    let entry_id = entry["id"].as_str().expect("entry id").to_string();

    let started = Instant::now();
    let mut res = crawl(&proxy, &ca, page).await;
    while res.status != 451 && started.elapsed() < Duration::from_secs(1) {
        res = crawl(&proxy, &ca, page).await;
    }
    assert_eq!(res.status, 451, "objection not honoured within 1s: {}", res.text());
    let reason = &res.json()["reasons"][0];
    assert_eq!(reason["source"], "registry");
    assert_eq!(reason["entry_id"], entry_id.as_str());
    assert_eq!(reason["creator"], "Site Owner");
    assert_eq!(reason["rule"], "site.test/private/");
    assert_eq!(origin.hits("/private/sketch.png"), 1, "only the request before the objection reached the origin");

    let (status, listed) = call(&proxy, "GET", "/v1/objections", None, Some(&key)).await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{listed}");

    let (status, _) = call(&proxy, "DELETE", &format!("/v1/objections/{entry_id}"), None, Some(&key)).await;
    assert_eq!(status, 204);
    let started = Instant::now();
    let mut res = crawl(&proxy, &ca, page).await;
    while res.status != 200 && started.elapsed() < Duration::from_secs(1) {
        res = crawl(&proxy, &ca, page).await;
    }
    assert_eq!(res.status, 200, "withdrawal not honoured within 1s");
    let (status, _) = call(&proxy, "DELETE", &format!("/v1/objections/{entry_id}"), None, Some(&key)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn dns_verification_and_no_objections_for_someone_elses_domain() {
    let origin = TestOrigin::tls().await;
    let dns = TestDns::start().await;
    let proxy = portal_proxy(&origin, &dns, "");

    let other = claim(&proxy, "other-creator.example").await;
    let id = other["claim_id"].as_str().expect("id");
    dns.set_txt("_consentry-challenge.other-creator.example", &["unrelated"]);
    let (status, failed) = call(&proxy, "POST", &format!("/v1/claims/{id}/verify"), None, None).await;
    assert_eq!(status, 422);
    assert!(failed["checks"]["dns"].as_str().is_some_and(|c| c.contains("none is the token")), "{failed}");

    dns.set_txt("_consentry-challenge.other-creator.example", &["unrelated", other["token"].as_str().expect("token")]);
    let (status, verified) = call(&proxy, "POST", &format!("/v1/claims/{id}/verify"), None, None).await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["method"], "dns");
    assert!(dns.queries() > 0, "the lookup went to the local DNS server");
    let key = verified["api_key"].as_str().expect("key");

    // Its own subdomain: fine. Someone else's domain, or a look-alike: refused, nothing written.
    let own = r#"{"url":"https://img.other-creator.example/a.png"}"#;
    let (status, entry) = call(&proxy, "POST", "/v1/objections", Some(own), Some(key)).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["creator"], "owner@other-creator.example", "creator defaults to the claim's contact");
    for foreign in [
        r#"{"domain":"site.test"}"#,
        r#"{"domain":"badother-creator.example"}"#,
        r#"{"url":"https://site.test/x.png"}"#,
    ] {
        let (status, refused) = call(&proxy, "POST", "/v1/objections", Some(foreign), Some(key)).await;
        assert_eq!(status, 403, "{foreign}: {refused}");
        assert_eq!(refused["error"], "outside_verified_domain");
    }
    let (code, out, _) = proxy.cli(&["registry", "list", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "only the permitted objection was written: {out}");
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let origin = TestOrigin::tls().await;
    let dns = TestDns::start().await;
    let proxy = portal_proxy(&origin, &dns, "max_body_bytes = 2048\n");
    let cases: &[(&str, u16, &str)] = &[
        (r#"{"domain":"localhost","contact":"a@b.example"}"#, 422, "single label"),
        (r#"{"domain":"127.0.0.1","contact":"a@b.example"}"#, 422, "IP address"),
        (r#"{"domain":"ok.example"}"#, 422, "contact"),
        (r#"{"domain":"ok.example","contact":"a@b.example","extra":1}"#, 422, "unknown field"),
        ("{not json", 422, "invalid JSON"),
    ];
    for (body, want, says) in cases {
        let (status, error) = call(&proxy, "POST", "/v1/claims", Some(body), None).await;
        assert_eq!(status, *want, "{body}: {error}");
        assert!(error["reason"].as_str().is_some_and(|r| r.contains(says)), "{body}: {error}");
    }
    let huge = json!({ "domain": "ok.example", "contact": "x".repeat(4000) }).to_string();
    let (status, error) = call(&proxy, "POST", "/v1/claims", Some(&huge), None).await;
    assert_eq!(status, 413, "{error}");
    assert!(error["reason"].as_str().is_some_and(|r| r.contains("public.max_body_bytes")));

    let (status, error) = call(&proxy, "POST", "/v1/objections", Some(r#"{"domain":"ok.example"}"#), None).await;
    assert_eq!(status, 401, "{error}");
    let (status, _) =
        call(&proxy, "POST", "/v1/objections", Some(r#"{"domain":"ok.example"}"#), Some("csk_guess")).await;
    assert_eq!(status, 401);
    let (status, error) = call(&proxy, "POST", "/v1/claims/c-nope/verify", None, None).await;
    assert_eq!((status, error["error"].as_str()), (404, Some("unknown_claim")));
    let (code, out, _) = proxy.cli(&["registry", "list", "--json"]);
    assert_eq!((code, out.as_str()), (0, ""), "nothing was written");

    // The page is served, self-contained.
    let page = curl(&[&proxy.public_url("/")]).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/v1/claims"));
    assert!(page.header("content-security-policy").is_some_and(|csp| csp.contains("default-src 'none'")));
}

#[tokio::test]
async fn an_expired_claim_cannot_be_verified() {
    let origin = TestOrigin::tls().await;
    let dns = TestDns::start().await;
    let proxy = portal_proxy(&origin, &dns, "claim_ttl = \"1ms\"\n");
    let claim = claim(&proxy, "late.example").await;
    dns.set_txt("_consentry-challenge.late.example", &[claim["token"].as_str().expect("token")]);
    let path = format!("/v1/claims/{}/verify", claim["claim_id"].as_str().expect("id"));
    let (status, error) = call(&proxy, "POST", &path, None, None).await;
    assert_eq!(status, 410, "{error}");
    assert_eq!(error["error"], "claim_expired");
}

#[tokio::test]
async fn requests_over_the_rate_limit_get_429_with_retry_after() {
    let origin = TestOrigin::tls().await;
    let dns = TestDns::start().await;
    let proxy = portal_proxy(&origin, &dns, "rate_limit_per_ip = 3\n");
    let url = proxy.public_url("/v1/claims/c-x");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(curl(&[&url]).await.status);
    }
    assert_eq!(statuses, [404, 404, 404, 429, 429]);
    let limited = curl(&[&url]).await;
    assert!(limited.header("retry-after").and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1));
    assert_eq!(limited.json()["error"], "rate_limited");
    // The page itself is not rate-limited.
    assert_eq!(curl(&[&proxy.public_url("/")]).await.status, 200);
}

#[tokio::test]
async fn each_api_key_has_its_own_rate_limit() {
    let origin = TestOrigin::tls().await;
    let dns = TestDns::start().await;
    let proxy = portal_proxy(&origin, &dns, "rate_limit_per_key = 2\n");
    let claim = claim(&proxy, "busy.example").await;
    dns.set_txt("_consentry-challenge.busy.example", &[claim["token"].as_str().expect("token")]);
    let path = format!("/v1/claims/{}/verify", claim["claim_id"].as_str().expect("id"));
    let (status, verified) = call(&proxy, "POST", &path, None, None).await;
    assert_eq!(status, 200, "{verified}");
    let key = verified["api_key"].as_str().expect("key");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(call(&proxy, "GET", "/v1/objections", None, Some(key)).await.0);
    }
    assert_eq!(statuses, [200, 200, 429]);
    // Unauthenticated requests from the same address are not held back by the key's limit.
    assert_eq!(
        call(&proxy, "GET", &format!("/v1/claims/{}", claim["claim_id"].as_str().expect("id")), None, None).await.0,
        200
    );
}

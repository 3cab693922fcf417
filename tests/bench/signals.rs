//! The decision path's pure parts with every source cached: robots.txt findings plus the AI
//! signals embedded in it, the engine itself, and the response-side signal parsers (headers and
//! `<head>` metas). Budget (DESIGN.md §7): a few microseconds per decision.
//!
//! `cargo bench --bench signals -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use consentry::decide::{Crawler, Evidence, Mode, Purpose, Stage, decide};
use consentry::policy::findings::{EmbeddedMemo, Reading, ResponseSignals, TdmFileValue, response_findings};
use consentry::policy::robots::{FetchOutcome, RobotsPolicy, SiteVerdict, findings};
use consentry::signals::robots::RobotsTxt;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};

const ROBOTS: &str = "User-agent: *\nDisallow: /search\nDisallow: /*?utm_\nAllow: /search/about\n\
Content-Usage: train-ai=n\nContent-Usage: /open/ train-ai=y\nContent-Signal: search=yes, ai-train=no\n\n\
User-agent: GPTBot\nUser-agent: CCBot\nDisallow: /\n";

fn policy() -> RobotsPolicy {
    let now = SystemTime::now();
    RobotsPolicy {
        url: "https://news.example/robots.txt".into(),
        verdict: SiteVerdict::Rules,
        rules: Arc::new(RobotsTxt::parse(ROBOTS.as_bytes(), 512_000)),
        outcome: FetchOutcome::Fetched { status: 200 },
        redirects: Vec::new(),
        sha256: Some("ab".repeat(32)),
        size: ROBOTS.len(),
        fetched_at: now,
        stale: false,
        expires_at: now + Duration::from_secs(3600),
        refresh_at: now + Duration::from_secs(3000),
        embedded: EmbeddedMemo::default(),
    }
}

fn request_side(c: &mut Criterion) {
    let policy = policy();
    let honoured = vec!["GPTBot".to_string(), "Google-Extended".to_string()];
    let crawler = Crawler { name: "acme", purposes: &[Purpose::AiTrain], mode: Mode::Enforce };
    let now = SystemTime::now();
    c.bench_function("request/robots+embedded+decide", |b| {
        b.iter(|| {
            let path = black_box("/2026/11/29/story?id=7");
            let mut found = findings(&policy, "AcmeBot", &honoured, path, now);
            let embedded = policy.embedded.get(&policy.rules, "AcmeBot", Reading::default());
            found.extend(embedded.findings(path, &policy.url, policy.sha256.as_deref()));
            decide(&crawler, &Evidence { findings: found, notes: Vec::new() }, Stage::Request)
        })
    });
}

fn response_side(c: &mut Criterion) {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex, GPTBot: noai"));
    headers.insert("content-usage", HeaderValue::from_static("train-ai=n, search=y"));
    headers.insert("tdm-reservation", HeaderValue::from_static("1"));
    let metas = vec![("robots".to_string(), "noai, noimageai".to_string())];
    let tdm_file = TdmFileValue::default();
    let tokens = ["AcmeBot", "GPTBot"];
    c.bench_function("response/headers+metas", |b| {
        b.iter(|| {
            let signals =
                ResponseSignals { headers: &headers, metas: Some(&metas), is_image: false, tdm_file: &tdm_file };
            response_findings(black_box(&signals), "https://news.example/story", &tokens, Reading::default())
        })
    });
    let plain = HeaderMap::new();
    c.bench_function("response/no-signal", |b| {
        b.iter(|| {
            let signals = ResponseSignals { headers: &plain, metas: None, is_image: false, tdm_file: &tdm_file };
            response_findings(black_box(&signals), "https://news.example/story", &tokens, Reading::default())
        })
    });
}

criterion_group!(benches, request_side, response_side);
criterion_main!(benches);

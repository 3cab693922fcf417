//! Fuzz targets for every parser, run by proptest: `cargo test --test fuzz` runs each briefly
//! (`PROPTEST_CASES`, default a few hundred cases); `tests/fuzz/run.sh` runs each for a time
//! budget (`FUZZ_SECONDS`) in release mode. See `tests/fuzz/README.md`.
//!
//! Each target feeds its check (`tests/fuzz/targets.rs`, shared with the AFL++ entry point) three
//! kinds of input: its seed corpus (`tests/fuzz/corpus/<target>/`) as is, mutations of those
//! seeds and arbitrary bytes, and structured inputs built to reach deep into the parser with a
//! model of what it must find. Findings are kept at the end of this file as regression tests;
//! proptest also persists the seed of every failure in `proptest-regressions/fuzz.txt`.

#[path = "fuzz/targets.rs"]
mod targets;

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::BoxedStrategy;
use proptest::test_runner::{Config, FileFailurePersistence, TestError, TestRunner};

use consentry::signals::robots::DEFAULT_MAX_BYTES;
use targets::*;

// === the runner ===

/// Where proptest records the seeds of failing cases (committed, replayed first on every run).
const REGRESSIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proptest-regressions/fuzz.txt");

/// Cases per batch when running for a time budget.
const BATCH: u32 = 500;

/// The seed corpus of a target, file name and bytes, in name order.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).ok()?)))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The time budget from `FUZZ_SECONDS`, if set.
fn budget() -> Option<Duration> {
    let seconds: f64 = std::env::var("FUZZ_SECONDS").ok()?.parse().ok()?;
    Some(Duration::from_secs_f64(seconds.max(0.0)))
}

/// Runs a target: every seed once, then generated cases until the budget is spent (or, without
/// one, `PROPTEST_CASES` cases or `default_cases`). A failure is shrunk, printed and fails the
/// test; run.sh counts the lines this prints.
fn fuzz<S>(target: &str, default_cases: u32, seeds: Vec<(String, S::Value)>, strategy: S, check: fn(&S::Value))
where
    S: Strategy,
    S::Value: Debug,
{
    quiet_panics();
    let started = Instant::now();
    let mut executions: u64 = 0;
    for (name, seed) in &seeds {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(seed))) {
            let message = panic_message(&*panic);
            println!("\nFINDING {target}: seed {name}: {message}");
            panic!("{target}: the seed {name} fails: {message}");
        }
        executions += 1;
    }
    let budget = budget();
    let cases = match budget {
        Some(_) => BATCH,
        None => std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default_cases),
    };
    loop {
        let config = Config {
            cases,
            source_file: Some(file!()),
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
            // A structured case can be large; give shrinking time to find a small one.
            max_shrink_time: 60_000,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        match runner.run(&strategy, |value| {
            check(&value);
            Ok(())
        }) {
            Ok(()) => executions += u64::from(cases),
            Err(TestError::Fail(reason, value)) => {
                println!("\nFINDING {target}: {reason}\nminimal input: {value:#?}");
                panic!("{target}: property failed after {executions} executions: {reason}");
            }
            Err(TestError::Abort(reason)) => panic!("{target}: aborted: {reason}"),
        }
        if budget.is_none_or(|b| started.elapsed() >= b) {
            break;
        }
    }
    println!(
        "\nFUZZ {target}: {executions} executions in {:.1}s ({} seeds), 0 findings",
        started.elapsed().as_secs_f64(),
        seeds.len()
    );
}

thread_local! {
    /// Set while a target runs: shrinking panics hundreds of times, and only the minimal input
    /// (printed by `fuzz`) is worth reading.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Silences panic messages on threads running a target; other tests print as usual.
fn quiet_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                default(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<String>(), panic.downcast_ref::<&str>()) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => (*s).to_string(),
        (None, None) => "(no message)".to_string(),
    }
}

/// Seeds from the target's corpus, each read as raw fuzzer bytes.
fn seeds<T>(target: &str, from_bytes: fn(&[u8]) -> T) -> Vec<(String, T)> {
    corpus(target).into_iter().map(|(name, bytes)| (name, from_bytes(&bytes))).collect()
}

// === generic strategies ===

/// A corpus file with a few random edits (insert, delete, overwrite, duplicate), or random
/// bytes when the target has no corpus.
fn mutated(target: &str) -> BoxedStrategy<Vec<u8>> {
    let files: Vec<Vec<u8>> = corpus(target).into_iter().map(|(_, b)| b).collect();
    if files.is_empty() {
        return prop::collection::vec(any::<u8>(), 0..256).boxed();
    }
    let edit = (0u8..4, any::<usize>(), prop::collection::vec(any::<u8>(), 0..12));
    (select(files), prop::collection::vec(edit, 0..6))
        .prop_map(|(mut bytes, edits)| {
            for (op, pos, data) in edits {
                let at = pos % (bytes.len() + 1);
                match op {
                    0 => {
                        bytes.splice(at..at, data);
                    }
                    1 => {
                        let end = (at + data.len() + 1).min(bytes.len());
                        bytes.drain(at..end);
                    }
                    2 => {
                        for (b, d) in bytes.iter_mut().skip(at).zip(data) {
                            *b = d;
                        }
                    }
                    _ => {
                        let end = (at + data.len() * 8).min(bytes.len());
                        let copy = bytes[at..end].to_vec();
                        bytes.splice(at..at, copy);
                    }
                }
            }
            bytes
        })
        .boxed()
}

/// Bytes to parse: arbitrary, a mutated seed, or structured text.
fn raw_or(target: &str, structured: BoxedStrategy<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512),
        2 => mutated(target),
        4 => structured,
    ]
    .boxed()
}

/// Lines joined with random line endings.
fn join_lines(lines: impl Strategy<Value = Vec<u8>> + 'static, max: usize) -> BoxedStrategy<Vec<u8>> {
    let ending = select(vec![&b"\n"[..], b"\r\n", b"\r", b"\n\n", b""]);
    prop::collection::vec((lines, ending), 0..max)
        .prop_map(|lines| {
            lines
                .into_iter()
                .flat_map(|(mut line, end)| {
                    line.extend_from_slice(end);
                    line
                })
                .collect()
        })
        .boxed()
}

/// Path-pattern text over a small alphabet (so patterns and paths meet): letters, slashes,
/// escapes of unreserved and reserved octets in both hex cases, a lone `%`, raw UTF-8,
/// wildcards and anchors.
fn pattern_text(max: usize) -> BoxedStrategy<String> {
    let atom = select(vec![
        "a", "b", "/", "/", "%61", "%2F", "%2f", "%7E", "~", "*", "$", "é", "%C3%A9", "%c3%a9", "%", "?", "=", "ツ",
        ".", "%2A", "%24",
    ]);
    prop::collection::vec(atom, 0..max).prop_map(|atoms| atoms.concat()).boxed()
}

/// A request path: mostly over the pattern alphabet, sometimes anything.
fn request_path() -> BoxedStrategy<String> {
    prop_oneof![
        6 => pattern_text(10).prop_map(|p| format!("/{p}")),
        1 => pattern_text(6),
        1 => any::<String>(),
        1 => select(vec!["/robots.txt", "/robots.txt?x", "/%72obots.txt", "/ROBOTS.TXT", "/a#/b"]).prop_map(str::to_string),
    ]
    .boxed()
}

fn paths() -> BoxedStrategy<Vec<String>> {
    prop::collection::vec(request_path(), 1..6).boxed()
}

// === robots.txt ===

fn robots_body() -> BoxedStrategy<Vec<u8>> {
    let key = select(vec![
        "User-agent",
        "user-agent",
        "USER-AGENT",
        "Useragent",
        "Allow",
        "allow",
        "Disallow",
        "disallow",
        "Dissallow",
        "Crawl-delay",
        "Sitemap",
        "Content-Usage",
        "Content-Signal",
        "License",
        "DisallowAITraining",
        "AllowAITraining",
        "",
    ]);
    let sep = select(vec![": ", ":", " : ", " ", ":\t"]);
    let agent = select(vec!["*", "GPTBot", "gptbot/1.0", "* foo", "*bot", "bot", "Googlebot-News", "/x", "AI2Bot"]);
    let value = prop_oneof![
        4 => pattern_text(8),
        2 => agent.prop_map(str::to_string),
        1 => "[0-9.]{0,5}",
        1 => any::<String>(),
    ];
    let comment = select(vec!["", "", " # note", "#x", " #é"]);
    let line = prop_oneof![
        12 => (key, sep, value, comment).prop_map(|(k, s, v, c)| format!("{k}{s}{v}{c}").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..24),
        1 => Just(b"\xEF\xBB\xBF".to_vec()),
        1 => (1usize..4).prop_map(|n| format!("Disallow: /{}", "é".repeat(n * 3000)).into_bytes()),
    ];
    join_lines(line, 24)
}

fn robots_strategy() -> impl Strategy<Value = RobotsCase> {
    let token = prop_oneof![
        select(vec!["GPTBot", "gptbot", "*", "bot", "Googlebot-News", "AI2Bot", ""]).prop_map(str::to_string),
        "[a-zA-Z0-9 ./*_-]{0,10}",
    ];
    let max = prop_oneof![4 => Just(usize::MAX), 1 => Just(DEFAULT_MAX_BYTES), 1 => 0usize..600];
    (raw_or("robots", robots_body()), max, token, paths()).prop_map(|(body, max_bytes, token, paths)| RobotsCase {
        body,
        max_bytes,
        token,
        paths,
    })
}

/// The robots conformance suite's bodies and test URLs (`../shared/data`), when present: read,
/// never copied (its licence and origin are documented there).
fn robots_conformance_seeds() -> Vec<(String, RobotsCase)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/robotstxt-spec-test.json");
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { return Vec::new() };
    let mut out = Vec::new();
    let mut visit = |value: &serde_json::Value| {
        let Some(hex) = value.get("robotstxt_hex").and_then(|h| h.as_str()) else { return };
        let Ok(body) = hex::decode(hex) else { return };
        let tests = value.get("tests").or_else(|| value.get("expectations")).and_then(|t| t.as_array());
        let mut paths = Vec::new();
        let mut token = "FooBot".to_string();
        for t in tests.into_iter().flatten() {
            if let Some(url) = t.get("testurl").and_then(|u| u.as_str()) {
                let path = url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()));
                paths.push(path.unwrap_or_else(|| "/".to_string()));
            }
            if let Some(ua) = t.get("useragent").and_then(|u| u.as_str()) {
                token = ua.to_string();
            }
        }
        if paths.is_empty() {
            paths.push("/".to_string());
        }
        out.push((
            format!("conformance #{}", out.len()),
            RobotsCase { body, max_bytes: DEFAULT_MAX_BYTES, token, paths },
        ));
    };
    fn walk(value: &serde_json::Value, visit: &mut dyn FnMut(&serde_json::Value)) {
        visit(value);
        match value {
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, visit)),
            serde_json::Value::Object(map) => map.values().for_each(|v| walk(v, visit)),
            _ => {}
        }
    }
    walk(&json, &mut visit);
    out
}

#[test]
fn fuzz_robots() {
    let mut seeds = seeds("robots", RobotsCase::from_bytes);
    seeds.extend(robots_conformance_seeds());
    fuzz("robots", 256, seeds, robots_strategy(), check_robots);
}

// === ai.txt ===

fn ai_txt_strategy() -> impl Strategy<Value = AiTxtCase> {
    let key =
        select(vec!["User-Agent", "user-agent", "useragent", "User Agent", "Allow", "Disallow", "DISALLOW", "X", ""]);
    let value = prop_oneof![
        pattern_text(6),
        select(vec!["*.jpg", "*.JPG", "/a/*.png$", ".pdf", "*", "/", "GPTBot", "* ", "CCBot/2.0"])
            .prop_map(str::to_string),
        any::<String>(),
    ];
    let comment = select(vec!["", " # c", "#"]);
    let line = (key, select(vec![": ", ":", " : ", " "]), value, comment)
        .prop_map(|(k, s, v, c)| format!("{k}{s}{v}{c}").into_bytes());
    let tokens =
        prop::collection::vec(select(vec!["GPTBot", "gptbot", "CCBot", "*", "other"]).prop_map(str::to_string), 0..3);
    let paths = prop_oneof![
        3 => paths(),
        1 => prop::collection::vec(select(vec!["/a.jpg", "/img/x.JPG?x=1", "/a.jpgfoo", "/d/doc.pdf"]).prop_map(str::to_string), 1..3),
    ];
    (raw_or("ai_txt", join_lines(line, 16)), tokens, paths).prop_map(|(body, tokens, paths)| AiTxtCase {
        body,
        tokens,
        paths,
    })
}

#[test]
fn fuzz_ai_txt() {
    fuzz("ai_txt", 256, seeds("ai_txt", AiTxtCase::from_bytes), ai_txt_strategy(), check_ai_txt);
}

// === tdmrep.json ===

/// Strings that stress the line scanner: quotes, escapes, brackets, commas, newlines.
fn json_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => pattern_text(6).prop_map(|p| format!("/{p}")),
        2 => "[\\[\\]{}\",:\\\\/a\n\t ]{0,12}",
        1 => any::<String>(),
        1 => select(vec!["https://example.com/a/*", "HTTP://x.org", "a/b", "*.pdf", ""]).prop_map(str::to_string),
    ]
    .boxed()
}

fn tdm_item() -> impl Strategy<Value = TdmItem> {
    prop_oneof![
        6 => (json_text(), prop::option::of(0..TDM_RESERVATIONS.len()), prop::option::of(json_text()), prop::option::of((json_text(), json_text())))
            .prop_map(|(location, reservation, policy, extra)| {
                // An extra member named like a real one would be a duplicate key.
                let extra = extra.filter(|(k, _)| !["location", "tdm-reservation", "tdm-policy"].contains(&k.as_str()));
                TdmItem::Rule { location, reservation, policy, extra }
            }),
        1 => select(vec!["1", "\"x\"", "null", "[]", "{}", "{\"location\": 5}", "[{\"location\":\"/a\"}]", "{\"tdm-reservation\":1}"])
            .prop_map(|s| TdmItem::Other(s.to_string())),
    ]
}

fn tdmrep_strategy() -> impl Strategy<Value = TdmRepCase> {
    let space =
        select(vec!["", " ", "\n", "\n\n  ", "\r\n", "\t", "\n/*"]).prop_map(|s| s.trim_end_matches("/*").to_string());
    let json = (prop::collection::vec((space, tdm_item()), 0..8), any::<bool>(), select(vec!["", " ", "\n"]))
        .prop_map(|(items, bom, tail)| TdmBody::Json { items, bom, tail: tail.to_string() });
    let raw_text = "[\\[\\]{}\",:0-9a-z/\\\\ *$\n-]{0,120}".prop_map(String::into_bytes).boxed();
    let body = prop_oneof![2 => json, 1 => raw_or("tdmrep", raw_text).prop_map(TdmBody::Raw)];
    let header =
        prop::collection::vec(select(vec!["1", "0", " 1 ", "2", "", "1, 0", "true"]).prop_map(str::to_string), 0..3);
    let policies = prop::collection::vec(select(vec!["", " https://e.com/p ", "x"]).prop_map(str::to_string), 0..3);
    (body, paths(), header, policies).prop_map(|(body, paths, reservations, policies)| TdmRepCase {
        body,
        paths,
        reservations,
        policies,
    })
}

#[test]
fn fuzz_tdmrep() {
    let mut seeds = seeds("tdmrep", TdmRepCase::from_bytes);
    for (_, seed) in &mut seeds {
        seed.paths.push("/".to_string());
    }
    fuzz("tdmrep", 256, seeds, tdmrep_strategy(), check_tdmrep);
}

// === Content-Usage ===

fn content_usage_strategy() -> impl Strategy<Value = ContentUsageCase> {
    let dict =
        "(train-ai|search|ai|TRAIN|x)(=(y|n|\\?1|\"y\"|1|\\(y n\\)))?(;[a-z]=1)?(, ?(train-ai|search|bots)=(y|n))*";
    let line = prop_oneof![
        2 => dict.prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => mutated("content_usage"),
    ];
    let member = (0..CU_KEYS.len(), 0..CU_VALUES.len(), 0..4usize);
    let rule = (prop::option::of(pattern_text(5)), dict).prop_map(|(path, d)| match path {
        Some(p) => format!("/{p} {d} # c"),
        None => d,
    });
    (
        prop::collection::vec(line, 0..4),
        any::<bool>(),
        prop::collection::vec(member, 0..8),
        prop::bool::weighted(0.1),
        prop::collection::vec(rule, 0..5),
        paths(),
    )
        .prop_map(|(lines, legacy, members, upper, rules, paths)| ContentUsageCase {
            lines,
            legacy,
            members,
            upper,
            rules,
            paths,
        })
}

#[test]
fn fuzz_content_usage() {
    fuzz(
        "content_usage",
        256,
        seeds("content_usage", ContentUsageCase::from_bytes),
        content_usage_strategy(),
        check_content_usage,
    );
}

// === Content-Signal ===

fn content_signal_strategy() -> impl Strategy<Value = ContentSignalCase> {
    let value = prop_oneof![
        "((search|ai-input|ai-train|use|x)=(yes|no|YES|maybe)?, ?){0,5}",
        any::<String>(),
        mutated("content_signal").prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    let pair = prop::option::weighted(0.9, (0..CS_KEYS.len(), 0..CS_VALUES.len(), any::<bool>()));
    let rule = (prop::option::of(pattern_text(5)), "(search|ai-train)=(yes|no)").prop_map(|(path, v)| match path {
        Some(p) => format!("\t/{p} {v}"),
        None => v,
    });
    (value, prop::collection::vec(pair, 0..8), prop::collection::vec(rule, 0..5), paths())
        .prop_map(|(value, pairs, rules, paths)| ContentSignalCase { value, pairs, rules, paths })
}

#[test]
fn fuzz_content_signal() {
    fuzz(
        "content_signal",
        256,
        seeds("content_signal", ContentSignalCase::from_bytes),
        content_signal_strategy(),
        check_content_signal,
    );
}

// === X-Robots-Tag ===

fn robots_tag_strategy() -> impl Strategy<Value = RobotsTagCase> {
    let directive = 0..TAG_DIRECTIVES.len();
    let line = (
        prop::collection::vec(directive.clone(), 0..3),
        prop::collection::vec((0..TAG_BOTS.len(), prop::collection::vec(directive, 1..3)), 0..3),
    )
        .prop_map(|(global, scoped)| TagLine { global, scoped });
    let raw = prop_oneof![
        "((GPTBot|googlebot|other): ?)?(noai|noimageai|noindex|max-snippet: ?5|unavailable_after: [0-9A-Za-z ,:-]{0,12})(, ?[a-z: ]{0,8}){0,3}",
        any::<String>(),
        mutated("robots_tag").prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    (
        prop::collection::vec(raw, 0..3),
        prop::collection::vec(line, 0..3),
        prop::collection::vec(0..TAG_BOTS.len(), 1..3),
        any::<bool>(),
    )
        .prop_map(|(raw, lines, tokens, is_image)| RobotsTagCase { raw, lines, tokens, is_image })
}

#[test]
fn fuzz_robots_tag() {
    fuzz("robots_tag", 256, seeds("robots_tag", RobotsTagCase::from_bytes), robots_tag_strategy(), check_robots_tag);
}

// === HTML head ===

fn head_item() -> impl Strategy<Value = HeadItem> {
    let name = select(vec![
        "robots",
        "ROBOTS",
        " GPTBot ",
        "tdm-reservation",
        "tdm-policy",
        "description",
        "x",
        "",
        "  ",
        "&#114;obots",
    ]);
    // Attribute text over plain characters and character references (which browsers decode).
    let atom = prop_oneof![
        6 => "[a-zA-Z0-9 ,.;:=/_é-]",
        1 => select(HTML_REFERENCES.iter().map(|r| r.0).collect::<Vec<_>>()).prop_map(str::to_string),
    ];
    let value = prop::collection::vec(atom, 0..12).prop_map(|atoms| atoms.concat());
    let rel = select(vec!["license", "LICENSE", "alternate license", "stylesheet", "licence"]);
    let inner = select(vec!["", "x", "<meta name=hidden content=no>", "<link rel=license href=/no>", "<p>", "a < b"]);
    prop_oneof![
        4 => (name, value, 0u8..3).prop_map(|(n, c, q)| HeadItem::Meta(n.to_string(), c, q)),
        2 => (rel, "[a-z:/.%?=]{0,12}(&amp;[a-z=]{0,4})?", prop::option::of("[a-z/+ ]{0,12}")).prop_map(|(r, h, t)| HeadItem::Link(r.to_string(), h, t)),
        1 => inner.clone().prop_map(|t| HeadItem::Title(t.replace('<', " "))),
        1 => inner.clone().prop_map(|t| HeadItem::Script(format!("var s = '{t}';"))),
        1 => inner.clone().prop_map(|t| HeadItem::Comment(t.to_string())),
        1 => inner.prop_map(|t| HeadItem::Template(t.to_string())),
        1 => select(vec![" ", "\n", "\t\n  "]).prop_map(|s| HeadItem::Space(s.to_string())),
    ]
}

fn html_head_strategy() -> impl Strategy<Value = HtmlHeadCase> {
    let page = prop_oneof![
        3 => (prop::collection::vec(head_item(), 0..12), any::<bool>(), 0u8..3, prop::collection::vec(head_item(), 0..3))
            .prop_map(|(items, head_tag, close, after)| HtmlPage::Head { items, head_tag, close, after }),
        1 => raw_or("html_head", "(<meta name=[a-z]{0,4} content='[a-z ]{0,6}'>|<head>|</head>|<body>|<script>|</script>|<!--|-->|<template>|[a-z ]{0,5}){0,12}".prop_map(String::into_bytes).boxed()).prop_map(HtmlPage::Raw),
    ];
    let coding = select(vec![None, Some("gzip"), Some("deflate")]).prop_map(|c| c.map(str::to_string));
    let max = prop_oneof![Just(consentry::proxy::inspect::DEFAULT_MAX_HEAD_BYTES), 0usize..400];
    (page, prop::collection::vec(1usize..64, 1..4), coding, max).prop_map(|(page, frames, coding, max_head_bytes)| {
        // Raw bytes are not encoded: label them only as what they are.
        let coding = if matches!(page, HtmlPage::Raw(_)) { None } else { coding };
        HtmlHeadCase { page, frames, coding, max_head_bytes }
    })
}

#[test]
fn fuzz_html_head() {
    fuzz("html_head", 128, seeds("html_head", HtmlHeadCase::from_bytes), html_head_strategy(), check_html_head);
}

// === RSL ===

fn rsl_strategy() -> impl Strategy<Value = RslCase> {
    let usages = prop::collection::vec(0..RSL_USAGES.len(), 0..4);
    let license = (
        prop::option::of(usages.clone()),
        prop::option::of(usages),
        prop::option::of(0..RSL_PAYMENTS.len()),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(permits, prohibits, payment, user_condition)| RslLicenseSpec {
            permits,
            prohibits,
            payment,
            user_condition,
        });
    let content = (0..RSL_SCOPES.len(), prop::bool::weighted(0.2), prop::collection::vec(license, 0..3))
        .prop_map(|(scope, server, licenses)| RslContentSpec { scope, server, licenses });
    let style =
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(single_quotes, newlines, prefix, comments, entities, cdata, default_port)| RslStyle {
                single_quotes,
                newlines,
                prefix,
                comments,
                entities,
                cdata,
                default_port,
            });
    let doc = prop::option::weighted(0.7, (prop::collection::vec(content, 0..4), style));
    let xml = "(<(/?)(rsl|content|license|permits|prohibits|payment)( url=\"[/*a-z$:]{0,8}\"| type=\"(usage|user)\"| server=\"s\")?(/?)>|ai-train |all |search |&amp;|&#[0-9]{1,3};|&x;|<!\\[CDATA\\[a\\]\\]>|<!--c-->){0,20}";
    let urls = prop::collection::vec(
        prop_oneof![
            select(vec![
                "https://example.com/",
                "https://example.com/a/x.html",
                "https://EXAMPLE.com/b",
                "https://other.org/a/",
                "http://example.com/b?x"
            ])
            .prop_map(str::to_string),
            request_path().prop_map(|p| format!("https://example.com{p}")),
            any::<String>(),
        ],
        1..4,
    );
    (raw_or("rsl", xml.prop_map(String::into_bytes).boxed()), doc, any::<bool>(), urls)
        .prop_map(|(raw, doc, legacy, urls)| RslCase { raw, doc, legacy, urls })
}

#[test]
fn fuzz_rsl() {
    fuzz("rsl", 192, seeds("rsl", RslCase::from_bytes), rsl_strategy(), check_rsl);
}

// === registry import ===

/// A value that survives CSV trimming the way JSON keeps it: not blank (a blank CSV cell is no
/// value at all, a blank JSON string is one).
fn cell(s: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Option<String>> {
    prop::option::of(s.prop_filter("blank", |v| !v.trim().is_empty())).boxed()
}

fn draft() -> impl Strategy<Value = DraftSpec> {
    let id = cell("[a-z0-9:._-]{1,8}".boxed());
    let creator = cell(prop_oneof![4 => "[A-Za-z ]{1,16}", 1 => Just("Cy, \"the\" painter".to_string()), 1 => any::<String>(), 1 => Just("#1 fan".to_string()), 1 => Just("two\nlines".to_string())].boxed());
    let contact = cell(prop_oneof!["[a-z]{1,6}@example\\.org", any::<String>()].boxed());
    let url = select(vec![
        "https://bo.example/a.png",
        "http://Example.ORG/x/../y",
        "ftp://x",
        "https://u@x.org/",
        "nope",
        "https://x.org/#f",
    ])
    .prop_map(str::to_string);
    let domain = prop_oneof![
        select(vec!["example.org", "Example.ORG.", "*.x.org", "localhost", "1.2.3.4", "bücher.example", "a_b.example"])
            .prop_map(str::to_string),
        "[a-z]{1,6}\\.[a-z]{2,3}",
    ];
    let target = prop_oneof![
        3 => domain.prop_map(|d| (None, Some(d))),
        2 => url.prop_map(|u| (Some(u), None)),
        1 => Just((None, None)),
    ];
    let list = |items: Vec<&'static str>| {
        prop::option::of(prop::collection::vec(select(items).prop_map(str::to_string), 1..3))
    };
    (
        id,
        creator,
        contact,
        target,
        prop::option::of(any::<bool>()),
        list(vec!["/art/*", "/img/$", "/a", "*.png", "x", "/%7E"]),
        list(vec!["search", "ai-input", "ai-train", "tdm", "bogus"]),
    )
        .prop_map(|(id, creator, contact, (url, domain), include_subdomains, paths, purposes)| DraftSpec {
            id,
            creator,
            contact,
            url,
            domain,
            include_subdomains,
            paths,
            purposes,
        })
        // A CSV row of empty cells is skipped by design (spreadsheets export trailing `,,,`), while
        // `{}` is an entry with problems: the two formats only agree on rows that say something.
        .prop_filter("an all-empty entry", |d| {
            d.id.is_some()
                || d.creator.is_some()
                || d.contact.is_some()
                || d.url.is_some()
                || d.domain.is_some()
                || d.include_subdomains.is_some()
                || d.paths.is_some()
                || d.purposes.is_some()
        })
}

fn registry_import_strategy() -> impl Strategy<Value = ImportCase> {
    let jsonl_like = "(\\{\"creator\":\"[a-z]{0,3}\",\"domain\":\"[a-z.]{0,8}\"\\}|#c|[ ,\"a-z]{0,6}|id,creator,domain|\u{feff})(\r?\n)".prop_map(String::into_bytes);
    let raw = raw_or("registry_import", prop::collection::vec(jsonl_like, 0..8).prop_map(|l| l.concat()).boxed());
    let url = (
        select(vec!["http://", "https://", "HTTPS://"]),
        select(vec![
            "example.org",
            "Example.ORG.",
            "example.org:443",
            "example.org:8080",
            "[::1]",
            "xn--bcher-kva.example",
        ]),
        prop::collection::vec(
            select(vec![
                "/", "a", "%7e", "~", "'", "%27", "{", "}", "é", "%C3%A9", "%c3%a9", "..", ".", "%2e", "?", "=", "&",
                "|", "\"", "%20", "!", "$", "*", "^", "`",
            ]),
            0..10,
        ),
    )
        .prop_map(|(scheme, host, path)| format!("{scheme}{host}/{}", path.concat()));
    (raw, prop::collection::vec((draft(), 0u8..3), 0..6), any::<bool>(), prop::collection::vec(url, 0..4))
        .prop_map(|(raw, entries, crlf, urls)| ImportCase { raw, entries, crlf, urls })
}

#[test]
fn fuzz_registry_import() {
    fuzz(
        "registry_import",
        192,
        seeds("registry_import", ImportCase::from_bytes),
        registry_import_strategy(),
        check_registry_import,
    );
}

// === config ===

fn config_strategy() -> impl Strategy<Value = ConfigCase> {
    let section =
        select(vec!["", "[proxy]", "[robots]", "[storage]", "[[crawlers]]", "[tlog]", "[prox]", "[upstream.resolve]"]);
    let key = select(vec![
        "listen",
        "block_status",
        "mode",
        "max_bytes",
        "cache_ttl",
        "name",
        "token",
        "purposes",
        "url",
        "\"a:1\"",
        "bogus",
        "node",
    ]);
    let value = select(vec![
        "1",
        "0",
        "451",
        "\"30s\"",
        "\"x\"",
        "true",
        "[\"search\"]",
        "{}",
        "\"127.0.0.1:1\"",
        "-1",
        "1e3",
        "\"\"",
        "18446744073709551615",
    ]);
    let line = prop_oneof![
        2 => (section, key, value).prop_map(|(s, k, v)| if s.is_empty() { format!("{k} = {v}") } else { format!("{s}\n{k} = {v}") }),
        1 => "[a-z_\\[\\]=\" .0-9#]{0,20}",
    ];
    let text = prop_oneof![
        3 => prop::collection::vec(line, 0..10).prop_map(|l| l.join("\n")),
        1 => any::<String>(),
        1 => mutated("config").prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    let settings = prop::collection::vec((0..CONFIG_KEYS.len(), 0usize..4), 0..10);
    let fault = prop::option::of((any::<usize>(), 0u8..2, 0usize..5));
    (text, settings, fault).prop_map(|(text, settings, fault)| ConfigCase { text, settings, fault })
}

#[test]
fn fuzz_config() {
    fuzz("config", 192, seeds("config", ConfigCase::from_bytes), config_strategy(), check_config);
}

// === config environment ===

fn config_env_strategy() -> impl Strategy<Value = EnvCase> {
    let segment = select(vec![
        "PROXY",
        "BLOCK_STATUS",
        "STORAGE",
        "URL",
        "CRAWLERS",
        "0",
        "1",
        "NAME",
        "PASSWORD",
        "DATA_DIR",
        "NODE",
        "",
        "X",
        "proxy",
    ]);
    let name = prop_oneof![
        4 => (prop::collection::vec(segment, 1..4), select(vec!["", "", "_FILE"])).prop_map(|(s, f)| format!("CONSENTRY_{}{f}", s.join("__"))),
        1 => Just("CONSENTRY_LOG_FORMAT".to_string()),
        1 => "[A-Z_]{0,12}",
        1 => any::<String>().prop_map(|s| format!("CONSENTRY_{s}")),
    ];
    let value = prop_oneof![
        3 => select(vec!["403", "451", "true", "[\"a\"]", "[{ name = \"x\", token = \"x\", purposes = [\"search\"] }]", "postgres://u@h/db", "", "\"q\"", "{ a = 1 }", "x = 1"]).prop_map(str::to_string),
        1 => any::<String>(),
    ];
    let base = prop_oneof![
        Just(String::new()),
        Just("[[crawlers]]\nname = \"a\"\ntoken = \"a\"\npurposes = [\"search\"]\n[[crawlers]]\nname = \"b\"\ntoken = \"b\"\npurposes = [\"tdm\"]\n".to_string()),
        Just("node = \"n\"\n[proxy]\nblock_status = 403\n".to_string()),
        mutated("config_env").prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    (base, prop::collection::vec((name, value), 0..4)).prop_map(|(base, vars)| EnvCase { base, vars })
}

#[test]
fn fuzz_config_env() {
    fuzz("config_env", 192, seeds("config_env", EnvCase::from_bytes), config_env_strategy(), check_config_env);
}

// === request targets ===

fn target_strategy() -> impl Strategy<Value = TargetCase> {
    let scheme = select(vec!["http://", "https://", "HTTP://", "ftp://", "", "//"]);
    let userinfo = select(vec!["", "", "", "u:p@", "@"]);
    let host = prop_oneof![
        4 => "[a-zA-Z0-9_-]{1,10}(\\.[a-zA-Z0-9_-]{1,10}){0,3}\\.?",
        2 => select(vec!["1.2.3.4", "[::1]", "[FE80::1]", "[::FFFF:1.2.3.4]", "[0:0::1]", "[fe80::1%25eth0]", "[::1", "", ".", "a..b", "xn--bcher-kva.example", "255.255.255.255", "0x7f.1"]).prop_map(str::to_string),
        1 => "[a-z.%~!$&'()*+,;=:\\[\\]]{0,10}",
    ];
    let port = select(vec!["", "", ":0", ":80", ":443", ":8080", ":65535", ":65536", ":", ":00443", ":-1"]);
    let path = select(vec!["", "/", "/a?b=c", "?q", "/%2e%2e/", "/a#f", "*"]);
    prop_oneof![
        4 => (scheme, userinfo, host, port, path).prop_map(|(s, u, h, p, pa)| format!("{s}{u}{h}{p}{pa}")),
        1 => any::<String>(),
        1 => mutated("target").prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
    .prop_map(|text| TargetCase { text })
}

#[test]
fn fuzz_target() {
    fuzz("target", 512, seeds("target", TargetCase::from_bytes), target_strategy(), check_target);
}

// === signed notes ===

fn note_strategy() -> impl Strategy<Value = NoteCase> {
    let b64 = prop::collection::vec(any::<u8>(), 0..80)
        .prop_map(|b| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b));
    let raw = prop_oneof![
        2 => ("[ -~\n]{0,40}\n", prop::collection::vec(("[a-z.+/ ]{0,12}", b64.clone()), 0..3))
            .prop_map(|(text, sigs)| format!("{text}\n{}", sigs.iter().map(|(n, s)| format!("\u{2014} {n} {s}\n")).collect::<String>())),
        1 => (
            "[a-z./]{0,12}",
            "[0-9a-fA-F+]{0,9}",
            prop::collection::vec(any::<u8>(), 0..40).prop_map(|mut b| {
                b.insert(0, 1);
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b)
            }),
        )
            .prop_map(|(n, id, key)| format!("{n}+{id}+{key}")),
        1 => any::<String>(),
        1 => mutated("note").prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    let name = prop_oneof![4 => "[a-z0-9./-]{1,20}", 1 => any::<String>(), 1 => Just("log+x".to_string())];
    let text = prop::collection::vec("[ -~é]{0,20}", 1..4).prop_map(|lines| format!("{}\n", lines.join("\n")));
    let foreign = prop::collection::vec(
        (select(vec!["witness.example", "other/log"]), prop::collection::vec(any::<u8>(), 5..80)).prop_map(|(n, b)| {
            format!("\u{2014} {n} {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b))
        }),
        0..3,
    );
    let signed =
        prop::option::weighted(0.6, (name, any::<[u8; 32]>(), text, foreign, prop::option::of(any::<usize>())));
    (raw, signed).prop_map(|(raw, signed)| NoteCase { raw, signed })
}

#[test]
fn fuzz_note() {
    fuzz("note", 64, seeds("note", NoteCase::from_bytes), note_strategy(), check_note);
}

// === receipts ===

fn receipt_strategy() -> impl Strategy<Value = ReceiptCase> {
    let n = any::<usize>();
    let change = prop_oneof![
        1 => Just(ReceiptChange::None),
        2 => (n, prop_oneof![0u64..16, any::<u64>()]).prop_map(|(i, v)| ReceiptChange::LeafIndex(i, v)),
        2 => (n, prop::option::of(0u64..16)).prop_map(|(i, v)| ReceiptChange::Prev(i, v)),
        1 => (n, n).prop_map(|(i, b)| ReceiptChange::SaltByte(i, b)),
        1 => (n, "\\{\"request_id\":\"r[0-9]\",\"host\":\"[a-z.]{0,12}\"\\}").prop_map(|(i, t)| ReceiptChange::RecordText(i, t)),
        1 => (n, n).prop_map(|(i, h)| ReceiptChange::ProofHash(i, h)),
        2 => n.prop_map(ReceiptChange::DropRecord),
        1 => (n, n).prop_map(|(i, j)| ReceiptChange::SwapRecords(i, j)),
        1 => n.prop_map(ReceiptChange::CheckpointByte),
        1 => select(vec!["other.net", "", " ", "example.com", "ample.org", "xample.org"]).prop_map(|d| ReceiptChange::Domain(d.to_string())),
    ];
    let hosts = prop::collection::vec(
        select(vec!["example.org", "a.example.org", "other.net", "x.com"]).prop_map(str::to_string),
        1..12,
    );
    let size = prop_oneof![0u64..20, any::<u64>(), Just(u64::MAX), Just(1u64 << 63)];
    let record = (
        prop_oneof![0u64..20, any::<u64>(), Just(u64::MAX - 1)],
        prop::option::of(any::<u64>()),
        prop::collection::vec(any::<[u8; 32]>(), 0..70),
    );
    let json = prop_oneof![
        "\\{\"format\":\"consentry-receipt/v1\",\"domain\":\"[a-z.]{0,8}\",\"checkpoint\":\"[a-z\n0-9]{0,20}\",\"records\":\\[(\\{\"leaf_index\":[0-9]{1,20},\"prev_leaf_index\":(null|[0-9]{1,3}),\"salt\":\"[A-Za-z0-9+/=]{0,44}\",\"record\":\"\\{\\}\",\"inclusion_proof\":\\[\\]\\})?\\]\\}",
        any::<String>(),
        mutated("receipt").prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    prop_oneof![
        1 => json.prop_map(ReceiptInput::Json),
        3 => (hosts, change).prop_map(|(hosts, change)| ReceiptInput::Genuine { hosts, change }),
        1 => (size, any::<[u8; 32]>(), prop::collection::vec(record, 0..4)).prop_map(|(size, root, records)| ReceiptInput::Forged { size, root, records }),
    ]
    .prop_map(|input| ReceiptCase { input })
}

#[test]
fn fuzz_receipt() {
    fuzz("receipt", 64, seeds("receipt", ReceiptCase::from_bytes), receipt_strategy(), check_receipt);
}

// === tile paths ===

fn tile_path_strategy() -> impl Strategy<Value = TilePathCase> {
    let group = prop_oneof![
        4 => "x?[0-9]{3}",
        1 => select(vec!["x000", "0000", "x1", "", "x", "00", "x018", "446", "615", "616"]).prop_map(str::to_string),
    ];
    let structured = (
        select(vec!["0", "1", "7", "8", "00", "x", "255", "-1", "data"]),
        prop::collection::vec(group, 0..8),
        select(vec!["", "", ".p/1", ".p/255", ".p/256", ".p/0", ".p/007", ".p/", ".p/1/2"]),
    )
        .prop_map(|(level, groups, partial)| format!("{level}/{}{partial}", groups.join("/")));
    let text = prop_oneof![4 => structured, 1 => any::<String>(), 1 => mutated("tile_path").prop_map(|b| String::from_utf8_lossy(&b).into_owned())];
    let index = prop_oneof![any::<u64>(), 0u64..2000, Just(u64::MAX), Just(999), Just(1000)];
    (text, prop::option::of((any::<u8>(), index, any::<u32>()))).prop_map(|(text, tile)| TilePathCase { text, tile })
}

#[test]
fn fuzz_tile_path() {
    fuzz("tile_path", 512, seeds("tile_path", TilePathCase::from_bytes), tile_path_strategy(), check_tile_path);
}

// === the harness itself ===

/// Every target has a test above, a corpus folder, and a working byte entry point (what AFL++
/// and the seed files use).
#[test]
fn every_target_has_a_corpus_and_a_byte_entry_point() {
    for target in TARGETS {
        let files = corpus(target);
        assert!((1..=10).contains(&files.len()), "{target}: {} seed files (1 to 10 expected)", files.len());
        for (name, bytes) in &files {
            assert!(bytes.len() <= 16 * 1024, "{target}/{name} is larger than 16 KiB");
        }
        assert!(run_bytes(target, b""), "{target} has no byte entry point");
        assert!(run_bytes(target, b"x\0\nGPTBot\0\n/a\0\n\x01"));
    }
    assert!(!run_bytes("no-such-target", b""));
}

// === regressions: every finding, as the smallest input that showed it ===

/// A variable named just `CONSENTRY_` was reported with an empty key (`environment CONSENTRY_:
/// ``: …`); it now names "(no key)".
#[test]
fn regression_env_variable_without_a_key_names_one() {
    check_config_env(&EnvCase { base: String::new(), vars: vec![("CONSENTRY_".into(), "403".into())] });
}

/// lol_html returns attribute values as written: `content="&amp;"` was collected as `&amp;`, so
/// an opt-out written with character references (`noai&#44; noimageai`, `&#110;oai`) went
/// unseen. `proxy::inspect` now decodes them as browsers do.
#[test]
fn regression_meta_content_character_references_are_decoded() {
    let items = vec![
        HeadItem::Meta("robots".into(), "&amp;".into(), 0),
        HeadItem::Meta("&#114;obots".into(), "&#110;oai&#44; noimageai".into(), 1),
        HeadItem::Link("license".into(), "/l.xml?a=1&amp;b=2".into(), None),
    ];
    let page = HtmlPage::Head { items, head_tag: false, close: 0, after: Vec::new() };
    check_html_head(&HtmlHeadCase { page, frames: vec![1], coding: None, max_head_bytes: 262_144 });
}

/// `<content url="https://example.com:443/">` governed no request: request URLs never carry the
/// default port, and the origins were compared as written. `signals::rsl` now drops it.
#[test]
fn regression_rsl_scope_with_the_default_port_governs_its_origin() {
    let style = RslStyle {
        single_quotes: false,
        newlines: false,
        prefix: false,
        comments: false,
        entities: false,
        cdata: false,
        default_port: true,
    };
    let contents = vec![RslContentSpec { scope: 5, server: false, licenses: Vec::new() }];
    check_rsl(&RslCase {
        raw: Vec::new(),
        doc: Some((contents, style)),
        legacy: false,
        urls: vec!["https://example.com/".into()],
    });
}

/// An exact-URL entry for `http://example.org/{` was stored as `/%7B` (the `url` crate encodes
/// `{`), while a request sending `/{` raw kept it: the objection never matched. Request keys are
/// now read through the same encoding (`registry::entry::request_key`).
/// AFL++ (2026-12-07): the csv reader ends a record at a carriage return without a line feed,
/// which line counting does not see, so two records were reported on the same line (the CSV
/// below: two entries on line 2). Such a CR inside a line is now refused, naming the line.
#[test]
fn regression_a_bare_carriage_return_does_not_put_two_records_on_one_line() {
    check_registry_import(&ImportCase {
        raw: b"creator,domain\n\tunclosed,x.exarxqd\rpk,ok.example\n".to_vec(),
        entries: Vec::new(),
        crlf: false,
        urls: Vec::new(),
    });
}

/// AFL++ (2026-12-07): an exact-URL entry for `https://example.org?q` (stored as
/// `https://example.org/?q`, an empty path being `/`) never matched the request for it: the
/// proxy kept `?q` as the request's path. `proxy::target` now reads an empty path as `/`.
#[test]
fn regression_an_empty_path_before_a_query_matches_its_entry() {
    check_registry_import(&ImportCase {
        raw: Vec::new(),
        entries: Vec::new(),
        crlf: false,
        urls: vec!["https://exam?le".into(), " https://exam?le".into(), "https://e?/eeeee".into()],
    });
}

#[test]
fn regression_exact_url_entry_matches_the_raw_request_for_it() {
    let urls = ["http://example.org/{", "https://example.org/?a'b", "https://Example.ORG./a|b^c/../d`"];
    check_registry_import(&ImportCase {
        raw: Vec::new(),
        entries: Vec::new(),
        crlf: false,
        urls: urls.iter().map(|u| u.to_string()).collect(),
    });
}

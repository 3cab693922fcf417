// Table-driven tests spell their row types out.
#![allow(clippy::type_complexity)]

use super::*;
use crate::signals::pattern::testing::{example, extension_lines};
use proptest::prelude::*;

const Y: Option<bool> = Some(true);
const N: Option<bool> = Some(false);

#[test]
fn header_values_table() {
    // (field lines, legacy, train-ai, search, problems expected)
    let cases: &[(&[&str], bool, Option<bool>, Option<bool>, bool)] = &[
        (&["train-ai=n"], false, N, None, false),
        (&["train-ai=y, search=n"], false, Y, N, false),
        (&["search=y"], false, None, Y, false),
        (&["train-ai=n;reason=\"x\""], false, N, None, false),
        // Uppercase key: the dictionary does not parse, so everything is unknown.
        (&["Train-AI=n"], false, None, None, true),
        (&["train-ai=n, Search=n"], false, None, None, true),
        // Quoted value: a String, not the Token n.
        (&["train-ai=\"n\""], false, None, None, true),
        // Bare key: Boolean true.
        (&["train-ai"], false, None, None, true),
        (&["train-ai=yes"], false, None, None, true),
        (&["train-ai=(n)"], false, None, None, true),
        // Duplicate keys: the last value wins (RFC 9651).
        (&["train-ai=n, train-ai=y"], false, Y, None, false),
        (&["train-ai=y, train-ai=n"], false, N, None, false),
        (&["train-ai=y, train-ai, search=n, search=\"n\""], false, None, None, true),
        (&["train-ai;allow=n, train-ai=y"], false, Y, None, false),
        // Two field lines combine into one dictionary.
        (&["train-ai=n", "search=n"], false, N, N, false),
        (&["train-ai=y", "train-ai=n"], false, N, None, false),
        (&["train-ai=n", "@@"], false, None, None, true),
        // Unknown labels are ignored (recorded).
        (&["future-label=n, search=y"], false, None, Y, true),
        // Legacy labels: unknown unless the legacy flag is set.
        (&["ai=n"], false, None, None, true),
        (&["ai=n"], true, N, None, true),
        (&["train-genai=n"], true, N, None, true),
        (&["bots=n, train-ai=y"], true, N, None, true),
        (&["train-ai=y, all=n"], true, N, None, true),
        (&["ai=y"], true, None, None, true),
        (&["ai-use=n"], true, None, None, true),
        (&[""], false, None, None, false),
    ];
    for &(lines, legacy, train, search, problems) in cases {
        let cu = ContentUsage::parse_field_lines(lines, legacy);
        assert_eq!((cu.train_ai, cu.search), (train, search), "{lines:?} legacy={legacy}");
        assert_eq!(!cu.problems.is_empty(), problems, "{lines:?}: {:?}", cu.problems);
    }
}

#[test]
fn prefs_follow_the_design_table() {
    let cu = ContentUsage::parse(b"train-ai=n, search=n", false);
    let p = cu.prefs();
    assert_eq!(p.get(Purpose::AiTrain), N);
    assert_eq!(p.get(Purpose::Search), N);
    assert_eq!(p.get(Purpose::AiInput), None);
    assert_eq!(p.get(Purpose::Tdm), None);
}

#[test]
fn raw_value_is_kept() {
    let cu = ContentUsage::parse_field_lines(["train-ai=n", "search=y"], false);
    assert_eq!(cu.raw, "train-ai=n, search=y");
}

#[test]
fn http_response_example() {
    let text = example("aipref-attach-05-http-response.txt");
    let lines: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("Content-Usage:")).map(str::trim).collect();
    let cu = ContentUsage::parse_field_lines(lines, false);
    assert_eq!(cu.prefs().disallowed(), vec![Purpose::AiTrain]);
}

#[test]
fn attach_05_robots_example() {
    let robots = example("aipref-attach-05-robots.txt");
    let star = ContentUsageRules::parse(extension_lines(&robots, "*", "content-usage"), false);
    // (path, ai-train) from the draft's table; /never/ is not crawlable, the caller skips it.
    for (path, want) in [("/test", N), ("/ai-ok/test", Y)] {
        let m = star.evaluate(path).expect("a rule matches");
        assert_eq!(m.prefs.get(Purpose::AiTrain), want, "{path}");
    }
    assert_eq!(star.evaluate("/ai-ok/x").map(|m| m.rules[0].line), Some(5));
    let bot = ContentUsageRules::parse(extension_lines(&robots, "ExampleBot", "content-usage"), false);
    assert_eq!(bot.evaluate("/test").map(|m| m.prefs.get(Purpose::AiTrain)), Some(Y));
}

#[test]
fn robots_rules_table() {
    // (rules, path, train-ai, search, deciding lines)
    let cases: &[(&[(&str, u32)], &str, Option<bool>, Option<bool>, &[u32])] = &[
        (&[("train-ai=n", 1)], "/x", N, None, &[1]),
        (&[("train-ai=n", 1), ("/a/ train-ai=y", 2)], "/a/b", Y, None, &[2]),
        (&[("train-ai=n", 1), ("/a/ train-ai=y", 2)], "/b", N, None, &[1]),
        // Identical paths combine most-restrictively (unlike Allow/Disallow).
        (&[("/a/ train-ai=y", 1), ("/a/ train-ai=n, search=y", 2)], "/a/x", N, Y, &[1, 2]),
        (&[("/a/ search=n", 1), ("/a/ train-ai=y", 2)], "/a/x", Y, N, &[1, 2]),
        // Longest path by octets, wildcards allowed.
        (&[("/a/ train-ai=n", 1), ("/a/*.html train-ai=y", 2)], "/a/p.html", Y, None, &[2]),
        // A comment ends the value.
        (&[("train-ai=n # no training", 3)], "/", N, None, &[3]),
        // The longest rule decides even when it cannot be parsed (its preferences are unknown).
        (&[("train-ai=n", 1), ("/a/ Train-AI=y", 2)], "/a/x", None, None, &[2]),
    ];
    for &(lines, path, train, search, want_lines) in cases {
        let rules = ContentUsageRules::parse(lines.iter().copied(), false);
        let m = rules.evaluate(path).expect("a rule matches");
        assert_eq!((m.prefs.get(Purpose::AiTrain), m.prefs.get(Purpose::Search)), (train, search), "{lines:?} {path}");
        assert_eq!(m.rules.iter().map(|r| r.line).collect::<Vec<_>>(), want_lines, "{lines:?} {path}");
    }
}

#[test]
fn robots_rules_without_match_and_problems() {
    let rules = ContentUsageRules::parse([("/a/ train-ai=n", 4), ("/b/ ai=n", 7)], false);
    assert!(rules.evaluate("/c").is_none());
    let problems = rules.problems();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0, 7);
}

#[test]
fn legacy_robots_file() {
    let robots = example("realworld-legacy-ai-directives-robots.txt");
    let lines = extension_lines(&robots, "*", "content-usage");
    assert_eq!(lines.len(), 1);
    let strict = ContentUsageRules::parse(lines.clone(), false);
    assert_eq!(strict.evaluate("/").map(|m| m.prefs.is_unknown()), Some(true));
    let legacy = ContentUsageRules::parse(lines, true);
    assert_eq!(legacy.evaluate("/").map(|m| m.prefs.disallowed()), Some(vec![Purpose::AiTrain]));
}

proptest! {
    #[test]
    fn never_panics(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4),
                    legacy in any::<bool>(), value in ".{0,60}", path in ".{0,30}") {
        let _ = ContentUsage::parse_field_lines(&lines, legacy).prefs();
        let rules = ContentUsageRules::parse([(value.as_str(), 1)], legacy);
        let _ = rules.evaluate(&path);
        let _ = rules.problems();
    }

    #[test]
    fn well_formed_values_round_trip(train in prop_oneof![Just("y"), Just("n")], search in prop_oneof![Just("y"), Just("n")]) {
        let cu = ContentUsage::parse(format!("train-ai={train}, search={search}").as_bytes(), false);
        prop_assert_eq!(cu.train_ai, Some(train == "y"));
        prop_assert_eq!(cu.search, Some(search == "y"));
        prop_assert!(cu.problems.is_empty());
    }
}

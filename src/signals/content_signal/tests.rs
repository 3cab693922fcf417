// Table-driven tests spell their row types out.
#![allow(clippy::type_complexity)]

use super::*;
use crate::signals::pattern::testing::{example, extension_lines};
use proptest::prelude::*;

const Y: Option<bool> = Some(true);
const N: Option<bool> = Some(false);

fn triple(p: Prefs) -> (Option<bool>, Option<bool>, Option<bool>) {
    (p.get(Purpose::Search), p.get(Purpose::AiInput), p.get(Purpose::AiTrain))
}

#[test]
fn values_table() {
    // (value, (search, ai-input, ai-train), problems expected)
    let cases: &[(&str, (Option<bool>, Option<bool>, Option<bool>), bool)] = &[
        ("search=yes, ai-train=no", (Y, None, N), false),
        ("ai-input=no", (None, N, None), false),
        ("search=no,ai-input=no,ai-train=no", (N, N, N), false),
        ("Search=YES, AI-Train=No", (Y, None, N), false),
        ("ai-train = no", (None, None, N), false),
        ("", (None, None, None), false),
        ("ai-train=maybe", (None, None, None), true),
        ("ai-train=y", (None, None, None), true),
        ("ai-train", (None, None, None), true),
        ("use=reference, ai-train=no", (None, None, N), true),
        ("tdm=no", (None, None, None), true),
        ("ai-train=yes, ai-train=no", (None, None, N), true),
        ("ai-train=no, ai-train=yes", (None, None, N), true),
    ];
    for &(value, want, problems) in cases {
        let cs = ContentSignal::parse(value);
        assert_eq!(triple(cs.prefs), want, "{value}");
        assert_eq!(cs.prefs.get(Purpose::Tdm), None, "{value}: tdm is never spoken to");
        assert_eq!(!cs.problems.is_empty(), problems, "{value}: {:?}", cs.problems);
        assert_eq!(cs.raw, value);
    }
}

#[test]
fn header_field_lines_combine() {
    let cs = ContentSignal::parse_field_lines(["ai-train=yes, search=yes", "ai-input=no"]);
    assert_eq!(triple(cs.prefs), (Y, N, Y));
    assert_eq!(cs.raw, "ai-train=yes, search=yes, ai-input=no");
}

#[test]
fn robots_rules_table() {
    // (rules, path, (search, ai-input, ai-train), deciding lines)
    let cases: &[(&[(&str, u32)], &str, (Option<bool>, Option<bool>, Option<bool>), &[u32])] = &[
        (&[("search=yes, ai-train=no", 2)], "/x", (Y, None, N), &[2]),
        (&[("ai-train=no", 1), ("/open/ ai-train=yes", 2)], "/open/a", (None, None, Y), &[2]),
        (&[("ai-train=no", 1), ("/open/ ai-train=yes", 2)], "/closed", (None, None, N), &[1]),
        (&[("/a ai-train=yes", 1), ("/a ai-train=no", 2)], "/a/b", (None, None, N), &[1, 2]),
        (&[("ai-train=no # comment", 5)], "/", (None, None, N), &[5]),
    ];
    for &(lines, path, want, want_lines) in cases {
        let rules = ContentSignalRules::parse(lines.iter().copied());
        let m = rules.evaluate(path).expect("a rule matches");
        assert_eq!(triple(m.prefs), want, "{lines:?} {path}");
        assert_eq!(m.rules.iter().map(|r| r.line).collect::<Vec<_>>(), want_lines);
    }
    let scoped = ContentSignalRules::parse([("/only/ ai-train=no", 1)]);
    assert!(scoped.evaluate("/other").is_none());
}

#[test]
fn cloudflare_managed_file_with_two_star_groups() {
    let robots = example("cloudflare-managed-robots.txt");
    let lines = extension_lines(&robots, "*", "content-signal");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let rules = ContentSignalRules::parse(lines);
    assert!(rules.problems().is_empty());
    for path in ["/", "/lp", "/blog/post"] {
        let m = rules.evaluate(path).expect("a rule matches");
        assert_eq!(triple(m.prefs), (Y, None, N), "{path}");
        assert_eq!(m.rules[0].line, 29);
    }
}

#[test]
fn path_scoped_example() {
    let robots = example("contentsignals-path-scoped-robots.txt");
    let rules = ContentSignalRules::parse(extension_lines(&robots, "*", "content-signal"));
    assert_eq!(rules.rules.len(), 2);
    let cases = [
        ("/about", Some((Y, Y, Y))),
        ("/about/team", Some((Y, Y, Y))),
        ("/blog/post", Some((Y, N, N))),
        ("/dashboard/", None),
        ("/", None),
    ];
    for (path, want) in cases {
        assert_eq!(rules.evaluate(path).map(|m| triple(m.prefs)), want, "{path}");
    }
}

proptest! {
    #[test]
    fn never_panics(value in ".{0,80}", path in ".{0,30}", lines in proptest::collection::vec(".{0,30}", 0..3)) {
        let _ = ContentSignal::parse(&value);
        let _ = ContentSignal::parse_field_lines(&lines);
        let rules = ContentSignalRules::parse([(value.as_str(), 1)]);
        let _ = rules.evaluate(&path);
        let _ = rules.problems();
    }
}

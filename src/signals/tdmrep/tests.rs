// Table-driven tests spell their row types out.
#![allow(clippy::type_complexity)]

use super::*;
use crate::signals::pattern::testing::example;
use proptest::prelude::*;

fn value(reservation: Option<bool>, policy: Option<&str>) -> TdmValue {
    TdmValue { reservation, policy: policy.map(str::to_string), problems: Vec::new() }
}

#[test]
fn multi_rule_example_first_match_wins() {
    let file = TdmRepFile::parse(example("tdmrep-multi.json").as_bytes());
    assert!(file.valid && file.problems.is_empty(), "{:?}", file.problems);
    // (path, reservation, rule index)
    let cases: &[(&str, Option<(Option<bool>, usize)>)] = &[
        ("/directory-a/page.html", Some((Some(true), 0))),
        ("/directory-b/html/x.html", Some((Some(true), 1))),
        ("/directory-b/images/a/b.jpg", Some((Some(false), 2))),
        ("/directory-b/images/b.png", None),
        ("/elsewhere", None),
    ];
    for &(path, want) in cases {
        let got = file.lookup(path).map(|r| (r.value.reservation, r.index));
        assert_eq!(got, want, "{path}");
    }
    let rule = file.lookup("/directory-b/html/").expect("rule");
    assert_eq!(rule.value.policy.as_deref(), Some("https://provider.com/policies/policy.json"));
    assert_eq!(file.rules.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 6, 11]);
}

#[test]
fn sitewide_example() {
    let file = TdmRepFile::parse(example("tdmrep-sitewide.json").as_bytes());
    let rule = file.lookup("/any/thing?x=1").expect("rule");
    assert_eq!(rule.value.prefs(false).disallowed(), vec![Purpose::AiInput, Purpose::AiTrain, Purpose::Tdm]);
    assert_eq!(rule.value.prefs(true).disallowed(), Purpose::ALL.to_vec());
}

#[test]
fn first_match_not_longest() {
    let body = br#"[{"location": "/", "tdm-reservation": 0}, {"location": "/private/", "tdm-reservation": 1}]"#;
    let file = TdmRepFile::parse(body);
    assert_eq!(file.lookup("/private/x").map(|r| r.index), Some(0));
    assert_eq!(file.lookup("/private/x").and_then(|r| r.value.reservation), Some(false));
}

#[test]
fn file_values_table() {
    // (rule JSON, reservation, problem expected)
    let cases: &[(&str, Option<bool>, bool)] = &[
        (r#"{"location": "/", "tdm-reservation": 1}"#, Some(true), false),
        (r#"{"location": "/", "tdm-reservation": 0}"#, Some(false), false),
        (r#"{"location": "/", "tdm-reservation": 1.0}"#, Some(true), false),
        (r#"{"location": "/", "tdm-reservation": "1"}"#, None, true),
        (r#"{"location": "/", "tdm-reservation": true}"#, None, true),
        (r#"{"location": "/", "tdm-reservation": 2}"#, None, true),
        (r#"{"location": "/"}"#, None, true),
        (r#"{"location": "/", "tdm-reservation": 1, "extra": [1, {"a": "]"}]}"#, Some(true), false),
    ];
    for &(rule, want, problem) in cases {
        let file = TdmRepFile::parse(format!("[{rule}]").as_bytes());
        let r = file.lookup("/x").expect("rule matches");
        assert_eq!(r.value.reservation, want, "{rule}");
        assert_eq!(!r.value.problems.is_empty(), problem, "{rule}: {:?}", r.value.problems);
    }
}

#[test]
fn malformed_files_give_no_signal() {
    for body in [&b"{\"location\": \"/\", \"tdm-reservation\": 1}"[..], b"not json", b"", b"[1,", b"null"] {
        let file = TdmRepFile::parse(body);
        assert!(!file.valid, "{body:?}");
        assert!(file.rules.is_empty());
        assert_eq!(file.problems.len(), 1, "{body:?}");
        assert!(file.lookup("/").is_none());
    }
}

#[test]
fn bad_rules_are_dropped_or_read_leniently() {
    let body = b"[\n  42,\n  {\"tdm-reservation\": 1},\n  {\"location\": \"https://example.com/a/\", \"tdm-reservation\": 1},\n  {\"location\": \"b/\", \"tdm-reservation\": 1}\n]";
    let file = TdmRepFile::parse(body);
    assert!(file.valid);
    assert_eq!(file.rules.len(), 2);
    assert_eq!(file.problems.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
    assert_eq!(file.lookup("/a/x").map(|r| r.index), Some(2));
    assert_eq!(file.lookup("/b/x").map(|r| r.index), Some(3));
}

#[test]
fn location_patterns_follow_robots_syntax() {
    let body = br#"[{"location": "/exact$", "tdm-reservation": 1}, {"location": "*.pdf", "tdm-reservation": 1}]"#;
    let file = TdmRepFile::parse(body);
    assert_eq!(file.lookup("/exact").map(|r| r.index), Some(0));
    assert!(file.lookup("/exactly").is_none());
    assert_eq!(file.lookup("/docs/a.pdf").map(|r| r.index), Some(1));
    assert!(file.lookup("/Exact").is_none(), "case-sensitive");
}

#[test]
fn header_values_table() {
    // (reservation header lines, policy lines, reservation, policy, problems)
    let cases: &[(&[&str], &[&str], Option<bool>, Option<&str>, bool)] = &[
        (&["1"], &[], Some(true), None, false),
        (&[" 0 "], &[], Some(false), None, false),
        (&["1"], &["https://p.example/policy.json"], Some(true), Some("https://p.example/policy.json"), false),
        (&["yes"], &[], None, None, true),
        (&["true"], &[], None, None, true),
        (&["1", "1"], &[], Some(true), None, false),
        (&["1", "0"], &[], None, None, true),
        (&[], &["https://p.example/x"], None, Some("https://p.example/x"), false),
        (&[], &[], None, None, false),
    ];
    for &(res, pol, want_res, want_pol, problems) in cases {
        let v = TdmValue::from_headers(res, pol);
        assert_eq!((v.reservation, v.policy.as_deref()), (want_res, want_pol), "{res:?} {pol:?}");
        assert_eq!(!v.problems.is_empty(), problems, "{res:?}: {:?}", v.problems);
    }
}

#[test]
fn header_example_file() {
    let text = example("tdmrep-http-headers.txt");
    let header = |name: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    };
    // The file holds two responses; each says `tdm-reservation: 1`.
    let v = TdmValue::from_headers(header("tdm-reservation"), header("tdm-policy"));
    assert_eq!(v.reservation, Some(true));
    assert_eq!(v.policy.as_deref(), Some("https://provider.com/policies/policy.json"));
}

#[test]
fn meta_values() {
    let html = example("tdmrep-html-meta.html");
    let content = |name: &str| {
        let tag = html.lines().find(|l| l.contains(&format!("name=\"{name}\"")))?;
        tag.split("content=\"").nth(1)?.split('"').next().map(str::to_string)
    };
    let v = TdmValue::from_meta(content("tdm-reservation").as_deref(), content("tdm-policy").as_deref());
    assert_eq!(v.reservation, Some(true));
    assert_eq!(v.policy.as_deref(), Some("https://provider.com/policies/policy.json"));
    assert_eq!(TdmValue::from_meta(Some("2"), None).reservation, None);
    assert_eq!(TdmValue::from_meta(None, None), TdmValue::default());
}

#[test]
fn precedence_table() {
    let one = value(Some(true), Some("https://p/file"));
    let zero = value(Some(false), None);
    let unset = value(None, Some("https://p/meta"));
    // (file, header, meta, reservation, from, policy, policy from)
    let cases: Vec<(Option<&TdmValue>, Option<&TdmValue>, Option<&TdmValue>, Option<bool>, Option<Carrier>)> = vec![
        (Some(&one), None, None, Some(true), Some(Carrier::File)),
        // Header over file.
        (Some(&one), Some(&zero), None, Some(false), Some(Carrier::Header)),
        (Some(&zero), Some(&one), None, Some(true), Some(Carrier::Header)),
        // Meta over header.
        (Some(&one), Some(&zero), Some(&one), Some(true), Some(Carrier::Meta)),
        (None, Some(&one), Some(&zero), Some(false), Some(Carrier::Meta)),
        // Absence never resets.
        (Some(&one), Some(&unset), Some(&unset), Some(true), Some(Carrier::File)),
        (None, None, None, None, None),
    ];
    for (file, header, meta, want, from) in cases {
        let eff = combine(file, header, meta);
        assert_eq!((eff.reservation, eff.reservation_from), (want, from), "{file:?} {header:?} {meta:?}");
    }
    let eff = combine(Some(&one), Some(&zero), Some(&unset));
    assert_eq!((eff.policy.as_deref(), eff.policy_from), (Some("https://p/meta"), Some(Carrier::Meta)));
    let eff = combine(Some(&one), Some(&zero), None);
    assert_eq!((eff.policy.as_deref(), eff.policy_from), (Some("https://p/file"), Some(Carrier::File)));
}

#[test]
fn prefs_follow_the_design_table() {
    let reserved = value(Some(true), None);
    assert_eq!(reserved.prefs(false).get(Purpose::Search), None);
    assert_eq!(reserved.prefs(true).get(Purpose::Search), Some(false));
    for p in [Purpose::AiInput, Purpose::AiTrain, Purpose::Tdm] {
        assert_eq!(reserved.prefs(false).get(p), Some(false));
        assert_eq!(value(Some(false), None).prefs(false).get(p), Some(true));
    }
    assert!(value(None, None).prefs(true).is_unknown());
    let eff = combine(Some(&reserved), None, None);
    assert_eq!(eff.prefs(false), reserved.prefs(false));
}

proptest! {
    #[test]
    fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..200), path in ".{0,30}", v in ".{0,10}") {
        let file = TdmRepFile::parse(&body);
        let _ = file.lookup(&path);
        let _ = TdmValue::from_headers([v.as_str()], [v.as_str()]);
        let _ = TdmValue::from_meta(Some(&v), Some(&v));
    }

    #[test]
    fn never_panics_on_json_like_input(body in r#"[\[\]{}",:0-9a-z/\\ *$\n-]{0,120}"#, path in "/[a-z/*]{0,20}") {
        let file = TdmRepFile::parse(body.as_bytes());
        let _ = file.lookup(&path);
    }

    #[test]
    fn rule_lines_are_found(n in 1usize..6, pad in 0usize..3) {
        let sep = format!(",{}", "\n".repeat(pad));
        let rules: Vec<String> = (0..n).map(|i| format!("{{\"location\": \"/{i}/\", \"tdm-reservation\": 1}}")).collect();
        let body = format!("[\n{}\n]", rules.join(&sep));
        let file = TdmRepFile::parse(body.as_bytes());
        prop_assert_eq!(file.rules.len(), n);
        for (i, r) in file.rules.iter().enumerate() {
            prop_assert_eq!(r.line as usize, 2 + i * pad);
        }
    }
}

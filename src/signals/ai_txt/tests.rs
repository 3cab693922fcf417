// Table-driven tests spell their row types out.
#![allow(clippy::type_complexity)]

use super::*;
use crate::signals::pattern::testing::example;
use proptest::prelude::*;

const TOKENS: &[&str] = &["AcmeBot"];

fn outcome(file: &AiTxt, path: &str) -> (bool, Option<u32>) {
    let m = file.check(TOKENS, path);
    (m.disallowed, m.rule.map(|r| r.line))
}

#[test]
fn spawning_generator_file() {
    let file = AiTxt::parse(example("spawning-ai.txt").as_bytes());
    assert!(file.recognized);
    assert!(file.problems.is_empty(), "{:?}", file.problems);
    // (path, deciding rule) — `*.html` (line 15) outranks `/`, `*` by length.
    let cases: &[(&str, &str)] = &[
        ("/img/cat.jpg", "Disallow: *.jpg"),
        ("/img/cat.jpg?size=large", "Disallow: *.jpg"),
        ("/page.html", "Disallow: *.html"),
        ("/song.flac", "Disallow: *.flac"),
        ("/style.css", "Disallow: *.css"),
        ("/no-extension", "Disallow: /"),
    ];
    for &(path, rule) in cases {
        let m = file.check(TOKENS, path);
        assert!(m.disallowed, "{path}");
        assert_eq!(m.rule.map(AiTxtRule::text).as_deref(), Some(rule), "{path}");
        assert_eq!(m.group, Some("*"));
        assert_eq!(m.prefs().disallowed(), vec![Purpose::AiTrain], "{path}");
    }
    assert_eq!(file.check(TOKENS, "/page.html").rule.map(|r| r.line), Some(15));
}

#[test]
fn minimal_file_blocks_everything() {
    let file = AiTxt::parse(example("spawning-ai-minimal.txt").as_bytes());
    for path in ["/", "/a/b.png", "/x?y"] {
        assert!(outcome(&file, path).0, "{path}");
    }
}

#[test]
fn extension_patterns_table() {
    let file = AiTxt::parse(
        b"User-Agent: *\nDisallow: *.jpg\nAllow: /public/*.jpg\nDisallow: *.h\nDisallow: .pdf\nAllow: *.png$\nDisallow: /png/\n",
    );
    // (path, disallowed, deciding line)
    let cases: &[(&str, bool, Option<u32>)] = &[
        ("/a/b.jpg", true, Some(2)),
        ("/a.jpgfoo", true, Some(2)), // no implicit `$`
        ("/public/b.jpg", false, Some(3)),
        ("/index.html", true, Some(4)), // `*.h` is over-broad under robots matching
        ("/doc.pdf", true, Some(5)),
        ("/png/a.png", false, Some(6)), // `*.png$` (6 octets) beats `/png/` (5)
        ("/png/a.txt", true, Some(7)),
        ("/a.txt", false, None),
    ];
    for &(path, disallowed, line) in cases {
        assert_eq!(outcome(&file, path), (disallowed, line), "{path}");
    }
    assert_eq!(file.problems.len(), 1, "{:?}", file.problems);
    assert_eq!(file.problems[0].0, 5);
    assert!(file.check(TOKENS, "/a.txt").prefs().is_unknown());
    assert_eq!(file.check(TOKENS, "/public/b.jpg").prefs().get(Purpose::AiTrain), Some(true));
}

#[test]
fn groups_table() {
    let file = AiTxt::parse(
        b"Disallow: /early\nUser-Agent: *\nDisallow: /\n\nUser-Agent: acmebot/1.0\nUser-Agent: OtherBot\nDisallow: *.jpg\n\nuser-agent: AcmeBot\nallow: /open/\n",
    );
    // Specific groups (merged) replace `*`.
    assert_eq!(file.check(&["AcmeBot"], "/page"), AiTxtMatch { disallowed: false, rule: None, group: Some("acmebot") });
    assert_eq!(outcome(&file, "/a.jpg"), (true, Some(7)));
    assert_eq!(outcome(&file, "/open/a.jpg"), (false, Some(10)), "`/open/` (6 octets) beats `*.jpg` (5)");
    assert_eq!(outcome(&file, "/open/a"), (false, Some(10)));
    assert_eq!(file.check(&["Someone"], "/page").rule.map(|r| r.line), Some(3));
    assert_eq!(file.problems.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1]);
}

#[test]
fn tie_goes_to_allow() {
    let file = AiTxt::parse(b"User-agent: *\nDisallow: /a\nAllow: /a\n");
    assert_eq!(outcome(&file, "/a"), (false, Some(3)));
}

#[test]
fn unrelated_ai_txt_is_no_signal() {
    let file = AiTxt::parse(b"---\ntitle: My site\n---\n# About\nThis site is about cats.\n");
    assert!(!file.recognized);
    assert!(!file.problems.is_empty());
    assert_eq!(file.check(TOKENS, "/"), AiTxtMatch { disallowed: false, rule: None, group: None });
}

#[test]
fn empty_file_is_no_signal() {
    let file = AiTxt::parse(b"");
    assert!(!file.recognized);
    assert!(file.check(TOKENS, "/").prefs().is_unknown());
}

proptest! {
    #[test]
    fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..300), path in ".{0,40}") {
        let file = AiTxt::parse(&body);
        let _ = file.check(TOKENS, &path).prefs();
    }

    #[test]
    fn never_panics_on_robots_like_input(body in "((User-Agent|Disallow|Allow|x): ?[*a-zA-Z./$ ]{0,12}\n){0,12}", path in "/[a-z./*$]{0,20}") {
        let file = AiTxt::parse(body.as_bytes());
        let _ = file.check(&["a", "*"], &path);
    }
}

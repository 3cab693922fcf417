// Table-driven tests spell their row types out.
#![allow(clippy::type_complexity)]

use super::*;
use proptest::prelude::*;

const TOKENS: &[&str] = &["AcmeBot", "GPTBot"];

fn disallowed(tag: &RobotsTag, is_image: bool) -> Vec<Purpose> {
    tag.evaluate(TOKENS, is_image).prefs.disallowed()
}

const AI: [Purpose; 3] = [Purpose::AiInput, Purpose::AiTrain, Purpose::Tdm];

#[test]
fn header_table() {
    // (field lines, image response, opted out)
    let cases: &[(&[&str], bool, bool)] = &[
        (&["noai"], false, true),
        (&["NoAI"], false, true),
        (&["noindex, noai"], false, true),
        (&["noindex", "noai"], false, true),
        (&["noimageai"], false, false),
        (&["noimageai"], true, true),
        (&["noindex, nofollow"], false, false),
        (&[""], false, false),
        // Per-bot scoping: applies only to the crawler's tokens, case-insensitively.
        (&["acmebot: noai"], false, true),
        (&["GPTBot: noindex, noai"], false, true),
        (&["otherbot: noai"], false, false),
        (&["otherbot: noindex, noai"], false, false),
        (&["noai, otherbot: noindex"], false, true),
        (&["otherbot: noindex, AcmeBot: noai"], false, true),
        (&["otherbot: noindex", "noai"], false, true),
        (&["otherbot: noai", "AcmeBot: nofollow"], false, false),
        // Colon-bearing directives are not bot names.
        (&["unavailable_after: 25 Jun 2010 15:00:00 PST, noai"], false, true),
        (&["unavailable_after: Saturday, 01-Jul-17 11:00:00 PST, noai"], false, true),
        (&["max-snippet: 50, noai"], false, true),
        (&["otherbot: unavailable_after: 25 Jun 2010 15:00:00 PST, noai"], false, false),
        // Space-separated words are read as directives (lenient).
        (&["noindex noai"], false, true),
    ];
    for &(lines, is_image, want) in cases {
        let tag = RobotsTag::parse_header(lines);
        let want: Vec<Purpose> = if want { AI.to_vec() } else { vec![] };
        assert_eq!(disallowed(&tag, is_image), want, "{lines:?} image={is_image}");
        assert_eq!(tag.evaluate(TOKENS, is_image).prefs.get(Purpose::Search), None);
    }
}

#[test]
fn directives_keep_scope_and_values() {
    let tag = RobotsTag::parse_header([
        "noindex, googlebot: nofollow, max-snippet:50",
        "unavailable_after: 25 Jun 2010 15:00:00 PST",
    ]);
    let got: Vec<(Option<&str>, &str, Option<&str>, usize)> =
        tag.directives.iter().map(|d| (d.bot.as_deref(), d.name.as_str(), d.value.as_deref(), d.source)).collect();
    assert_eq!(
        got,
        vec![
            (None, "noindex", None, 0),
            (Some("googlebot"), "nofollow", None, 0),
            (Some("googlebot"), "max-snippet", Some("50"), 0),
            (None, "unavailable_after", Some("25 Jun 2010 15:00:00 PST"), 1),
        ]
    );
    assert!(tag.problems.is_empty(), "{:?}", tag.problems);
    assert_eq!(tag.raw.len(), 2);
}

#[test]
fn date_with_comma_is_glued_back() {
    let tag = RobotsTag::parse_header(["unavailable_after: Saturday, 01-Jul-17 11:00:00 PST"]);
    assert_eq!(tag.directives.len(), 1);
    assert_eq!(tag.directives[0].value.as_deref(), Some("Saturday, 01-Jul-17 11:00:00 PST"));
    assert!(tag.problems.is_empty());
}

#[test]
fn deciding_directives_are_reported() {
    let tag = RobotsTag::parse_header(["noindex", "AcmeBot: noai"]);
    let m = tag.evaluate(TOKENS, false);
    assert_eq!(m.directives.len(), 1);
    assert_eq!((m.directives[0].bot.as_deref(), m.directives[0].source), (Some("AcmeBot"), 1));
}

#[test]
fn meta_table() {
    // (tags, image, opted out)
    let cases: &[(&[(&str, &str)], bool, bool)] = &[
        (&[("robots", "noai")], false, true),
        (&[("ROBOTS", "NOAI, noindex")], false, true),
        (&[("robots", "noimageai")], false, false),
        (&[("robots", "noimageai")], true, true),
        (&[("acmebot", "noai")], false, true),
        (&[("otherbot", "noai")], false, false),
        (&[("robots", "noindex"), ("robots", "noai")], false, true),
        (&[("robots", "index, follow")], false, false),
    ];
    for &(tags, is_image, want) in cases {
        let tag = RobotsTag::parse_meta(tags.iter().copied());
        let want: Vec<Purpose> = if want { AI.to_vec() } else { vec![] };
        assert_eq!(disallowed(&tag, is_image), want, "{tags:?}");
    }
}

#[test]
fn meta_content_with_colon_value() {
    let tag = RobotsTag::parse_meta([("robots", "max-image-preview:large, noai")]);
    assert_eq!(tag.directives.len(), 2);
    assert!(tag.directives.iter().all(|d| d.bot.is_none()));
    let tag = RobotsTag::parse_meta([("robots", "weird: thing")]);
    assert_eq!(tag.problems.len(), 1);
}

proptest! {
    #[test]
    fn never_panics(lines in proptest::collection::vec(".{0,60}", 0..4), name in ".{0,10}", image in any::<bool>()) {
        let tag = RobotsTag::parse_header(&lines);
        let _ = tag.evaluate(TOKENS, image);
        let meta = RobotsTag::parse_meta(lines.iter().map(|l| (name.as_str(), l.as_str())));
        let _ = meta.evaluate(&[name.as_str()], image);
    }

    #[test]
    fn global_noai_always_found(prefix in "[a-z, ]{0,20}", suffix in "[a-z, ]{0,20}") {
        let tag = RobotsTag::parse_header([format!("{prefix}, noai, {suffix}")]);
        prop_assert_eq!(tag.evaluate(TOKENS, false).prefs.disallowed(), AI.to_vec());
    }
}

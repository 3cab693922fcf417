//! Google's robots.txt conformance suite (github.com/google/robotstxt-spec-test, converted to
//! JSON in `../shared/data/`) run against Consentry's matcher.
//!
//! Every expectation must hold except the ones listed in [`KNOWN_DIFFERENCES`], each of which
//! follows from a rule of DESIGN.md §4 that deliberately differs from Google. The test fails if a
//! listed case starts passing or an unlisted one fails.

use std::collections::BTreeSet;

use consentry::signals::robots::{DEFAULT_MAX_BYTES, RobotsTxt};
use serde::Deserialize;

const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/robotstxt-spec-test.json");

#[derive(Debug, Deserialize)]
struct Case {
    file: String,
    robotstxt_hex: String,
    exps: Vec<Expectation>,
}

#[derive(Debug, Deserialize)]
struct Expectation {
    testurl: String,
    useragent: String,
    expected_outcome: String,
    #[serde(default)]
    test_type: Option<String>,
}

/// `(file, user agent, URL)`, the expected outcome, and the DESIGN.md §4 rule that makes us differ.
const KNOWN_DIFFERENCES: [(&str, &str, &str, &str, &str); 8] = [
    // GOOGLE_SPECIFIC.
    (
        "correctness/index-page.textproto",
        "foobot",
        "http://foo.com/allowed-slash/",
        "ALLOWED",
        "no `index.html` leniency: `Allow: /dir/index.html` does not allow `/dir/` (never invent an allow)",
    ),
    // Not marked GOOGLE_SPECIFIC in the suite, but Google behaviour the RFC and DESIGN reject.
    (
        "stress/327748.textproto",
        "asdfbot",
        "http://m.example.com/robots.txt",
        "DISALLOWED",
        "`/robots.txt` itself is always allowed (RFC 9309 §2.2.2)",
    ),
    (
        "stress/369883.textproto",
        "BarBot",
        "http://example.com/robots.txt",
        "DISALLOWED",
        "`/robots.txt` itself is always allowed (RFC 9309 §2.2.2)",
    ),
    (
        "stress/369883.textproto",
        "AB42bot",
        "http://example.com/",
        "ALLOWED",
        "product tokens keep their digits: `User-agent: AB42bot` is AB42bot's group (Google reads it as `AB`)",
    ),
    (
        "stress/369883.textproto",
        "AB42bot",
        "http://example.com/foo/bar",
        "ALLOWED",
        "product tokens keep their digits: `User-agent: AB42bot` is AB42bot's group (Google reads it as `AB`)",
    ),
    (
        "stress/369883.textproto",
        "AB",
        "http://example.com/",
        "DISALLOWED",
        "exact token match: `AB` is not `AB42bot` (Google truncates the line's token at the digit)",
    ),
    (
        "stress/369883.textproto",
        "AB",
        "http://example.com/robots.txt",
        "DISALLOWED",
        "exact token match (`AB` is not `AB42bot`), and `/robots.txt` is always allowed",
    ),
    (
        "stress/860237.textproto",
        "XYZ",
        "http://example.com/robots.txt",
        "DISALLOWED",
        "exact token match (`XYZ` is not `XYZ123bot`), and `/robots.txt` is always allowed",
    ),
];

fn body(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex body")).collect()
}

#[test]
fn google_conformance_suite() {
    let text = std::fs::read_to_string(SUITE).expect("conformance suite readable (../shared/data)");
    let cases: Vec<Case> = serde_json::from_str(&text).expect("conformance suite parses");
    let (mut total, mut google_specific) = (0, 0);
    let mut differences = BTreeSet::new();
    for case in &cases {
        let robots = RobotsTxt::parse(&body(&case.robotstxt_hex), DEFAULT_MAX_BYTES);
        for exp in &case.exps {
            total += 1;
            google_specific += usize::from(exp.test_type.as_deref() == Some("GOOGLE_SPECIFIC"));
            // The suite gives full URLs; the proxy matches the request target (path and query).
            let path = robotstxt::get_path_params_query(&exp.testurl);
            let allowed = robots.check(&exp.useragent, &path).allowed;
            let outcome = if allowed { "ALLOWED" } else { "DISALLOWED" };
            if outcome != exp.expected_outcome {
                differences.insert((
                    case.file.as_str(),
                    exp.useragent.as_str(),
                    exp.testurl.as_str(),
                    exp.expected_outcome.as_str(),
                ));
            }
        }
    }
    assert_eq!((cases.len(), total, google_specific), (80, 400, 22), "the suite changed");
    let known: BTreeSet<_> =
        KNOWN_DIFFERENCES.iter().map(|&(file, agent, url, expected, _)| (file, agent, url, expected)).collect();
    let unexpected: Vec<_> = differences.difference(&known).collect();
    let now_passing: Vec<_> = known.difference(&differences).collect();
    assert!(unexpected.is_empty(), "new differences from Google's suite: {unexpected:#?}");
    assert!(now_passing.is_empty(), "listed differences now pass; update KNOWN_DIFFERENCES: {now_passing:#?}");
    println!(
        "{} of {total} expectations pass; {} documented differences",
        total - differences.len(),
        differences.len()
    );
}

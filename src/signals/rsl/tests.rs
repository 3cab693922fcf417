// Table-driven tests spell their row types out.
#![allow(clippy::type_complexity)]

use super::*;
use crate::signals::pattern::testing::{example, extension_lines};
use proptest::prelude::*;

use RslStatus::{LicenseRequired, NotPermitted, Permitted, Prohibited};

const SITE: &str = "https://example.com";

fn doc(licenses: &str) -> RslDocument {
    let body = format!("<rsl xmlns=\"https://rslstandard.org/rsl\">\n{licenses}\n</rsl>");
    RslDocument::parse(body.as_bytes(), false)
}

fn status(d: &RslDocument, path: &str, purpose: Purpose) -> Option<RslStatus> {
    d.evaluate(&format!("{SITE}{path}"), purpose).map(|e| e.status)
}

#[test]
fn rsl_1_0_example() {
    let d = RslDocument::parse(example("rsl-1.0-license.xml").as_bytes(), false);
    assert!(d.valid, "{:?}", d.problems);
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(d.max_age_days, Some(30));
    assert_eq!(d.contents.len(), 1);
    assert_eq!(d.contents[0].server.as_deref(), Some("https://licensing.example.com"));
    assert_eq!((d.contents[0].line, d.contents[0].licenses[0].line), (6, 7));
    // The content names a licence server, so permitted usages still need a token.
    let cases = [
        (Purpose::Search, LicenseRequired),
        (Purpose::AiInput, LicenseRequired),
        (Purpose::AiTrain, Prohibited),
        (Purpose::Tdm, NotPermitted),
    ];
    for (purpose, want) in cases {
        assert_eq!(status(&d, "/any/page", purpose), Some(want), "{purpose:?}");
    }
    let prefs = d.prefs(&format!("{SITE}/x"), false);
    assert_eq!(prefs.disallowed(), Purpose::ALL.to_vec());
    let held = d.prefs(&format!("{SITE}/x"), true);
    assert_eq!(held.disallowed(), vec![Purpose::AiTrain, Purpose::Tdm]);
    assert_eq!(held.get(Purpose::Search), Some(true));
}

#[test]
fn launch_era_example() {
    let strict = RslDocument::parse(example("rsl-wp-launch-era-license.xml").as_bytes(), false);
    assert!(strict.valid);
    assert!(!strict.problems.is_empty(), "comma lists and legacy tokens are recorded");
    let cases = [
        ("/free-content/a", Purpose::Search, Some(Permitted)),
        ("/free-content/a", Purpose::AiTrain, Some(Prohibited)),
        // `ai-summarize` is a legacy permission: ignored unless `legacy`.
        ("/free-content/a", Purpose::AiInput, Some(NotPermitted)),
        ("/other", Purpose::AiTrain, None),
    ];
    for (path, purpose, want) in cases {
        assert_eq!(status(&strict, path, purpose), want, "{path} {purpose:?}");
    }
    let legacy = RslDocument::parse(example("rsl-wp-launch-era-license.xml").as_bytes(), true);
    assert_eq!(status(&legacy, "/free-content/a", Purpose::AiInput), Some(Permitted));
    assert_eq!(
        legacy.contents[0].licenses[0].conditions,
        vec!["permits user: non-commercial".to_string(), "prohibits user: commercial".to_string()]
    );
}

#[test]
fn usage_tokens_table() {
    // (license body, purpose, status)
    let cases: &[(&str, Purpose, RslStatus)] = &[
        ("<prohibits type=\"usage\">ai-train</prohibits>", Purpose::AiTrain, Prohibited),
        ("<prohibits type=\"usage\">ai-train</prohibits>", Purpose::AiInput, Permitted),
        ("<prohibits type=\"usage\">ai-all</prohibits>", Purpose::AiInput, Prohibited),
        ("<prohibits type=\"usage\">ai-all</prohibits>", Purpose::Search, Permitted),
        ("<prohibits type=\"usage\">ai-all</prohibits>", Purpose::Tdm, Permitted),
        ("<prohibits type=\"usage\">all</prohibits>", Purpose::Tdm, Prohibited),
        ("<prohibits type=\"usage\">all</prohibits>", Purpose::Search, Prohibited),
        ("<prohibits type=\"usage\">ai-index</prohibits>", Purpose::AiInput, Prohibited),
        ("<prohibits type=\"usage\">search</prohibits>", Purpose::Search, Prohibited),
        ("<permits type=\"usage\">search</permits>", Purpose::Search, Permitted),
        ("<permits type=\"usage\">search</permits>", Purpose::AiTrain, NotPermitted),
        ("<permits type=\"usage\">ai-index</permits>", Purpose::AiInput, NotPermitted),
        ("<permits type=\"usage\">ai-all</permits>", Purpose::AiTrain, Permitted),
        ("<permits type=\"usage\">all</permits>", Purpose::Tdm, Permitted),
        // Both permitted and prohibited: not permitted.
        (
            "<permits type=\"usage\">ai-train</permits><prohibits type=\"usage\">ai-all</prohibits>",
            Purpose::AiTrain,
            NotPermitted,
        ),
        (
            "<permits type=\"usage\">search ai-input</permits><prohibits type=\"usage\">ai-input</prohibits>",
            Purpose::AiInput,
            NotPermitted,
        ),
        ("<permits type=\"usage\">\n  search\n  ai-input\n</permits>", Purpose::AiInput, Permitted),
        ("", Purpose::AiTrain, Permitted),
        ("<payment type=\"free\"/>", Purpose::AiTrain, Permitted),
        ("<payment type=\"attribution\"/>", Purpose::AiTrain, Permitted),
        (
            "<payment type=\"training\"><amount currency=\"USD\">10</amount></payment>",
            Purpose::AiTrain,
            LicenseRequired,
        ),
        ("<permits type=\"user\">education</permits>", Purpose::AiTrain, Permitted),
        ("<prohibits type=\"usage\">train-genai</prohibits>", Purpose::AiTrain, Prohibited),
        ("<permits type=\"usage\">ai-summarize</permits>", Purpose::AiInput, NotPermitted),
        ("<prohibits type=\"usage\">AI-Train</prohibits>", Purpose::AiTrain, Prohibited),
    ];
    for &(license, purpose, want) in cases {
        let d = doc(&format!("<content url=\"/\"><license>{license}</license></content>"));
        assert!(d.valid, "{license}: {:?}", d.problems);
        assert_eq!(status(&d, "/p", purpose), Some(want), "{license} {purpose:?}");
    }
}

#[test]
fn server_means_licence_required() {
    let d = doc(
        "<content url=\"/\" server=\"https://olp.example\"><license><permits type=\"usage\">ai-train</permits></license></content>",
    );
    let e = d.evaluate(&format!("{SITE}/a"), Purpose::AiTrain).expect("governed");
    assert_eq!(e.status, LicenseRequired);
    assert!(!e.allowed(false));
    assert!(e.allowed(true));
    assert!(e.detail.contains("https://olp.example"));
    // A held licence does not lift a prohibition.
    let d = doc(
        "<content url=\"/\" server=\"https://olp.example\"><license><prohibits type=\"usage\">ai-train</prohibits></license></content>",
    );
    let e = d.evaluate(&format!("{SITE}/a"), Purpose::AiTrain).expect("governed");
    assert_eq!(e.status, Prohibited);
    assert!(!e.allowed(true));
}

#[test]
fn content_scopes_table() {
    let d = doc(concat!(
        "<content url=\"/\"><license><prohibits type=\"usage\">ai-train</prohibits></license></content>\n",
        "<content url=\"/open/\"><license/></content>\n",
        "<content url=\"https://other.example/\"><license><prohibits type=\"usage\">all</prohibits></license></content>\n",
        "<content url=\"https://EXAMPLE.com/docs/*.pdf$\"><license><prohibits type=\"usage\">search</prohibits></license></content>\n",
        "<content url=\"/tie\"><license><permits type=\"usage\">ai-train</permits></license></content>\n",
        "<content url=\"/tie\"><license><prohibits type=\"usage\">ai-train</prohibits></license></content>\n",
    ));
    assert!(d.valid, "{:?}", d.problems);
    // (url, purpose, status, deciding content line)
    let cases: &[(&str, Purpose, Option<RslStatus>, u32)] = &[
        ("https://example.com/x", Purpose::AiTrain, Some(Prohibited), 2),
        ("https://example.com/open/x", Purpose::AiTrain, Some(Permitted), 3),
        ("https://other.example/x", Purpose::Search, Some(Prohibited), 4),
        ("https://example.com/docs/a.pdf", Purpose::Search, Some(Prohibited), 5),
        ("https://example.com/docs/a.pdf?x", Purpose::Search, Some(Permitted), 2),
        // Equally narrow entries combine most-restrictively.
        ("https://example.com/tie", Purpose::AiTrain, Some(Prohibited), 7),
    ];
    for &(url, purpose, want, line) in cases {
        let e = d.evaluate(url, purpose);
        assert_eq!(e.as_ref().map(|e| e.status), want, "{url} {purpose:?}");
        assert_eq!(e.map(|e| e.content.line), Some(line), "{url}");
    }
    let only_other = doc("<content url=\"https://other.example/\"><license/></content>");
    assert!(only_other.evaluate("https://example.com/", Purpose::Search).is_none());
    assert!(only_other.prefs("https://example.com/", false).is_unknown());
}

#[test]
fn alternative_licences_most_favourable_counts() {
    let d = doc(concat!(
        "<content url=\"/\">",
        "<license><permits type=\"usage\">search</permits></license>",
        "<license><permits type=\"usage\">ai-train</permits><payment type=\"training\"/></license>",
        "</content>"
    ));
    assert_eq!(status(&d, "/", Purpose::Search), Some(Permitted));
    assert_eq!(status(&d, "/", Purpose::AiTrain), Some(LicenseRequired));
    assert_eq!(status(&d, "/", Purpose::AiInput), Some(NotPermitted));
    let e = d.evaluate(&format!("{SITE}/"), Purpose::AiTrain).expect("governed");
    assert_eq!(e.license.map(|l| l.payments.clone()), Some(vec!["training".to_string()]));
}

#[test]
fn malformed_documents_grant_nothing() {
    let cases: &[&[u8]] = &[
        b"",
        b"not xml",
        b"<html><body/></html>",
        b"<rsl xmlns=\"https://rslstandard.org/rsl\"><content url=\"/\"><license></content></rsl>",
        b"<rsl xmlns=\"https://rslstandard.org/rsl\"><content url=\"/\"><license>",
        b"<rsl/><rsl/>",
    ];
    for &body in cases {
        let d = RslDocument::parse(body, false);
        assert!(!d.valid, "{:?}", String::from_utf8_lossy(body));
        assert!(d.contents.is_empty());
        assert!(!d.problems.is_empty());
        assert!(d.evaluate("https://example.com/", Purpose::AiTrain).is_none());
    }
}

#[test]
fn recorded_problems() {
    let d = RslDocument::parse(
        concat!(
            "<rsl max-age=\"soon\">\n",
            "<content url=\"/\"><license><permits>search bogus</permits><frob/></license></content>\n",
            "<content><license><prohibits type=\"usage\">all</prohibits></license></content>\n",
            "<x:ext xmlns:x=\"urn:x\"/></rsl>"
        )
        .as_bytes(),
        false,
    );
    assert!(d.valid);
    let lines: Vec<u32> = d.problems.iter().map(|(l, _)| *l).collect();
    // namespace + max-age (1), list without type + unknown token + <frob> (2), content without url (3)
    assert_eq!(lines, vec![1, 1, 2, 2, 2, 3], "{:?}", d.problems);
    assert_eq!(status(&d, "/", Purpose::Search), Some(Permitted));
    assert_eq!(d.contents.len(), 1, "the entry without url is dropped");
    assert_eq!(d.contents[0].licenses.len(), 1, "its licence does not attach to the previous entry");
}

#[test]
fn entities_in_lists() {
    let d = doc(
        "<content url=\"/a&amp;b\"><license><prohibits type=\"usage\">ai&#45;train</prohibits></license></content>",
    );
    assert_eq!(d.contents[0].url, "/a&b");
    assert_eq!(status(&d, "/a&b", Purpose::AiTrain), Some(Prohibited));
}

#[test]
fn robots_license_lines() {
    let robots = example("rsl-robots-and-headers.txt");
    let bot = robots_licenses(Vec::<(String, u32)>::new(), extension_lines(&robots, "ExampleBot", "license"));
    assert!(bot.from_group);
    assert_eq!(
        bot.licenses,
        vec![LicenseRef { url: "https://example.com/examplebot-license.xml".to_string(), line: 6 }]
    );
    let star = robots_licenses(Vec::<(String, u32)>::new(), extension_lines(&robots, "*", "license"));
    assert_eq!(star.licenses[0].url, "https://example.com/default-license.xml");

    // Group lines replace global ones; invalid values are recorded and skipped.
    let cases: &[(&[(&str, u32)], &[(&str, u32)], &[&str], bool, usize)] = &[
        (&[("https://a.example/l.xml", 1)], &[], &["https://a.example/l.xml"], false, 0),
        (&[("https://a.example/l.xml", 1)], &[("https://b.example/l.xml", 5)], &["https://b.example/l.xml"], true, 0),
        (&[("https://a.example/l.xml", 1)], &[("/relative.xml", 5)], &["https://a.example/l.xml"], false, 1),
        (&[("ftp://a.example/l.xml", 1), ("HTTPS://A.example/x # c", 2)], &[], &["HTTPS://A.example/x"], false, 1),
        (&[("", 1), ("https://", 2)], &[], &[], false, 2),
    ];
    for &(global, group, want, from_group, problems) in cases {
        let got = robots_licenses(global.iter().copied(), group.iter().copied());
        assert_eq!(got.licenses.iter().map(|l| l.url.as_str()).collect::<Vec<_>>(), want, "{global:?} {group:?}");
        assert_eq!((got.from_group, got.problems.len()), (from_group, problems), "{global:?} {group:?}");
    }
}

#[test]
fn link_header_table() {
    // (field lines, licence URLs, problems)
    let cases: &[(&[&str], &[&str], usize)] = &[
        (
            &[r#"<https://example.com/license.xml>; rel="license"; type="application/rsl+xml""#],
            &["https://example.com/license.xml"],
            0,
        ),
        (&[r#"<https://e.com/l.xml>;rel=license;type=application/rsl+xml"#], &["https://e.com/l.xml"], 0),
        (
            &[r#"<https://e.com/l.xml>; REL="alternate License"; TYPE="Application/RSL+XML""#],
            &["https://e.com/l.xml"],
            0,
        ),
        (&[r#"<https://e.com/l.xml>; rel="license""#], &[], 0),
        (&[r#"<https://e.com/cc>; rel="license"; type="text/html""#], &[], 0),
        (
            &[r#"<https://e.com/a,b>; rel="next", <https://e.com/l.xml>; rel="license"; type="application/rsl+xml""#],
            &["https://e.com/l.xml"],
            0,
        ),
        (
            &[r#"<https://e.com/x>; title="a, \"b\"; c"; rel="license"; type="application/rsl+xml""#],
            &["https://e.com/x"],
            0,
        ),
        (&[r#"<https://e.com/1>; rel="license"; rel="next"; type="application/rsl+xml""#], &["https://e.com/1"], 0),
        (
            &["<https://e.com/a>; rel=next", r#"<https://e.com/l.xml>; rel="license"; type="application/rsl+xml""#],
            &["https://e.com/l.xml"],
            0,
        ),
        (
            &[r#"garbage, <https://e.com/l.xml>; rel="license"; type="application/rsl+xml""#],
            &["https://e.com/l.xml"],
            1,
        ),
        (&[r#"<https://e.com/l.xml; rel="license""#], &[], 1),
        (&[r#"<https://e.com/l.xml>; rel="license; type="application/rsl+xml""#], &[], 1),
        (&[r#"</license.xml>; rel="license"; type="application/rsl+xml""#], &["/license.xml"], 1),
        (&[""], &[], 0),
    ];
    for &(lines, want, problems) in cases {
        let (links, got_problems) = license_links(lines);
        assert_eq!(links.iter().map(|l| l.url.as_str()).collect::<Vec<_>>(), want, "{lines:?}");
        assert_eq!(got_problems.len(), problems, "{lines:?}: {got_problems:?}");
    }
    let (links, _) =
        license_links(["<https://e.com/a>; rel=next", r#"<https://e.com/l>; rel=license; type="application/rsl+xml""#]);
    assert_eq!(links[0].source, 1);
}

#[test]
fn www_authenticate_license_challenge() {
    let c = license_challenge([
        r#"Basic realm="x""#,
        r#"License error="invalid_token", error_description="License token missing, expired, revoked, or malformed""#,
    ])
    .expect("challenge");
    assert_eq!(c.error.as_deref(), Some("invalid_token"));
    assert_eq!(c.error_description.as_deref(), Some("License token missing, expired, revoked, or malformed"));
    let c = license_challenge(["license error=insufficient_scope"]).expect("challenge");
    assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(license_challenge(["License"]).map(|c| c.error), Some(None));
    assert!(license_challenge(["Bearer error=\"invalid_token\""]).is_none());
    assert!(license_challenge(["Licensed error=x"]).is_none());
}

proptest! {
    #[test]
    fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..300), url in ".{0,40}", legacy in any::<bool>()) {
        let d = RslDocument::parse(&body, legacy);
        for p in Purpose::ALL {
            let _ = d.evaluate(&url, p);
        }
        let _ = license_links([String::from_utf8_lossy(&body)]);
        let _ = license_challenge([String::from_utf8_lossy(&body)]);
        let _ = robots_licenses([(url.as_str(), 1)], [(url.as_str(), 2)]);
    }

    #[test]
    fn never_panics_on_xml_like_input(body in r#"(<(/?)(rsl|content|license|permits|prohibits|payment)( url="[/*a-z$]{0,5}"| type="usage"| server="s")?(/?)>|ai-train |all |search |&amp;|&#[0-9]{1,3};|&x;){0,20}"#,
                                     path in "/[a-z/]{0,10}") {
        let d = RslDocument::parse(body.as_bytes(), false);
        let _ = d.prefs(&format!("https://example.com{path}"), false);
    }

    #[test]
    fn never_panics_on_link_like_input(value in r#"([<>;,="\\ ]|rel|license|type|application/rsl\+xml|https://e\.com/){0,30}"#) {
        let _ = license_links([value.as_str()]);
        let _ = license_challenge([format!("License {value}")]);
    }
}

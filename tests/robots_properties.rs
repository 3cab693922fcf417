//! Properties of the robots.txt matcher over arbitrary input: it never panics (the `robotstxt`
//! crate it parses with panics on some long non-ASCII lines), and a few structural laws hold.

use consentry::signals::robots::{DEFAULT_MAX_BYTES, RobotsTxt};
use proptest::prelude::*;

/// Bytes that look like robots.txt often enough to reach deep into the parser: directive lines
/// with arbitrary values (non-ASCII, NUL, `%`, `*`, `$`), raw bytes, CR/LF mixes, long lines.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        Just("User-agent"),
        Just("user-agent"),
        Just("Allow"),
        Just("Disallow"),
        Just("Crawl-delay"),
        Just("Sitemap"),
        Just("Content-Usage"),
        Just("AllowAITraining"),
        Just("Disalow"),
        Just(""),
    ];
    let value = prop_oneof![
        "[a-zA-Z0-9*/$%?=&. \u{a0}\u{0}\t-]{0,24}",
        any::<String>(),
        "[/*]{0,2}[é€ツ\u{a0}a%]{0,40}",
        (1_usize..3).prop_map(|n| format!("/{}", "é\u{a0}ツ".repeat(n * 3_000))),
    ];
    let line = prop_oneof![
        4 => (key, prop_oneof![Just(":"), Just(" "), Just(" : "), Just("")], value)
            .prop_map(|(k, sep, v)| format!("{k}{sep}{v}").into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => Just(b"\xEF\xBB\xBF".to_vec()),
    ];
    let ending = prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"\r"[..]), Just(&b""[..])];
    proptest::collection::vec((line, ending), 0..24).prop_map(|lines| {
        lines
            .into_iter()
            .flat_map(|(mut line, end)| {
                line.extend_from_slice(end);
                line
            })
            .collect()
    })
}

/// A request target: `/` then arbitrary characters, including non-ASCII, `%`, `*`, `$`, `#`.
fn target() -> impl Strategy<Value = String> {
    prop_oneof!["/[a-z0-9/*$%?=&#.~é]{0,30}", any::<String>().prop_map(|s| format!("/{s}")), any::<String>(),]
}

/// A path usable verbatim as an `Allow`/`Disallow` pattern: no wildcard, anchor, comment or
/// whitespace characters.
fn plain_path() -> impl Strategy<Value = String> {
    "/[a-zA-Z0-9/._~%?=&é-]{0,20}"
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![Just("bot".to_owned()), Just("GPTBot".to_owned()), "[a-zA-Z0-9 ./*_-]{0,10}"]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), path in target(), token in token()) {
        let robots = RobotsTxt::parse(&bytes, DEFAULT_MAX_BYTES);
        let _ = robots.check(&token, &path);
        let _ = robots.check_specific(&token, &path);
        let _ = robots.crawl_delay(&token);
        let _ = robots.group_extensions(&token);
    }

    #[test]
    fn robots_like_input_never_panics(body in body(), path in target(), token in token(), max in 0_usize..2_000_000) {
        let robots = RobotsTxt::parse(&body, max);
        let _ = robots.check(&token, &path);
        let _ = robots.check_specific(&token, &path);
        let _ = robots.crawl_delay(&token);
        let _ = robots.group_extensions(&token);
        let _ = robots.stats();
    }

    #[test]
    fn robots_txt_is_always_allowed(body in body(), token in token()) {
        let robots = RobotsTxt::parse(&body, DEFAULT_MAX_BYTES);
        prop_assert!(robots.check(&token, "/robots.txt").allowed);
    }

    #[test]
    fn an_empty_file_allows_everything(path in target(), token in token()) {
        let verdict = RobotsTxt::parse(b"", DEFAULT_MAX_BYTES).check(&token, &path);
        prop_assert!(verdict.allowed && verdict.group.is_none() && verdict.rule.is_none());
    }

    #[test]
    fn adding_an_exact_allow_never_disallows(body in body(), path in plain_path()) {
        let before = RobotsTxt::parse(&body, DEFAULT_MAX_BYTES).check("bot", &path);
        let mut more = body.clone();
        more.extend_from_slice(format!("\nUser-agent: bot\nAllow: {path}\n").as_bytes());
        let after = RobotsTxt::parse(&more, DEFAULT_MAX_BYTES).check("bot", &path);
        prop_assert!(!before.allowed || after.allowed, "{before:?} -> {after:?}");
    }

    #[test]
    fn adding_an_exact_disallow_never_allows(body in body(), path in plain_path()) {
        prop_assume!(path != "/robots.txt");
        let mut base = body.clone();
        base.extend_from_slice(b"\nUser-agent: bot\n");
        let before = RobotsTxt::parse(&base, DEFAULT_MAX_BYTES).check("bot", &path);
        base.extend_from_slice(format!("Disallow: {path}\n").as_bytes());
        let after = RobotsTxt::parse(&base, DEFAULT_MAX_BYTES).check("bot", &path);
        prop_assert!(before.allowed || !after.allowed, "{before:?} -> {after:?}");
    }

    #[test]
    fn check_specific_is_check_when_the_token_has_a_group(body in body(), path in target(), token in token()) {
        let robots = RobotsTxt::parse(&body, DEFAULT_MAX_BYTES);
        match robots.check_specific(&token, &path) {
            Some(verdict) => prop_assert_eq!(verdict, robots.check(&token, &path)),
            // Without a group of its own, a token is judged like any unknown crawler.
            None => prop_assert_eq!(robots.check(&token, &path), robots.check("no-such-bot-0", &path)),
        }
    }

    #[test]
    fn more_bytes_than_the_body_change_nothing(body in body(), path in target()) {
        let exact = RobotsTxt::parse(&body, body.len()).check("bot", &path);
        prop_assert_eq!(exact, RobotsTxt::parse(&body, usize::MAX).check("bot", &path));
    }
}
